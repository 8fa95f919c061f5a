"""Status: for every catalog value, whether the environment needs it and has it."""

from __future__ import annotations

from dataclasses import dataclass

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.operations.verify import check_value
from deparrow_secrets.project import Project
from deparrow_secrets.stores.interface import SecretStore


@dataclass
class KeyStatus:
    key: str
    secrets: list[str]
    requirement: str
    needed: bool
    source: str
    remote_key: str
    prop: str
    present: bool
    state: str  # ok | missing | empty | too-short
    version: str | None
    age: str | None = None
    """Since the value last changed (store version dates): `97d`, `>=97d` a lower bound."""
    max_age: str | None = None
    overdue: bool = False
    changed: str | None = None
    """When the value got its current content (ISO 8601), as far as the store tells."""


def status(project: Project, env: EnvironmentConfig, store: SecretStore) -> list[KeyStatus]:
    from deparrow_secrets.posture.rotation import value_ages

    layout = project.layout(env)
    read = layout.read(store)
    ages = value_ages(project, env, store)
    rows = []
    for value in project.catalog.values.values():
        ref = layout.ref(value.name)
        current, version = read[value.name].value, read[value.name].version
        age = ages.get(value.name)
        needed = value.needed(env.ha, env.optional_keys)
        rows.append(KeyStatus(
            value.name,
            [s.name for s in project.catalog.secrets if value.name in s.keys],
            value.requirement, needed, value.source,
            ref.key, ref.property, current is not None and bool(current),
            check_value(current, value.min_length), version,
            age.age_text if age and current is not None else None, value.max_age,
            bool(needed and age and current is not None and age.overdue),
            age.since.isoformat() if age and age.since and current is not None else None))
    return rows
