"""The ESO simulator against the fake API server and the real stores (OpenBao, moto).

Each test drives the simulator the way a user drives ESO (objects through the official
client, annotations with ``force-sync``) and checks what ESO v2.9 would do (see the
docstring of ``fakes/eso_simulator.py`` for the source paths).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.secret import SecretValue
from eso_rules import build_path
from fakes.eso_simulator import (
    ANNOTATION_DATA_HASH,
    LABEL_MANAGED,
    LABEL_OWNER,
    EsoSimulator,
    data_hash,
    go_format,
    meta_hash,
    object_hash,
    parse_duration,
    synced_resource_version,
)
from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import started_cluster
from servers import MotoServer, OpenBaoServer

NS = "deparrow"
ESO = "external-secrets.io/v1"

# --------------------------------------------------------------------------- pure functions


def test_data_hash_matches_esos_own_vector() -> None:
    # runtime/esutils/utils_test.go TestObjectHash
    assert data_hash({"foo": b"value1", "bar": b"value2"}) == (
        "1bed8bcbcb4547ffe19a19cd47d9078e84aa6598266d86b99f992d64")


def test_go_format_renders_maps_of_bytes_like_fmt() -> None:
    assert go_format({"foo": b"value1", "bar": b"value2"}) == (
        "map[bar:[118 97 108 117 101 50] foo:[118 97 108 117 101 49]]")
    assert go_format({}) == "map[]"
    assert go_format(None) == "map[]"
    assert go_format({"k": b""}) == "map[k:[]]"


def test_meta_hash_is_the_hash_of_the_struct_rendering() -> None:
    meta = {"annotations": {"force-sync": "1"}, "labels": None}
    assert meta_hash(meta) == object_hash("{annotations:map[force-sync:1] labels:map[]}")
    assert synced_resource_version({"metadata": {"generation": 3, **meta}}).startswith("3-")


@pytest.mark.parametrize(("key", "mount", "version", "expected"), [
    # providers/v1/vault/client_test.go TestBuildPath cases, and the project's layout
    ("deparrow/prod/db", "secret", "v2", "secret/data/deparrow/prod/db"),
    ("secret/deparrow/db", "secret", "v2", "secret/data/deparrow/db"),
    ("secret/data/deparrow/db", "secret", "v2", "secret/data/deparrow/db"),
    ("secret/foo", None, "v2", "secret/data/foo"),
    ("secret/data/foo", None, "v2", "secret/data/foo"),
    ("foo/bar", "kv/team", "v2", "kv/team/data/foo/bar"),
    ("foo", "secret", "v1", "secret/foo"),
])
def test_vault_build_path_is_esos(key: str, mount: str | None, version: str,
                                  expected: str) -> None:
    assert build_path(mount, version, key) == expected


def test_parse_duration_reads_go_durations() -> None:
    assert parse_duration("1h0m0s") == 3600
    assert parse_duration("90s") == 90
    assert parse_duration("1m30s") == 90
    assert parse_duration("0") == 0
    assert parse_duration(None) == 3600
    with pytest.raises(ValueError):
        parse_duration("1 hour")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    with started_cluster(tmp_path / "kube") as api:
        yield api


@pytest.fixture
def vault(openbao: OpenBaoServer, tmp_path: Path) -> Iterator[Any]:
    from deparrow_secrets.providers.vault.connection import VaultConnection
    from deparrow_secrets.providers.vault.store import VaultStore

    store = VaultStore(VaultConnection(openbao.addr, token=openbao.token,
                                       environment="eso-sim"), mount="secret")
    yield store
    store.close()


@pytest.fixture
def simulator(cluster: FakeKubeApiServer) -> Iterator[Callable[..., EsoSimulator]]:
    made: list[EsoSimulator] = []

    def make(store_for: Callable[[dict[str, Any]], Any], **kwargs: Any) -> EsoSimulator:
        sim = EsoSimulator(cluster, store_for, **kwargs).start()
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.stop()
        assert not sim.errors


def vault_store_obj(name: str = "vault") -> dict[str, Any]:
    return {"apiVersion": ESO, "kind": "SecretStore",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": {"vault": {
                "server": "http://127.0.0.1:1", "path": "secret", "version": "v2",
                "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "deparrow",
                                        "serviceAccountRef": {"name": "deparrow"}}}}}}}


def aws_store_obj(name: str = "aws") -> dict[str, Any]:
    return {"apiVersion": ESO, "kind": "SecretStore",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1"}}}}


def external_secret(name: str, data: list[dict[str, Any]], *, store: str = "vault",
                    **spec: Any) -> dict[str, Any]:
    return {"apiVersion": ESO, "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"secretStoreRef": {"name": store, "kind": "SecretStore"},
                     "target": {"name": name}, "data": data, **spec}}


def ref(secret_key: str, key: str, prop: str | None = None) -> dict[str, Any]:
    remote: dict[str, Any] = {"key": key}
    if prop:
        remote["property"] = prop
    return {"secretKey": secret_key, "remoteRef": remote}


def secret_data(api: FakeKubeApiServer, name: str) -> dict[str, bytes] | None:
    obj = api.get("v1", "Secret", name, NS)
    if obj is None:
        return None
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def ready(api: FakeKubeApiServer, name: str) -> dict[str, Any] | None:
    es = api.get(ESO, "ExternalSecret", name, NS)
    cond = next((c for c in ((es or {}).get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), None)
    return cond


def synced(api: FakeKubeApiServer, name: str) -> str:
    es = api.get(ESO, "ExternalSecret", name, NS)
    return ((es or {}).get("status") or {}).get("syncedResourceVersion", "")


def events(api: FakeKubeApiServer, name: str, kind: str = "ExternalSecret") -> list[tuple[str,
                                                                                         str]]:
    obj = api.get(ESO, kind, name, NS)
    assert obj is not None
    return [(e["type"], e["reason"]) for e in api.events_for(obj)]


def annotate(api: FakeKubeApiServer, name: str, **annotations: str) -> None:
    api.patch(ESO, "ExternalSecret", name, NS, {"metadata": {"annotations": annotations}})


def quiet_ticks(sim: EsoSimulator, n: int = 5) -> None:
    """Wait until the simulator has run `n` more passes (its reconcile counter need not move,
    so wait on time as well)."""
    time.sleep(sim.interval * (n + 1))


# --------------------------------------------------------------------------- OpenBao


def write_vault(store: Any, key: str, values: dict[str, str]) -> None:
    current = store.read(key)
    store.write(key, {k: SecretValue(v) for k, v in values.items()},
                current.version if current else None)


def test_sync_on_openbao_writes_secret_status_and_events(cluster: FakeKubeApiServer,
                                                         vault: Any, simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/db"
    value = secrets.token_urlsafe(16)
    write_vault(vault, key, {"password": value, "user": "app"})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("db", [ref("DB_PASSWORD", key, "password"),
                                       ref("DB_USER", key, "user")]))
    cluster.wait_for(lambda: (ready(cluster, "db") or {}).get("status") == "True")
    data = secret_data(cluster, "db")
    assert data == {"DB_PASSWORD": value.encode(), "DB_USER": b"app"}
    secret = cluster.get("v1", "Secret", "db", NS)
    assert secret is not None
    assert secret["metadata"]["annotations"][ANNOTATION_DATA_HASH] == data_hash(data)
    assert secret["metadata"]["labels"][LABEL_MANAGED] == "true"
    assert secret["metadata"]["labels"][LABEL_OWNER] == object_hash(f"{NS}/db")
    es = cluster.get(ESO, "ExternalSecret", "db", NS)
    assert es is not None
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ExternalSecret", es["metadata"]["uid"], True)
    assert es["status"]["syncedResourceVersion"] == synced_resource_version(es)
    assert es["status"]["binding"] == {"name": "db"}
    assert ready(cluster, "db")["reason"] == "SecretSynced"  # type: ignore[index]
    assert ("Normal", "Created") in events(cluster, "db")
    store_cond = cluster.get(ESO, "SecretStore", "vault", NS)["status"]["conditions"][0]  # type: ignore[index]
    assert (store_cond["status"], store_cond["reason"]) == ("True", "Valid")
    assert sim.store_reads == 2
    # deleting the ExternalSecret garbage-collects the Secret it owns (creationPolicy Owner)
    cluster.delete(ESO, "ExternalSecret", "db", NS)
    assert cluster.get("v1", "Secret", "db", NS) is None


def test_force_sync_annotation_rereads_the_store(cluster: FakeKubeApiServer, vault: Any,
                                                 simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/api"
    write_vault(vault, key, {"token": secrets.token_urlsafe(12)})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("api", [ref("TOKEN", key, "token")]))
    cluster.wait_for(lambda: synced(cluster, "api"))
    before = synced(cluster, "api")
    new_value = secrets.token_urlsafe(12)
    write_vault(vault, key, {"token": new_value})
    quiet_ticks(sim)
    assert secret_data(cluster, "api") != {"TOKEN": new_value.encode()}  # 1h interval
    annotate(cluster, "api", **{"force-sync": str(time.time())})
    cluster.wait_for(lambda: synced(cluster, "api") != before)
    cluster.wait_for(lambda: secret_data(cluster, "api") == {"TOKEN": new_value.encode()})
    assert ("Normal", "Updated") in events(cluster, "api")
    # ESO copies the ExternalSecret's annotations onto the Secret (setMetadata, no template)
    assert "force-sync" in cluster.get("v1", "Secret", "api", NS)["metadata"]["annotations"]  # type: ignore[index]


@pytest.mark.parametrize("spec", [{"refreshPolicy": "CreatedOnce"}, {"refreshInterval": "0"}],
                         ids=["CreatedOnce", "refreshInterval-0"])
def test_forcing_is_a_no_op(cluster: FakeKubeApiServer, vault: Any, simulator: Any,
                            spec: dict[str, str]) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/once"
    old = secrets.token_urlsafe(12)
    write_vault(vault, key, {"v": old})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("once", [ref("V", key, "v")], **spec))
    cluster.wait_for(lambda: synced(cluster, "once"))
    before, reads = synced(cluster, "once"), sim.store_reads
    write_vault(vault, key, {"v": secrets.token_urlsafe(12)})
    reconciles = sim.reconciles
    annotate(cluster, "once", **{"force-sync": str(time.time())})
    cluster.wait_for(lambda: sim.reconciles > reconciles)  # it was enqueued...
    quiet_ticks(sim)
    assert sim.store_reads == reads  # ...but did not read the provider
    assert synced(cluster, "once") == before
    assert secret_data(cluster, "once") == {"V": old.encode()}


def test_on_change_policy_refreshes_on_annotation(cluster: FakeKubeApiServer, vault: Any,
                                                  simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/onchange"
    write_vault(vault, key, {"v": "one"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("oc", [ref("V", key, "v")], refreshPolicy="OnChange"))
    cluster.wait_for(lambda: secret_data(cluster, "oc") == {"V": b"one"})
    write_vault(vault, key, {"v": "two"})
    annotate(cluster, "oc", **{"force-sync": "1"})
    cluster.wait_for(lambda: secret_data(cluster, "oc") == {"V": b"two"})


def test_missing_key_fails_with_the_real_error_and_leaves_the_secret(
        cluster: FakeKubeApiServer, vault: Any, simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/present"
    write_vault(vault, key, {"a": "1"})
    keep = secrets.token_urlsafe(8)
    cluster.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mig", "namespace": NS},
                 "data": {"A": base64.b64encode(keep.encode()).decode()}})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    missing = f"eso-sim/{secrets.token_hex(4)}/absent"
    cluster.put(external_secret("mig", [ref("A", key, "a"), ref("B", missing, "b")]))
    cluster.wait_for(lambda: ("Warning", "UpdateFailed") in events(cluster, "mig"))
    cond = ready(cluster, "mig")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False", "SecretSyncedError", "could not get secret data from provider")
    es = cluster.get(ESO, "ExternalSecret", "mig", NS)
    failed = [e for e in cluster.events_for(es) if e["reason"] == "UpdateFailed"]  # type: ignore[arg-type]
    assert failed[0]["message"] == (
        f"error processing spec.data[1] (key: {missing}), err: Secret does not exist")
    assert "refreshTime" not in es["status"] and "syncedResourceVersion" not in es["status"]  # type: ignore[index]
    assert secret_data(cluster, "mig") == {"A": keep.encode()}


def test_fail_key_knob_and_recovery(cluster: FakeKubeApiServer, vault: Any,
                                    simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/knob"
    write_vault(vault, key, {"a": "1"})
    sim = simulator(lambda store: vault)
    sim.fail_key(key)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("knob", [ref("A", key, "a")]))
    cluster.wait_for(lambda: (ready(cluster, "knob") or {}).get("status") == "False")
    assert cluster.get("v1", "Secret", "knob", NS) is None
    sim.restore_key(key)
    cluster.wait_for(lambda: secret_data(cluster, "knob") == {"A": b"1"}, timeout=15)


def test_adoption_replaces_data_with_owner_and_keeps_other_keys_with_merge(
        cluster: FakeKubeApiServer, vault: Any, simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/adopt"
    write_vault(vault, key, {"a": "from-store"})
    for name in ("own", "merge"):
        cluster.put({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": name, "namespace": NS},
                     "data": {"A": base64.b64encode(b"old").decode(),
                              "OTHER": base64.b64encode(b"kept").decode()}})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("own", [ref("A", key, "a")]))
    merge = external_secret("merge", [ref("A", key, "a")])
    merge["spec"]["target"]["creationPolicy"] = "Merge"
    cluster.put(merge)
    cluster.wait_for(lambda: secret_data(cluster, "own") == {"A": b"from-store"})
    cluster.wait_for(lambda: secret_data(cluster, "merge") == {"A": b"from-store",
                                                               "OTHER": b"kept"})
    merged = cluster.get("v1", "Secret", "merge", NS)
    assert merged is not None
    assert "ownerReferences" not in merged["metadata"]
    assert merged["metadata"]["labels"][LABEL_MANAGED] == "true"


def test_edit_of_a_managed_secret_is_undone(cluster: FakeKubeApiServer, vault: Any,
                                            simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/undo"
    write_vault(vault, key, {"a": "right"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("undo", [ref("A", key, "a")]))
    cluster.wait_for(lambda: secret_data(cluster, "undo") == {"A": b"right"})
    cluster.patch("v1", "Secret", "undo", NS,
                  {"data": {"A": base64.b64encode(b"wrong").decode()}})
    cluster.wait_for(lambda: secret_data(cluster, "undo") == {"A": b"right"})


def test_orphan_policy_keeps_an_edited_secret(cluster: FakeKubeApiServer, vault: Any,
                                              simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/orphan"
    write_vault(vault, key, {"a": "right"})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    es = external_secret("orph", [ref("A", key, "a")])
    es["spec"]["target"]["creationPolicy"] = "Orphan"
    cluster.put(es)
    cluster.wait_for(lambda: secret_data(cluster, "orph") == {"A": b"right"})
    assert "ownerReferences" not in cluster.get("v1", "Secret", "orph", NS)["metadata"]  # type: ignore[index]
    cluster.patch("v1", "Secret", "orph", NS, {"data": {"A": base64.b64encode(b"x").decode()}})
    quiet_ticks(sim)
    assert secret_data(cluster, "orph") == {"A": b"x"}


def test_immutable_target_keeps_old_data_and_an_immutable_secret_fails_the_update(
        cluster: FakeKubeApiServer, vault: Any, simulator: Any) -> None:
    # EC mutationFunc: an existing Secret of an ExternalSecret with target.immutable is not
    # re-templated, so changed provider data is silently not applied (Ready stays True and
    # syncedResourceVersion moves: only the data hash shows it); when the ExternalSecret is
    # no longer immutable but the Secret still is, updateSecret fails with ErrSecretImmutable.
    key = f"eso-sim/{secrets.token_hex(4)}/imm"
    write_vault(vault, key, {"a": "one"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    es = external_secret("imm", [ref("A", key, "a")])
    es["spec"]["target"]["immutable"] = True
    cluster.put(es)
    cluster.wait_for(lambda: secret_data(cluster, "imm") == {"A": b"one"})
    assert cluster.get("v1", "Secret", "imm", NS)["immutable"] is True  # type: ignore[index]
    write_vault(vault, key, {"a": "two"})
    before = synced(cluster, "imm")
    annotate(cluster, "imm", **{"force-sync": "1"})
    cluster.wait_for(lambda: synced(cluster, "imm") != before)
    assert (ready(cluster, "imm") or {}).get("reason") == "SecretSynced"
    assert secret_data(cluster, "imm") == {"A": b"one"}
    cluster.patch(ESO, "ExternalSecret", "imm", NS, {"spec": {"target": {"immutable": False}}})
    cluster.wait_for(lambda: (ready(cluster, "imm") or {}).get("message") ==
                     "could not update secret, target is immutable")
    assert secret_data(cluster, "imm") == {"A": b"one"}
    es_obj = cluster.get(ESO, "ExternalSecret", "imm", NS)
    assert any(e["message"] == "unable to update secret imm: secret is immutable"
               for e in cluster.events_for(es_obj))  # type: ignore[arg-type]


def test_fail_auth_marks_the_store_and_the_external_secret(cluster: FakeKubeApiServer,
                                                           vault: Any, simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/auth"
    write_vault(vault, key, {"a": "1"})
    sim = simulator(lambda store: vault)
    sim.fail_auth("vault", "permission denied at auth/kubernetes/login")
    cluster.put(vault_store_obj())
    cluster.put(external_secret("auth", [ref("A", key, "a")]))
    cluster.wait_for(lambda: ("Warning", "UpdateFailed") in events(cluster, "auth"))
    store = cluster.get(ESO, "SecretStore", "vault", NS)
    assert store is not None
    cond = store["status"]["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False", "InvalidProviderConfig", "unable to validate store")
    warnings = [e["message"] for e in cluster.events_for(store) if e["type"] == "Warning"]
    assert warnings == ["permission denied at auth/kubernetes/login"]
    assert sim.store_reads == 0
    sim.fix_auth("vault")
    cluster.wait_for(lambda: secret_data(cluster, "auth") == {"A": b"1"}, timeout=15)


def test_store_of_another_controller_class_is_skipped(cluster: FakeKubeApiServer, vault: Any,
                                                      simulator: Any) -> None:
    sim = simulator(lambda store: vault)
    store = vault_store_obj()
    store["spec"]["controller"] = "other"
    cluster.put(store)
    cluster.put(external_secret("skip", [ref("A", "eso-sim/none", "a")]))
    cluster.wait_for(lambda: sim.reconciles >= 1)
    quiet_ticks(sim)
    assert "status" not in (cluster.get(ESO, "ExternalSecret", "skip", NS) or {})
    assert "status" not in (cluster.get(ESO, "SecretStore", "vault", NS) or {})


def test_lag_pause_and_never_sync(cluster: FakeKubeApiServer, vault: Any,
                                  simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/lag"
    write_vault(vault, key, {"a": "1"})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    sim.never_sync()
    cluster.put(external_secret("never", [ref("A", key, "a")]))
    quiet_ticks(sim)
    assert sim.reconciles == 0 and ready(cluster, "never") is None
    sim.never_sync(False)
    sim.lag(0.6)
    started = time.monotonic()
    cluster.put(external_secret("lag", [ref("A", key, "a")]))
    cluster.wait_for(lambda: synced(cluster, "lag"))
    assert time.monotonic() - started >= 0.5
    sim.lag(0)
    sim.pause()
    time.sleep(sim.interval * 2)
    reconciles = sim.reconciles
    cluster.put(external_secret("paused", [ref("A", key, "a")]))
    quiet_ticks(sim)
    assert sim.reconciles == reconciles
    sim.resume()
    cluster.wait_for(lambda: synced(cluster, "paused"))


# --------------------------------------------------------------------------- moto


def test_sync_on_moto_with_property_whole_value_and_previous_stage(
        cluster: FakeKubeApiServer, aws_env: MotoServer, simulator: Any) -> None:
    from deparrow_secrets.providers.aws.store import AwsStore

    store = AwsStore("eso-sim", region="us-east-1")
    key = f"deparrow/eso-sim/{secrets.token_hex(4)}"
    first, second = secrets.token_urlsafe(10), secrets.token_urlsafe(10)
    version = store.write(key, {"password": SecretValue(first)}, None)
    store.write(key, {"password": SecretValue(second)}, version)
    simulator(lambda obj: store)
    cluster.put(aws_store_obj())
    cluster.put(external_secret("aws", [
        ref("PASSWORD", key, "password"),
        ref("WHOLE", key),
        {"secretKey": "OLD", "remoteRef": {"key": key, "property": "password",
                                           "version": "AWSPREVIOUS"}},
        {"secretKey": "PINNED", "remoteRef": {"key": key, "property": "password",
                                              "version": f"uuid/{version}"}},
    ], store="aws"))
    cluster.wait_for(lambda: (ready(cluster, "aws") or {}).get("status") == "True", timeout=20)
    data = secret_data(cluster, "aws")
    assert data is not None
    assert data["PASSWORD"] == second.encode()
    assert data["OLD"] == data["PINNED"] == first.encode()
    assert data["WHOLE"] == f'{{"password": "{second}"}}'.encode()
    missing = f"deparrow/eso-sim/{secrets.token_hex(4)}"
    cluster.put(external_secret("aws-missing", [ref("X", missing, "x")], store="aws"))
    cluster.wait_for(lambda: ("Warning", "UpdateFailed") in events(cluster, "aws-missing"),
                     timeout=20)
    bad_prop = external_secret("aws-prop", [ref("X", key, "nope")], store="aws")
    cluster.put(bad_prop)
    cluster.wait_for(lambda: ("Warning", "UpdateFailed") in events(cluster, "aws-prop"),
                     timeout=20)
    es = cluster.get(ESO, "ExternalSecret", "aws-prop", NS)
    assert any(e["message"].endswith(f"err: key nope does not exist in secret {key}")
               for e in cluster.events_for(es))  # type: ignore[arg-type]


def test_data_from_extract_returns_every_property(cluster: FakeKubeApiServer, vault: Any,
                                                  simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/all"
    write_vault(vault, key, {"a": "1", "b": "2"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    es = external_secret("all", [])
    es["spec"]["dataFrom"] = [{"extract": {"key": key}}]
    cluster.put(es)
    cluster.wait_for(lambda: secret_data(cluster, "all") == {"a": b"1", "b": b"2"})


def test_renamed_target_deletes_the_orphaned_secret(cluster: FakeKubeApiServer, vault: Any,
                                                    simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/rename"
    write_vault(vault, key, {"a": "1"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("ren", [ref("A", key, "a")]))
    cluster.wait_for(lambda: secret_data(cluster, "ren") == {"A": b"1"})
    cluster.patch(ESO, "ExternalSecret", "ren", NS, {"spec": {"target": {"name": "ren-new"}}})
    cluster.wait_for(lambda: secret_data(cluster, "ren-new") == {"A": b"1"})
    cluster.wait_for(lambda: cluster.get("v1", "Secret", "ren", NS) is None)
    assert ("Normal", "Deleted") in events(cluster, "ren")


def test_kubectl_waits_for_a_real_sync_and_vault_version_pin(
        cluster: FakeKubeApiServer, vault: Any, simulator: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    key = f"eso-sim/{secrets.token_hex(4)}/pin"
    write_vault(vault, key, {"a": "v1"})
    first = vault.read(key).version
    write_vault(vault, key, {"a": "v2"})
    sim = simulator(lambda store: vault)
    sim.lag(1.0)
    cluster.put({**vault_store_obj("cluster-vault"), "kind": "ClusterSecretStore",
                 "metadata": {"name": "cluster-vault"}})
    es = external_secret("pin", [
        ref("NOW", key, "a"),
        {"secretKey": "OLD", "remoteRef": {"key": key, "property": "a", "version": first}}],
        store="cluster-vault")
    es["spec"]["secretStoreRef"]["kind"] = "ClusterSecretStore"
    cluster.put(es)
    kubectl = str(Path(sys.executable).parent / "kubectl")
    done = subprocess.run(
        [kubectl, f"--kubeconfig={cluster.kubeconfig_path}", f"--cache-dir={tmp_path}/cache",
         "wait", "--for=condition=Ready", "externalsecret/pin", "--timeout=30s"],
        capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert secret_data(cluster, "pin") == {"NOW": b"v2", "OLD": b"v1"}
    store = cluster.get(ESO, "ClusterSecretStore", "cluster-vault")
    assert store is not None and store["status"]["conditions"][0]["reason"] == "Valid"


def test_validation_unknown_keeps_the_store_ready(cluster: FakeKubeApiServer, vault: Any,
                                                  simulator: Any) -> None:
    sim = simulator(lambda store: vault)
    sim.validation_unknown("vault", "sts unreachable")
    cluster.put(vault_store_obj())

    def condition() -> dict[str, Any]:
        store = cluster.get(ESO, "SecretStore", "vault", NS) or {}
        return next(iter((store.get("status") or {}).get("conditions") or []), {})

    cluster.wait_for(condition)
    assert (condition()["status"], condition()["reason"]) == ("True", "ValidationUnknown")
    assert ("Warning", "ValidationUnknown") in events(cluster, "vault", "SecretStore")
    sim.fix_auth("vault")
    cluster.wait_for(lambda: condition().get("reason") == "Valid")


def test_periodic_refresh_rereads_after_the_interval(cluster: FakeKubeApiServer, vault: Any,
                                                     simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/periodic"
    write_vault(vault, key, {"a": "one"})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("per", [ref("A", key, "a")], refreshInterval="1s"))
    cluster.wait_for(lambda: secret_data(cluster, "per") == {"A": b"one"})
    first = cluster.get(ESO, "ExternalSecret", "per", NS)["status"]["refreshTime"]  # type: ignore[index]
    write_vault(vault, key, {"a": "two"})
    cluster.wait_for(lambda: secret_data(cluster, "per") == {"A": b"two"}, timeout=30)
    es = cluster.get(ESO, "ExternalSecret", "per", NS)
    assert es is not None and es["status"]["refreshTime"] > first
    reads = sim.store_reads
    time.sleep(3)  # one read per interval (refreshTime has whole seconds): 1 to 2 s apart
    assert 1 <= sim.store_reads - reads <= 4


def test_reconcile_within_the_interval_reads_nothing(cluster: FakeKubeApiServer, vault: Any,
                                                     simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/within"
    write_vault(vault, key, {"a": "one"})
    sim = simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("within", [ref("A", key, "a")]))
    cluster.wait_for(lambda: synced(cluster, "within"))
    reads, reconciles = sim.store_reads, sim.reconciles
    # a change of the managed Secret enqueues the ExternalSecret (it watches managed Secrets)
    cluster.patch("v1", "Secret", "within", NS, {"metadata": {"labels": {"touched": "1"}}})
    cluster.wait_for(lambda: sim.reconciles > reconciles)
    quiet_ticks(sim)
    assert sim.store_reads == reads


def test_switching_to_orphan_releases_the_secret_before_deletion(
        cluster: FakeKubeApiServer, vault: Any, simulator: Any) -> None:
    key = f"eso-sim/{secrets.token_hex(4)}/undo-migration"
    write_vault(vault, key, {"a": "1"})
    simulator(lambda store: vault)
    cluster.put(vault_store_obj())
    cluster.put(external_secret("rel", [ref("A", key, "a")]))
    cluster.wait_for(lambda: secret_data(cluster, "rel") == {"A": b"1"})
    before = synced(cluster, "rel")
    cluster.patch(ESO, "ExternalSecret", "rel", NS,
                  {"spec": {"target": {"creationPolicy": "Orphan"}}})
    cluster.wait_for(lambda: synced(cluster, "rel") != before)
    released = cluster.get("v1", "Secret", "rel", NS)
    assert released is not None
    assert "ownerReferences" not in released["metadata"]
    assert LABEL_OWNER not in released["metadata"]["labels"]
    cluster.delete(ESO, "ExternalSecret", "rel", NS)
    assert secret_data(cluster, "rel") == {"A": b"1"}
