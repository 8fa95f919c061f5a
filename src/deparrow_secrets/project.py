"""A loaded project: configuration plus catalog, checked against each other."""

from __future__ import annotations

from pathlib import Path

from deparrow_secrets.config.catalog import Catalog, load_catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import ConfigError
from deparrow_secrets.providers import load_config
from deparrow_secrets.record import record
from deparrow_secrets.stores.interface import SecretStore
from deparrow_secrets.stores.layout import Layout


@record
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

    @property
    def manifests_dir(self) -> Path:
        """The configured tree, which must lie inside the project: `render` writes and
        deletes there, so `manifests: ..` must not reach a sibling project."""
        from deparrow_secrets import safefiles

        path = self.config.manifests_dir
        if not safefiles.inside(self.config.root, path):
            raise ConfigError(f"manifests: {self.config.manifests!r} is not a directory "
                              f"inside the project {self.config.root}",
                              file=str(self.config.file) if self.config.file else None,
                              key_path="manifests",
                              hint="use a relative path below the project, e.g. "
                              "`manifests: deparrow/k8s`")
        return path

    def layout(self, env: EnvironmentConfig) -> Layout:
        return Layout(self.catalog, env)

    def open_store(self, env: EnvironmentConfig, *, create: bool = True,
                   writable: bool | None = None) -> SecretStore:
        """The store of `env`, connected with the tool's own credentials.

        An embedded store that does not exist yet is created (its files git-ignored
        first, as they hold the key and the encrypted values) only with `create`;
        read-only commands pass create=False and see an empty store, writing nothing.
        `writable` (default: `create`) is False for commands that only read: an embedded
        store is then opened without creating or changing any file.
        """
        from deparrow_secrets.providers import open_store

        path = self.local_store_path(env)
        if path is None:
            _say_endpoint_override(env)
            return open_store(self.config, env)
        from deparrow_secrets.providers.local.store import (
            AbsentLocalStore,
            LocalStore,
            check_key_source,
        )

        check_key_source()
        self.check_store_location(env)
        if not path.exists():
            if not create:
                return AbsentLocalStore(env.name, path)
            self._ignore_store_files(path)
        return LocalStore.from_config(self.config, env, create=create,
                                      read_only=not (create if writable is None else writable))

    def check_store_location(self, env: EnvironmentConfig) -> None:
        """Refuse an embedded store reached through a link inside the project.

        A linked state directory would put the key and the database wherever it points,
        possibly inside the repository where `git add -A` stages them.
        """
        from deparrow_secrets import safefiles

        path = self.local_store_path(env)
        if path is not None and safefiles.inside(self.config.root, path):
            safefiles.check_path(self.config.root, path)

    def local_store_path(self, env: EnvironmentConfig) -> Path | None:
        """The embedded store file of `env` (None for remote providers)."""
        from deparrow_secrets.providers.local.settings import DEFAULT_STORE, LocalSettings

        if not isinstance(env.store, LocalSettings):
            return None
        return self.config.root / (env.store.path or DEFAULT_STORE)

    def _ignore_store_files(self, path: Path) -> None:
        from deparrow_secrets import gitrepo

        root = self.config.root.resolve()
        gitignore = self.config.root / ".gitignore"
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            return  # outside the project: not ours to ignore
        if path.resolve().is_relative_to(self.config.state_dir.resolve()):
            gitrepo.ensure_ignored(path, "/.deparrow-secrets/", gitignore)
            return
        # The database with its -wal/-shm companions, and the key file created beside it.
        gitrepo.ensure_ignored(path, f"/{rel.as_posix()}*", gitignore)
        key = path.with_suffix(".key")
        gitrepo.ensure_ignored(key, f"/{rel.with_suffix('.key').as_posix()}", gitignore)


def _say_endpoint_override(env: EnvironmentConfig) -> None:
    """One line on stderr when the shell's environment, not the configuration, decides
    which server the store talks to (VAULT_ADDR, AWS_ENDPOINT_URL)."""
    from deparrow_secrets import providers
    from deparrow_secrets.errors import notice

    override = providers.of(env).endpoint_override(env)
    if override is not None:
        notice(override)
