"""get and set of one catalog value.

Each is a plan (catalog, version and policy checks; no store touched) and an apply
against an open store, returning a result that prints itself as text or JSON. Values
stay SecretValue throughout: only `GetResult` with `reveal=True` shows one, on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.ledger import Change
from deparrow_secrets.operations.provision import ObjectWrite, write_checked
from deparrow_secrets.operations.values_input import check_known_key, check_policy
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot


@dataclass(frozen=True)
class ValueTarget:
    """Where a catalog key lives in an environment's store."""

    key: str
    environment: str
    remote_key: str
    prop: str  # the property of the remote object (WHOLE for a single-value object)


def value_target(project: Project, env: EnvironmentConfig, key: str) -> ValueTarget:
    """The remote object and property of `key` in `env`; InputError for a key the
    catalog does not know."""
    check_known_key(project.catalog, key)
    ref = project.layout(env).ref(key)
    return ValueTarget(key, env.name, ref.key, ref.property)


# --------------------------------------------------------------------------- get


@dataclass(frozen=True)
class GetPlan:
    target: ValueTarget
    version: str | None  # a specific version of the remote object, or the current one


@dataclass(frozen=True)
class GetResult:
    target: ValueTarget
    version: str | None  # of the remote object read; None when there is none
    value: SecretValue | None = field(repr=False)

    @property
    def found(self) -> bool:
        return self.value is not None

    def to_json(self, reveal: bool = False) -> dict[str, Any]:
        """The metadata; the value itself only with `reveal` (and only when set)."""
        t = self.target
        data: dict[str, Any] = {
            "key": t.key, "environment": t.environment, "remoteKey": t.remote_key,
            "property": t.prop, "set": self.value is not None, "version": self.version,
            "length": len(self.value) if self.value is not None else None}
        if reveal and self.value is not None:
            data["value"] = self.value.reveal()
        return data

    def text(self, reveal: bool = False) -> str:
        """One line: the value with `reveal`, else its metadata; when the key is not
        set, the message saying so (for stderr)."""
        t = self.target
        if self.value is None:
            return f"{t.key}: not set in {t.environment} ({t.remote_key})"
        if reveal:
            return self.value.reveal()
        return (f"{t.key}: set in {t.environment} at {t.remote_key}, version {self.version}, "
                f"{len(self.value)} characters (add --reveal to print it)")


def plan_get(project: Project, env: EnvironmentConfig, key: str,
             version: str | None = None) -> GetPlan:
    from deparrow_secrets.operations.history import check_version_id

    target = value_target(project, env, key)
    if version is not None:
        check_version_id(version)
    return GetPlan(target, version)


def apply_get(store: SecretStore, plan: GetPlan) -> GetResult:
    snap = store.read(plan.target.remote_key, plan.version)
    value = snap.values.get(plan.target.prop) if snap else None
    return GetResult(plan.target, snap.version if snap else None, value)


# --------------------------------------------------------------------------- set


@dataclass(frozen=True)
class SetPlan:
    target: ValueTarget
    value: SecretValue = field(repr=False)


@dataclass(frozen=True)
class SetResult:
    target: ValueTarget
    version: str  # the new version of the remote object
    previous_version: str | None  # the version the write replaced (None: it created it)
    attempts: int  # 1, or more when another writer came first and the write was redone

    def to_json(self) -> dict[str, Any]:
        t = self.target
        return {"key": t.key, "environment": t.environment, "remoteKey": t.remote_key,
                "property": t.prop, "version": self.version,
                "previousVersion": self.previous_version, "attempts": self.attempts}

    def text(self) -> str:
        t = self.target
        return f"{t.key}: written to {t.environment} at {t.remote_key}, version {self.version}"


def plan_set(project: Project, target: ValueTarget, value: SecretValue, *,
             force: bool = False) -> SetPlan:
    """The catalog's policy for `value` (minLength unless `force`), before any store is
    opened or created."""
    check_policy(project.catalog, target.key, value, force=force, offer_force=True)
    return SetPlan(target, value)


def apply_set(project: Project, env: EnvironmentConfig, store: SecretStore,
              plan: SetPlan) -> SetResult:
    """Write the value as its key, keeping every other property of the remote object.

    Check-and-set on the version read; when another writer changed the object in
    between (`set` of another key of it, a provision), it is read again and the value
    put over what is there now, with provision's bounded retries.
    """
    t = plan.target

    def over(snap: Snapshot | None) -> ObjectWrite:
        values = dict(snap.values) if snap else {}
        values[t.prop] = plan.value
        return ObjectWrite(snap.version if snap else None, snap.values if snap else None,
                           values, [t.key])

    with Change(project, env, "set", keys=[t.key]) as change:
        outcome = write_checked(store, t.remote_key, change, over,
                                over(store.read(t.remote_key)))
    assert outcome.version is not None and outcome.written is not None  # `over` always writes
    return SetResult(t, outcome.version, outcome.written.version, outcome.attempts)
