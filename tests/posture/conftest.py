"""Fixtures of the posture tests: a project with a catalog that sets maxAge (the fake
Kubernetes API server, ``kube_api``, is tests/conftest.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import isolate


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config of the user
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return root
