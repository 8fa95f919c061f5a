"""Odd version ids against the remote stores: bad input or not found, never exit 70
(issue 9, point 16)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import write_config


@pytest.fixture(params=["vault", "aws", "azure"])
def remote(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "5")
    monkeypatch.chdir(tmp_path)
    if request.param == "vault":
        openbao = request.getfixturevalue("openbao")
        monkeypatch.setenv("VAULT_ADDR", openbao.addr)
        monkeypatch.setenv("VAULT_TOKEN", openbao.token)
        store_yaml = (f"{{provider: vault, server: '{openbao.addr}', "
                      f"path: deparrow-{secrets.token_hex(4)}/production}}")
    elif request.param == "aws":
        request.getfixturevalue("aws_env")
        store_yaml = "{provider: aws, region: us-east-1, accountId: '123456789012'}"
    else:
        import deparrow_secrets.providers.azure.store as azure_store
        from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential

        fake = FakeKeyVault()
        fake.__enter__()
        request.addfinalizer(lambda: fake.__exit__(None, None, None))
        monkeypatch.setenv("AZURE_KEYVAULT_URL", fake.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        monkeypatch.setattr(azure_store, "_default_credential", StaticTokenCredential)
        store_yaml = ("{provider: azure, vaultUrl: 'https://deparrow-kv.vault.azure.net', "
                       "tenantId: '00000000-0000-0000-0000-000000000000', clientId: 'app'}")
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n"
                 f"  production:\n    store: {store_yaml}\n")
    yield request.param


@pytest.mark.parametrize("version", ["9" * 40, "99999999999", "2147483648", "1e9",
                                     "ffffffffffffffffffffffffffffffff", "x" * 100])
def test_odd_versions_are_not_a_crash(remote: str, version: str, cli) -> None:
    assert cli("provision", "--env", "production").code == 0
    for args in (["get", "REDIS_PASSWORD", "--env", "production", "--version", version],
                 ["rollback", "REDIS_PASSWORD", "--env", "production", "--to", version]):
        run = cli(*args)
        assert run.code in (1, 2), (remote, run.text)
        assert "internal error" not in run.err
