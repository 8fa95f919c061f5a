"""History and rollback of the remote object that holds one catalog key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import NotFoundError
from deparrow_secrets.operations.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot
from deparrow_secrets.stores.layout import Layout


@dataclass
class KeyVersion:
    version: str
    created: datetime | None
    current: bool
    labels: tuple[str, ...]
    # What this version did to the key: created | changed | unchanged | absent | unreadable
    key_change: str


def key_history(project: Project, env: EnvironmentConfig, store: SecretStore,
                key: str) -> list[KeyVersion]:
    ref = project.layout(env).ref(key)
    out = []
    previous: SecretValue | None = None
    for info in store.history(ref.key):
        try:
            snap = store.read(ref.key, info.version)
        except NotFoundError:  # deleted or destroyed version
            snap = None
        if snap is None:
            change = "unreadable"
        else:
            value = snap.values.get(ref.property)
            if value is None:
                change = "absent"
            elif previous is None:
                change = "created"
            else:
                change = "unchanged" if value == previous else "changed"
            previous = value
        out.append(KeyVersion(info.version, info.created, info.current, info.labels, change))
    return out


@dataclass
class RollbackResult:
    remote_key: str
    version: str
    changed_keys: list[str]  # catalog keys whose value the rollback changed


def rollback_key(project: Project, env: EnvironmentConfig, store: SecretStore, key: str,
                 version: str | None = None) -> RollbackResult:
    """Roll back the whole remote object holding `key` (that is the stores' unit of
    versioning, and AWS's AWSPREVIOUS); report every key whose value it changed."""
    layout = project.layout(env)
    ref = layout.ref(key)
    before = store.read(ref.key)
    current = store.rollback(ref.key, version)
    after = store.read(ref.key)
    return RollbackResult(ref.key, current, _changed(layout.objects().get(ref.key, []),
                                                     layout, before, after))


def _changed(keys: list[str], layout: Layout, before: Snapshot | None,
             after: Snapshot | None) -> list[str]:
    out = []
    for k in keys:
        prop = layout.ref(k).property
        old = before.values.get(prop) if before else None
        new = after.values.get(prop) if after else None
        if (old is None) != (new is None) or (old is not None and old != new):
            out.append(k)
    return out
