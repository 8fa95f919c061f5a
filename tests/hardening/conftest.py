"""Fixtures of the hardening tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import isolate


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory (``tmp_path / "project"``) the in-process commands run
    in, with no store key or remote store from the developer's shell."""
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    return root


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory outside the project that must stay exactly as it is."""
    out = tmp_path / "elsewhere"
    out.mkdir()
    return out
