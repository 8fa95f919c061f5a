"""Fixtures of the change ledger tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import isolate


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory as the project (dev on the embedded store by default)."""
    isolate(monkeypatch, tmp_path)
    return tmp_path
