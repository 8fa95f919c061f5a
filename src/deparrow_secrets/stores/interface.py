"""The one interface every secret store implements.

A store holds *remote objects* (ESO calls their name `remoteRef.key`): a Vault KV v2
path, an AWS secret, an Azure Key Vault secret, a row group in the embedded file.
Each object holds one or more *properties* (ESO's `remoteRef.property`); an object
that is a single value (Azure) has the one property `WHOLE`. Objects are versioned
and written whole with check-and-set on the version, so a group of values is
written completely or not at all, and a concurrent writer gets a ConflictError
instead of silently losing data.

Which catalog key lives in which object and property is decided by
`deparrow_secrets.stores.layout`, not by the stores.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from deparrow_secrets.record import field, record
from deparrow_secrets.secret import SecretValue

if TYPE_CHECKING:
    from datetime import datetime

    from deparrow_secrets.config.settings import Config, EnvironmentConfig

WHOLE = ""
"""Property name of an object that is one value (no JSON properties)."""


@record
class Snapshot:
    """One version of a remote object as read: its properties and version id."""

    key: str
    version: str
    values: Mapping[str, SecretValue]


@record
class VersionInfo:
    version: str
    created: datetime | None
    current: bool
    # Store-specific labels (AWS stages such as AWSPREVIOUS, "deleted", "destroyed").
    labels: tuple[str, ...] = field(default_factory=tuple)


@record
class Health:
    ok: bool
    detail: str


class SecretStore(abc.ABC):
    """What every store implements; each lives in its provider's package
    (`providers/<name>/store.py`), which the registry (`deparrow_secrets.providers`)
    finds by `provider`."""

    provider: ClassVar[str]
    # True where every object is one value (Azure): objects hold only the WHOLE property.
    single_value: ClassVar[bool] = False

    environment: str

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> SecretStore:
        """Connect to the store that `env` names, with the tool's own credentials."""

    @abc.abstractmethod
    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        """The current (or the named) version of object `key`; None if it does not exist.

        A named version that does not exist raises NotFoundError.
        """

    def read_value(self, key: str, prop: str) -> SecretValue | None:
        snap = self.read(key)
        if snap is None:
            return None
        return snap.values.get(prop)

    @abc.abstractmethod
    def write(
        self, key: str, values: Mapping[str, SecretValue], expected_version: str | None
    ) -> str:
        """Write `values` as the new whole content of object `key`; return the new version.

        `expected_version` is the version the caller read: None means the object must
        not exist yet. A mismatch raises ConflictError and writes nothing.
        """

    @abc.abstractmethod
    def list_objects(self, prefix: str = "") -> list[str]:
        """Names of existing objects that start with `prefix`, sorted."""

    @abc.abstractmethod
    def history(self, key: str) -> list[VersionInfo]:
        """Versions of object `key`, oldest first; empty if it does not exist."""

    def rollback(self, key: str, version: str | None = None) -> str:
        """Make `version` (default: the one before the current) current again.

        Returns the version id that is current afterwards. The default writes the old
        content as a new version with check-and-set; stores with native rollback
        (AWS stages) override it.
        """
        from deparrow_secrets.errors import NotFoundError

        current = self.read(key)
        if current is None:
            raise NotFoundError("nothing to roll back: the object does not exist",
                                environment=self.environment, provider=self.provider,
                                remote_key=key)
        if version is None:
            version = self.previous_version(key)
        old = self.read(key, version)
        if old is None:
            raise NotFoundError(f"version {version} does not exist",
                                environment=self.environment, provider=self.provider,
                                remote_key=key)
        return self.write(key, old.values, current.version)

    def previous_version(self, key: str) -> str:
        from deparrow_secrets.errors import NotFoundError

        versions = self.history(key)
        idx = next((i for i, v in enumerate(versions) if v.current), len(versions) - 1)
        if idx <= 0:
            raise NotFoundError("no previous version to roll back to",
                                environment=self.environment, provider=self.provider,
                                remote_key=key)
        return versions[idx - 1].version

    def recover(self, key: str) -> str:
        """Bring back soft-deleted object `key`; only stores with soft delete have any."""
        from deparrow_secrets.errors import NotFoundError

        raise NotFoundError(f"{self.provider} stores have no soft-deleted objects",
                            environment=self.environment, provider=self.provider,
                            remote_key=key)

    @abc.abstractmethod
    def health(self) -> Health:
        """Reachability and authentication, without reading any secret value."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""

    def __enter__(self) -> SecretStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
