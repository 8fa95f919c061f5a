"""The providers: one package per kind of store, behind `interface.Provider`, and the
one registry that finds them by the `store.provider` name of deparrow-secrets.yaml.

The built-in providers are imported on first use (each brings its SDK only when its
store is opened). Another provider is added with `register()`, or by an installed
distribution that declares it under the entry-point group `deparrow_secrets.providers`
(`memory = their_package:PROVIDER`; looked up only for a name the tool does not know,
since reading installed metadata costs start-up). It then parses, renders, provisions
and verifies like the built-in ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, assert_never, get_args

from deparrow_secrets.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from deparrow_secrets.config.settings import (
        Config,
        EnvironmentConfig,
        StoreSettings,
    )
    from deparrow_secrets.config.yamlfile import Checker, KeyPath, Located
    from deparrow_secrets.providers.aws.settings import AwsSettings
    from deparrow_secrets.providers.azure.settings import AzureSettings
    from deparrow_secrets.providers.interface import IdentityOption, Provider
    from deparrow_secrets.providers.local.settings import LocalSettings
    from deparrow_secrets.providers.vault.settings import VaultSettings
    from deparrow_secrets.stores.interface import SecretStore

    BuiltinSettings: TypeAlias = LocalSettings | VaultSettings | AwsSettings | AzureSettings

ENTRY_POINT_GROUP = "deparrow_secrets.providers"
BuiltinName = Literal["local", "vault", "aws", "azure"]
BUILTIN: tuple[BuiltinName, ...] = get_args(BuiltinName)

_registered: dict[str, Provider] = {}


def _builtin(name: BuiltinName) -> Provider:
    match name:
        case "local":
            from deparrow_secrets.providers.local import PROVIDER as local
            return local
        case "vault":
            from deparrow_secrets.providers.vault import PROVIDER as vault
            return vault
        case "aws":
            from deparrow_secrets.providers.aws import PROVIDER as aws
            return aws
        case "azure":
            from deparrow_secrets.providers.azure import PROVIDER as azure
            return azure
        case _:
            assert_never(name)


def register(provider: Provider) -> None:
    """Make `provider` available under `provider.name` (replacing one of that name)."""
    _registered[provider.name] = provider


def unregister(name: str) -> None:
    _registered.pop(name, None)


def names() -> list[str]:
    """Every provider the tool can use: built in, registered, installed."""
    from importlib.metadata import entry_points

    installed = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return list(dict.fromkeys([*BUILTIN, *_registered, *installed]))


def known(name: str) -> bool:
    return name in BUILTIN or name in _registered or _installed(name) is not None


def _installed(name: str) -> Provider | None:
    """The provider an installed distribution declares as `name` (registered once found)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            provider: Provider = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is a configuration error
            raise ConfigError(f"provider '{name}' ({entry.value}) cannot be loaded: "
                              f"{type(exc).__name__}",
                              hint=f"reinstall the distribution that provides it, or "
                              f"remove `provider: {name}`") from None
        register(provider)
        return provider
    return None


def get(name: str) -> Provider:
    if name in _registered:
        return _registered[name]
    for builtin in BUILTIN:
        if builtin == name:
            return _builtin(builtin)
    installed = _installed(name)
    if installed is not None:
        return installed
    raise ConfigError(f"unknown provider '{name}'", hint="providers: " + ", ".join(names()))


class DeclaredOptions:
    """The identity options `policy` or `setup` offers, gathered from every provider."""

    def __init__(self) -> None:
        self.options: dict[str, IdentityOption] = {}
        """By attr, in the order the providers declare them."""
        self.takers: dict[str, list[str]] = {}
        """attr -> the providers that take the option."""
        self.refused: list[str] = []
        """Why an option a provider declares is not offered (a clash), one line each."""


def identity_options(*, setup: bool, taken: Collection[str] = ()) -> DeclaredOptions:
    """The identity options of every provider: built in, registered and installed
    (only `setup` takes those marked `setup_only`).

    Providers may share an option (same attr, same flag: `--cluster`). An option whose
    flag another attr uses, whose attr comes under another flag, or whose flag or attr
    is in `taken` (the command's own) is refused, not offered. An installed provider
    that cannot load offers none: its environments say why when they use it.
    """
    declared = DeclaredOptions()
    flags: dict[str, str] = {}  # flag -> attr
    for name in names():
        try:
            provider = get(name)
        except ConfigError:
            continue
        for option in provider.identity_options:
            if option.setup_only and not setup:
                continue
            first = declared.options.get(option.attr)
            clash = (option.flag in taken or option.attr in taken
                     or flags.get(option.flag, option.attr) != option.attr
                     or (first is not None and first.flag != option.flag))
            if clash:
                declared.refused.append(f"provider {name}: option {option.flag} ({option.attr}) "
                                        f"clashes with an option of the command or of "
                                        f"another provider; it is not offered")
                continue
            flags[option.flag] = option.attr
            declared.options.setdefault(option.attr, option)
            declared.takers.setdefault(option.attr, []).append(name)
    return declared


def of(env: EnvironmentConfig) -> Provider:
    """The provider of environment `env`'s store."""
    return get(env.store.provider)


def open_store(config: Config, env: EnvironmentConfig) -> SecretStore:
    """The store of environment `env`, connected with the tool's own credentials."""
    return of(env).store_class().from_config(config, env)


class _Parsers:
    """The registry as `config.settings` parses with it (config knows no provider)."""

    def names(self) -> list[str]:
        return names()

    def known(self, name: str) -> bool:
        return known(name)

    def parse_store(self, name: str, checker: Checker, path: KeyPath,
                    block: Mapping[str, Any], environment: str) -> StoreSettings:
        return get(name).parse_settings(checker, path, block, environment)


def load_config(path: Path | None = None, cwd: Path | None = None) -> Config:
    """deparrow-secrets.yaml (`path`, or the one in `cwd`), parsed with every provider."""
    from deparrow_secrets.config.settings import load_config as load

    return load(_Parsers(), path, cwd)


def parse_config(doc: Located, root: Path) -> Config:
    from deparrow_secrets.config.settings import parse_config as parse

    return parse(doc, root, _Parsers())


def default_config(root: Path) -> Config:
    """No configuration file: dev on the embedded store."""
    from deparrow_secrets.config.settings import default_config as default
    from deparrow_secrets.providers.local.settings import LocalSettings

    return default(root, LocalSettings())


def service_account(config: Config, env: EnvironmentConfig) -> dict[str, Any]:
    """ESO's ServiceAccount, with the annotations `env`'s provider needs."""
    from deparrow_secrets import k8sobjects

    return k8sobjects.service_account(config, of(env).service_account_annotations(config, env))


def secret_store(config: Config, env: EnvironmentConfig) -> dict[str, Any]:
    """The SecretStore ESO reads `env`'s store through."""
    from deparrow_secrets import k8sobjects

    return k8sobjects.secret_store(config, of(env).secret_store_provider(config, env))


def builtin_settings(env: EnvironmentConfig) -> BuiltinSettings | None:
    """`env`'s settings when a built-in provider holds its store, else None: code that
    knows something per built-in provider matches on the result, exhaustively
    (`assert_never` in the last case), and treats None as "not checked"."""
    from deparrow_secrets.providers.aws.settings import AwsSettings
    from deparrow_secrets.providers.azure.settings import AzureSettings
    from deparrow_secrets.providers.local.settings import LocalSettings
    from deparrow_secrets.providers.vault.settings import VaultSettings

    store = env.store
    if isinstance(store, LocalSettings | VaultSettings | AwsSettings | AzureSettings):
        return store
    return None
