"""A loaded project: configuration plus catalog, checked against each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deparrow_secrets.config.catalog import Catalog, load_catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig, load_config
from deparrow_secrets.stores.interface import SecretStore
from deparrow_secrets.stores.layout import Layout


@dataclass
class Project:
    config: Config
    catalog: Catalog

    @classmethod
    def load(cls, config_path: Path | None = None, cwd: Path | None = None,
             catalog_path: Path | None = None) -> Project:
        config = load_config(config_path, cwd)
        catalog = load_catalog(catalog_path or config.catalog)
        config.check_catalog(catalog)
        return cls(config, catalog)

    def environment(self, name: str) -> EnvironmentConfig:
        return self.config.environment(name)

    def layout(self, env: EnvironmentConfig) -> Layout:
        return Layout(self.catalog, env)

    def open_store(self, env: EnvironmentConfig) -> SecretStore:
        from deparrow_secrets.stores import open_store

        return open_store(self.config, env)
