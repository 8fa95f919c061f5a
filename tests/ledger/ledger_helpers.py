"""Helpers of the change ledger tests (imported as ``ledger_helpers``)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

STATE = ".deparrow-secrets"
LEDGER = f"{STATE}/ledger.jsonl"
KEY = f"{STATE}/ledger.key"
HEAD = f"{STATE}/ledger.head"


def records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / LEDGER).read_text("utf-8").splitlines()]


def ledger_lines(root: Path) -> list[bytes]:
    return (root / LEDGER).read_bytes().splitlines(keepends=True)


def write_lines(root: Path, lines: list[bytes]) -> None:
    (root / LEDGER).write_bytes(b"".join(lines))


def fresh_value() -> str:
    return "v" + secrets.token_urlsafe(30)


def ledger_files(root: Path) -> list[str]:
    state = root / STATE
    return sorted(p.name for p in state.glob("ledger*")) if state.is_dir() else []
