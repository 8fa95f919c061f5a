"""The conformance suite against a real AWS account, Key Vault or Vault, when asked to.

Skipped unless the variables below name a target: the doubles model what the services
document, and only a real account confirms what they leave open (the error of a losing
stage move on AWS, how stale Secrets Manager reads can be, whether Key Vault's 429 carries
Retry-After). Use a dedicated account, vault or mount: every object the suite writes is
under `deparrow/conformance/` (AWS, Vault) or named `conformance-*` (Key Vault), and is
deleted at the end (AWS without recovery, Key Vault deleted and purged if allowed, Vault
metadata and all versions).

    DEPARROW_TEST_AWS=1 AWS_PROFILE=... AWS_REGION=... pytest tests/stores/test_real_accounts.py
    DEPARROW_TEST_AZURE_VAULT_URL=https://<vault>.vault.azure.net pytest ...   (az login)
    DEPARROW_TEST_VAULT_ADDR=https://... VAULT_TOKEN=... pytest ...  (DEPARROW_TEST_VAULT_MOUNT)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

from deparrow_secrets.stores.interface import SecretStore
from deparrow_secrets.testing import StoreConformance, value

AWS = os.environ.get("DEPARROW_TEST_AWS") == "1"
AZURE_URL = os.environ.get("DEPARROW_TEST_AZURE_VAULT_URL", "")
VAULT_ADDR = os.environ.get("DEPARROW_TEST_VAULT_ADDR", "")


def _clean(store: SecretStore, prefix: str, remove: object) -> None:
    for name in store.list_objects(prefix):
        with contextlib.suppress(Exception):
            remove(name)  # type: ignore[operator]


# --------------------------------------------------------------------------- AWS


@pytest.mark.skipif(not AWS, reason="set DEPARROW_TEST_AWS=1 (and AWS credentials) to run")
class TestRealAws(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        from deparrow_secrets.providers.aws.store import AwsStore

        with AwsStore("conformance", os.environ.get("AWS_REGION")) as s:
            yield s
            _clean(s, "deparrow/conformance/", lambda n: s.client.delete_secret(
                SecretId=n, ForceDeleteWithoutRecovery=True))

    @pytest.fixture
    def second_store(self) -> Iterator[SecretStore]:
        from deparrow_secrets.providers.aws.store import AwsStore

        with AwsStore("conformance", os.environ.get("AWS_REGION")) as s:
            yield s

    def test_losing_stage_move_error_code(self, store: SecretStore) -> None:
        """What AWS answers when RemoveFromVersionId no longer holds AWSCURRENT (the
        documentation is silent; the store must treat it as a lost move whatever it is)."""
        from botocore.exceptions import ClientError

        from deparrow_secrets.providers.aws.store import _MOVE_REFUSED, CURRENT

        key = self.object_name(store, "move-code")
        v1 = store.write(key, {"K": value()}, None)
        store.write(key, {"K": value()}, v1)
        client = store.client  # type: ignore[attr-defined]
        stray = str(uuid.uuid4())
        client.put_secret_value(SecretId=key, SecretString='{"K": "x"}',
                                ClientRequestToken=stray, VersionStages=["DEPARROW_PENDING"])
        with pytest.raises(ClientError) as info:
            client.update_secret_version_stage(SecretId=key, VersionStage=CURRENT,
                                               MoveToVersionId=stray, RemoveFromVersionId=v1)
        code = info.value.response["Error"]["Code"]
        print(f"AWS answers a losing stage move with {code}")  # noqa: T201 - the finding
        assert code in _MOVE_REFUSED


# --------------------------------------------------------------------------- Azure


@pytest.mark.skipif(not AZURE_URL, reason="set DEPARROW_TEST_AZURE_VAULT_URL to run")
class TestRealKeyVault(StoreConformance):
    def _connect(self) -> SecretStore:
        from deparrow_secrets.providers.azure.store import AzureStore, _default_credential

        return AzureStore(AZURE_URL, _default_credential(), environment="conformance",
                          owns_credential=True)

    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with self._connect() as s:
            yield s
            client = s._client  # type: ignore[attr-defined]

            def remove(name: str) -> None:
                client.begin_delete_secret(name).wait()
                with contextlib.suppress(Exception):
                    client.purge_deleted_secret(name)

            _clean(s, "conformance-", remove)

    @pytest.fixture
    def second_store(self) -> Iterator[SecretStore]:
        with self._connect() as s:
            yield s


# --------------------------------------------------------------------------- Vault


@pytest.mark.skipif(not VAULT_ADDR, reason="set DEPARROW_TEST_VAULT_ADDR and VAULT_TOKEN")
class TestRealVault(StoreConformance):
    def _connect(self) -> SecretStore:
        from deparrow_secrets.providers.vault.connection import (
            VaultConnection,
            credentials_from_env,
        )
        from deparrow_secrets.providers.vault.store import VaultStore

        token, login, source = credentials_from_env()
        return VaultStore(VaultConnection(VAULT_ADDR, token=token, login=login,
                                          token_source=source, environment="conformance"),
                          mount=os.environ.get("DEPARROW_TEST_VAULT_MOUNT", "secret"))

    @pytest.fixture
    def store(self) -> Iterator[SecretStore]:
        with self._connect() as s:
            yield s
            client = s.admin_client()  # type: ignore[attr-defined]
            mount = s.mount  # type: ignore[attr-defined]
            _clean(s, "deparrow/conformance/", lambda n: client.secrets.kv.v2
                   .delete_metadata_and_all_versions(n, mount_point=mount))

    @pytest.fixture
    def second_store(self) -> Iterator[SecretStore]:
        with self._connect() as s:
            yield s

