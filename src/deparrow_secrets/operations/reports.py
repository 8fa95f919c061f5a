"""What provision, verify, status, history, rollback and export report: frozen results that give
their own JSON and text, so the commands only print them. No value is in any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kept light: cli.common takes camel_dict from here for every command
    from deparrow_secrets.config.settings import EnvironmentConfig
    from deparrow_secrets.operations.export import ExportResult
    from deparrow_secrets.operations.history import KeyVersion, RollbackResult
    from deparrow_secrets.operations.provision import ObjectPlan, ProvisionResult
    from deparrow_secrets.operations.status import KeyStatus
    from deparrow_secrets.operations.values import ValueTarget

Row = tuple[Any, ...]


def camel_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict with camelCase keys, like every other JSON this tool prints."""

    def camel(name: str) -> str:
        if name == "prop":
            return "property"  # ESO's word; `property` is a builtin name in Python
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(k): v for k, v in asdict(obj).items()}


# --------------------------------------------------------------------------- provision


@dataclass(frozen=True)
class ProvisionedKey:
    key: str
    remote_key: str
    action: str  # a plan's action; "unchanged" for a planned write that was not made
    version: str | None  # the new version of its remote object, when it was written


@dataclass(frozen=True)
class ProvisionReport:
    environment: str
    provider: str
    dry_run: bool
    keys: tuple[ProvisionedKey, ...]
    recovered: tuple[str, ...]  # soft-deleted objects brought back
    value_count: int  # values created (or, in a dry run, to be created)
    objects_written: int

    TABLE_HEADERS = ("KEY", "REMOTE", "ACTION", "NEW VERSION")

    @classmethod
    def of(cls, env: EnvironmentConfig, plans: Sequence[ObjectPlan],
           result: ProvisionResult | None) -> ProvisionReport:
        """The report of `plans` as applied (`result`, whose plans are the ones last
        read), or of a dry run (None)."""
        written = result.written if result is not None else {}
        dry_run = result is None
        plans = result.plans if result is not None else plans
        keys = tuple(ProvisionedKey(
            k.key, p.remote_key,
            k.action if dry_run or k.action == "exists" or p.remote_key in written
            else "unchanged", written.get(p.remote_key)) for p in plans for k in p.keys)
        count = sum(len(p.writes) for p in plans) if dry_run else \
            sum(1 for p in plans for _ in p.writes if p.remote_key in written)
        return cls(env.name, env.provider, dry_run, keys,
                   tuple(result.recovered) if result is not None else (), count,
                   len(written))

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "provider": self.provider,
                "dryRun": self.dry_run, "recovered": list(self.recovered),
                "keys": [{"key": k.key, "remoteKey": k.remote_key, "action": k.action,
                          "version": k.version} for k in self.keys]}

    def table_rows(self) -> list[Row]:
        return [(k.key, k.remote_key, k.action, k.version) for k in self.keys]

    def closing_lines(self) -> list[str]:
        """Printed after the table."""
        lines = []
        if self.recovered:
            lines.append("\nrecovered soft-deleted: " + ", ".join(self.recovered))
        verb = "would create" if self.dry_run else "created"
        lines.append(f"\n{self.environment} ({self.provider}): {verb} {self.value_count} "
                     f"value(s), {self.objects_written} remote object(s) written.")
        return lines


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusReport:
    environment: str
    provider: str
    keys: tuple[KeyStatus, ...]

    TABLE_HEADERS = ("KEY", "NEEDED", "PRESENT", "STATE", "VERSION", "AGE", "MAXAGE", "SOURCE",
                     "REMOTE")

    @classmethod
    def of(cls, env: EnvironmentConfig, rows: Sequence[KeyStatus]) -> StatusReport:
        return cls(env.name, env.provider, tuple(rows))

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "provider": self.provider,
                "keys": [camel_dict(r) for r in self.keys]}

    def table_rows(self) -> list[Row]:
        return [(r.key, "yes" if r.needed else f"no ({r.requirement})",
                 "yes" if r.present else "no", r.state, r.version,
                 (r.age + " OVERDUE") if r.age and r.overdue else r.age, r.max_age,
                 r.source, r.remote_key + (f"#{r.prop}" if r.prop else "")) for r in self.keys]


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryReport:
    target: ValueTarget
    versions: tuple[KeyVersion, ...]

    def to_json(self) -> dict[str, Any]:
        t = self.target
        return {"key": t.key, "environment": t.environment, "remoteKey": t.remote_key,
                "versions": [{"version": v.version, "created": v.created,
                              "current": v.current, "labels": _labels(v),
                              "keyChange": v.key_change} for v in self.versions]}

    def heading(self) -> str:
        t = self.target
        return f"{t.key} in {t.environment}: remote object {t.remote_key}"

    def table_headers(self) -> tuple[str, ...]:
        return ("VERSION", "CREATED", "CURRENT", "LABELS", self.target.key)

    def table_rows(self) -> list[Row]:
        return [(v.version, v.created, "yes" if v.current else "", ",".join(v.labels),
                 v.key_change) for v in self.versions]


def _labels(version: KeyVersion) -> list[str]:
    # As the table shows them, joined by commas (so the JSON says what the text says).
    joined = ",".join(version.labels)
    return joined.split(",") if joined else []


# --------------------------------------------------------------------------- rollback


@dataclass(frozen=True)
class RollbackReport:
    key: str
    environment: str
    remote_key: str
    version: str  # current afterwards: a new version holding the restored value
    restored_from: str
    changed_keys: tuple[str, ...]

    @classmethod
    def of(cls, env: EnvironmentConfig, key: str, result: RollbackResult) -> RollbackReport:
        return cls(key, env.name, result.remote_key, result.version, result.restored_from,
                   tuple(result.changed_keys))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "environment": self.environment,
                "remoteKey": self.remote_key, "version": self.version,
                "restoredFrom": self.restored_from, "changedKeys": list(self.changed_keys)}

    def text(self) -> str:
        return (f"{self.environment}: {self.key} restored to its value of version "
                f"{self.restored_from} of {self.remote_key}; current version is now "
                f"{self.version} (no other key changed)")


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportReport:
    environment: str
    files: tuple[Path, ...]
    remote: bool  # the values live in a remote store: these files are copies off it

    @classmethod
    def of(cls, env: EnvironmentConfig, result: ExportResult) -> ExportReport:
        return cls(env.name, tuple(result.files), env.uses_eso)

    def lines(self) -> list[str]:
        return [f"wrote {path} (mode 0600)" for path in self.files]

    def warning(self) -> str | None:
        """For stderr: plaintext copies of a remote store's values are on this disk."""
        if not (self.remote and self.files):
            return None
        where = sorted({str(p.parent) for p in self.files})
        return (f"warning: {self.environment} values are now in plaintext in "
                f"{', '.join(where)}; delete them when done")
