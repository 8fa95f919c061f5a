"""Check-and-set edges of the remote stores that the conformance suite does not reach:
a lost race is never taken for one's own retried write, and a create over an existing
secret says so (issue 9, the mutation check over the stores' check-and-set)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import ConflictError
from deparrow_secrets.providers import open_store
from deparrow_secrets.providers.vault.settings import VaultSettings
from deparrow_secrets.providers.vault.store import VaultStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE
from deparrow_secrets.stores.retry import RetryPolicy


def value() -> SecretValue:
    return SecretValue(secrets.token_urlsafe(24))


@pytest.fixture
def vault_store(bao_env, tmp_path: Path) -> Iterator[VaultStore]:
    openbao = bao_env
    env = EnvironmentConfig("staging", VaultSettings(server=openbao.addr))
    config = Config(root=tmp_path, file=None, environments={"staging": env})
    store = open_store(config, env)
    assert isinstance(store, VaultStore)
    with store:
        yield store


def test_vault_a_write_two_versions_behind_conflicts_even_with_equal_content(
        vault_store: VaultStore) -> None:
    """The same content written by someone else since: still a conflict, not a success
    mistaken for one's own first attempt whose response was lost."""
    key = f"deparrow/test-cas-{secrets.token_hex(4)}"
    content = {"K": value()}
    assert vault_store.write(key, {"K": value()}, None) == "1"
    assert vault_store.write(key, {"K": value()}, "1") == "2"
    assert vault_store.write(key, content, "2") == "3"
    with pytest.raises(ConflictError, match="now version 3, expected 1"):
        vault_store.write(key, content, "1")
    snap = vault_store.read(key)
    assert snap is not None and snap.version == "3"


def test_azure_creating_an_existing_secret_says_it_exists() -> None:
    from deparrow_secrets.providers.azure.store import AzureStore
    from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential

    with FakeKeyVault(vault_name="deparrow-kv", version_order="id") as fake, \
            AzureStore(fake.url, StaticTokenCredential(), environment="staging",
                       policy=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05),
                       connection_verify=fake.ca_path, polling_interval=0.02) as store:
        name = f"DEPARROW-CAS-{secrets.token_hex(4)}"
        first = store.write(name, {WHOLE: value()}, None)
        with pytest.raises(ConflictError, match=f"already exists \\(version {first}\\)"):
            store.write(name, {WHOLE: value()}, None)
        snap = store.read(name)
        assert snap is not None and snap.version == first
