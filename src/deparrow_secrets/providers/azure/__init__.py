"""Azure Key Vault, read by ESO's `azurekv` provider with workload identity or a
managed identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deparrow_secrets.providers.azure import settings
from deparrow_secrets.providers.azure.settings import settings_of
from deparrow_secrets.providers.interface import CLUSTER_OPTION, EsoProvider, IdentityOption

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig
    from deparrow_secrets.config.yamlfile import Checker, KeyPath
    from deparrow_secrets.stores.interface import SecretStore


class AzureProvider(EsoProvider):
    name = "azure"
    identity_options: tuple[IdentityOption, ...] = (
        CLUSTER_OPTION,
        IdentityOption("subscription", "--subscription", "ID",
                       "subscription of the vault (for the role assignment scope)."),
        IdentityOption("resource_group", "--resource-group", "NAME",
                       "resource group of the vault and the identity."),
        IdentityOption("identity_name", "--identity-name", "NAME",
                       "the user-assigned managed identity (default: "
                       "deparrow-secrets-identity)."),
        IdentityOption("oidc_issuer", "--oidc-issuer", "URL",
                       "the AKS cluster's OIDC issuer URL."),
    )

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> settings.AzureSettings:
        return settings.parse(checker, path, block)

    def store_class(self) -> type[SecretStore]:
        from deparrow_secrets.providers.azure.store import AzureStore

        return AzureStore

    def service_account_annotations(self, config: Config,
                                    env: EnvironmentConfig) -> dict[str, str]:
        store = settings_of(env)
        annotations: dict[str, str] = {}
        if store.auth == "workload-identity":
            if store.client_id:
                annotations["azure.workload.identity/client-id"] = store.client_id
            if store.tenant_id:
                annotations["azure.workload.identity/tenant-id"] = store.tenant_id
        return annotations

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        store = settings_of(env)
        block: dict[str, Any] = {"vaultUrl": store.vault_url}
        if store.auth == "managed-identity":
            block["tenantId"] = store.tenant_id
            block["authType"] = "ManagedIdentity"
            if store.identity_id:
                block["identityId"] = store.identity_id
        else:
            # The tenant is given once, on the ServiceAccount (ESO's example): a tenantId
            # here as well fails with "multiple tenantID found"
            # (providers/v1/azure/keyvault/keyvault.go, test "duplicated tenantId").
            block["authType"] = "WorkloadIdentity"
            block["serviceAccountRef"] = {"name": config.service_account}
        return {"azurekv": block}

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        return (f"check the federated credential and role assignment (`deparrow-secrets "
                f"policy --env {env.name}` prints the az commands)")


PROVIDER = AzureProvider()
