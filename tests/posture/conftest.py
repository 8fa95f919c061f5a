"""Fixtures of the posture tests: a project with a catalog that sets maxAge, the fake
Kubernetes API server (as tests/cluster has it), and a runner of the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from deparrow_secrets.config.catalog import default_catalog_path
from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import started_cluster
from helpers import isolate


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    with started_cluster(tmp_path / "kube", "deparrow") as api:
        yield api


def catalog_with_max_age(root: Path, ages: dict[str, str]) -> Path:
    """The DEparrow catalog with `maxAge` on the values named in `ages`."""
    data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    for key, age in ages.items():
        data["values"][key]["maxAge"] = age
    path = root / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def backdate_local(store_db: Path, when: datetime) -> None:
    """Make every version of the embedded store look written at `when` (the creation
    date is not sealed: it is metadata, as a store's version dates are)."""
    with sqlite3.connect(store_db) as db:
        db.execute("UPDATE versions SET created=?", (when.astimezone(UTC).isoformat(),))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config of the user
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return root
