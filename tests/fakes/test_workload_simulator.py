"""The rollout and Stakater Reloader simulators on the fake API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import deployment, started_cluster
from fakes.workload_simulator import (
    AUTO,
    MATCH,
    RESTARTED_AT,
    SEARCH,
    SECRET_RELOAD,
    Reloader,
    WorkloadSimulator,
    secret_refs,
)

NS = "deparrow"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    with started_cluster(tmp_path / "kube") as server:
        yield server


@pytest.fixture
def sim(api: FakeKubeApiServer) -> Iterator[WorkloadSimulator]:
    simulator = WorkloadSimulator(api)
    simulator.reloader = Reloader(api)
    with simulator:
        yield simulator
    assert not simulator.errors


def app(name: str, secret: str, annotations: dict[str, str] | None = None,
        replicas: int = 2) -> dict[str, Any]:
    obj = deployment(name, NS, {"app": name}, replicas=replicas)
    obj["metadata"]["annotations"] = annotations or {}
    obj["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"secretRef": {"name": secret}}]
    return obj


def secret(name: str, value: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS, **meta},
            "data": {"K": base64.b64encode(value.encode()).decode()}}


def rolled_out(api: FakeKubeApiServer, name: str) -> bool:
    dep = api.get("apps/v1", "Deployment", name, NS)
    if dep is None:
        return False
    status = dep.get("status") or {}
    replicas = dep["spec"]["replicas"]
    return (status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas)


def pods(api: FakeKubeApiServer, app_name: str) -> list[dict[str, Any]]:
    return api.list("v1", "Pod", NS, label_selector=f"app={app_name}")


def test_deployment_rollout_makes_replicasets_and_pods_with_owner_chain(
        api: FakeKubeApiServer, sim: WorkloadSimulator) -> None:
    api.put(app("web", "db"))
    api.wait_for(lambda: rolled_out(api, "web"))
    first = pods(api, "web")
    assert len(first) == 2
    rs_ref = first[0]["metadata"]["ownerReferences"][0]
    assert rs_ref["kind"] == "ReplicaSet"
    rs = api.get("apps/v1", "ReplicaSet", rs_ref["name"], NS)
    assert rs is not None and rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert all(p["status"]["startTime"] and p["status"]["phase"] == "Running" for p in first)
    dep = api.get("apps/v1", "Deployment", "web", NS)
    conditions = {c["type"]: c["reason"] for c in dep["status"]["conditions"]}  # type: ignore[index]
    assert conditions["Progressing"] == "NewReplicaSetAvailable"
    api.patch("apps/v1", "Deployment", "web", NS, {"spec": {"template": {"metadata": {
        "annotations": {RESTARTED_AT: "2026-01-01T00:00:00Z"}}}}}, patch_type="strategic")
    api.wait_for(lambda: rolled_out(api, "web") and not {
        p["metadata"]["name"] for p in first} & {p["metadata"]["name"] for p in pods(api, "web")})
    assert len(api.list("apps/v1", "ReplicaSet", NS)) == 2  # the old one is kept at 0
    assert sim.rollouts[("Deployment", NS, "web")] == 1
    # deleting the Deployment garbage-collects its ReplicaSets and pods
    api.delete("apps/v1", "Deployment", "web", NS)
    assert api.list("apps/v1", "ReplicaSet", NS) == [] and pods(api, "web") == []


def test_paused_and_stuck_deployments(api: FakeKubeApiServer, sim: WorkloadSimulator) -> None:
    paused = app("paused", "db")
    paused["spec"]["paused"] = True
    api.put(paused)
    api.wait_for(lambda: (api.get("apps/v1", "Deployment", "paused", NS) or {}).get("status"))
    assert pods(api, "paused") == []
    sim.stick(NS, "stuck")
    api.put(app("stuck", "db"))

    def deadline_exceeded() -> bool:
        dep = api.get("apps/v1", "Deployment", "stuck", NS) or {}
        return any(c.get("reason") == "ProgressDeadlineExceeded"
                   for c in (dep.get("status") or {}).get("conditions") or [])

    api.wait_for(deadline_exceeded)


def test_statefulset_respects_partition_and_daemonset_updates(
        api: FakeKubeApiServer, sim: WorkloadSimulator) -> None:
    sts = app("db", "db", replicas=3)
    sts["kind"] = "StatefulSet"
    sts["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"partition": 2}}
    api.put(sts)

    def status() -> dict[str, Any]:
        return (api.get("apps/v1", "StatefulSet", "db", NS) or {}).get("status") or {}

    api.wait_for(lambda: status().get("readyReplicas") == 3)
    first = status()
    assert first["currentRevision"] == first["updateRevision"]
    api.patch("apps/v1", "StatefulSet", "db", NS, {"spec": {"template": {"metadata": {
        "annotations": {RESTARTED_AT: "now"}}}}}, patch_type="strategic")
    api.wait_for(lambda: status().get("updateRevision") != first["updateRevision"]
                 and status().get("updatedReplicas") == 1)
    assert status()["currentRevision"] == first["currentRevision"]  # below the partition
    api.patch("apps/v1", "StatefulSet", "db", NS,
              {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    api.wait_for(lambda: status().get("currentRevision") == status().get("updateRevision"))
    ds = app("agent", "db")
    ds["kind"] = "DaemonSet"
    api.put(ds)

    def ds_status() -> dict[str, Any]:
        return (api.get("apps/v1", "DaemonSet", "agent", NS) or {}).get("status") or {}

    api.wait_for(lambda: ds_status().get("numberAvailable") == 1)
    assert ds_status()["updatedNumberScheduled"] == ds_status()["desiredNumberScheduled"] == 1


def test_reloader_restarts_annotated_workloads_once_per_change(
        api: FakeKubeApiServer, sim: WorkloadSimulator) -> None:
    assert sim.reloader is not None
    api.put(secret("db", "one"))
    api.put(secret("matched", "one", annotations={MATCH: "true"}))
    api.put(app("auto", "db", {AUTO: "true"}))
    api.put(app("named", "other", {SECRET_RELOAD: "x, db"}))
    api.put(app("search", "matched", {SEARCH: "true"}))
    api.put(app("plain", "db"))
    for name in ("auto", "named", "search", "plain"):
        api.wait_for(lambda name=name: rolled_out(api, name))
    api.patch("v1", "Secret", "db", NS, {"data": {"K": base64.b64encode(b"two").decode()}})
    api.wait_for(lambda: sim.reloader.restarts[("Deployment", NS, "auto")] == 1  # type: ignore[union-attr]
                 and sim.reloader.restarts[("Deployment", NS, "named")] == 1)  # type: ignore[union-attr]
    api.patch("v1", "Secret", "db", NS, {"metadata": {"labels": {"x": "y"}}})  # not data
    api.patch("v1", "Secret", "matched", NS,
              {"data": {"K": base64.b64encode(b"two").decode()}})
    api.wait_for(lambda: sim.reloader.restarts[("Deployment", NS, "search")] == 1)  # type: ignore[union-attr]
    api.wait_for(lambda: rolled_out(api, "auto"))
    restarts = sim.reloader.restarts
    assert restarts[("Deployment", NS, "auto")] == 1
    assert restarts[("Deployment", NS, "plain")] == 0
    env = api.get("apps/v1", "Deployment", "auto", NS)["spec"]["template"]["spec"][  # type: ignore[index]
        "containers"][0]["env"]
    assert [e["name"] for e in env] == ["STAKATER_DB_SECRET"]
    assert sim.rollouts[("Deployment", NS, "auto")] == 1


def test_secret_refs_covers_every_way_a_pod_uses_a_secret() -> None:
    spec = {
        "volumes": [{"name": "v", "secret": {"secretName": "vol"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}]}}],
        "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {
            "secretKeyRef": {"name": "env", "key": "k"}}}],
                        "envFrom": [{"secretRef": {"name": "envfrom"}}]}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init"}}]}],
        "imagePullSecrets": [{"name": "pull"}],
    }
    assert secret_refs(spec) == {"vol", "proj", "env", "envfrom", "init", "pull"}
