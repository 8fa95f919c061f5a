"""What every practice check returns: one verdict per practice and provider, with the
evidence it looked at and the exact fix, as a finding of the shared model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deparrow_secrets.findings import ERROR, NOTE, WARNING, Finding
from deparrow_secrets.findings import rule as declared_rule

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import EnvironmentConfig

PASS = "pass"
FAIL = "fail"
UNKNOWN = "unknown"
SEVERITY = {FAIL: ERROR, UNKNOWN: WARNING, PASS: NOTE}


@dataclass
class Verdict:
    practice: str
    """The rule id: audit-logging, rotation-age, encryption-at-rest, ..."""
    provider: str
    """What was looked at: the store's provider (local, vault, aws, azure), `cluster`,
    `repository`, `configuration`."""
    verdict: str
    summary: str
    evidence: list[str] = field(default_factory=list)
    fix: str = ""
    reason: str = ""
    """Why the verdict is unknown (what could not be read, and what reading it needs)."""
    commands: list[str] = field(default_factory=list)
    """Commands to run by hand: checks the tool cannot make from here, and fixes."""

    def finding(self, environment: str) -> Finding:
        rule = declared_rule(self.practice)
        message = f"{self.verdict}: {self.summary}"
        if self.verdict == UNKNOWN and self.reason:
            message += f" ({self.reason})"
        fix = self.fix or ("none needed" if self.verdict == PASS else rule.fix)
        return Finding(rule=self.practice, severity=SEVERITY[self.verdict], file="",
                       line=None, message=message, fix=fix,
                       resource=f"{environment}/{self.provider}",
                       properties={"practice": self.practice, "provider": self.provider,
                                   "verdict": self.verdict, "evidence": list(self.evidence),
                                   "reason": self.reason or None,
                                   "commands": list(self.commands)})


def not_checked(practice: str, env: EnvironmentConfig) -> Verdict:
    """A provider the tool has no check of this practice for (a registered third-party
    provider): unknown, never passed."""
    return Verdict(practice, env.provider, UNKNOWN,
                   f"{practice} is not checked for provider {env.provider}", [],
                   fix="check it by hand on the store", reason="no check for this provider")
