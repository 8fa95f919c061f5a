"""`deparrow_secrets.testing`: the conformance suite as a provider outside this repository
runs it, from its own test tree (no conftest, helpers or servers of ours on the path)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import deparrow_secrets
from deparrow_secrets.testing import StoreConformance
from helpers import clean_env

THIRD_PARTY_TEST = textwrap.dedent('''
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

    from deparrow_secrets.providers.local.store import LocalStore
    from deparrow_secrets.testing import StoreConformance


    @pytest.fixture
    def path(tmp_path: Path) -> Path:
        return tmp_path / "store.db"


    class TestTheirStore(StoreConformance):
        @pytest.fixture
        def store(self, path: Path) -> Iterator[LocalStore]:
            with LocalStore(path) as store:
                yield store

        @pytest.fixture
        def second_store(self, path: Path) -> Iterator[LocalStore]:
            with LocalStore(path) as store:
                yield store
''')


@pytest.mark.slow  # pytest in a process of its own: 2 s
def test_a_provider_elsewhere_runs_the_whole_suite(tmp_path: Path) -> None:
    (tmp_path / "test_their_store.py").write_text(THIRD_PARTY_TEST, encoding="utf-8")
    # the package, wherever it is installed from, and nothing of tests/
    env = clean_env(PYTHONPATH=str(Path(deparrow_secrets.__file__).resolve().parents[1]))
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    names = [n for n in dir(StoreConformance) if n.startswith("test_")]
    assert len(names) >= 10
    assert f"{len(names)} passed" in done.stdout, done.stdout
