"""migrate's store write against a writer that got there between the plan and the write:
it goes through provision's check-and-set retry, so an unrelated change is kept and a
changed migrated value is a conflict (exit 5) unless --force."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

import pytest

from deparrow_secrets.errors import ConflictError
from deparrow_secrets.operations import provision as provision_ops
from deparrow_secrets.operations.migrate import (
    KeyPlan,
    MigrationConflictError,
    MigrationPlan,
    write_store,
)
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from helpers import isolate, write_config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    isolate(monkeypatch, tmp_path)
    monkeypatch.setattr(provision_ops, "_backoff", lambda attempt: None)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    return Project.load(tmp_path / "deparrow-secrets.yaml")


def value() -> SecretValue:
    return SecretValue(secrets.token_urlsafe(24))


def plan_for(project: Project, store: object, values: Mapping[str, SecretValue],
             action: str = "write") -> MigrationPlan:
    env = project.environment("dev")
    layout = project.layout(env)
    plan = MigrationPlan("dev", project.config.namespace, "files", ["app-secrets"])
    for key, val in values.items():
        remote_key = layout.ref(key).key
        plan.keys.append(KeyPlan(key, ["app-secrets"], "x.yaml:1", "absent", action,
                                 remote_key))
        plan.values[key] = val
        plan.snapshots[remote_key] = store.read(remote_key)  # type: ignore[attr-defined]
    return plan


class Interloper:
    """Writes `changes` to the object once, right before migrate's first write."""

    def __init__(self, store: object, changes: Mapping[str, SecretValue]) -> None:
        self.store, self.changes, self.done = store, changes, False
        self.real_write = store.write  # type: ignore[attr-defined]

    def write(self, key: str, values: Mapping[str, SecretValue],
              expected: str | None) -> str:
        if not self.done:
            self.done = True
            snap = self.store.read(key)  # type: ignore[attr-defined]
            now = {**(snap.values if snap else {}), **self.changes}
            self.real_write(key, now, snap.version if snap else None)
        return str(self.real_write(key, values, expected))


def test_an_unrelated_change_is_read_again_and_kept(project: Project) -> None:
    env = project.environment("dev")
    migrated, theirs = value(), value()
    with project.open_store(env) as store:
        plan = plan_for(project, store, {"REDIS_PASSWORD": migrated})
        remote_key = plan.keys[0].remote_key
        store.write = Interloper(store, {"DEPARROW_JWT_SECRET": theirs}).write  # type: ignore[method-assign]
        written = write_store(project, env, store, plan, force=False)
        snap = store.read(remote_key)
    assert snap is not None and written == {remote_key: snap.version}
    assert snap.values["REDIS_PASSWORD"] == migrated
    assert snap.values["DEPARROW_JWT_SECRET"] == theirs


@pytest.mark.parametrize("force", [False, True], ids=["refused", "forced"])
def test_a_migrated_key_changed_meanwhile_is_a_conflict_unless_forced(
        project: Project, force: bool) -> None:
    env = project.environment("dev")
    migrated, theirs = value(), value()
    with project.open_store(env) as store:
        plan = plan_for(project, store, {"REDIS_PASSWORD": migrated},
                        action="overwrite" if force else "write")
        remote_key = plan.keys[0].remote_key
        store.write = Interloper(store, {"REDIS_PASSWORD": theirs}).write  # type: ignore[method-assign]
        if not force:
            with pytest.raises(MigrationConflictError) as caught:
                write_store(project, env, store, plan, force=False)
            assert caught.value.exit_code == ConflictError.exit_code
            assert theirs.reveal() not in str(caught.value)
        else:
            write_store(project, env, store, plan, force=True)
        snap = store.read(remote_key)
    assert snap is not None
    assert snap.values["REDIS_PASSWORD"] == (migrated if force else theirs)
