"""Network isolation on the fake API server, the posture command's options and outputs,
and the canary: no value, raw or base64, in any posture, status or verify output."""

from __future__ import annotations

from pathlib import Path

import pytest
from posture_helpers import backdate_local, catalog_with_max_age

from helpers import find_values, write_config

ONLY_NETWORK = ("--ignore", "nothing-committed", "--ignore", "least-privilege",
                "--ignore", "separate-stores", "--ignore", "audit-logging",
                "--ignore", "rotation-age", "--ignore", "encryption-at-rest")


def _policy(name: str, ns: str, types: list[str], selector: dict | None = None,
            **rules: list) -> dict:
    spec: dict = {"podSelector": selector or {}, "policyTypes": types}
    spec.update(rules)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _network(run) -> dict:
    found = [f for f in run.json()["findings"] if f["rule"] == "network-isolation"]
    assert len(found) == 1, run.text
    return found[0]


def test_no_cluster_is_unknown_with_the_options(project: Path, cli) -> None:
    run = cli("posture", "--env", "dev", "-o", "json", *ONLY_NETWORK[:-4])
    net = _network(run)
    assert net["verdict"] == "unknown" and net["reason"] == "no cluster given", run.text
    assert "--kubeconfig FILE" in net["fix"]


def test_network_policies_fail_then_pass(project: Path, cli, kube_api) -> None:
    write_config(project, "networkPolicy: {egress: true}\nenvironments:\n  dev:\n"
                 "    store: {provider: local}\n")
    kc = str(kube_api.kubeconfig_path)
    args = ("posture", "--env", "dev", "-o", "json", "--kubeconfig", kc, *ONLY_NETWORK)
    run = cli(*args)
    net = _network(run)
    assert run.code == 1 and net["verdict"] == "fail", run.text
    assert "no default-deny ingress" in net["message"]
    assert "nothing restricts the egress of ESO" in net["message"]
    assert "kubectl apply -f deparrow/k8s/base/network-policy.yaml" in net["fix"]
    # an ingress rule that allows something is not a default deny
    kube_api.put(_policy("allow-web", "deparrow", ["Ingress"],
                         ingress=[{"from": [{"podSelector": {}}]}]))
    kube_api.put(_policy("deny-in", "deparrow", ["Ingress"]))
    run = cli(*args)
    net = _network(run)
    assert "no default-deny ingress" not in net["message"], run.text
    assert "no default-deny egress" in net["message"]  # egress: true asks for it
    kube_api.put(_policy("deny-out", "deparrow", ["Egress"]))
    # a policy selecting other pods in ESO's namespace does not restrict ESO
    kube_api.put(_policy("other", "external-secrets", ["Egress"],
                         {"matchLabels": {"app": "other"}}))
    net = _network(cli(*args))
    assert net["verdict"] == "fail" and "egress of ESO" in net["message"]
    kube_api.put(_policy("eso-egress", "external-secrets", ["Egress"],
                         {"matchLabels": {"app.kubernetes.io/name": "external-secrets"}},
                         egress=[{"ports": [{"port": 53, "protocol": "UDP"}]}]))
    run = cli(*args)
    net = _network(run)
    assert net["verdict"] == "pass" and run.code == 0, run.text
    assert any("deny-in" in e for e in net["evidence"])
    assert any("eso-egress" in e for e in net["evidence"])


def test_egress_not_required_unless_configured(project: Path, cli, kube_api) -> None:
    kube_api.put(_policy("deny-in", "deparrow", ["Ingress"]))
    kube_api.put(_policy("eso", "external-secrets", ["Egress"], egress=[{}]))
    run = cli("posture", "--env", "dev", "-o", "json", "--kubeconfig",
              str(kube_api.kubeconfig_path), *ONLY_NETWORK)
    assert _network(run)["verdict"] == "pass", run.text


def test_forbidden_list_is_unknown_with_the_rbac_rule(project: Path, cli, kube_api) -> None:
    kube_api.deny("list", "networkpolicies")
    run = cli("posture", "--env", "dev", "-o", "json", "--kubeconfig",
              str(kube_api.kubeconfig_path), *ONLY_NETWORK)
    net = _network(run)
    assert net["verdict"] == "unknown", run.text
    assert "networkpolicies" in net["fix"]


@pytest.mark.parametrize("bad", [("--ignore", "audit"), ("--ignore", "rotation-age",
                                                         "--ignore", "encryption")])
def test_unknown_practice_in_ignore_is_exit_2(project: Path, cli, bad) -> None:
    run = cli("posture", "--env", "dev", *bad)
    assert run.code == 2, run.text
    assert "unknown practice" in run.err and "audit-logging" in run.err
    assert run.out == ""


def test_practice_names_match_the_registry() -> None:
    from deparrow_secrets.cli.posture_cmds import PRACTICES
    from deparrow_secrets.posture.checks import POSTURE_RULES

    assert list(PRACTICES) == [r.id for r in POSTURE_RULES]


def test_bad_network_policy_config_is_exit_2(project: Path, cli) -> None:
    path = write_config(project, "networkPolicy:\n  store: [10.0.0.1/8]  # <- error\n")
    from helpers import assert_input_error

    assert_input_error(cli("posture", "--env", "dev"), path, "networkPolicy.store[0]",
                       ["not a CIDR block"])


def test_sarif_and_text(project: Path, cli) -> None:
    import json

    run = cli("posture", "--env", "dev", "-o", "sarif")
    log = json.loads(run.out)
    rules = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert rules[:2] == ["audit-logging", "rotation-age"] and len(rules) == 7
    levels = {r["ruleId"]: r["level"] for r in log["runs"][0]["results"]}
    assert set(levels.values()) <= {"note", "warning", "error"}
    text = cli("posture", "--env", "dev").out
    assert "UNKNOWN  network-isolation (cluster)" in text
    assert text.rstrip().splitlines()[-1].startswith("dev (local): ")


def test_canary_no_value_in_posture_status_verify(project: Path, cli, kube_api) -> None:
    catalog = catalog_with_max_age(project, {"REDIS_PASSWORD": "1h"})
    write_config(project, f"catalog: {catalog.name}\nenvironments:\n  dev:\n"
                 "    store: {provider: local}\n")
    assert cli("provision", "--env", "dev").code == 0
    from datetime import UTC, datetime, timedelta

    from deparrow_secrets.project import Project

    backdate_local(project / ".deparrow-secrets" / "store.db",
                   datetime.now(UTC) - timedelta(days=2))
    proj = Project.load(None, project)
    env = proj.environment("dev")
    with proj.open_store(env, create=False) as store:
        read = proj.layout(env).read(store)
    values = {k: r.value.reveal() for k, r in read.items()
              if r.value and proj.catalog.values[k].source == "generated"}
    assert values
    kc = str(kube_api.kubeconfig_path)
    blobs: dict[str, bytes] = {}
    for output in ("text", "json", "sarif"):
        run = cli("posture", "--env", "dev", "-o", output, "--kubeconfig", kc)
        assert run.code == 1, run.text  # overdue REDIS_PASSWORD
        blobs[f"posture {output}"] = (run.out + run.err).encode()
    for cmd in ("status", "verify"):
        for output in ("text", "json"):
            run = cli(cmd, "--env", "dev", "-o", output)
            blobs[f"{cmd} {output}"] = (run.out + run.err).encode()
    assert "OVERDUE" in blobs["verify text"].decode()
    assert find_values(blobs, values) == []


def test_a_found_kubeconfig_that_is_broken_is_unknown_a_given_one_exit_2(
        project: Path, cli, tmp_path: Path) -> None:
    kube = tmp_path / "home" / ".kube"
    kube.mkdir(parents=True)
    (kube / "config").write_text("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n")
    run = cli("posture", "--env", "dev", "-o", "json", *ONLY_NETWORK)
    net = _network(run)
    assert net["verdict"] == "unknown" and run.code == 0, run.text
    assert "nowhere" in net["reason"] and net["reason"] != "no cluster given"
    given = cli("posture", "--env", "dev", "--kubeconfig", str(kube / "config"),
                *ONLY_NETWORK)
    assert given.code == 2 and "nowhere" in given.err, given.text


def test_ignoring_network_isolation_never_touches_the_cluster(project: Path, cli,
                                                              kube_api) -> None:
    before = len(kube_api.requests)
    run = cli("posture", "--env", "dev", "-o", "json", "--kubeconfig",
              str(kube_api.kubeconfig_path), "--ignore", "network-isolation")
    assert run.code == 0 and run.json()["context"] is None, run.text
    assert len(kube_api.requests) == before
    run = cli("posture", "--env", "dev", "-o", "json", "--kubeconfig",
              str(kube_api.kubeconfig_path))
    assert len(kube_api.requests) == before + 2  # one list per namespace
