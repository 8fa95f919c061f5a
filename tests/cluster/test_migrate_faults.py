"""migrate under faults: a store that is down, a sync that never completes, a hash that
does not match, the process killed after each step; conflicts; bad input.

After every failure the embedded Secrets are intact in the cluster (same bytes, no
ExternalSecret owning them) and in the files, and the rerun finishes the migration.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from migrate_layout import (
    APP,
    CATALOG,
    ESO,
    NS,
    Cli,
    Layout,
    cluster_data,
    expected_data,
    start_eso,
    vault_layout,
)

from deparrow_secrets.stores.interface import SecretStore, Snapshot
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import clean_env, run_cli

__all__ = ["vault_layout"]


def _files(layout: Layout) -> dict[str, str]:
    base = layout.root / APP
    return {p.relative_to(base).as_posix(): p.read_text() for p in sorted(base.rglob("*"))
            if p.is_file()}


def _assert_embedded_intact(layout: Layout, api: FakeKubeApiServer,
                            files: dict[str, str]) -> None:
    for secret in CATALOG.secrets:
        assert cluster_data(api, secret.name) == expected_data(layout.values, secret.name,
                                                               layout.ha)
        obj = api.get("v1", "Secret", secret.name, NS)
        assert obj is not None
        assert not obj["metadata"].get("ownerReferences"), obj["metadata"]
        assert api.get(ESO, "ExternalSecret", f"{secret.name}-external", NS) is None
    assert _files(layout) == files


def _store_writes(layout: Layout) -> int:
    path = layout.root / ".deparrow-secrets" / "ledger.jsonl"
    if not path.exists():
        return 0
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sum(1 for r in records if r["command"] == "migrate"
               for o in r["objects"] if o["after"])


def _no_canary(layout: Layout, *texts: str) -> None:
    for canary in layout.canaries():
        for text in texts:
            assert canary not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_store_down_changes_nothing_and_the_rerun_migrates(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli, monkeypatch: pytest.MonkeyPatch, openbao: Any) -> None:
    start_eso(eso, vault_layout)
    files = _files(vault_layout)
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "1")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "2")
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 3, run.text
    _assert_embedded_intact(vault_layout, kube_api, files)
    _no_canary(vault_layout, run.out, run.err)
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    again = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert again.code == 0, again.text
    assert vault_layout.store_values() == vault_layout.values


def test_store_down_at_the_write_leaves_the_embedded_state_and_the_rerun_migrates(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli, monkeypatch: pytest.MonkeyPatch, openbao: Any,
        fault_proxy: Callable[..., Any]) -> None:
    """The plan read the store; the store goes down just before the write."""
    from deparrow_secrets.operations import migrate as migration

    start_eso(eso, vault_layout)
    files = _files(vault_layout)
    port = int(openbao.addr.rsplit(":", 1)[1])
    proxy = fault_proxy(port)
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "3")
    original = migration.write_store

    def down_first(*args: Any, **kwargs: Any) -> Any:
        proxy.mode = "drop"
        return original(*args, **kwargs)

    monkeypatch.setattr(migration, "write_store", down_first)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 3, run.text
    _assert_embedded_intact(vault_layout, kube_api, files)
    assert vault_layout.store_values() == {}
    _no_canary(vault_layout, run.out, run.err)
    # The write was attempted: the ledger says so, with its outcome and no version after.
    ledger = vault_layout.root / ".deparrow-secrets" / "ledger.jsonl"
    failed = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert failed[-1]["command"] == "migrate"
    assert failed[-1]["outcome"]["status"] == "failed"
    assert failed[-1]["outcome"]["exitCode"] == 3
    assert [o["after"] for o in failed[-1]["objects"]] == [None]
    monkeypatch.setattr(migration, "write_store", original)
    proxy.mode = "pass"
    again = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                                 "-o", "json")
    assert again.code == 0, again.text
    assert again.json()["resumedFrom"] == "planned"
    assert vault_layout.store_values() == vault_layout.values


def test_sync_that_never_completes_is_undone_and_the_rerun_resumes(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    sim = start_eso(eso, vault_layout)
    sim.never_sync()
    files = _files(vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--timeout", "2")
    assert run.code == 1, run.text
    assert "not converged" in run.err and "rerun migrate to resume" in run.err
    assert "ExternalSecret/deparrow-secrets-external orphaned and deleted" in run.err
    _assert_embedded_intact(vault_layout, kube_api, files)
    assert vault_layout.store_values() == vault_layout.values  # the store step stands
    assert _store_writes(vault_layout) == 1
    sim.never_sync(False)
    again = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                                 "-o", "json")
    assert again.code == 0, again.text
    doc = again.json()
    assert doc["resumedFrom"] == "stored"
    assert doc["written"] == {}  # resumed: no second store write
    assert _store_writes(vault_layout) == 1
    assert not (vault_layout.root / APP / "base" / "secrets.yaml").exists()
    _no_canary(vault_layout, run.out, run.err, again.out, again.err)


def test_owner_switched_to_orphan_before_delete_keeps_an_adopted_secret(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    """ESO adopted the Secrets (controller ownerReference) but the data hash never
    matches: the undo must not let garbage collection take the Secret, and puts the
    source bytes back where ESO wrote others."""
    project = vault_layout.project()
    env = project.environment("staging")

    class Skewed(SecretStore):  # what ESO reads: one value with a byte appended
        provider = "vault"

        def __init__(self, inner: SecretStore) -> None:
            self.inner = inner
            self.environment = inner.environment

        def __getattr__(self, name: str) -> Any:  # the simulator reads `mount`
            return getattr(self.__dict__["inner"], name)

        @classmethod
        def from_config(cls, config: Any, env: Any) -> SecretStore:
            raise NotImplementedError

        def read(self, key: str, version: str | None = None) -> Snapshot | None:
            from deparrow_secrets.secret import SecretValue

            snap = self.inner.read(key, version)
            if snap is None:
                return None
            values = dict(snap.values)
            values["REDIS_PASSWORD"] = SecretValue(values["REDIS_PASSWORD"].reveal() + "\n")
            return Snapshot(snap.key, snap.version, values)

        def write(self, key: str, values: Any, expected_version: str | None) -> str:
            raise NotImplementedError

        def list_objects(self, prefix: str = "") -> list[str]:
            return self.inner.list_objects(prefix)

        def history(self, key: str) -> Any:
            return self.inner.history(key)

        def health(self) -> Any:
            return self.inner.health()

    skew = {"on": True}

    def store_for(store_obj: Any) -> SecretStore:
        inner = project.open_store(env)
        return Skewed(inner) if skew["on"] else inner

    sim = eso(store_for)
    files = _files(vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--timeout", "3")
    assert run.code == 1, run.text
    assert "REDIS_PASSWORD" in run.err, run.err
    assert "redis-credentials data restored" in run.err
    _assert_embedded_intact(vault_layout, kube_api, files)
    _no_canary(vault_layout, run.out, run.err)
    skew["on"] = False
    sim.stop()
    eso(store_for)
    again = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert again.code == 0, again.text
    for secret in CATALOG.secrets:
        assert cluster_data(kube_api, secret.name) == expected_data(
            vault_layout.values, secret.name, False)


@pytest.mark.parametrize("step", ["stored", "applied", "verified", "removed"])
def test_killed_after_each_step_the_rerun_finishes_with_one_store_write(
        step: str, vault_layout: Layout, kube_api: FakeKubeApiServer,
        eso: Callable[..., Any], cli: Cli, openbao: Any) -> None:
    start_eso(eso, vault_layout)
    files = _files(vault_layout)
    env = clean_env(VAULT_ADDR=openbao.addr, VAULT_TOKEN=openbao.token,
                    DEPARROW_SECRETS_TEST_KILL_AFTER=step)
    killed = run_cli(["migrate", "--env", "staging", "--kubeconfig", vault_layout.kubeconfig,
                      "--from", "files", str(vault_layout.overlay), "--timeout", "30"],
                     vault_layout.root, env=env)
    assert killed.code == -9, killed.text
    # Whatever step it died after, the cluster holds the embedded bytes and, until the
    # removal step, the files are as they were.
    for secret in CATALOG.secrets:
        assert cluster_data(kube_api, secret.name) == expected_data(
            vault_layout.values, secret.name, False)
    if step != "removed":
        assert _files(vault_layout) == files
    state = json.loads((vault_layout.root / ".deparrow-secrets" /
                        "migrate-staging.json").read_text())
    assert state["step"] == step
    again = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                                 "-o", "json")
    assert again.code == 0, again.text
    doc = again.json()
    assert doc["step"] == "done" and doc["resumedFrom"] == step
    assert doc["written"] == {}
    assert _store_writes(vault_layout) == 1
    assert vault_layout.store_values() == vault_layout.values
    assert not (vault_layout.root / APP / "base" / "secrets.yaml").exists()
    # The leak report survives a kill after the files were edited (values from the store).
    assert "DEPARROW_JWT_SECRET" in doc["leakedKeys"]
    _no_canary(vault_layout, killed.out, killed.err, again.out, again.err)


def test_a_different_store_value_is_a_conflict_and_force_overwrites_it(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    import secrets

    start_eso(eso, vault_layout)
    other = secrets.token_urlsafe(24)
    assert cli("set", "REDIS_PASSWORD", "--env", "staging", stdin=other + "\n").code == 0
    files = _files(vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 5, run.text
    assert "REDIS_PASSWORD" in run.err and "--force" in run.err
    assert vault_layout.store_values() == {"REDIS_PASSWORD": other}  # nothing written
    _assert_embedded_intact(vault_layout, kube_api, files)
    dry = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--dry-run", "-o", "json")
    assert dry.code == 0
    plan = {k["key"]: k for k in dry.json()["keys"]}
    assert plan["REDIS_PASSWORD"]["store"] == "differs"
    assert plan["REDIS_PASSWORD"]["action"] == "conflict"
    forced = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                                  "--force")
    assert forced.code == 0, forced.text
    assert vault_layout.store_values() == vault_layout.values
    records = [json.loads(line) for line in (vault_layout.root / ".deparrow-secrets" /
                                              "ledger.jsonl").read_text().splitlines()]
    migrate = [r for r in records if r["command"] == "migrate"]
    assert len(migrate) == 1
    assert migrate[0]["facts"]["overwritten"] == ["REDIS_PASSWORD"]
    _no_canary(vault_layout, run.out, run.err, dry.out, forced.out, forced.err,
               other, json.dumps(records))


def test_placeholder_values_are_refused_by_file_line_and_key(
        vault_layout: Layout, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    path = vault_layout.root / APP / "base" / "secrets.yaml"
    text = path.read_text().replace(vault_layout.values["DEPARROW_JWT_SECRET"],
                                    "CHANGE_ME_JWT_SECRET")
    path.write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "CHANGE_ME" in t)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 2, run.text
    assert f"deparrow-secrets.DEPARROW_JWT_SECRET ({APP}/base/secrets.yaml:{line})" in run.err
    assert "change-me" in run.err and "CHANGE_ME" not in run.err
    assert vault_layout.store_values() == {}


def test_a_key_the_catalog_does_not_have_is_refused(
        vault_layout: Layout, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    path = vault_layout.root / APP / "base" / "secrets.yaml"
    path.write_text(path.read_text().replace("stringData:\n", "stringData:\n  EXTRA: x1\n", 1))
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 2, run.text
    assert "deparrow-secrets.EXTRA" in run.err and "not in the catalog" in run.err
    assert vault_layout.store_values() == {}


def test_rotate_leaked_without_rotation_exits_2_before_anything(
        vault_layout: Layout, kube_api: FakeKubeApiServer, cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without operations/rotate.py: refused up front, nothing migrated."""
    from deparrow_secrets.operations import migrate as migration

    monkeypatch.setattr(migration, "rotation_available", lambda: False)
    files = _files(vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--rotate-leaked")
    assert run.code == 2, run.text
    assert "rotation is not available" in run.err
    assert "deparrow-secrets rotate --env staging KEY..." in run.err
    assert vault_layout.store_values() == {}
    assert _files(vault_layout) == files


def test_bad_base64_in_data_is_named_without_its_text(
        vault_layout: Layout, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    path = vault_layout.root / APP / "base" / "secrets.yaml"
    value = base64.b64encode(vault_layout.values["POSTGRES_PASSWORD"].encode()).decode()
    path.write_text(path.read_text().replace(value, value[:-3] + "!!!"))
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 2, run.text
    assert "data.POSTGRES_PASSWORD is not base64" in run.err
    assert value[:12] not in run.err


def test_from_cluster_names_a_secret_that_does_not_exist(
        vault_layout: Layout, kube_api: FakeKubeApiServer, cli: Cli) -> None:
    run = vault_layout.migrate(cli, "--from", "cluster", "redis-credentials", "nope-secret")
    assert run.code == 2, run.text
    assert "no such Secret in namespace deparrow: nope-secret" in run.err
    assert vault_layout.store_values() == {}
