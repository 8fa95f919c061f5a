"""What keeps one read of a large namespace cheap: list answers lose their managedFields as
they are decoded, and the namespace is read with the cycle collector paused (restored
after, and never turned on when someone else had turned it off)."""

from __future__ import annotations

import gc
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deparrow_secrets.cluster.api import Kind, SecretDigest
from deparrow_secrets.cluster.collector import collector_paused
from deparrow_secrets.cluster.official import decode_json
from deparrow_secrets.cluster.state import read_state
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.providers.vault.settings import VaultSettings

MANAGED = [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]


def _obj(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": secrets.token_hex(4)},
                         "managedFields": MANAGED},
            "spec": {"managedFields": "a spec field of that name stays"}}


def test_decoding_drops_managed_fields_of_an_object_and_of_list_items() -> None:
    items = [_obj("a"), _obj("b")]
    doc = decode_json(json.dumps({"kind": "DeploymentList", "metadata": {},
                                  "items": items}).encode())
    for got, sent in zip(doc["items"], items, strict=True):
        assert "managedFields" not in got["metadata"]
        assert got["metadata"]["labels"] == sent["metadata"]["labels"]
        assert got["spec"] == sent["spec"]
    single = decode_json(json.dumps(_obj("c")).encode())
    assert single["metadata"] == {"name": "c", "labels": single["metadata"]["labels"]}
    assert decode_json(b"[1, 2]") == [1, 2]  # not an object: as decoded


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def test_collector_paused_in_the_block_and_restored(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer one's pause alone
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the block failed")
    assert gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()  # someone else's choice stays


class _RecordingClient:
    """A KubeClient that notes whether the cycle collector ran during each request."""

    context = "test"
    calls = 0

    def __init__(self) -> None:
        self.collector_during: list[bool] = []

    def served_versions(self, group: str) -> list[str] | None:
        self.collector_during.append(gc.isenabled())
        return ["v1"]

    def list_objects(self, kind: Kind, namespace: str | None = None, **_: Any) -> list[Any]:
        self.collector_during.append(gc.isenabled())
        return []

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Any:
        self.collector_during.append(gc.isenabled())
        return {"metadata": {"name": name}}  # the namespace exists

    def events(self, namespace: str, **_: Any) -> list[Any]:
        self.collector_during.append(gc.isenabled())
        return []

    def secret_digests(self, namespace: str, **_: Any) -> list[SecretDigest]:
        self.collector_during.append(gc.isenabled())
        return []


def test_the_namespace_is_read_with_the_collector_paused(collector_on: None) -> None:
    client = _RecordingClient()
    config = SimpleNamespace(namespace="deparrow", service_account="sa")
    env = EnvironmentConfig("staging", VaultSettings(server="https://vault.example.com"))
    state = read_state(client, config, env, eso_pods=True)  # type: ignore[arg-type]
    assert state.namespace == "deparrow"
    assert len(client.collector_during) >= 10  # every list of doctor's read
    assert not any(client.collector_during)
    assert gc.isenabled()


def test_doctor_runs_with_the_collector_paused(collector_on: None, tmp_path: Path) -> None:
    from deparrow_secrets.errors import StoreError
    from deparrow_secrets.operations.doctor import doctor
    from deparrow_secrets.project import Project
    from helpers import write_config

    write_config(tmp_path, "environments:\n  staging:\n    store: {provider: vault, "
                           "server: 'https://vault.example.com:8200', path: app/staging}\n")
    project = Project.load(tmp_path / "deparrow-secrets.yaml")
    client = _RecordingClient()
    during_store_read: list[bool] = []

    def opener() -> Any:
        during_store_read.append(gc.isenabled())
        raise StoreError("the store is not there in this test")

    report = doctor(project, project.environment("staging"), client,  # type: ignore[arg-type]
                    opener)
    assert [f.rule for f in report.findings if f.rule == "store-unreachable"]
    assert during_store_read == [False] and not any(client.collector_during)
    assert gc.isenabled()
