"""The connection to one Key Vault: URL, credential, SecretClient, retries, time bound.

Every SDK call of the store goes through `KeyVaultConnection.call`: the retry loop of
`stores/retry.py` within the operation's deadline (the SDK's own retries are off), and
`errors.KeyVaultErrors` for whatever is left. The calls hand back plain metadata
(`ordering.VersionMeta`) or the SDK's secret objects; SDK exceptions never leave here
untranslated, and are never chained (their text can quote requests).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from deparrow_secrets.deps import require
from deparrow_secrets.errors import ConfigError, StoreError
from deparrow_secrets.providers.azure.errors import (
    KeyVaultErrors,
    is_secret_disabled,
    is_transient,
    throttled,
)
from deparrow_secrets.providers.azure.ordering import LATEST_DISABLED, VersionMeta
from deparrow_secrets.providers.azure.settings import (
    URL_ENV,
    VAULT_DOMAINS,
    settings_of,
    vault_host,
)
from deparrow_secrets.stores.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import EnvironmentConfig

T = TypeVar("T")

# The test fake's own addresses: only there may the SDK skip checking that the challenge
# names the vault's domain (a name such as `localhost` can be answered by anything).
LOOPBACK = ("127.0.0.1", "::1", "[::1]")
# Resources a Key Vault challenge may name; a token is never requested for anything else.
KEY_VAULT_RESOURCES = frozenset(d.lstrip(".") for d in VAULT_DOMAINS)
VERSIONS_PAGE = 25


def vault_url_of(env: EnvironmentConfig) -> str:
    """The URL the tool talks to: `$AZURE_KEYVAULT_URL`, else `vaultUrl`; HTTPS only."""
    url = os.environ.get(URL_ENV) or settings_of(env).vault_url
    if not url:
        raise ConfigError(f"environment {env.name}: the azure store needs a vault URL",
                          key_path=f"environments.{env.name}.store.vaultUrl",
                          hint=f"set vaultUrl in the configuration, or ${URL_ENV}")
    if not url.startswith("https://"):
        where = f"${URL_ENV}" if os.environ.get(URL_ENV) else \
            f"environments.{env.name}.store.vaultUrl"
        raise ConfigError(f"{where}: the Key Vault URL must start with https:// "
                          f"(got {url!r})", hint="Key Vault is only served over HTTPS")
    return url


def default_credential() -> Any:
    """The tool's credential: DefaultAzureCredential (environment service principal,
    workload identity, managed identity, `az login`, ...)."""
    identity = require("azure.identity", "azure")
    return identity.DefaultAzureCredential()


class KeyVaultTokensOnly:
    """The credential as the SDK sees it: it hands out tokens for Key Vault's own resource
    only, so a server that challenges for another audience (Azure Resource Manager, Graph,
    ...) gets no token, whatever its address."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    @staticmethod
    def _check(scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            if vault_host(scope) not in KEY_VAULT_RESOURCES:
                raise ValueError("the challenge names another domain than Key Vault's")

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self._check(scopes)
        return self._credential.get_token(*scopes, **kwargs)

    def close(self) -> None:
        """The connection closes the credential it owns itself."""


class KeyVaultTokenInfoOnly(KeyVaultTokensOnly):
    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        self._check(scopes)
        return self._credential.get_token_info(*scopes, options=options)


def version_of(props: Any) -> VersionMeta:
    """The metadata of a version from the SDK's SecretProperties."""
    created_on = props.created_on
    return VersionMeta(
        id=str(props.version), created=int(created_on.timestamp()) if created_on else 0,
        created_on=created_on, enabled=props.enabled is not False, tags=dict(props.tags or {}))


class KeyVaultConnection:
    """One vault's SecretClient behind the retry loop and the error translator."""

    def __init__(self, vault_url: str, credential: Any, errors: KeyVaultErrors,
                 policy: RetryPolicy, *, connection_verify: str | bool | None = None,
                 owns_credential: bool = False, **client_kwargs: Any) -> None:
        secrets_mod = require("azure.keyvault.secrets", "azure")
        self.vault_url = vault_url
        self.errors = errors
        self.policy = policy
        self.credential = credential
        self._owns_credential = owns_credential
        kwargs: dict[str, Any] = {
            # Our retry loop decides; the SDK must not multiply it.
            "retry_total": 0,
            "connection_timeout": policy.timeout,
            "read_timeout": policy.timeout,
            # The challenge names vault.azure.net: only a loopback emulator or test fake
            # may skip checking it against the vault's own domain.
            "verify_challenge_resource": vault_host(vault_url) not in LOOPBACK,
        }
        if connection_verify is not None:
            kwargs["connection_verify"] = connection_verify
        kwargs.update(client_kwargs)
        guarded = (KeyVaultTokenInfoOnly if hasattr(credential, "get_token_info")
                   else KeyVaultTokensOnly)(credential)
        self.client = secrets_mod.SecretClient(vault_url, guarded, **kwargs)

    def call(self, fn: Callable[[], T], key: str | None, doing: str) -> T:
        """`fn()` with retries of transient faults within the time bound, SDK errors
        translated (`doing` names the operation in the message)."""
        try:
            return call_with_retry(fn, is_transient, self.policy, self.errors.give_up(key),
                                   throttled=throttled,
                                   waiting_for=f"Key Vault at {self.vault_url}")
        except StoreError:
            raise
        except Exception as exc:
            from azure.core.exceptions import AzureError

            if isinstance(exc, (AzureError, ValueError)):
                raise self.errors.translate(exc, key, doing) from None
            raise

    def get(self, key: str, version: str | None = None) -> Any | None:
        """get_secret, or None on 404."""
        from azure.core.exceptions import ResourceNotFoundError

        def call() -> Any | None:
            try:
                return self.client.get_secret(key, version)
            except ResourceNotFoundError:
                return None

        return self.call(call, key, "read")

    def latest(self, key: str) -> tuple[str | None, Any | None]:
        """Id and properties of the latest version (None if the secret does not exist).

        A disabled latest version still counts as the latest (Key Vault refuses to read
        it): its id is then `ordering.LATEST_DISABLED`, to be found from the listing.
        """
        from azure.core.exceptions import ResourceNotFoundError

        def call() -> tuple[str | None, Any | None]:
            try:
                secret = self.client.get_secret(key)
            except ResourceNotFoundError:
                return None, None
            except Exception as exc:
                if is_secret_disabled(exc):
                    return LATEST_DISABLED, None
                raise
            return str(secret.properties.version), secret.properties

        return self.call(call, key, "read")

    def versions(self, key: str) -> dict[str, VersionMeta]:
        """Metadata of every version of `key` (none if it does not exist)."""
        from azure.core.exceptions import ResourceNotFoundError

        def call() -> dict[str, VersionMeta]:
            try:
                return {v.id: v for v in map(version_of,
                                             self.client.list_properties_of_secret_versions(
                                                 key, max_page_size=VERSIONS_PAGE))}
            except ResourceNotFoundError:
                return {}

        return self.call(call, key, "list versions")

    def put(self, key: str, value: str, tags: dict[str, str],
            content_type: str | None) -> VersionMeta:
        def call() -> VersionMeta:
            secret = self.client.set_secret(key, value, tags=tags, content_type=content_type)
            return version_of(secret.properties)

        return self.call(call, key, "write")

    def tag(self, key: str, version: str, tags: dict[str, str]) -> None:
        self.call(lambda: self.client.update_secret_properties(key, version, tags=tags),
                  key, "tag")

    def names(self) -> list[str]:
        """Names of the secrets, without certificate-backed ones (they are not ours)."""
        def call() -> list[str]:
            return [str(p.name) for p in self.client.list_properties_of_secrets()
                    if not p.managed]

        return self.call(call, None, "list secrets")

    def probe(self) -> None:
        """One page of one secret: reachable, authenticated, allowed to list."""
        def call() -> int:
            pages = self.client.list_properties_of_secrets(max_page_size=1).by_page()
            return len(list(next(pages, [])))

        self.call(call, None, "list secrets")

    def deleted_names(self) -> list[str]:
        def call() -> list[str]:
            return [str(d.name) for d in self.client.list_deleted_secrets()]

        return self.call(call, None, "list deleted secrets")

    def recover(self, key: str, polling_interval: float, timeout: float
                ) -> tuple[bool, str | None]:
        """Start recovering soft-deleted `key` and wait up to `timeout` seconds:
        (whether it was soft-deleted, its current version once done or None if not yet)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        def start() -> Any:
            try:
                return self.client.begin_recover_deleted_secret(
                    key, _polling_interval=polling_interval)
            except ResourceNotFoundError:
                return None

        poller = self.call(start, key, "recover")
        if poller is None:
            return False, None
        try:
            poller.wait(timeout=timeout)
        except AzureError as exc:
            raise self.errors.translate(exc, key, "recover") from None
        if not poller.done():
            return True, None
        return True, str(poller.result().version)

    def close(self) -> None:
        self.client.close()
        if self._owns_credential and hasattr(self.credential, "close"):
            self.credential.close()
