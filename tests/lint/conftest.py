"""The `cli` fixture: run deparrow-secrets in-process in a directory.

Tests import nothing from here (conftest modules do not have unique names).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    def findings(self, rule: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.json()["findings"] if rule is None or f["rule"] == rule]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """cli(*args, cwd=DIR) -> Run: `deparrow-secrets ARGS` in DIR, exit code captured."""

    def run(*args: str, cwd: Path) -> Run:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
