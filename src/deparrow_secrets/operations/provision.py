"""Provision: create every missing value of an environment, never overwrite one.

Each remote object is read once and written once, with check-and-set on the version
read. If another writer got there first, the object is read again and only what is
still missing is added, so concurrent or repeated runs converge.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from deparrow_secrets.config.catalog import CatalogValue, GeneratePolicy
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import ConflictError, InputError, SoftDeletedError
from deparrow_secrets.ledger import Change
from deparrow_secrets.operations.project import Project
from deparrow_secrets.operations.values_input import check_policy
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot

CONFLICT_ATTEMPTS = 5


def _backoff(attempt: int) -> None:
    """A short random pause before retrying a lost check-and-set, so writers that
    collided do not collide again in lockstep."""
    if attempt:
        time.sleep(secrets.randbelow(50 * attempt) / 1000)


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
        if key not in project.catalog.values:
            raise InputError(f"'{key}' is not in the catalog",
                             hint="known keys: " + ", ".join(project.catalog.values))
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


def apply_provision(project: Project, env: EnvironmentConfig, store: SecretStore,
                    plans: list[ObjectPlan], supplied: Mapping[str, SecretValue],
                    recover_deleted: bool = False) -> ProvisionResult:
    """Write each plan; with `recover_deleted`, a soft-deleted object is recovered
    (and then kept, like any existing value) instead of being reported."""
    missing_user = [k.key for p in plans for k in p.keys if k.action == "missing-user"]
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


def _write_plans(project: Project, env: EnvironmentConfig, store: SecretStore,
                 plans: list[ObjectPlan], supplied: Mapping[str, SecretValue],
                 recover_deleted: bool, result: ProvisionResult, change: Change) -> None:
    for i, plan in enumerate(plans):
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt:
                _backoff(attempt)
                values = [project.catalog.values[k.key] for k in plan.keys]
                plan = plan_object(project, env, plan.remote_key, values,
                                   store.read(plan.remote_key), supplied)
                plans[i] = plan
            if not plan.writes:
                break
            merged = dict(plan.existing)
            for planned in plan.writes:
                merged[planned.prop] = _new_value(project, planned, supplied)
            change.attempting(plan.remote_key, plan.version, plan.existing,
                              [k.key for k in plan.writes])
            try:
                result.written[plan.remote_key] = store.write(plan.remote_key, merged,
                                                              plan.version)
                change.wrote(plan.remote_key, plan.version, plan.existing,
                             result.written[plan.remote_key], merged,
                             [k.key for k in plan.writes])
                break
            except SoftDeletedError:
                if not recover_deleted or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                store.recover(plan.remote_key)
                result.recovered.append(plan.remote_key)
                change.fact("recovered", list(result.recovered))
            except ConflictError:
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise


def set_value(project: Project, env: EnvironmentConfig, store: SecretStore, key: str,
              value: SecretValue) -> str:
    """Write `value` as `key`, keeping every other property of its remote object.

    Check-and-set on the version read; when another writer changed the object in
    between (e.g. `set` of another key of it), read again and retry, as provision does.
    Returns the new version.
    """
    ref = project.layout(env).ref(key)
    with Change(project, env, "set", keys=[key]) as change:
        for attempt in range(CONFLICT_ATTEMPTS):
            _backoff(attempt)
            snap = store.read(ref.key)
            values = dict(snap.values) if snap else {}
            values[ref.property] = value
            change.attempting(ref.key, snap.version if snap else None,
                              snap.values if snap else None)
            try:
                version = store.write(ref.key, values, snap.version if snap else None)
            except ConflictError:
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                continue
            change.wrote(ref.key, snap.version if snap else None,
                         snap.values if snap else None, version, values)
            return version
    raise AssertionError("unreachable")
