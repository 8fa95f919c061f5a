"""Secret stores: one module per backend behind `interface.SecretStore`.

Backends are found by provider name and imported only when used, so their SDKs
are too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig
    from deparrow_secrets.stores.interface import SecretStore

BACKENDS: dict[str, str] = {
    "local": "deparrow_secrets.stores.local:LocalStore",
    "vault": "deparrow_secrets.stores.vault:VaultStore",
    "aws": "deparrow_secrets.stores.aws:AwsStore",
    "azure": "deparrow_secrets.stores.azure:AzureStore",
}


def backend_class(provider: str) -> type[SecretStore]:
    module, _, name = BACKENDS[provider].partition(":")
    return getattr(importlib.import_module(module), name)


def open_store(config: Config, env: EnvironmentConfig) -> SecretStore:
    """The store of environment `env`, connected with the tool's own credentials."""
    return backend_class(env.provider).from_config(config, env)
