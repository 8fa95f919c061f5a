"""Where each catalog value lives in a store: remote object (`key`) and `property`.

This is the guide's remote layout, shared by the stores and by the ExternalSecrets
the renderer writes, so the two can never disagree:

- local, vault: one object `deparrow/<env>` (or the configured path), one property per key
- aws: `<prefix>/<group>` JSON objects, property from the catalog (default: the key)
- azure: one secret per key, underscores as dashes
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from deparrow_secrets.config.catalog import Catalog, CatalogValue
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import CatalogError
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE, SecretStore

AZURE_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")


@dataclass(frozen=True)
class RemoteRef:
    key: str
    property: str  # WHOLE for a single-value object


@dataclass(frozen=True)
class KeyRead:
    """One key as read from its store: value (None if absent) and its object's version."""

    value: SecretValue | None
    version: str | None


def azure_name(key: str) -> str:
    """Key Vault allows only 0-9a-zA-Z- in names: underscores become dashes."""
    return key.replace("_", "-")


def key_from_azure_name(name: str, catalog_keys: Iterable[str]) -> str | None:
    for key in catalog_keys:
        if azure_name(key) == name:
            return key
    return None


class Layout:
    def __init__(self, catalog: Catalog, env: EnvironmentConfig) -> None:
        self.catalog = catalog
        self.env = env
        self.refs: dict[str, RemoteRef] = {}
        for value in catalog.values.values():
            self.refs[value.name] = self._ref(value)
        if env.provider == "azure":
            self._check_azure_names()

    def _ref(self, value: CatalogValue) -> RemoteRef:
        provider = self.env.provider
        if provider == "aws":
            return RemoteRef(f"{self.env.remote_path}/{value.group}", value.property or value.name)
        if provider == "azure":
            return RemoteRef(azure_name(value.name), WHOLE)
        return RemoteRef(self.env.remote_path, value.name)

    def _check_azure_names(self) -> None:
        seen: dict[str, str] = {}
        for key, ref in self.refs.items():
            if not AZURE_NAME.fullmatch(ref.key):
                raise CatalogError(
                    f"'{key}' cannot be a Key Vault secret name (only 0-9, a-z, A-Z and -)",
                    file=self.catalog.source, key_path=f"values.{key}",
                    hint="rename the key: Key Vault names allow letters, digits and dashes")
            folded = ref.key.lower()  # Key Vault names are case-insensitive
            if folded in seen:
                raise CatalogError(
                    f"'{key}' and '{seen[folded]}' map to the same Key Vault secret "
                    f"'{ref.key}'", file=self.catalog.source, key_path=f"values.{key}",
                    hint="rename one of them; Key Vault names are case-insensitive and "
                    "underscores become dashes")
            seen[folded] = key

    def ref(self, key: str) -> RemoteRef:
        return self.refs[key]

    def needed(self) -> list[CatalogValue]:
        return self.catalog.needed(self.env.ha, self.env.optional_keys)

    def objects(self, keys: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Remote object name -> the catalog keys it holds (catalog order)."""
        wanted = set(self.refs if keys is None else keys)
        out: dict[str, list[str]] = {}
        for key, ref in self.refs.items():
            if key in wanted:
                out.setdefault(ref.key, []).append(key)
        return out

    def read(self, store: SecretStore, keys: Iterable[str] | None = None) -> dict[str, KeyRead]:
        """The values of `keys` (default: all), reading each remote object once."""
        out: dict[str, KeyRead] = {}
        for remote_key, held in self.objects(keys).items():
            snap = store.read(remote_key)
            for key in held:
                value = snap.values.get(self.refs[key].property) if snap else None
                out[key] = KeyRead(value, snap.version if snap else None)
        return out
