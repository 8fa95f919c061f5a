"""Status: for every catalog value, whether the environment needs it and has it."""

from __future__ import annotations

from dataclasses import dataclass

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.operations.project import Project
from deparrow_secrets.operations.verify import check_value
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


def status(project: Project, env: EnvironmentConfig, store: SecretStore) -> list[KeyStatus]:
    layout = project.layout(env)
    read = layout.read(store)
    rows = []
    for value in project.catalog.values.values():
        ref = layout.ref(value.name)
        current, version = read[value.name].value, read[value.name].version
        rows.append(KeyStatus(
            value.name,
            [s.name for s in project.catalog.secrets if value.name in s.keys],
            value.requirement, value.needed(env.ha, env.optional_keys), value.source,
            ref.key, ref.property, current is not None and bool(current),
            check_value(current, value.min_length), version))
    return rows
