"""Where each catalog value lives in a store: remote object (`key`) and `property`.

This is the guide's remote layout, shared by the stores and by the ExternalSecrets
the renderer writes, so the two can never disagree. Each provider's settings decide
it (`StoreSettings.remote_ref`):

- local, vault: one object `deparrow/<env>` (or the configured path), one property per key
- aws: `<prefix>/<group>` JSON objects, property from the catalog (default: the key)
- azure: one secret per key, underscores as dashes
"""

from __future__ import annotations

from collections.abc import Iterable

from deparrow_secrets.config.catalog import Catalog, CatalogValue
from deparrow_secrets.config.settings import EnvironmentConfig, RemoteRef
from deparrow_secrets.record import record
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore

__all__ = ["KeyRead", "Layout", "RemoteRef"]


@record
class KeyRead:
    """One key as read from its store: value (None if absent) and its object's version."""

    value: SecretValue | None
    version: str | None


class Layout:
    def __init__(self, catalog: Catalog, env: EnvironmentConfig) -> None:
        self.catalog = catalog
        self.env = env
        env.store.check_catalog(catalog, env.name)
        self.refs: dict[str, RemoteRef] = {
            value.name: env.store.remote_ref(env.name, value)
            for value in catalog.values.values()}

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
