"""deploy in dev (the secretGenerator's Secrets, applied directly), Kubernetes API faults
and bad input, against the fake API server through the real client library."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deparrow_secrets.cluster.datahash import eso_data_hash
from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.providers.local.store import LocalStore
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run

Cli = Callable[..., Run]
CATALOG = load_catalog()
DEV_SECRETS = [s.name for s in CATALOG.secrets if CATALOG.secret_keys(s, False)]


def _store_values(root: Path) -> dict[str, bytes]:
    with LocalStore(root / ".deparrow-secrets" / "store.db") as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    return {k: v.reveal().encode() for k, v in snap.values.items()}


def _cluster_data(api: FakeKubeApiServer, name: str) -> dict[str, bytes]:
    obj = api.get("v1", "Secret", name, "deparrow")
    assert obj is not None, name
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def test_dev_deploy_applies_the_generator_secrets_and_a_rerun_changes_nothing(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kc = str(kube_api.kubeconfig_path)
    run = cli("deploy", "--env", "dev", "--kubeconfig", kc)
    assert run.code == 0, run.text
    values = _store_values(dev_project)
    for secret in CATALOG.secrets:
        keys = CATALOG.secret_keys(secret, False)
        if not keys:
            continue
        data = _cluster_data(kube_api, secret.name)
        assert eso_data_hash(data) == eso_data_hash({k: values[k] for k in keys})
        labels = kube_api.get("v1", "Secret", secret.name, "deparrow")["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "deparrow"
        assert f"create    Secret/{secret.name}" in run.out
    assert "verified by hash" in run.out
    kube_api.reset_log()
    again = cli("deploy", "--env", "dev", "--kubeconfig", kc, "-o", "json")
    assert again.code == 0, again.text
    assert {c["action"] for c in again.json()["changes"]} == {"unchanged"}
    assert again.json()["converged"] is True
    writes = [r for r in kube_api.requests if r.verb in ("patch", "create", "update")]
    assert all("dryRun" not in r.query for r in writes)
    # Server-side apply of unchanged objects writes nothing: resourceVersions stay.
    assert kube_api.count("update") == 0


def test_dry_run_reports_changes_and_writes_nothing(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kc = str(kube_api.kubeconfig_path)
    run = cli("deploy", "--env", "dev", "--kubeconfig", kc, "--dry-run")
    assert run.code == 0, run.text
    assert all(kube_api.get("v1", "Secret", n, "deparrow") is None for n in DEV_SECRETS)
    assert "would change" in run.out and f"create    Secret/{DEV_SECRETS[0]}" in run.out
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0
    assert cli("set", "REDIS_PASSWORD", "--env", "dev",
               stdin="x" * 40 + "\n").code == 0
    run = cli("deploy", "--env", "dev", "--kubeconfig", kc, "--dry-run")
    assert run.code == 0, run.text
    assert "update    Secret/redis-credentials (data.REDIS_PASSWORD)" in run.out
    assert "x" * 40 not in run.out


def test_refuses_when_the_committed_tree_is_out_of_date(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    overlay = dev_project / "deparrow/k8s/overlays/dev/kustomization.yaml"
    overlay.write_text(overlay.read_text() + "# edited\n")
    run = cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path))
    assert run.code == 2, run.text
    assert "deparrow-secrets render" in run.err
    assert kube_api.count("patch") == 0


# --------------------------------------------------------------------------- faults


def test_api_server_down_exit_3_then_rerun_finishes(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    kc = str(kube_api.kubeconfig_path)
    kube_api.stop()
    run = cli("deploy", "--env", "dev", "--kubeconfig", kc)
    assert run.code == 3, run.text
    assert "unreachable" in run.err and "kubectl cluster-info" in run.err
    assert "Traceback" not in run.err
    kube_api.start()
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0


def test_slow_api_server_timeout_is_honoured(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "0.5")
    kube_api.set_delay(3)
    began = time.monotonic()
    run = cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path))
    elapsed = time.monotonic() - began
    assert run.code == 3, run.text
    assert "timed out after 1 attempt(s) within 0.5s" in run.err
    assert elapsed < 2.5, elapsed
    kube_api.set_delay(0)
    assert cli("deploy", "--env", "dev", "--kubeconfig",
               str(kube_api.kubeconfig_path)).code == 0


def test_forbidden_resource_exit_4_names_the_rbac_rule(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kube_api.deny("patch", "secrets", namespace="deparrow")
    run = cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path))
    assert run.code == 4, run.text
    assert "patch secrets" in run.err and "namespace deparrow" in run.err
    assert 'resources: ["secrets"], verbs: ["patch"]' in run.err
    kube_api.allow_all()
    assert cli("deploy", "--env", "dev", "--kubeconfig",
               str(kube_api.kubeconfig_path)).code == 0


def test_conflict_during_apply_is_retried_then_exit_5_and_rerun_finishes(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kc = str(kube_api.kubeconfig_path)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "3")
    kube_api.fail_next("patch", "secrets", 409, count=1)
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0  # retried
    kube_api.fail_next("patch", "secrets", 409, count=10)
    assert cli("set", "REDIS_PASSWORD", "--env", "dev", stdin="y" * 40 + "\n").code == 0
    run = cli("deploy", "--env", "dev", "--kubeconfig", kc)
    assert run.code == 5, run.text
    assert "conflict (409) after 3 attempt(s)" in run.err and "rerun" in run.err
    kube_api.clear_faults()
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0
    assert _cluster_data(kube_api, "redis-credentials")["REDIS_PASSWORD"] == b"y" * 40


# --------------------------------------------------------------------------- bad input


def test_unknown_context_unreadable_kubeconfig_missing_namespace_exit_2(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kc = str(kube_api.kubeconfig_path)
    run = cli("doctor", "--env", "dev", "--kubeconfig", kc, "--context", "nope")
    assert run.code == 2, run.text
    assert "context 'nope'" in run.err and "fake" in run.err
    bad = dev_project / "broken-kubeconfig"
    bad.write_text("clusters: [\n  token: abc: ]", encoding="utf-8")
    for command in ("deploy", "doctor", "drift"):
        run = cli(command, "--env", "dev", "--kubeconfig", str(bad))
        assert run.code == 2, run.text
        assert "not valid YAML" in run.err and "abc" not in run.err
    run = cli("drift", "--env", "dev", "--kubeconfig", str(dev_project / "absent"))
    assert run.code == 2 and "does not exist" in run.err, run.text
    kube_api.delete("v1", "Namespace", "deparrow")
    for command in (("doctor",), ("drift",), ("impact", "redis-credentials"),
                    ("deploy", "--no-apply")):
        run = cli(*command, "--env", "dev", "--kubeconfig", kc)
        assert run.code == 2, run.text
        assert "namespace 'deparrow' does not exist" in run.err
        assert "deparrow-secrets deploy --env dev" in run.err


def test_missing_namespace_dry_run_lists_everything_as_new_and_deploy_creates_it(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kube_api.delete("v1", "Namespace", "deparrow")
    run = cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path),
              "--dry-run", "-o", "json")
    assert run.code == 0, run.text
    assert {c["action"] for c in run.json()["changes"]} == {"create"}
    assert kube_api.get("v1", "Namespace", "deparrow") is None
    run = cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path))
    assert run.code == 0, run.text
    assert kube_api.get("v1", "Namespace", "deparrow") is not None
    assert all(kube_api.get("v1", "Secret", n, "deparrow") for n in DEV_SECRETS)


def test_dev_objects_are_what_kustomize_builds_from_the_exported_files(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    from helpers import kustomize

    assert cli("export", "--env", "dev").code == 0
    built = {o["metadata"]["name"]: o for o in
             kustomize(dev_project / "deparrow/k8s/overlays/dev") if o["kind"] == "Secret"}
    assert cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path)).code == 0
    assert sorted(built) == sorted(DEV_SECRETS)
    for name, obj in built.items():
        live = kube_api.get("v1", "Secret", name, "deparrow")
        assert live["metadata"]["namespace"] == obj["metadata"]["namespace"]
        assert live["metadata"]["labels"] == obj["metadata"]["labels"]
        assert live.get("type", "Opaque") == obj.get("type", "Opaque")
        assert _cluster_data(kube_api, name) == {
            k: base64.b64decode(v) for k, v in obj["data"].items()}


def test_exec_plugin_credentials(dev_project: Path, kube_api: FakeKubeApiServer,
                                 cli: Cli, tmp_path: Path) -> None:
    import json
    import sys

    plugin = tmp_path / "credential-plugin.py"
    plugin.write_text(
        "import json, os, sys\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
        "'kind': 'ExecCredential', 'status': {'token': os.environ['PLUGIN_TOKEN']}}))\n",
        encoding="utf-8")
    config = json.loads(Path(kube_api.kubeconfig_path).read_text())

    def with_token(token: str) -> Path:
        config["users"][0]["user"] = {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
            "args": [str(plugin)], "env": [{"name": "PLUGIN_TOKEN", "value": token}],
            "interactiveMode": "Never"}}
        path = tmp_path / f"exec-{len(token)}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    run = cli("deploy", "--env", "dev", "--kubeconfig", str(with_token(kube_api.token)))
    assert run.code == 0, run.text
    run = cli("doctor", "--env", "dev", "--kubeconfig", str(with_token("wrong-token")))
    assert run.code == 4, run.text
    assert "rejected the credentials (401)" in run.err


def test_doctor_forbidden_to_list_pods_exit_4_with_the_rule(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    kc = str(kube_api.kubeconfig_path)
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0
    kube_api.deny("list", "pods", namespace="deparrow")
    for command in (("doctor",), ("impact", "redis-credentials")):
        run = cli(*command, "--env", "dev", "--kubeconfig", kc)
        assert run.code == 4, run.text
        assert "[context fake, list pods, namespace deparrow] forbidden (403)" in run.err
        assert 'a Role in namespace deparrow with rule {apiGroups: [""], resources: ' \
               '["pods"], verbs: ["list"]}' in run.err
    kube_api.allow_all()
    assert cli("doctor", "--env", "dev", "--kubeconfig", kc).code == 0


def test_in_cluster_configuration_without_a_kubeconfig(
        dev_project: Path, kube_api: FakeKubeApiServer, cli: Cli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes.config.incluster_config as incluster

    assert cli("deploy", "--env", "dev", "--kubeconfig", str(kube_api.kubeconfig_path)).code == 0
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(kube_api.token, encoding="utf-8")
    (account / "ca.crt").write_bytes(Path(kube_api.ca_path).read_bytes())
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_api.port))
    run = cli("doctor", "--env", "dev", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["context"] == "in-cluster"
    (account / "token").write_text("not-the-token", encoding="utf-8")
    run = cli("drift", "--env", "dev")
    assert run.code == 4 and "context in-cluster" in run.err, run.text
