"""doctor, drift and impact on one chain store -> SecretStore -> ExternalSecret -> Secret ->
workloads, built on the fake API server with the ESO simulator on a real OpenBao.

doctor: a healthy environment gives no findings; each finding id comes from one broken
cluster state, with the id and its fix asserted; pictures, SARIF, the API-call budget.
drift: each way the three sides disagree lands on the right side. impact: every kind of
reference, and the pods that hold a stale copy."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.project import Project
from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import deployment, eso_crds
from helpers import Run, vault_staging_project

Cli = Callable[..., Run]
NS = "deparrow"
ESO = "external-secrets.io/v1"
SETTLE_SECONDS = 60  # for a simulator's reaction; seconds when the machine is idle


@dataclass
class Cluster:
    api: FakeKubeApiServer
    sim: Any
    cli: Cli
    root: Path
    kubeconfig: str
    remote_path: str
    openbao: Any
    workloads: Any

    def doctor(self, *extra: str) -> Run:
        return self.cli("doctor", "--env", "staging", "--kubeconfig", self.kubeconfig, *extra)

    def findings(self, rule: str | None = None) -> list[dict[str, Any]]:
        run = self.doctor("-o", "json")
        assert run.code in (0, 1), run.text
        return [f for f in run.json()["findings"] if rule is None or f["rule"] == rule]

    def only(self, rule: str) -> dict[str, Any]:
        found = self.findings()
        assert [f["rule"] for f in found].count(rule) >= 1, json.dumps(found, indent=1)
        return next(f for f in found if f["rule"] == rule)

    def app(self, name: str, spec_patch: dict[str, Any]) -> None:
        """A Deployment whose pod template gets `spec_patch` merged into its first container
        (and `volumes` into the pod spec)."""
        dep = deployment(name, NS, {"app": name})
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        for key, value in spec_patch.items():
            if key == "volumes":
                pod["volumes"] = value
            else:
                container[key] = value
        self.api.put(dep)

    def wait_pods(self, name: str) -> None:
        # The rollout simulator shares this process with the API server, the ESO simulator
        # and the tool: on a loaded 2-core machine a pass can take seconds.
        self.api.wait_for(lambda: self.api.list("v1", "Pod", NS, label_selector=f"app={name}"),
                          timeout=SETTLE_SECONDS)

    def vault_kv(self) -> Any:
        return self.openbao.client().secrets.kv.v2


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: Any, cli: Cli,
            kube_api: FakeKubeApiServer, eso: Callable[..., Any],
            eso_install: Callable[..., None], workloads: Any) -> Iterator[Cluster]:
    # client-token review: the one mode whose rendering has the auth-delegator binding
    root, path = vault_staging_project(tmp_path, monkeypatch, openbao,
                                       store_extra="tokenReview: client-token")
    assert cli("provision", "--env", "staging").code == 0
    assert cli("render").code == 0
    eso_install(kube_api)
    project = Project.load(root / "deparrow-secrets.yaml")
    env = project.environment("staging")
    sim = eso(lambda store_obj: project.open_store(env))
    kc = str(kube_api.kubeconfig_path)
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc)
    assert run.code == 0, run.text
    c = Cluster(kube_api, sim, cli, root, kc, path, openbao, workloads)
    c.app("web", {"envFrom": [{"secretRef": {"name": "deparrow-secrets"}}],
                  "volumeMounts": [{"name": "redis", "mountPath": "/etc/redis"}],
                  "volumes": [{"name": "redis", "secret": {"secretName": "redis-credentials"}}]})
    c.wait_pods("web")
    yield c


def test_healthy_environment_has_no_findings(cluster: Cluster) -> None:
    run = cluster.doctor()
    assert run.code == 0, run.text
    assert "no findings" in run.out
    doc = json.loads(cluster.doctor("-o", "json").out)
    assert doc["findings"] == [] and doc["summary"]["checked"] > 5


# --------------------------------------------------------------------------- ESO itself


def test_eso_not_installed(cluster: Cluster) -> None:
    for crd in eso_crds():
        cluster.api.delete(crd["apiVersion"], crd["kind"], crd["metadata"]["name"])
    f = cluster.only("eso-not-installed")
    assert "helm upgrade --install external-secrets" in f["fix"]


def test_eso_serving_only_v1beta1(cluster: Cluster) -> None:
    for crd in eso_crds():
        old = copy.deepcopy(crd)
        for version in old["spec"]["versions"]:
            version["served"] = version["name"] == "v1beta1"
            version["storage"] = version["name"] == "v1beta1"
            version.pop("deprecated", None)
        cluster.api.delete(crd["apiVersion"], crd["kind"], crd["metadata"]["name"])
        cluster.api.put(old)
    f = cluster.only("eso-v1-not-served")
    assert "v1beta1" in f["message"] and "0.17" in f["fix"]


def test_eso_webhook_pod_not_running(cluster: Cluster) -> None:
    cluster.api.delete("apps/v1", "Deployment", "external-secrets-webhook", "external-secrets")
    for pod in cluster.api.list("v1", "Pod", "external-secrets",
                                label_selector="app.kubernetes.io/name="
                                               "external-secrets-webhook"):
        cluster.api.delete("v1", "Pod", pod["metadata"]["name"], "external-secrets")
    f = cluster.only("eso-pod-not-running")
    assert "external-secrets-webhook" in f["message"]
    assert "describe pods -l app.kubernetes.io/name=external-secrets-webhook" in f["fix"]


# --------------------------------------------------------------------------- the chain


def test_secretstore_missing(cluster: Cluster) -> None:
    cluster.sim.pause()
    cluster.api.delete(ESO, "SecretStore", "deparrow-secretstore", NS)
    f = cluster.only("secretstore-missing")
    assert f["fix"] == "deparrow-secrets deploy --env staging"


def test_secretstore_not_ready_shows_the_warning_event(cluster: Cluster) -> None:
    detail = f"permission denied {secrets.token_hex(4)}"
    cluster.sim.fail_auth("deparrow-secretstore", detail)
    cluster.api.wait_for(lambda: any(
        c["status"] == "False" for c in cluster.api.get(  # type: ignore[index]
            ESO, "SecretStore", "deparrow-secretstore", NS)["status"]["conditions"]),
        timeout=SETTLE_SECONDS)
    f = cluster.only("secretstore-not-ready")
    assert detail in f["message"] and "InvalidProviderConfig" in f["message"]
    assert "deparrow-secrets setup --env staging" in f["fix"]


def test_externalsecret_missing(cluster: Cluster) -> None:
    cluster.sim.pause()
    cluster.api.delete(ESO, "ExternalSecret", "redis-credentials-external", NS,
                       propagation="Orphan")
    f = cluster.only("externalsecret-missing")
    assert "redis-credentials-external" in f["message"]
    assert f["fix"] == "deparrow-secrets deploy --env staging"


def test_externalsecret_not_ready_shows_the_update_failed_event(cluster: Cluster) -> None:
    cluster.sim.fail_key(cluster.remote_path)
    cluster.api.patch(ESO, "ExternalSecret", "redis-credentials-external", NS,
                      {"metadata": {"annotations": {"force-sync": str(time.time())}}})
    cluster.api.wait_for(lambda: any(
        c["status"] == "False" for c in cluster.api.get(  # type: ignore[index]
            ESO, "ExternalSecret", "redis-credentials-external", NS)["status"]["conditions"]),
        timeout=SETTLE_SECONDS)
    f = cluster.only("externalsecret-not-ready")
    assert "SecretSyncedError" in f["message"] and cluster.remote_path in f["message"]
    assert "describe externalsecret redis-credentials-external" in f["fix"]


def test_refresh_disabled(cluster: Cluster) -> None:
    cluster.api.patch(ESO, "ExternalSecret", "redis-credentials-external", NS,
                      {"spec": {"refreshInterval": "0"}})
    f = cluster.only("refresh-disabled")
    assert "refreshInterval 0" in f["message"] and "refreshInterval 1h" in f["fix"]


def test_secret_missing(cluster: Cluster) -> None:
    cluster.sim.pause()
    cluster.api.delete("v1", "Secret", "redis-credentials", NS)
    f = cluster.only("secret-missing")
    assert f["fix"] == "deparrow-secrets deploy --env staging"


def test_secret_key_missing(cluster: Cluster) -> None:
    cluster.sim.pause()
    secret = cluster.api.get("v1", "Secret", "postgres-credentials", NS)
    secret["data"].pop("POSTGRES_PASSWORD")
    cluster.api.put(secret)
    f = cluster.only("secret-key-missing")
    assert "POSTGRES_PASSWORD" in f["message"]
    assert "deparrow-secrets deploy --env staging" in f["fix"]


def test_secret_out_of_sync_when_the_store_changed(cluster: Cluster) -> None:
    value = secrets.token_urlsafe(40)
    assert cluster.cli("set", "REDIS_PASSWORD", "--env", "staging",
                       stdin=value + "\n").code == 0
    f = cluster.only("secret-out-of-sync")
    assert "REDIS_PASSWORD" in f["message"]
    assert "force-sync=$(date +%s)" in f["fix"] and "deploy --env staging" in f["fix"]
    assert value not in json.dumps(cluster.findings())


def test_secret_edited_in_cluster(cluster: Cluster) -> None:
    import base64

    cluster.sim.pause()
    secret = cluster.api.get("v1", "Secret", "redis-credentials", NS)
    secret["data"]["REDIS_PASSWORD"] = base64.b64encode(b"edited-by-hand").decode()
    cluster.api.put(secret)
    f = cluster.only("secret-edited-in-cluster")
    assert "deparrow-secrets set KEY --env staging" in f["fix"]


def test_serviceaccount_missing(cluster: Cluster) -> None:
    cluster.api.delete("v1", "ServiceAccount", "deparrow-external-secrets-sa", NS)
    f = cluster.only("serviceaccount-missing")
    assert f["fix"] == "deparrow-secrets deploy --env staging"


def test_serviceaccount_identity_mismatch(cluster: Cluster) -> None:
    cluster.api.patch("v1", "ServiceAccount", "deparrow-external-secrets-sa", NS,
                      {"metadata": {"annotations": {
                          "eks.amazonaws.com/role-arn": "arn:aws:iam::210987654321:role/x"}}})
    f = cluster.only("serviceaccount-identity-mismatch")
    assert "eks.amazonaws.com/role-arn" in f["message"]
    assert "annotate serviceaccount deparrow-external-secrets-sa --overwrite " \
           "eks.amazonaws.com/role-arn-" in f["fix"]


def test_auth_delegator_missing(cluster: Cluster) -> None:
    cluster.api.delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding",
                       "deparrow-external-secrets-sa-auth-delegator")
    f = cluster.only("auth-delegator-missing")
    assert "--clusterrole=system:auth-delegator " \
           "--serviceaccount=deparrow:deparrow-external-secrets-sa" in f["fix"]


def test_store_unreachable_with_the_tools_own_credentials(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s." + secrets.token_hex(12))
    f = cluster.only("store-unreachable")
    assert "own read of the store failed" in f["message"]


def test_store_key_missing(cluster: Cluster) -> None:
    kv = cluster.vault_kv()
    data = kv.read_secret_version(path=cluster.remote_path, mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]
    data.pop("GRAFANA_ADMIN_PASSWORD")
    kv.create_or_update_secret(path=cluster.remote_path, secret=data, mount_point="secret")
    f = cluster.only("store-key-missing")
    assert "GRAFANA_ADMIN_PASSWORD" in f["message"]
    assert f["fix"] == "deparrow-secrets provision --env staging"


# --------------------------------------------------------------------------- workloads


def test_workload_references_a_secret_that_does_not_exist(cluster: Cluster) -> None:
    cluster.app("api", {"envFrom": [{"secretRef": {"name": "api-tokens"}},
                                    {"secretRef": {"name": "maybe", "optional": True}}]})
    f = cluster.only("workload-secret-missing")
    assert "Deployment/api references Secret api-tokens" in f["message"]
    assert "create Secret api-tokens in deparrow or correct the name" in f["fix"]
    assert [x for x in cluster.findings("workload-secret-missing")
            if "maybe" in x["message"]] == []  # optional: allowed to be absent


def test_workload_references_a_key_that_does_not_exist(cluster: Cluster) -> None:
    cluster.app("api", {"env": [{"name": "R", "valueFrom": {"secretKeyRef": {
        "name": "redis-credentials", "key": "REDIS_PASSWORT"}}}]})
    f = cluster.only("workload-key-missing")
    assert "REDIS_PASSWORT" in f["message"] and "REDIS_PASSWORD" in f["message"]
    assert "correct the key in Deployment/api" in f["fix"]


def test_subpath_mount(cluster: Cluster) -> None:
    cluster.app("api", {
        "volumeMounts": [{"name": "s", "mountPath": "/etc/app/REDIS_PASSWORD",
                          "subPath": "REDIS_PASSWORD"}],
        "volumes": [{"name": "s", "secret": {"secretName": "redis-credentials"}}]})
    f = cluster.only("subpath-mount")
    assert "Deployment/api" in f["message"] and "without subPath" in f["fix"]


def test_pod_started_before_the_last_sync_holds_old_env(cluster: Cluster) -> None:
    time.sleep(1.1)  # Event and start times have one-second resolution
    value = secrets.token_urlsafe(64)
    assert cluster.cli("set", "DEPARROW_JWT_SECRET", "--env", "staging",
                       stdin=value + "\n").code == 0
    assert cluster.cli("deploy", "--env", "staging", "--kubeconfig",
                       cluster.kubeconfig).code == 0
    f = cluster.only("pod-stale-env")
    assert "Deployment/web" in f["message"] and "deparrow-secrets" in f["message"]
    assert f["fix"] == "kubectl -n deparrow rollout restart deployment/web"
    assert cluster.cli("set", "REDIS_PASSWORD", "--env", "staging",
                       stdin=secrets.token_urlsafe(40) + "\n").code == 0
    # A volume mount (web reads redis-credentials from one) updates by itself.
    assert len(cluster.findings("pod-stale-env")) == 1


def test_reloader_annotated_workload_is_left_to_reloader(cluster: Cluster) -> None:
    dep = cluster.api.get("apps/v1", "Deployment", "web", NS)
    dep["metadata"].setdefault("annotations", {})["reloader.stakater.com/auto"] = "true"
    cluster.api.put(dep)
    cluster.workloads.stop()  # Reloader has not got to it yet
    time.sleep(1.1)
    assert cluster.cli("set", "DEPARROW_JWT_SECRET", "--env", "staging",
                       stdin=secrets.token_urlsafe(64) + "\n").code == 0
    assert cluster.cli("deploy", "--env", "staging", "--kubeconfig",
                       cluster.kubeconfig).code == 0
    f = cluster.only("pod-stale-env")
    assert "Reloader" in f["fix"] and "rollout restart" not in f["fix"]


# --------------------------------------------------------------------------- outputs


def test_pictures_and_sarif(cluster: Cluster) -> None:
    cluster.sim.pause()
    cluster.api.delete("v1", "Secret", "redis-credentials", NS)
    dot = cluster.doctor("-o", "dot")
    assert dot.code == 1 and dot.out.startswith('digraph "staging"')
    assert '"secret:redis-credentials" [label="Secret redis-credentials\\nerror", ' \
           'fillcolor="lightcoral"]' in dot.out
    assert '"es:redis-credentials-external" -> "secret:redis-credentials"' in dot.out
    assert '"secret:deparrow-secrets" -> "wl:Deployment/web"' in dot.out
    mermaid = cluster.doctor("-o", "mermaid")
    assert mermaid.out.startswith("flowchart LR") and ":::error" in mermaid.out
    assert "classDef ok fill:palegreen" in mermaid.out
    sarif = json.loads(cluster.doctor("-o", "sarif").out)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "secret-missing")
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == \
        "Secret deparrow/redis-credentials"
    text = cluster.doctor()
    assert "Secret deparrow/redis-credentials: error [secret-missing]" in text.out
    assert "fix: deparrow-secrets deploy --env staging" in text.out


def test_doctor_api_calls_do_not_grow_with_objects(cluster: Cluster) -> None:
    def calls() -> int:
        return cluster.doctor("-o", "json").json()["apiCalls"]

    before = calls()
    for i in range(30):
        cluster.app(f"extra-{i}", {"envFrom": [{"secretRef": {"name": "deparrow-secrets"}}]})
        cluster.api.put({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": f"other-{i}", "namespace": NS},
                         "data": {"k": "dg=="}})
    assert calls() == before


# --------------------------------------------------------------------------- drift


def _drift(cluster: Cluster) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    run = cluster.cli("drift", "--env", "staging", "--kubeconfig", cluster.kubeconfig,
                      "-o", "json")
    assert run.code in (0, 1), run.text
    return run.code, {(k["secret"], k["key"]): k for k in run.json()["keys"]}


def test_drift_in_sync(cluster: Cluster) -> None:
    code, keys = _drift(cluster)
    assert code == 0 and {k["state"] for k in keys.values()} == {"in-sync"}
    assert all(k["storeVersion"] and k["lastSync"] for k in keys.values())
    text = cluster.cli("drift", "--env", "staging", "--kubeconfig", cluster.kubeconfig)
    assert "catalog, store and cluster agree" in text.out


def test_drift_store_changed_behind_esos_back(cluster: Cluster) -> None:
    assert cluster.cli("set", "REDIS_PASSWORD", "--env", "staging",
                       stdin=secrets.token_urlsafe(40) + "\n").code == 0
    code, keys = _drift(cluster)
    assert code == 1
    for secret in ("redis-credentials", "deparrow-secrets"):
        k = keys[(secret, "REDIS_PASSWORD")]
        assert k["state"] == "cluster-behind" and k["equal"] is False and k["inStore"]
        assert "deparrow-secrets deploy --env staging" in k["fix"]
    sarif = cluster.cli("drift", "--env", "staging", "--kubeconfig", cluster.kubeconfig,
                        "-o", "sarif")
    assert sarif.code == 1
    results = sarif.json()["runs"][0]["results"]  # one per drifted key, as in json
    assert sorted((r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
                   r["properties"]["key"]) for r in results) == sorted(
        ("secret-out-of-sync", f"Secret {NS}/{secret}", key)
        for (secret, key), k in keys.items() if k["state"] != "in-sync")
    assert any(r["properties"]["key"] == "REDIS_PASSWORD" for r in results)
    assert keys[("postgres-credentials", "POSTGRES_PASSWORD")]["state"] == "in-sync"
    text = cluster.cli("drift", "--env", "staging", "--kubeconfig", cluster.kubeconfig)
    assert "fix: deparrow-secrets deploy --env staging" in text.out
    assert cluster.cli("deploy", "--env", "staging", "--kubeconfig",
                       cluster.kubeconfig).code == 0
    assert _drift(cluster)[0] == 0


def test_drift_secret_edited_in_cluster(cluster: Cluster) -> None:
    import base64

    cluster.sim.pause()
    secret = cluster.api.get("v1", "Secret", "postgres-credentials", NS)
    secret["data"]["POSTGRES_USER"] = base64.b64encode(b"someone-else").decode()
    cluster.api.put(secret)
    code, keys = _drift(cluster)
    assert code == 1
    k = keys[("postgres-credentials", "POSTGRES_USER")]
    assert k["state"] == "cluster-edited" and "ESO restores" in k["fix"]
    assert keys[("postgres-credentials", "POSTGRES_DB")]["state"] == "in-sync"


def test_drift_key_missing_from_store(cluster: Cluster) -> None:
    kv = cluster.vault_kv()
    data = kv.read_secret_version(path=cluster.remote_path, mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]
    data.pop("POSTGRES_DB")
    kv.create_or_update_secret(path=cluster.remote_path, secret=data, mount_point="secret")
    code, keys = _drift(cluster)
    assert code == 1
    k = keys[("postgres-credentials", "POSTGRES_DB")]
    assert k["state"] == "store-behind" and not k["inStore"] and k["inSecret"]
    assert k["fix"] == "deparrow-secrets provision --env staging"


# --------------------------------------------------------------------------- impact


def _impact(cluster: Cluster, target: str) -> dict[str, Any]:
    run = cluster.cli("impact", target, "--env", "staging", "--kubeconfig",
                      cluster.kubeconfig, "-o", "json")
    assert run.code == 0, run.text
    return run.json()


def test_impact_names_every_way_a_secret_is_consumed(cluster: Cluster) -> None:
    cluster.app("api", {
        "env": [{"name": "R", "valueFrom": {"secretKeyRef": {"name": "redis-credentials",
                                                             "key": "REDIS_PASSWORD"}}}],
        "volumeMounts": [{"name": "p", "mountPath": "/p"},
                         {"name": "s", "mountPath": "/etc/jwt", "subPath": "DEPARROW_JWT_SECRET"}],
        "volumes": [{"name": "p", "projected": {"sources": [
                        {"secret": {"name": "redis-credentials"}}]}},
                    {"name": "s", "secret": {"secretName": "deparrow-secrets"}}]})
    cluster.app("pull", {})
    dep = cluster.api.get("apps/v1", "Deployment", "pull", NS)
    dep["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": "redis-credentials"}]
    cluster.api.put(dep)
    cluster.wait_pods("api")
    doc = _impact(cluster, "redis-credentials")
    ways = {w["name"]: w["ways"] for w in doc["workloads"]}
    assert ways == {"web": ["volume"], "api": ["env", "projected"],
                    "pull": ["imagePullSecrets"]}
    doc = _impact(cluster, "DEPARROW_JWT_SECRET")
    assert doc["secrets"] == ["deparrow-secrets"] and doc["key"] == "DEPARROW_JWT_SECRET"
    ways = {w["name"]: w["ways"] for w in doc["workloads"]}
    assert ways == {"web": ["envFrom"], "api": ["subPath"]}
    doc = _impact(cluster, "POSTGRES_DB")
    assert doc["workloads"] == [] and doc["pods"] == []
    pods = {p["owner"] for p in _impact(cluster, "REDIS_PASSWORD")["pods"]}
    assert {"Deployment/web", "Deployment/api"} <= pods


def test_impact_names_pods_with_a_stale_copy(cluster: Cluster) -> None:
    cluster.workloads.stop()  # no rollout restarts the pods meanwhile
    time.sleep(1.1)
    assert cluster.cli("set", "DEPARROW_SECRET_KEY", "--env", "staging",
                       stdin=secrets.token_urlsafe(64) + "\n").code == 0
    assert cluster.cli("deploy", "--env", "staging", "--kubeconfig",
                       cluster.kubeconfig).code == 0
    doc = _impact(cluster, "DEPARROW_SECRET_KEY")
    assert doc["lastChange"]
    assert [p["stale"] for p in doc["pods"]] == [True]
    text = cluster.cli("impact", "DEPARROW_SECRET_KEY", "--env", "staging", "--kubeconfig",
                       cluster.kubeconfig)
    assert "kubectl -n deparrow rollout restart deployment/web" in text.out
    # redis-credentials reaches web through a volume: updated in place, not stale.
    assert [p["stale"] for p in _impact(cluster, "redis-credentials")["pods"]] == [False]


def test_impact_of_an_unknown_name_exit_2(cluster: Cluster) -> None:
    run = cluster.cli("impact", "NOPE", "--env", "staging", "--kubeconfig", cluster.kubeconfig)
    assert run.code == 2 and "neither a catalog key nor a Secret" in run.err, run.text
