"""Rotation age: how long each value has held its current content, and which are due.

A value's age is read from the store's version dates, per value and not per remote
object: Vault and the embedded store keep every key of an environment in one object,
so a write of one key makes a new version for all. Walking back from the current
version, a value's age starts at the oldest version of the unbroken run in which it
held its current content (compared in memory as SecretValue, never shown). The walk
reads at most MAX_VERSIONS_READ older versions per object; where it stops early (that
bound, a deleted or destroyed version, a version the store no longer has) the age is a
lower bound, which still says truly that a value is overdue.

`overdue_keys` is the selection `rotate --due` rotates: the needed values with a
`maxAge` in the catalog whose age exceeds it. Values without `maxAge` are never due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import NotFoundError, SoftDeletedError
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, VersionInfo

MAX_VERSIONS_READ = 20
GONE_LABELS = ("deleted", "destroyed", "expires")


@dataclass(frozen=True)
class ValueAge:
    key: str
    remote_key: str
    since: datetime | None
    """When the value got its current content; None: absent, or the store has no date."""
    lower_bound: bool
    """The walk stopped early: the value is at least this old."""
    max_age: str | None
    age: timedelta | None
    overdue: bool

    @property
    def age_text(self) -> str | None:
        if self.age is None:
            return None
        return (">=" if self.lower_bound else "") + format_age(self.age)


def format_age(age: timedelta) -> str:
    """97d, 5h, <1h: days and hours, what a rotation period is measured in."""
    hours = int(age.total_seconds() // 3600)
    if hours < 1:
        return "<1h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _object_since(store: SecretStore, remote_key: str, props: Iterable[str]
                  ) -> dict[str, tuple[datetime | None, bool]]:
    """Per property of `remote_key` present now: (since, lower bound)."""
    current = store.read(remote_key)
    if current is None:
        return {}
    versions: list[VersionInfo] = store.history(remote_key)
    idx = next((i for i, v in enumerate(versions) if v.version == current.version), None)
    if idx is None:  # history and read disagree (a write in between): no date to trust
        return {p: (None, False) for p in props if p in current.values}
    values: dict[str, SecretValue] = {p: current.values[p] for p in props
                                      if p in current.values}
    since: dict[str, tuple[datetime | None, bool]] = {
        p: (versions[idx].created, False) for p in values}
    open_props = set(values)
    stopped_early = False
    for reads, older in enumerate(reversed(versions[:idx])):
        if not open_props:
            break
        if reads >= MAX_VERSIONS_READ or any(label in GONE_LABELS for label in older.labels):
            stopped_early = True
            break
        try:
            snap = store.read(remote_key, older.version)
        except (NotFoundError, SoftDeletedError):
            stopped_early = True
            break
        for prop in sorted(open_props):
            before = snap.values.get(prop) if snap is not None else None
            if before is not None and before == values[prop]:
                since[prop] = (older.created, False)
            else:
                open_props.discard(prop)
    for prop in open_props if stopped_early else ():  # unbroken where the walk stopped
        since[prop] = (since[prop][0], True)
    return since


def value_ages(project: Project, env: EnvironmentConfig, store: SecretStore,
               keys: Iterable[str] | None = None, now: datetime | None = None
               ) -> dict[str, ValueAge]:
    """Age of each catalog value in `keys` (default: all) present in the store."""
    now = now or datetime.now(UTC)
    layout = project.layout(env)
    out: dict[str, ValueAge] = {}
    for remote_key, held in layout.objects(keys).items():
        props = {layout.ref(k).property: k for k in held}
        found = _object_since(store, remote_key, props)
        for prop, key in props.items():
            value = project.catalog.values[key]
            since, lower = found.get(prop, (None, False))
            age = None
            if since is not None:
                if since.tzinfo is None:
                    since = since.replace(tzinfo=UTC)
                age = max(now - since, timedelta(0))
            limit = value.max_age_delta
            out[key] = ValueAge(key, remote_key, since, lower, value.max_age, age,
                                bool(limit is not None and age is not None and age > limit))
    return out


def overdue_keys(project: Project, env: EnvironmentConfig, store: SecretStore,
                 now: datetime | None = None) -> list[ValueAge]:
    """The values `rotate --due` rotates: needed by `env`, with a maxAge, older than it
    (catalog order). Absent values are verify's and provision's business, never due."""
    layout = project.layout(env)
    keys = [v.name for v in layout.needed() if v.max_age]
    if not keys:
        return []
    ages = value_ages(project, env, store, keys, now)
    return [ages[k] for k in keys if ages[k].overdue]
