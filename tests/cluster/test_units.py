"""Cluster layer pieces that need no API server: ESO's data hash, kubeconfig
resolution, consumer matching and the store <-> Secret comparison."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from deparrow_secrets.cluster import consumers
from deparrow_secrets.cluster.datahash import digest_secret, eso_data_hash, go_map_repr
from deparrow_secrets.cluster.kubeconfig import KubeTarget, ResolvedConfig, resolve
from deparrow_secrets.errors import ClusterConfigError

# ESO v2.9 runtime/esutils/utils_test.go, TestObjectHash.
ESO_VECTOR = "1bed8bcbcb4547ffe19a19cd47d9078e84aa6598266d86b99f992d64"


def test_data_hash_matches_eso_test_vector() -> None:
    assert eso_data_hash({"foo": b"value1", "bar": b"value2"}) == ESO_VECTOR
    assert eso_data_hash({"bar": b"value2", "foo": b"value1"}) == ESO_VECTOR


def test_go_map_rendering() -> None:
    assert go_map_repr({}) == b"map[]"
    assert go_map_repr({"b": b"", "a": b"12"}) == b"map[a:[49 50] b:[]]"
    # Go sorts by bytes: upper case before lower case, multibyte keys last.
    assert go_map_repr({"b": b"", "B": b"", "\u00e9": b""}) == "map[B:[] b:[] \u00e9:[]]".encode()


def test_digest_hashes_the_secret_and_keeps_no_value() -> None:
    value = secrets.token_urlsafe(24)
    item = {"metadata": {"name": "s", "namespace": "n", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": value, "a": "b"}},
        "data": {"K": base64.b64encode(value.encode()).decode()}}
    digest = digest_secret(item)
    assert digest.data_hash == eso_data_hash({"K": value.encode()})
    assert digest.keys == ("K",)
    assert digest.annotations == {"a": "b"}
    assert value not in repr(digest) and digest.data_hash not in repr(digest)


# --------------------------------------------------------------------------- kubeconfig

KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: one
contexts:
- name: one
  context: {cluster: c, user: u, namespace: other}
- name: two
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: TOKEN}
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "config"
    path.write_text(KUBECONFIG.replace("TOKEN", secrets.token_hex(8)), encoding="utf-8")
    return path


def test_context_from_file_flag_and_env(kubeconfig: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(KubeTarget(str(kubeconfig))).context == "one"
    assert resolve(KubeTarget(str(kubeconfig), "two")).context == "two"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert resolve(KubeTarget()).files == (kubeconfig,)


def test_unknown_context_names_the_known_ones(kubeconfig: Path) -> None:
    with pytest.raises(ClusterConfigError) as caught:
        resolve(KubeTarget(str(kubeconfig), "three"))
    assert caught.value.exit_code == 2
    assert "context 'three'" in str(caught.value) and "one, two" in str(caught.value)


def test_unreadable_kubeconfig_never_quotes_it(kubeconfig: Path) -> None:
    token = secrets.token_hex(8)
    kubeconfig.write_text(f"users: [{{token: {token}}}\n  - : ][", encoding="utf-8")
    with pytest.raises(ClusterConfigError) as caught:
        resolve(KubeTarget(str(kubeconfig)))
    assert caught.value.exit_code == 2
    assert f"{kubeconfig}:" in str(caught.value) and token not in str(caught.value)
    with pytest.raises(ClusterConfigError, match="does not exist"):
        resolve(KubeTarget(str(kubeconfig.parent / "absent")))
    with pytest.raises(ClusterConfigError, match="cannot read kubeconfig"):
        resolve(KubeTarget(str(kubeconfig.parent)))  # a directory (root reads any file)


def test_in_cluster_only_without_a_kubeconfig(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert resolve(KubeTarget()).in_cluster
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ClusterConfigError, match="no kubeconfig"):
        resolve(KubeTarget())


# --------------------------------------------------------------------------- consumers


def test_every_kind_of_reference_is_found() -> None:
    spec = {
        "volumes": [
            {"name": "whole", "secret": {"secretName": "a"}},
            {"name": "items", "secret": {"secretName": "b", "items": [{"key": "K1",
                                                                        "path": "k1"}]}},
            {"name": "proj", "projected": {"sources": [{"secret": {"name": "c"}},
                                                       {"configMap": {"name": "x"}}]}},
            {"name": "unmounted", "secret": {"secretName": "d"}},
        ],
        "containers": [{
            "name": "app",
            "env": [{"name": "V", "valueFrom": {"secretKeyRef": {"name": "e", "key": "K2"}}},
                    {"name": "W", "value": "plain"}],
            "envFrom": [{"secretRef": {"name": "f"}}, {"configMapRef": {"name": "y"}}],
            "volumeMounts": [{"name": "whole", "mountPath": "/w"},
                             {"name": "items", "mountPath": "/i"},
                             {"name": "proj", "mountPath": "/p/file", "subPath": "K3"}],
        }],
        "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "g",
                                                                        "optional": True}}]}],
        "imagePullSecrets": [{"name": "h"}],
    }
    got = {(u.secret, u.how, u.container, u.key) for u in consumers.pod_spec_uses(spec)}
    assert got == {
        ("a", "volume", "app", None), ("b", "volume", "app", "K1"),
        ("c", "subPath", "app", "K3"), ("d", "volume", None, None),
        ("e", "env", "app", "K2"), ("f", "envFrom", "app", None),
        ("g", "envFrom", "init", None), ("h", "imagePullSecrets", None, None),
    }


def test_pods_lead_to_their_workload_through_replica_sets() -> None:
    pods = [
        {"metadata": {"name": "web-5d9f8-x", "labels": {"pod-template-hash": "5d9f8"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9f8",
                                           "controller": True}]},
         "status": {"containerStatuses": [
             {"state": {"running": {"startedAt": "2026-01-02T00:00:00Z"}}},
             {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}},
        {"metadata": {"name": "solo-x", "labels": {"pod-template-hash": "abc"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "solo-abc",
                                           "controller": True}]}, "status": {}},
        {"metadata": {"name": "db-0", "ownerReferences": [
            {"kind": "StatefulSet", "name": "db", "controller": True}]}, "status": {}},
        {"metadata": {"name": "bare"}, "status": {"startTime": "2026-01-03T00:00:00Z"}},
    ]
    infos = {p.name: p for p in consumers.pods_from(pods, ["web"])}
    assert infos["web-5d9f8-x"].owner == "Deployment/web"
    assert infos["web-5d9f8-x"].started == "2026-01-01T00:00:00Z"
    assert infos["solo-x"].owner == "ReplicaSet/solo-abc"  # no such Deployment
    assert infos["db-0"].owner == "StatefulSet/db" and infos["db-0"].started is None
    assert infos["bare"].owner is None and infos["bare"].started == "2026-01-03T00:00:00Z"


def test_reloader_annotations() -> None:
    auto = consumers.Workload("Deployment", "a", "n", [], {"reloader.stakater.com/auto": "true"})
    listed = consumers.Workload("Deployment", "b", "n", [],
                                {"secret.reloader.stakater.com/reload": "x, y"})
    assert auto.reloader_watches("anything")
    assert listed.reloader_watches("y") and not listed.reloader_watches("z")


# --------------------------------------------------------------------------- errors, sync


def test_api_errors_about_secrets_never_carry_the_servers_message() -> None:
    from deparrow_secrets.cluster.api import SECRET, SERVICE_ACCOUNT
    from deparrow_secrets.cluster.official import OfficialKubeClient, _HttpError

    value = secrets.token_urlsafe(24)
    client = OfficialKubeClient.__new__(OfficialKubeClient)
    client._resolved = ResolvedConfig((), "ctx")
    exc = _HttpError(422, "Invalid", f'Secret "s" is invalid: data[k]: {value}')
    about_secret = client._error(exc, "patch", SECRET, "secrets", "ns", 1)
    assert value not in str(about_secret) and about_secret.exit_code == 2
    other = client._error(exc, "patch", SERVICE_ACCOUNT, "serviceaccounts", "ns", 1)
    assert value in str(other)  # control: other kinds keep the server's explanation


def test_ready_counts_only_for_the_current_generation() -> None:
    from deparrow_secrets.cluster.sync import SecretSync

    s = SecretSync("s", "s-external", ["K"], es_present=True, es_ready=True, in_sync=True,
                   secret_present=True, generation=2, synced_resource_version="1-abc")
    assert not s.converged and "not synced its current spec" in s.reason()
    s.synced_resource_version = "2-abc"
    assert s.converged and s.reason() == ""
    dev = SecretSync("s", None, ["K"], in_sync=True, secret_present=True)
    assert dev.converged
