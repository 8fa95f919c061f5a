"""One failing and one passing fixture per lint rule (tests/fixtures/lint/<rule>/).

A `fail/` fixture lists in `expected.txt` every `file:line rule` it must produce for its
rule (exactly those); a `pass/` fixture must produce no finding at all. A fixture with
a deparrow-secrets.yaml is linted as a project (no PATH: its tree and configuration).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.lint.rules import LINT_RULES

LINT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
Run = Any

RULE_DIRS = sorted(d.name for d in LINT_FIXTURES.iterdir() if (d / "fail").is_dir())


def lint_fixture(cli: Callable[..., Run], directory: Path) -> Run:
    args = ["lint", "--output", "json"]
    if not (directory / "deparrow-secrets.yaml").exists():
        args.append(".")
    return cli(*args, cwd=directory)


def expected(directory: Path) -> set[tuple[str, int, str]]:
    out = set()
    for line in (directory / "expected.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            where, rule = line.split()
            file, _, number = where.rpartition(":")
            out.add((file, int(number), rule))
    return out


def test_every_lint_rule_has_a_failing_and_a_passing_fixture() -> None:
    assert set(RULE_DIRS) == {r.id for r in LINT_RULES}
    for rule in RULE_DIRS:
        assert (LINT_FIXTURES / rule / "pass").is_dir(), rule
        assert (LINT_FIXTURES / rule / "fail" / "expected.txt").is_file(), rule


@pytest.mark.parametrize("rule", RULE_DIRS)
def test_failing_fixture(rule: str, cli: Callable[..., Run]) -> None:
    directory = LINT_FIXTURES / rule / "fail"
    run = lint_fixture(cli, directory)
    assert run.code == 1, run.err
    want = expected(directory)
    assert {r for _, _, r in want} == {rule}
    got = {(f["file"], f["line"], f["rule"]) for f in run.findings(rule)}
    assert got == want
    for finding in run.findings():
        assert finding["message"] and finding["fix"], finding
        assert finding["severity"] in ("error", "warning")


@pytest.mark.parametrize("rule", RULE_DIRS)
def test_passing_fixture(rule: str, cli: Callable[..., Run]) -> None:
    run = lint_fixture(cli, LINT_FIXTURES / rule / "pass")
    assert run.findings() == []
    assert run.code == 0
    assert run.json()["summary"]["checked"] >= 1
