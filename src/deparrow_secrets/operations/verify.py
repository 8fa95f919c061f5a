"""Verify: every value an environment needs is present and meets its policy.

Reads each remote object once. Also reports configuration that points two
environments at the same store location (separate stores per environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore


@dataclass
class KeyCheck:
    key: str
    remote_key: str
    prop: str
    requirement: str
    status: str  # ok | missing | empty | too-short
    version: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class OverdueValue:
    """A value older than its catalog maxAge (due for rotation)."""

    key: str
    remote_key: str
    age: str
    max_age: str
    changed: str | None


@dataclass
class VerifyReport:
    environment: str
    provider: str
    checks: list[KeyCheck] = field(default_factory=list)
    shared_locations: list[str] = field(default_factory=list)
    overdue: list[OverdueValue] = field(default_factory=list)

    @property
    def failures(self) -> list[KeyCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.shared_locations and not self.overdue

    def to_json(self) -> dict[str, Any]:
        from deparrow_secrets.operations.reports import camel_dict

        return {"environment": self.environment, "provider": self.provider, "ok": self.ok,
                "checks": [camel_dict(c) for c in self.checks],
                "sharedLocations": self.shared_locations,
                "overdue": [camel_dict(o) for o in self.overdue]}

    def lines(self) -> list[str]:
        """The text report: what failed, what is shared or overdue, and a closing count."""
        name, provider = self.environment, self.provider
        lines = [f"{c.status.upper():9} {c.key} ({c.requirement}) at {c.remote_key}"
                 + (f" property {c.prop}" if c.prop else "") for c in self.failures]
        lines += [f"SHARED    {line}" for line in self.shared_locations]
        lines += [f"OVERDUE   {o.key} at {o.remote_key}: age {o.age} exceeds maxAge "
                  f"{o.max_age}; rotate it: deparrow-secrets rotate {o.key} --env {name}"
                  for o in self.overdue]
        if self.ok:
            lines.append(f"{name} ({provider}): all {len(self.checks)} needed values present.")
            return lines
        if self.failures or self.shared_locations:
            lines.append(f"{name} ({provider}): {len(self.failures)} of {len(self.checks)} "
                         "needed values missing or invalid.")
        if self.overdue:
            lines.append(f"{name} ({provider}): {len(self.overdue)} value(s) past their "
                         "maxAge (catalog).")
        return lines


def check_value(value: SecretValue | None, min_length: int) -> str:
    if value is None:
        return "missing"
    if not value:
        return "empty"
    if len(value) < min_length:
        return "too-short"
    return "ok"


def verify(project: Project, env: EnvironmentConfig, store: SecretStore) -> VerifyReport:
    layout = project.layout(env)
    needed = layout.needed()
    report = VerifyReport(env.name, env.provider,
                          shared_locations=project.config.shared_store_locations())
    read = layout.read(store, (v.name for v in needed))
    for value in needed:
        ref = layout.ref(value.name)
        got = read[value.name]
        report.checks.append(KeyCheck(value.name, ref.key, ref.property, value.requirement,
                                      check_value(got.value, value.min_length), got.version))
    from deparrow_secrets.posture.rotation import overdue_keys

    for due in overdue_keys(project, env, store):
        report.overdue.append(OverdueValue(
            due.key, due.remote_key, due.age_text or "", due.max_age or "",
            due.since.isoformat() if due.since else None))
    return report
