"""A finding and the metadata of the rule that produced it.

A rule id is stable: it is what `--ignore`, inline ignore comments and SARIF consumers
key on. Messages and fixes never contain a secret value: a Secret's data, a literal or
a found value is named by its key only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ERROR = "error"
WARNING = "warning"
NOTE = "note"
"""SARIF's level for a result that needs no action (a passing posture check)."""


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    """One line: what the rule finds."""
    fix: str
    """The general fix; a finding may carry a more specific one."""
    tool: str = "lint"
    """The command whose rule it is: "lint", "scan", "doctor" or "posture"."""

    def finding(self, message: str, *, file: str = "", line: int | None = None,
                fix: str | None = None, key_path: str = "", commit: str | None = None,
                resource: str = "", properties: dict[str, Any] | None = None) -> Finding:
        """A finding of this rule, with its severity and (unless given) its general fix."""
        return Finding(rule=self.id, severity=self.severity, file=file, line=line,
                       message=message, fix=self.fix if fix is None else fix,
                       key_path=key_path, commit=commit, properties=properties or {},
                       resource=resource)


@dataclass
class Finding:
    rule: str
    severity: str
    file: str
    """Path as shown to the user (`display_path`)."""
    line: int | None
    message: str
    fix: str
    key_path: str = ""
    commit: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    """Extra facts for json/SARIF (key name, environment, encoding, redacted excerpt)."""
    resource: str = ""
    """A cluster object instead of (or besides) a file: `Kind namespace/name` (doctor)."""

    def sort_key(self) -> tuple[Any, ...]:
        return (self.commit is not None, self.file, self.line or 0, self.rule, self.key_path,
                self.message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "severity": self.severity, "file": self.file,
                               "line": self.line}
        if self.commit:
            out["commit"] = self.commit
        if self.key_path:
            out["keyPath"] = self.key_path
        if self.resource:
            out["resource"] = self.resource
        out["message"] = self.message
        out["fix"] = self.fix
        out.update(self.properties)
        return out


def display_path(path: Path, cwd: Path | None = None) -> str:
    """`path` relative to the working directory when inside it, else absolute."""
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)
