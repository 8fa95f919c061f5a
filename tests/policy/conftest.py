"""Fixed configurations and fixtures of the identity tests (tests/policy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deparrow_secrets.config.settings import Config
from deparrow_secrets.providers import load_config
from helpers import Run


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
def run_cli(cli: Callable[..., Run]) -> Callable[..., Run]:
    """`deparrow-secrets ARGS` in this process: the shared `cli` runner of tests/conftest.py,
    under the name these tests use."""
    return cli


# --------------------------------------------------------------------------- Vault


@pytest.fixture
def bao(openbao_fresh, vault_env):  # type: ignore[no-untyped-def]
    """A fresh OpenBao with deparrow/production and deparrow/staging; the tool's own
    credentials (root) in VAULT_ADDR / VAULT_TOKEN, nothing else of the shell's (vault_env)."""
    vault_env.setenv("VAULT_ADDR", openbao_fresh.addr)
    vault_env.setenv("VAULT_TOKEN", openbao_fresh.token)
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
