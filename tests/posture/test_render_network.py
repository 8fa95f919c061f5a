"""`networkPolicy:` renders a default-deny policy for the application namespace and an
ESO egress policy per ESO environment, validated like every rendered object, clean
under render --check and lint, built by kustomize; without it the tree is as before."""

from __future__ import annotations

from pathlib import Path

from deparrow_secrets.render.validate import validate_object
from helpers import kustomize, load_documents, write_config

CONFIG = """\
{network}environments:
  dev:
    store: {{provider: local}}
  staging:
    store: {{provider: vault, server: 'https://vault.internal:8200', path: deparrow/staging}}
  production:
    store: {{provider: aws, region: us-east-1, accountId: '381492097654'}}
"""


def _render(project: Path, cli, network: str) -> Path:
    write_config(project, CONFIG.format(network=network))
    run = cli("render")
    assert run.code == 0, run.text
    return project / "deparrow" / "k8s"


def test_without_network_policy_nothing_is_rendered(project: Path, cli) -> None:
    tree = _render(project, cli, "")
    assert not (tree / "base" / "network-policy.yaml").exists()
    assert not (tree / "eso").exists()


def test_network_policies_rendered_validated_and_clean(project: Path, cli) -> None:
    tree = _render(project, cli, "networkPolicy:\n  egress: true\n  apiServer: "
                   "[10.96.0.1/32]\n  store: [10.20.0.0/16]\n")
    app = load_documents((tree / "base" / "network-policy.yaml").read_text())
    deny = next(d for d in app if d["metadata"]["name"] == "deparrow-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert deny["metadata"]["namespace"] == "deparrow"
    staging = load_documents((tree / "eso" / "staging" / "network-policy.yaml").read_text())[0]
    assert staging["metadata"]["namespace"] == "external-secrets"
    egress = staging["spec"]["egress"]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    assert egress[2] == {"ports": [{"protocol": "TCP", "port": 8200}],  # the Vault URL's port
                         "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}
    production = load_documents((tree / "eso" / "production" /
                                 "network-policy.yaml").read_text())[0]
    assert production["spec"]["egress"][2]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert not (tree / "eso" / "dev").exists()
    for doc in [*app, staging, production]:
        assert validate_object(doc) == [], doc
    assert cli("render", "--check").code == 0
    assert cli("lint").code == 0
    # kustomize keeps ESO's policy in ESO's namespace, and the overlays carry the deny
    built = kustomize(tree / "eso" / "staging")
    assert [d["metadata"]["namespace"] for d in built] == ["external-secrets"]
    overlay = [d for d in kustomize(tree / "overlays" / "staging")
               if d["kind"] == "NetworkPolicy"]
    assert {d["metadata"]["name"] for d in overlay} == {"deparrow-default-deny",
                                                         "deparrow-allow-dns"}


def test_a_rendered_policy_with_a_wrong_field_is_caught(project: Path, cli) -> None:
    """render --check validates these objects like every other: a tampered one fails."""
    tree = _render(project, cli, "networkPolicy: {}\n")
    path = tree / "base" / "network-policy.yaml"
    path.write_text(path.read_text().replace("podSelector: {}", "podSelektor: {}"))
    run = cli("lint")
    assert run.code == 1 and "manifest-schema" in run.out, run.text


def test_ingress_only_by_default(project: Path, cli) -> None:
    tree = _render(project, cli, "networkPolicy: {}\n")
    app = load_documents((tree / "base" / "network-policy.yaml").read_text())
    assert [d["spec"]["policyTypes"] for d in app] == [["Ingress"]]
    eso = load_documents((tree / "eso" / "staging" / "network-policy.yaml").read_text())[0]
    assert "to" not in eso["spec"]["egress"][1]  # no apiServer CIDRs: the ports, anywhere


def test_the_rendered_policies_satisfy_posture(project: Path, cli, kube_api) -> None:
    tree = _render(project, cli, "networkPolicy: {egress: true}\n")
    args = ("posture", "--env", "staging", "-o", "json", "--kubeconfig",
            str(kube_api.kubeconfig_path), "--ignore", "nothing-committed", "--ignore",
            "least-privilege", "--ignore", "separate-stores", "--ignore", "audit-logging",
            "--ignore", "rotation-age", "--ignore", "encryption-at-rest")
    before = next(f for f in cli(*args).json()["findings"] if f["rule"] == "network-isolation")
    assert before["verdict"] == "fail"
    assert "kubectl apply -k deparrow/k8s/eso/staging" in before["fix"]
    for doc in [*load_documents((tree / "base" / "network-policy.yaml").read_text()),
                *load_documents((tree / "eso" / "staging" / "network-policy.yaml").read_text())]:
        kube_api.put(doc)
    run = cli(*args)
    after = next(f for f in run.json()["findings"] if f["rule"] == "network-isolation")
    assert after["verdict"] == "pass", run.text
