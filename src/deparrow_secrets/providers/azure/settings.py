"""`store:` of an environment on Azure Key Vault, and Key Vault's naming rules.

One Key Vault secret per catalog key: its name is the key with underscores as dashes
(`DEPARROW_JWT_SECRET` -> `DEPARROW-JWT-SECRET`), its only property WHOLE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from deparrow_secrets.config.catalog import Catalog, CatalogValue
from deparrow_secrets.config.settings import EnvironmentConfig, RemoteRef, StoreSettings
from deparrow_secrets.config.yamlfile import Checker, KeyPath
from deparrow_secrets.record import record
from deparrow_secrets.stores.interface import WHOLE

AUTH = ["workload-identity", "managed-identity"]
KEYS = ["provider", "vaultUrl", "tenantId", "auth", "clientId", "identityId"]
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
URL_ENV = "AZURE_KEYVAULT_URL"
"""The tool's own vault URL: it overrides `vaultUrl`, which stays what ESO uses."""
# Key Vault data-plane DNS suffixes of the public and sovereign clouds.
VAULT_DOMAINS = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
                 ".vault.microsoftazure.de", ".managedhsm.azure.net")


def vault_host(url: str) -> str:
    """The host of a vault URL, lower case (`""` when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def vault_name(url: str) -> str:
    """`https://deparrow-kv.vault.azure.net` -> `deparrow-kv` (any Azure cloud); the whole
    host for an address outside Key Vault's domains (an emulator, the test fake)."""
    host = vault_host(url) or url
    return host.split(".")[0] if host.endswith(VAULT_DOMAINS) else host


def same_vault_key(url: str | None) -> str:
    """What two vault URLs that name the same vault have in common."""
    return (url or "").rstrip("/").lower()


def secret_name(key: str) -> str:
    """Key Vault allows only 0-9a-zA-Z- in names: underscores become dashes."""
    return key.replace("_", "-")


def key_of_secret_name(name: str, catalog_keys: Iterable[str]) -> str | None:
    for key in catalog_keys:
        if secret_name(key) == name:
            return key
    return None


@record
class AzureSettings(StoreSettings):
    provider: ClassVar[str] = "azure"

    vault_url: str | None = None
    tenant_id: str | None = None
    auth: str = "workload-identity"
    client_id: str | None = None
    identity_id: str | None = None

    def remote_ref(self, environment: str, value: CatalogValue) -> RemoteRef:
        return RemoteRef(secret_name(value.name), WHOLE)

    def check_catalog(self, catalog: Catalog, environment: str) -> None:
        """Every key must map to its own valid Key Vault secret name."""
        where = f"environment {environment} keeps one Key Vault secret per key"
        seen: dict[str, str] = {}
        for key in catalog.values:
            name = secret_name(key)
            if not SECRET_NAME.fullmatch(name):
                raise catalog.error(("values", key), f"'{key}' cannot be a Key Vault secret "
                                    "name (only 0-9, a-z, A-Z and -)",
                                    hint=f"{where}: rename the key to letters, digits, _ and -")
            folded = name.lower()  # Key Vault names are case-insensitive
            if folded in seen:
                raise catalog.error(("values", key), f"'{key}' and '{seen[folded]}' map to the "
                                    f"same Key Vault secret '{name}'",
                                    hint=f"{where}: rename one of them (names are "
                                    "case-insensitive and underscores become dashes)")
            seen[folded] = key

    def location(self, environment: str) -> tuple[str, ...]:
        return ("azure", same_vault_key(self.vault_url))


def parse(c: Checker, path: KeyPath, m: Mapping[str, Any]) -> AzureSettings:
    c.mapping(path, m, KEYS, required=("vaultUrl", "tenantId"))

    def s(key: str, pattern: str | None = None, what: str | None = None) -> str | None:
        return None if m.get(key) is None else \
            c.string((*path, key), m[key], pattern=pattern, what=what)

    auth = c.choice((*path, "auth"), m.get("auth", "workload-identity"), AUTH)
    cfg = AzureSettings(vault_url=s("vaultUrl", r"https://[^\s/]+/?", "Key Vault URL"),
                        tenant_id=s("tenantId"), auth=auth, client_id=s("clientId"),
                        identity_id=s("identityId"))
    if auth == "workload-identity" and cfg.identity_id:
        raise c.fail((*path, "identityId"), "identityId goes with `auth: managed-identity`",
                     hint="use clientId for workload identity")
    if auth == "managed-identity" and cfg.client_id:
        raise c.fail((*path, "clientId"), "clientId goes with `auth: workload-identity`",
                     hint="use identityId for managed identity")
    if cfg.identity_id and not re.fullmatch(GUID, cfg.identity_id):
        # ESO passes identityId as a client id to both of its Azure SDK paths
        # (providers/v1/azure/keyvault/keyvault.go); a resource id never authenticates.
        raise c.fail((*path, "identityId"), "identityId must be the managed identity's client "
                     "id (a GUID), not a resource id or name",
                     hint="az identity show --name <IDENTITY> --resource-group <GROUP> "
                     "--query clientId --output tsv")
    return cfg


def settings_of(env: EnvironmentConfig) -> AzureSettings:
    if not isinstance(env.store, AzureSettings):
        raise TypeError(f"environment {env.name} is not on Azure Key Vault")
    return env.store
