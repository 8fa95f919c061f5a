"""Fixtures of the posture tests: a project with a catalog that sets maxAge, the fake
Kubernetes API server (as tests/cluster has it), and a runner of the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import started_cluster
from helpers import isolate


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    with started_cluster(tmp_path / "kube", "deparrow") as api:
        yield api


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config of the user
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return root
