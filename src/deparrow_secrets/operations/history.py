"""History and rollback of the remote object that holds one catalog key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import InputError, NotFoundError
from deparrow_secrets.ledger import Change
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot


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
    version: str  # the version current afterwards (a new one, holding the old value)
    restored_from: str  # the version whose value of the key was restored
    changed_keys: list[str]  # catalog keys whose value the rollback changed: only the key
    previous_version: str | None = None  # the version current before the rollback


def _target(store: SecretStore, remote_key: str, prop: str, current: Snapshot,
            version: str | None) -> tuple[str, SecretValue]:
    """The version to restore the key from and its value there.

    Default: the newest version before the current one in which the key had another
    value (the key's previous value, whichever keys changed in between).
    """
    now = current.values.get(prop)
    if version is not None:
        old = store.read(remote_key, version)
        value = old.values.get(prop) if old else None
        if value is None:
            raise NotFoundError(f"the key is not set in version {version}",
                                remote_key=remote_key, hint="pick another version with "
                                "`deparrow-secrets history KEY`")
        return version, value
    for info in reversed(store.history(remote_key)):
        if info.version == current.version or info.current:
            continue
        try:
            old = store.read(remote_key, info.version)
        except NotFoundError:  # a deleted or destroyed version
            continue
        value = old.values.get(prop) if old else None
        if value is not None and value != now:
            return info.version, value
    raise NotFoundError("no earlier version holds another value of this key: nothing to "
                        "roll back", remote_key=remote_key)


class _Unrecorded(Change):
    """`rollback --sync` records the whole run itself, with the sync, once."""

    def __exit__(self, *exc: object) -> None:
        return None


def rollback_key(project: Project, env: EnvironmentConfig, store: SecretStore, key: str,
                 version: str | None = None, *, record: bool = True) -> RollbackResult:
    """Restore `key`'s previous value (or its value in `version`) and nothing else.

    The remote object holds other keys too; rolling the whole object back would revert
    them as well. So the current content is written again as a new version with only
    this key's property changed, with check-and-set on the version read: a concurrent
    writer makes it fail (exit 5) instead of being undone.
    """
    ref = project.layout(env).ref(key)
    if version is not None:
        check_version_id(version)
    with (Change(project, env, "rollback", keys=[key]) if record
          else _Unrecorded(project, env, "rollback", keys=[key])) as change:
        if version is not None:
            change.fact("requestedVersion", version)
        current = store.read(ref.key)
        if current is None:
            raise NotFoundError("nothing to roll back: the object does not exist",
                                remote_key=ref.key)
        source, value = _target(store, ref.key, ref.property, current, version)
        change.fact("restoredFrom", source)
        if current.values.get(ref.property) == value:
            raise NotFoundError(f"{key} already has the value it had in version {source}: "
                                "nothing to roll back", remote_key=ref.key)
        values = dict(current.values)
        values[ref.property] = value
        change.attempting(ref.key, current.version, current.values)
        new = store.write(ref.key, values, current.version)
        change.wrote(ref.key, current.version, current.values, new, values)
    return RollbackResult(ref.key, new, source, [key], current.version)


def check_version_id(version: str) -> None:
    """A version id as the stores name them (digits, a UUID, a hex id); anything else
    is bad input (exit 2), not a crash deep in a store."""
    if not _VERSION_ID.fullmatch(version):
        raise InputError(f"{version[:40]!r} is not a version id",
                         hint="version ids are listed by `deparrow-secrets history KEY`")
    if version.isdigit() and len(version) > 18:
        raise NotFoundError(f"version {version[:40]} does not exist")


_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
