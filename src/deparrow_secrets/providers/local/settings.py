"""`store:` of an environment on the embedded store: `provider: local`, optional `path`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from deparrow_secrets.config.settings import EnvironmentConfig, StoreSettings
from deparrow_secrets.config.yamlfile import Checker, KeyPath
from deparrow_secrets.record import record

DEFAULT_STORE = ".deparrow-secrets/store.db"


@record
class LocalSettings(StoreSettings):
    provider: ClassVar[str] = "local"
    uses_eso: ClassVar[bool] = False

    path: str | None = None
    """The database file, relative to the project root (default DEFAULT_STORE)."""

    def location(self, environment: str) -> tuple[str, ...]:
        return ("local", self.path or DEFAULT_STORE, self.remote_path(environment))


def parse(checker: Checker, path: KeyPath, block: Mapping[str, Any]) -> LocalSettings:
    checker.mapping(path, block, ["provider", "path"])
    raw = block.get("path")
    return LocalSettings(None if raw is None else checker.string((*path, "path"), raw))


def settings_of(env: EnvironmentConfig) -> LocalSettings:
    if not isinstance(env.store, LocalSettings):
        raise TypeError(f"environment {env.name} is not on the embedded store")
    return env.store
