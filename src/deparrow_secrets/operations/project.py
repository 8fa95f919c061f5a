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

    def open_store(self, env: EnvironmentConfig, *, create: bool = True) -> SecretStore:
        """The store of `env`, connected with the tool's own credentials.

        An embedded store that does not exist yet is created (its files git-ignored
        first, as they hold the key and the encrypted values) only with `create`;
        read-only commands pass create=False and see an empty store, writing nothing.
        """
        from deparrow_secrets.stores import open_store

        path = self.local_store_path(env)
        if path is not None and not path.exists():
            if not create:
                from deparrow_secrets.stores.local import AbsentLocalStore

                return AbsentLocalStore(env.name, path)
            self._ignore_store_files(path)
        return open_store(self.config, env)

    def local_store_path(self, env: EnvironmentConfig) -> Path | None:
        """The embedded store file of `env` (None for remote providers)."""
        if env.provider != "local":
            return None
        from deparrow_secrets.stores.local import DEFAULT_STORE

        return self.config.root / (env.store.path or DEFAULT_STORE)

    def _ignore_store_files(self, path: Path) -> None:
        from deparrow_secrets.operations import gitfiles

        root = self.config.root.resolve()
        gitignore = self.config.root / ".gitignore"
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            return  # outside the project: not ours to ignore
        if path.resolve().is_relative_to(self.config.state_dir.resolve()):
            gitfiles.ensure_ignored(path, "/.deparrow-secrets/", gitignore)
            return
        # The database with its -wal/-shm companions, and the key file created beside it.
        gitfiles.ensure_ignored(path, f"/{rel.as_posix()}*", gitignore)
        key = path.with_suffix(".key")
        gitfiles.ensure_ignored(key, f"/{rel.with_suffix('.key').as_posix()}", gitignore)
