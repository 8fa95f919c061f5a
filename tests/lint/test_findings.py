"""The shared findings: one registry of the rules every command declares where it
implements them, and SARIF that describes every rule a finding names."""

from __future__ import annotations

import json
import secrets

import pytest

from deparrow_secrets.findings import ERROR, WARNING, Finding, Rule, declare, is_declared, rule
from deparrow_secrets.findings.output import render_sarif
from deparrow_secrets.lint.rules import LINT_RULES
from deparrow_secrets.lint.rules.stores import REFRESH_DISABLED
from deparrow_secrets.operations.doctor import DOCTOR_RULES
from deparrow_secrets.posture.checks import POSTURE_RULES
from deparrow_secrets.scan.engine import SCAN_RULES

COMMANDS = {"lint": LINT_RULES, "scan": SCAN_RULES, "doctor": DOCTOR_RULES,
            "posture": POSTURE_RULES}


def test_one_id_is_one_rule() -> None:
    rule_id = f"test-{secrets.token_hex(6)}"
    assert not is_declared(rule_id)
    first = Rule(rule_id, WARNING, "A rule of this test.", "Nothing to do.", tool="test")
    assert declare(first) == (first,)
    assert declare(first) == (first,)  # the same rule again, as doctor passes lint's
    with pytest.raises(ValueError, match=rule_id):
        declare(Rule(rule_id, ERROR, "Another rule under that id.", "Nothing.", tool="other"))
    assert rule(rule_id) is first


def test_every_command_rule_is_the_declared_one() -> None:
    for tool, rules in COMMANDS.items():
        ids = [r.id for r in rules]
        assert len(ids) == len(set(ids)), tool
        for r in rules:
            assert rule(r.id) is r
            assert r.tool == tool or r is REFRESH_DISABLED, r.id
    assert REFRESH_DISABLED in DOCTOR_RULES and REFRESH_DISABLED in LINT_RULES
    everywhere = [r.id for rules in COMMANDS.values() for r in rules]
    assert len(everywhere) == len(set(everywhere)) + 1  # refresh-disabled, shared


def test_sarif_describes_a_rule_from_outside_the_command() -> None:
    found = Finding("known-value", ERROR, "a.yaml", 3, "the dev value of K is in a.yaml",
                    "remove it")
    run = json.loads(render_sarif([found], LINT_RULES))["runs"][0]
    described = [d["id"] for d in run["tool"]["driver"]["rules"]]
    assert described == [*(r.id for r in LINT_RULES), "known-value"]
    assert run["results"][0]["ruleIndex"] == len(LINT_RULES)
    assert run["tool"]["driver"]["rules"][-1]["properties"]["tags"] == ["security", "scan"]


def test_drift_reports_each_drifted_key_under_doctors_rule() -> None:
    from deparrow_secrets.operations import drift

    def key(name: str, state: str, *, present: bool = True) -> drift.KeyDrift:
        return drift.KeyDrift(name, "app-secrets", "app-secrets", True, "3", present,
                              state != drift.CLUSTER_MISSING, None, "2026-01-01T00:00:00Z",
                              state, f"fix {name}")

    report = drift.DriftReport("staging", "deparrow", "ctx", [
        key("A", drift.IN_SYNC), key("B", drift.STORE_BEHIND),
        key("C", drift.CLUSTER_BEHIND), key("D", drift.CLUSTER_EDITED),
        key("E", drift.CLUSTER_MISSING), key("F", drift.CLUSTER_MISSING, present=False)])
    found = report.findings()
    assert [(f.rule, f.properties["key"], f.fix) for f in found] == [
        ("store-key-missing", "B", "fix B"), ("secret-out-of-sync", "C", "fix C"),
        ("secret-edited-in-cluster", "D", "fix D"), ("secret-key-missing", "E", "fix E"),
        ("secret-missing", "F", "fix F")]
    assert {f.resource for f in found} == {"Secret deparrow/app-secrets"}
    assert [f.severity for f in found] == [ERROR, ERROR, WARNING, ERROR, ERROR]
    run = json.loads(render_sarif(found, drift.DRIFT_RULES))["runs"][0]
    assert [d["id"] for d in run["tool"]["driver"]["rules"]] == [
        r.id for r in drift.DRIFT_RULES]
    assert {r["ruleId"] for r in run["results"]} == {r.id for r in drift.DRIFT_RULES}
