"""Provision: create every missing value of an environment, never overwrite one.

Each remote object is read once and written once, with check-and-set on the version
read. If another writer got there first, the object is read again and only what is
still missing is added, so concurrent or repeated runs converge.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from deparrow_secrets.config.catalog import CatalogValue, GeneratePolicy
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import ConflictError, InputError, SoftDeletedError
from deparrow_secrets.ledger import Change
from deparrow_secrets.operations.values_input import check_known_key, check_policy
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot

CONFLICT_ATTEMPTS = 5


def _backoff(attempt: int) -> None:
    """A short random pause before retrying a lost check-and-set, so writers that
    collided do not collide again in lockstep."""
    if attempt:
        time.sleep(secrets.randbelow(50 * attempt) / 1000)


@dataclass(frozen=True)
class ObjectWrite:
    """One check-and-set write of a remote object, composed over the version read."""

    version: str | None  # the version read: the write's condition (None: create)
    before: Mapping[str, SecretValue] | None = field(repr=False)
    after: Mapping[str, SecretValue] = field(repr=False)  # the object's whole new content
    keys: Sequence[str] = ()  # the catalog keys the write changes (the ledger's record)


@dataclass(frozen=True)
class CheckedWrite:
    """How a check-and-set write ended: its new version (None if, read again, nothing
    was left to write) after `attempts` tries."""

    version: str | None
    written: ObjectWrite | None
    attempts: int


def write_checked(store: SecretStore, remote_key: str, change: Change,
                  compose: Callable[[Snapshot | None], ObjectWrite | None],
                  first: ObjectWrite | None,
                  on_soft_deleted: Callable[[], None] | None = None) -> CheckedWrite:
    """Write `first` with check-and-set; when another writer changed the object in
    between, read it again, `compose` the write anew over what is there now and retry,
    a bounded number of times. `compose` (and `first`) return None when nothing is left
    to write. A soft-deleted object is recovered by `on_soft_deleted` and retried, or
    (without it) reported."""
    planned = first
    for attempt in range(CONFLICT_ATTEMPTS):
        if attempt:
            _backoff(attempt)
            planned = compose(store.read(remote_key))
        if planned is None:
            return CheckedWrite(None, None, attempt + 1)
        change.attempting(remote_key, planned.version, planned.before, planned.keys)
        try:
            version = store.write(remote_key, planned.after, planned.version)
        except SoftDeletedError:
            if on_soft_deleted is None or attempt == CONFLICT_ATTEMPTS - 1:
                raise
            on_soft_deleted()
            continue
        except ConflictError:
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise
            continue
        change.wrote(remote_key, planned.version, planned.before, version, planned.after,
                     planned.keys)
        return CheckedWrite(version, planned, attempt + 1)
    raise AssertionError("unreachable")


def generate(policy: GeneratePolicy) -> SecretValue:
    chars = policy.characters
    return SecretValue("".join(secrets.choice(chars) for _ in range(policy.length)))


@dataclass
class PlannedKey:
    key: str
    prop: str
    action: str  # "exists" | "generate" | "default" | "user" | "missing-user"


@dataclass
class ObjectPlan:
    remote_key: str
    version: str | None
    keys: list[PlannedKey] = field(default_factory=list)
    existing: Mapping[str, SecretValue] = field(default_factory=dict, repr=False)

    @property
    def writes(self) -> list[PlannedKey]:
        return [k for k in self.keys if k.action in ("generate", "default", "user")]


@dataclass
class ProvisionResult:
    plans: list[ObjectPlan]
    written: dict[str, str] = field(default_factory=dict)  # remote key -> new version
    recovered: list[str] = field(default_factory=list)  # soft-deleted objects brought back

    @property
    def created_keys(self) -> list[str]:
        return [k.key for p in self.plans if p.remote_key in self.written for k in p.writes]


def _action(value: CatalogValue, present: bool, supplied: Mapping[str, SecretValue]) -> str:
    if present:
        return "exists"
    if value.name in supplied:
        return "user"
    if value.source == "generated":
        return "generate"
    if value.source == "default":
        return "default"
    return "missing-user"


def check_supplied(project: Project, supplied: Mapping[str, SecretValue]) -> None:
    """Every supplied value names a catalog key and meets its policy, as `set` requires;
    checked before any store is opened or created."""
    for key, value in supplied.items():
        check_known_key(project.catalog, key)
        check_policy(project.catalog, key, value)


def wanted_values(project: Project, env: EnvironmentConfig,
                  supplied: Mapping[str, SecretValue]) -> list[CatalogValue]:
    """The environment's needed values, plus optional ones the user supplied."""
    needed = project.catalog.needed(env.ha, env.optional_keys)
    names = {v.name for v in needed}
    check_supplied(project, supplied)
    extra = [project.catalog.values[k] for k in supplied if k not in names]
    return needed + extra


def plan_object(project: Project, env: EnvironmentConfig, remote_key: str,
                values: list[CatalogValue], snap: Snapshot | None,
                supplied: Mapping[str, SecretValue]) -> ObjectPlan:
    layout = project.layout(env)
    existing = snap.values if snap else {}
    plan = ObjectPlan(remote_key, snap.version if snap else None, existing=existing)
    for value in values:
        prop = layout.ref(value.name).property
        current = existing.get(prop)
        present = current is not None and bool(current)
        plan.keys.append(PlannedKey(value.name, prop, _action(value, present, supplied)))
    return plan


def plan_provision(project: Project, env: EnvironmentConfig, store: SecretStore,
                   supplied: Mapping[str, SecretValue]) -> list[ObjectPlan]:
    layout = project.layout(env)
    wanted = wanted_values(project, env, supplied)
    by_name = {v.name: v for v in wanted}
    plans = []
    for remote_key, keys in layout.objects(by_name).items():
        snap = store.read(remote_key)
        plans.append(plan_object(project, env, remote_key, [by_name[k] for k in keys], snap,
                                 supplied))
    return plans


def _new_value(project: Project, planned: PlannedKey,
               supplied: Mapping[str, SecretValue]) -> SecretValue:
    value = project.catalog.values[planned.key]
    if planned.action == "user":
        return supplied[planned.key]
    if planned.action == "generate":
        assert value.generate is not None
        return generate(value.generate)
    assert value.default is not None
    return SecretValue(value.default)


def missing_user_keys(plans: list[ObjectPlan]) -> list[str]:
    """User-supplied keys the plans found neither in the store nor among the given values."""
    return [k.key for p in plans for k in p.keys if k.action == "missing-user"]


def apply_provision(project: Project, env: EnvironmentConfig, store: SecretStore,
                    plans: list[ObjectPlan], supplied: Mapping[str, SecretValue],
                    recover_deleted: bool = False) -> ProvisionResult:
    """Write each plan; with `recover_deleted`, a soft-deleted object is recovered
    (and then kept, like any existing value) instead of being reported."""
    missing_user = missing_user_keys(plans)
    if missing_user:
        raise InputError("no value given for: " + ", ".join(missing_user),
                         hint="supply them with --values-file FILE or on stdin with --stdin, "
                         "or run interactively to be asked")
    result = ProvisionResult(plans)
    with Change(project, env, "provision",
                keys=[k.key for p in plans for k in p.writes]) as change:
        _write_plans(project, env, store, plans, supplied, recover_deleted, result, change)
    result.plans = plans
    return result


def _object_write(project: Project, plan: ObjectPlan,
                  supplied: Mapping[str, SecretValue]) -> ObjectWrite | None:
    if not plan.writes:
        return None
    merged = dict(plan.existing)
    for planned in plan.writes:
        merged[planned.prop] = _new_value(project, planned, supplied)
    return ObjectWrite(plan.version, plan.existing, merged, [k.key for k in plan.writes])


def _write_plans(project: Project, env: EnvironmentConfig, store: SecretStore,
                 plans: list[ObjectPlan], supplied: Mapping[str, SecretValue],
                 recover_deleted: bool, result: ProvisionResult, change: Change) -> None:
    for i, first in enumerate(plans):
        values = [project.catalog.values[k.key] for k in first.keys]

        def replan(snap: Snapshot | None, i: int = i, remote_key: str = first.remote_key,
                   values: list[CatalogValue] = values) -> ObjectWrite | None:
            # What another writer added meanwhile is kept; only what is still missing is added.
            plans[i] = plan_object(project, env, remote_key, values, snap, supplied)
            return _object_write(project, plans[i], supplied)

        def recover(remote_key: str = first.remote_key) -> None:
            store.recover(remote_key)
            result.recovered.append(remote_key)
            change.fact("recovered", list(result.recovered))

        outcome = write_checked(store, first.remote_key, change, replan,
                                _object_write(project, first, supplied),
                                recover if recover_deleted else None)
        if outcome.version is not None:
            result.written[first.remote_key] = outcome.version

