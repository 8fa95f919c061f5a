"""Hostile YAML at every entry point (configuration, `--catalog`, lint input): an alias
bomb, a 5,000-deep nesting and an oversize file are each one clear error, exit 2 (lint:
a finding, exit 1), in under a second; parser texts never quote the file."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import clean_env, run_cli

DEADLINE = 1.0


def alias_bomb() -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 9) + "]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def deep_flow() -> str:
    return "key: " + "[" * 5000 + "]" * 5000 + "\n"


def deep_block() -> str:
    return "".join(" " * i + f"k{i}:\n" for i in range(5000)) + " " * 5000 + "v: 1\n"


def oversize() -> str:
    filler = secrets.token_hex(16)
    return "".join(f"k{i}: {filler}\n" for i in range(200_000))  # ~9 MB


HOSTILE: dict[str, Callable[[], str]] = {
    "alias-bomb": alias_bomb, "deep-flow": deep_flow, "deep-block": deep_block,
    "oversize": oversize,
}


def timed(args: list[str], cwd: Path) -> tuple[float, object]:
    # The whole process is timed minus a bare `--version` (interpreter start-up).
    start = time.monotonic()
    baseline = run_cli(["--version"], cwd=cwd)
    startup = time.monotonic() - start
    assert baseline.code == 0
    start = time.monotonic()
    run = run_cli(args, cwd=cwd, env=clean_env())
    return time.monotonic() - start - startup, run


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_configuration_refuses_hostile_yaml(shape: str, tmp_path: Path) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(HOSTILE[shape](), encoding="utf-8")
    elapsed, run = timed(["status", "--env", "dev"], tmp_path)
    assert run.code == 2, run.text
    assert "deparrow-secrets.yaml" in run.err and "Traceback" not in run.err
    assert elapsed < DEADLINE, (shape, elapsed)


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_catalog_refuses_hostile_yaml(shape: str, tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(HOSTILE[shape](), encoding="utf-8")
    elapsed, run = timed(["--catalog", "catalog.yaml", "status", "--env", "dev"], tmp_path)
    assert run.code == 2, run.text
    assert "catalog.yaml" in run.err and "Traceback" not in run.err
    assert elapsed < DEADLINE, (shape, elapsed)


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_lint_reports_hostile_yaml(shape: str, tmp_path: Path) -> None:
    (tmp_path / "hostile.yaml").write_text(HOSTILE[shape](), encoding="utf-8")
    elapsed, run = timed(["lint", "-o", "json", "hostile.yaml"], tmp_path)
    assert run.code == 1, run.text
    [finding] = run.findings()
    assert finding["file"] == "hostile.yaml"
    assert finding["rule"] in ("yaml-invalid", "file-unreadable")
    assert elapsed < DEADLINE, (shape, elapsed)


def test_lint_reports_hostile_json_policy(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text('{"Statement": ' + "[" * 5000 + "]" * 5000 + "}",
                                          encoding="utf-8")
    run = run_cli(["lint", "-o", "json", "policy.json"], cwd=tmp_path)
    assert run.code == 1, run.text
    assert [f["rule"] for f in run.findings()] == ["yaml-invalid"]


def test_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text("namespace: &n [*n]\n", encoding="utf-8")
    run = run_cli(["status", "--env", "dev"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "alias" in run.err
