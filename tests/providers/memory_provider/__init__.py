"""A fifth provider that exists only in the tests: values in this process's memory,
read by ESO's `fake` provider. It is registered by the test that uses it
(`providers.register(PROVIDER)`) and changes nothing outside this package, which is
the point: a provider is one package plus one registry entry.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from deparrow_secrets.config.settings import Config, EnvironmentConfig, StoreSettings
from deparrow_secrets.config.yamlfile import Checker, KeyPath
from deparrow_secrets.errors import ConflictError, InputError, NotFoundError
from deparrow_secrets.providers.identity_plan import Options, Piece, Plan, SetupReport
from deparrow_secrets.providers.interface import EsoProvider, IdentityOption
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo


@dataclass(frozen=True)
class MemorySettings(StoreSettings):
    provider: ClassVar[str] = "memory"

    bucket: str = "default"

    def location(self, environment: str) -> tuple[str, ...]:
        return ("memory", self.bucket, self.remote_path(environment))


# bucket -> object name -> versions (version id, values, created), oldest first
BUCKETS: dict[str, dict[str, list[tuple[str, dict[str, SecretValue], datetime]]]] = {}
_LOCK = threading.Lock()


class MemoryStore(SecretStore):
    provider = "memory"

    def __init__(self, bucket: str, environment: str = "test") -> None:
        self.environment = environment
        with _LOCK:
            self._objects = BUCKETS.setdefault(bucket, {})

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> MemoryStore:
        assert isinstance(env.store, MemorySettings)
        return cls(env.store.bucket, env.name)

    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        with _LOCK:
            versions = self._objects.get(key)
            if not versions:
                if version is not None:
                    raise NotFoundError(f"version {version} does not exist")
                return None
            if version is None:
                found = versions[-1]
            else:
                match = [v for v in versions if v[0] == version]
                if not match:
                    raise NotFoundError(f"version {version} does not exist")
                found = match[0]
            return Snapshot(key, found[0], dict(found[1]))

    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        with _LOCK:
            versions = self._objects.setdefault(key, [])
            current = versions[-1][0] if versions else None
            if current != expected_version:
                raise ConflictError(f"{key} changed since it was read")
            new = str(len(versions) + 1)
            versions.append((new, dict(values), datetime.now(UTC)))
            return new

    def list_objects(self, prefix: str = "") -> list[str]:
        with _LOCK:
            return sorted(k for k, v in self._objects.items() if v and k.startswith(prefix))

    def history(self, key: str) -> list[VersionInfo]:
        with _LOCK:
            versions = self._objects.get(key, [])
            return [VersionInfo(v, created, i == len(versions) - 1)
                    for i, (v, _, created) in enumerate(versions)]

    def health(self) -> Health:
        return Health(True, "in memory")

    def __repr__(self) -> str:
        return f"MemoryStore(environment={self.environment!r})"


class MemoryProvider(EsoProvider):
    """ESO's defaults (`EsoProvider`) but for what the memory store does its own way."""

    name = "memory"
    identity_options: tuple[IdentityOption, ...] = (
        IdentityOption("reader", "--reader", "NAME", "who may read the bucket."),
        IdentityOption("grant", "--grant", "", "record the grant in the bucket.",
                       is_flag=True, setup_only=True),
    )

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> MemorySettings:
        checker.mapping(path, block, ["provider", "bucket"], required=("bucket",))
        return MemorySettings(checker.string((*path, "bucket"), block["bucket"],
                                             pattern=r"[a-z0-9-]+", what="bucket name"))

    def store_class(self) -> type[SecretStore]:
        return MemoryStore

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        return {"fake": {"data": []}}

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        return "the memory store needs no authentication"

    def identity_plan(self, config: Config, env: EnvironmentConfig, options: Options) -> Plan:
        assert isinstance(env.store, MemorySettings)
        plan = Plan(env.name, env.provider)
        plan.pieces.append(Piece("readerGrant", "Who reads the bucket", "json",
                                 {"bucket": env.store.bucket,
                                  "reader": options.text("reader") or "<READER>"}))
        return plan

    def identity_setup(self, config: Config, env: EnvironmentConfig,
                       options: Options) -> SetupReport:
        assert isinstance(env.store, MemorySettings)
        report = SetupReport(env.name, env.provider, dry_run=options.dry_run)
        reader = options.text("reader")
        if options.flag("grant") and reader:
            report.add(f"reader {reader} of bucket {env.store.bucket}", "created")
        else:
            report.add(f"bucket {env.store.bucket}", "skipped", "no --grant --reader NAME")
        return report

    def audit_setup(self, config: Config, env: EnvironmentConfig, *, file_path: str | None,
                    socket_address: str | None, dry_run: bool) -> SetupReport:
        raise InputError("the memory store keeps no audit log")


PROVIDER = MemoryProvider()
