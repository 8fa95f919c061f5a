"""`audit` as a library call: the change ledger's records, filtered, and with `verify`
its HMAC chain checked. Reads only: creates nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deparrow_secrets.errors import InputError
from deparrow_secrets.project import Project

Record = dict[str, Any]

TABLE_HEADERS = ("#", "WHEN", "WHO", "COMMAND", "ENV", "KEYS", "VERSIONS", "OUTCOME")


@dataclass(frozen=True)
class AuditReport:
    ledger: Path
    recorded: int
    """Records in the ledger, before the filters."""
    shown: list[Record]
    verified: tuple[int, str] | None
    """(records chained, newest MAC) when the chain was checked, else None."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ledger": str(self.ledger), "records": self.shown}
        if self.verified is not None:
            count, head = self.verified
            data["verified"] = {"intact": True, "records": count, "head": head}
        return data

    def table_rows(self) -> list[tuple[Any, ...]]:
        return [(r["seq"], r["time"], _who(r), r["command"], r["env"], _keys(r), _versions(r),
                 _outcome(r)) for r in self.shown]

    def empty_line(self) -> str | None:
        """What the text output says instead of a table when nothing was recorded."""
        if self.recorded:
            return None
        return f"no changes recorded yet ({self.ledger} does not exist or is empty)"

    def verified_line(self) -> str | None:
        if self.verified is None:
            return None
        count, head = self.verified
        return f"ledger intact: {count} record(s) chained" + (
            f", newest MAC {head[:16]}" if head else "")


def audit(project: Project, env_name: str | None = None, key: str | None = None,
          verify: bool = False) -> AuditReport:
    """The records of `env_name` (default: all) that touched `key` (default: any); with
    `verify`, an IntegrityError (exit 6) names the first removed, reordered or edited one."""
    from deparrow_secrets import ledger
    from deparrow_secrets.config.settings import ENVIRONMENTS

    if env_name is not None and env_name not in ENVIRONMENTS:
        raise InputError(f"unknown environment '{env_name[:40]}'",
                         hint="environments: " + ", ".join(ENVIRONMENTS))
    if key is not None and key not in project.catalog.values:
        raise InputError(f"'{key[:60]}' is not in the catalog",
                         hint="known keys: " + ", ".join(project.catalog.values))
    files = ledger.files(project)
    records = files.read_records()
    verified = files.verify(records) if verify else None
    shown = [r for r in records
             if (env_name is None or r["env"] == env_name) and (key is None or key in r["keys"])]
    return AuditReport(files.ledger, len(records), shown, verified)


def _who(record: Record) -> str:
    user = str(record.get("user") or "?")
    return f"{user} as {record['principal']}" if record.get("principal") else user


def _keys(record: Record) -> str:
    keys = [str(k) for k in record["keys"]]
    if len(keys) > 3:
        return ",".join(keys[:2]) + f" +{len(keys) - 2} more"
    return ",".join(keys) or "-"


def _versions(record: Record) -> str:
    # A failed run's object without an `after` was written with an unknown result.
    unknown = "?" if record["outcome"].get("status") != "ok" else "-"
    return ", ".join(f"{o.get('remoteKey')} {o.get('before') or '-'} -> "
                     f"{o.get('after') or unknown}"
                     for o in record["objects"] if isinstance(o, dict)) or "-"


def _outcome(record: Record) -> str:
    outcome = record["outcome"]
    if outcome.get("status") == "ok":
        return "ok"
    return f"failed: {outcome.get('error')} (exit {outcome.get('exitCode')})"
