"""Fixed configurations and a CLI runner for the identity tests (tests/policy)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deparrow_secrets.cli import main
from deparrow_secrets.config.settings import Config
from deparrow_secrets.providers import load_config


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "deparrow-secrets.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load() -> Callable[[Path], Config]:
    return lambda path: load_config(path)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `deparrow-secrets ARGS` in-process; exit code, stdout, stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


# --------------------------------------------------------------------------- Vault


@pytest.fixture
def bao(openbao_fresh, monkeypatch):  # type: ignore[no-untyped-def]
    """A fresh OpenBao with deparrow/production and deparrow/staging; the tool's own
    credentials (root) in VAULT_ADDR / VAULT_TOKEN, nothing else of VAULT_* / BAO_*."""
    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", openbao_fresh.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao_fresh.token)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    root = openbao_fresh.client()
    root.secrets.kv.v2.create_or_update_secret("deparrow/production", {"K": "prod-value"})
    root.secrets.kv.v2.create_or_update_secret("deparrow/staging", {"K": "staging-value"})
    return openbao_fresh


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A CA certificate standing in for the cluster's (`--kubernetes-ca-cert`)."""
    import trustme

    path = tmp_path / "cluster-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path
