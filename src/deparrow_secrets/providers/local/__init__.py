"""The embedded store: an encrypted SQLite file in the project, for dev.

ESO does not read it: its environments get a Kustomize secretGenerator fed by
exported env files, and it has no remote identity to plan or set up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deparrow_secrets.errors import InputError
from deparrow_secrets.providers.interface import IdentityOption
from deparrow_secrets.providers.local import settings

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig
    from deparrow_secrets.config.yamlfile import Checker, KeyPath
    from deparrow_secrets.providers.identity_plan import Options, Plan, SetupReport
    from deparrow_secrets.stores.interface import SecretStore


def _no_eso(env: EnvironmentConfig) -> InputError:
    return InputError(
        f"environment '{env.name}' uses the embedded local store: it has no remote "
        "identity to set up",
        hint="policy and setup apply to environments on vault, aws or azure")


class LocalProvider:
    name = "local"
    identity_options: tuple[IdentityOption, ...] = ()

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> settings.LocalSettings:
        return settings.parse(checker, path, block)

    def store_class(self) -> type[SecretStore]:
        from deparrow_secrets.providers.local.store import LocalStore

        return LocalStore

    def service_account_annotations(self, config: Config,
                                    env: EnvironmentConfig) -> dict[str, str]:
        raise _no_eso(env)

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        raise _no_eso(env)

    def eso_remote_key(self, env: EnvironmentConfig, key: str) -> str:
        raise _no_eso(env)

    def needs_auth_delegator(self, env: EnvironmentConfig) -> bool:
        return False

    def store_port(self, env: EnvironmentConfig) -> int:
        raise _no_eso(env)

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        raise _no_eso(env)

    def endpoint_override(self, env: EnvironmentConfig) -> str | None:
        return None

    def identity_plan(self, config: Config, env: EnvironmentConfig, options: Options) -> Plan:
        raise _no_eso(env)

    def identity_setup(self, config: Config, env: EnvironmentConfig,
                       options: Options) -> SetupReport:
        raise _no_eso(env)

    def audit_setup(self, config: Config, env: EnvironmentConfig, *, file_path: str | None,
                    socket_address: str | None, dry_run: bool) -> SetupReport:
        from deparrow_secrets.providers.identity_plan import printed_audit_setup

        return printed_audit_setup(
            env, file_path=file_path, socket_address=socket_address, dry_run=dry_run,
            item="change ledger", detail="the embedded store has no audit device; every "
            "provision, set and rollback is recorded in the change ledger",
            commands=["deparrow-secrets audit --verify"])


PROVIDER = LocalProvider()
