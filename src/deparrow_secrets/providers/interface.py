"""What a provider is: one object per provider package, behind the `Provider` protocol.

A provider package (`deparrow_secrets.providers.<name>`) holds everything the tool knows
about one kind of store: its `store:` settings and their parser, its remote layout
(on the settings), its `SecretStore`, the SecretStore block and ServiceAccount
annotations ESO needs, its identity plan and setup, and the command-line options those
take. Provider-neutral code asks the provider (`providers.of(env)`), never compares its
name.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from deparrow_secrets.record import record

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig, StoreSettings
    from deparrow_secrets.config.yamlfile import Checker, KeyPath
    from deparrow_secrets.providers.identity_plan import Options, Plan, SetupReport
    from deparrow_secrets.stores.interface import SecretStore


@record
class IdentityOption:
    """One option of `policy` and `setup` (the CLI makes a flag of it; `attr` is the
    field of `providers.identity_plan.Options` it fills)."""

    attr: str
    flag: str
    metavar: str
    help: str
    is_file: bool = False
    is_flag: bool = False
    setup_only: bool = False


CLUSTER_OPTION = IdentityOption("cluster", "--cluster", "NAME",
                                "cluster name for the eksctl / az aks commands.")
"""Shared by the providers whose setup prints cluster commands (eksctl, az aks)."""


class Provider(Protocol):
    name: str
    """The value of `store.provider` in deparrow-secrets.yaml."""

    @property
    def identity_options(self) -> tuple[IdentityOption, ...]:
        """The options `policy`/`setup` take for this provider (empty: none)."""
        ...

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> StoreSettings:
        """Check and parse the environment's `store:` block (`path` is where it is)."""
        ...

    def store_class(self) -> type[SecretStore]:
        """The provider's store (imported on first use: it brings the provider's SDK)."""
        ...

    def service_account_annotations(self, config: Config,
                                    env: EnvironmentConfig) -> dict[str, str]:
        """Annotations ESO's ServiceAccount needs for this store's identity."""
        ...

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        """The SecretStore's `spec.provider` (one key: ESO's provider name)."""
        ...

    def eso_remote_key(self, env: EnvironmentConfig, key: str) -> str:
        """The `remoteRef.key` ESO resolves to remote object `key`."""
        ...

    def needs_auth_delegator(self, env: EnvironmentConfig) -> bool:
        """Whether ESO's ServiceAccount must be bound to system:auth-delegator."""
        ...

    def store_port(self, env: EnvironmentConfig) -> int:
        """The TCP port ESO's pods reach the store on (for the egress NetworkPolicy)."""
        ...

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        """What to check when ESO cannot authenticate to the store (doctor's fix)."""
        ...

    def endpoint_override(self, env: EnvironmentConfig) -> str | None:
        """A line saying the shell's environment, not the configuration, picks the server
        the store talks to (None when it does not)."""
        ...

    def identity_plan(self, config: Config, env: EnvironmentConfig, options: Options) -> Plan:
        """What `policy` prints: the least-privilege identity the environment needs."""
        ...

    def identity_setup(self, config: Config, env: EnvironmentConfig,
                       options: Options) -> SetupReport:
        """What `setup` applies (idempotently), or prints where it cannot apply."""
        ...

    def audit_setup(self, config: Config, env: EnvironmentConfig, *, file_path: str | None,
                    socket_address: str | None, dry_run: bool) -> SetupReport:
        """`setup --audit`: audit logging at the store, enabled from here where it can be
        (`file_path`/`socket_address`: a Vault audit device's), else the commands."""
        ...


class EsoProvider:
    """Defaults of a provider ESO reads (subclass it and override what differs): no
    ServiceAccount annotations, the remote object's name as ESO's key, no
    auth-delegator binding, the store on port 443, no endpoint from the shell, and the
    identity in the package's `identity` module (`plan`, `setup`, `setup_audit`)."""

    identity_options: tuple[IdentityOption, ...] = ()

    def service_account_annotations(self, config: Config,
                                    env: EnvironmentConfig) -> dict[str, str]:
        return {}

    def eso_remote_key(self, env: EnvironmentConfig, key: str) -> str:
        return key

    def needs_auth_delegator(self, env: EnvironmentConfig) -> bool:
        return False

    def store_port(self, env: EnvironmentConfig) -> int:
        return 443

    def endpoint_override(self, env: EnvironmentConfig) -> str | None:
        return None

    def _identity(self) -> ModuleType:
        # Imported on first use: setup brings the provider's SDK.
        return importlib.import_module(f"{type(self).__module__}.identity")

    def identity_plan(self, config: Config, env: EnvironmentConfig, options: Options) -> Plan:
        plan: Plan = self._identity().plan(config, env, options)
        return plan

    def identity_setup(self, config: Config, env: EnvironmentConfig,
                       options: Options) -> SetupReport:
        report: SetupReport = self._identity().setup(config, env, options)
        return report

    def audit_setup(self, config: Config, env: EnvironmentConfig, *, file_path: str | None,
                    socket_address: str | None, dry_run: bool) -> SetupReport:
        report: SetupReport = self._identity().setup_audit(
            config, env, file_path=file_path, socket_address=socket_address, dry_run=dry_run)
        return report
