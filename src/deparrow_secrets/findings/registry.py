"""Every rule any command declared, by id.

Each command declares its rules in the module that implements them (`declare` at
import time) and keeps its own ordered list for its SARIF rule table and its listing;
the registry answers "which rule is this id" for whoever holds only a finding: a
finding exists only once the module that declares its rule has been imported. One id
means one rule everywhere: a command that reports another's rule (doctor's
`refresh-disabled` is lint's) passes the same Rule object, and two different rules
under one id are refused.
"""

from __future__ import annotations

from deparrow_secrets.findings.model import Rule

_RULES: dict[str, Rule] = {}


def declare(*rules: Rule) -> tuple[Rule, ...]:
    """Register `rules`; returns them, in order, for the declaring module's own list."""
    for rule in rules:
        known = _RULES.setdefault(rule.id, rule)
        if known != rule:
            raise ValueError(f"rule id {rule.id!r} declared twice with different metadata "
                             f"({known.tool} and {rule.tool}): give one of them another id")
    return rules


def rule(rule_id: str) -> Rule:
    """The declared rule with this id; KeyError when no imported module declares it."""
    return _RULES[rule_id]


def is_declared(rule_id: str) -> bool:
    return rule_id in _RULES
