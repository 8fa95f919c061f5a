"""Azure Key Vault: role assignment, federated credential, ServiceAccount annotations.

Least privilege for one environment: the identity gets the built-in role "Key Vault
Secrets User" (read secret values) on that environment's vault only, one vault per
environment. Vaults on the access-policy model get `get` on secrets instead; `list`
is needed only for `dataFrom.find`, which the rendered ExternalSecrets do not use.

Workload identity (`auth: workload-identity`): ESO requests a token for the
ServiceAccount (audience api://AzureADTokenExchange) and exchanges it for the
identity whose client id the ServiceAccount's `azure.workload.identity/client-id`
annotation names; the identity trusts that exchange through a federated credential
for `system:serviceaccount:<namespace>:<serviceAccount>` and the cluster's OIDC issuer.
Managed identity (`auth: managed-identity`): ESO uses the identity `identityId` of the
node it runs on (IMDS); there is no federated credential.

The guide's SecretStore uses `authManagedIdentity`, a field ESO does not have, and its
`az keyvault set-policy` names no identity that any ServiceAccount is bound to.

`setup` for Azure prints these commands and runs nothing: assigning roles needs rights
(Owner, User Access Administrator or Role Based Access Control Administrator on the
vault) that this tool should never hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deparrow_secrets.providers import secret_store, service_account
from deparrow_secrets.providers.azure import settings
from deparrow_secrets.providers.azure.settings import AzureSettings, same_vault_key, settings_of
from deparrow_secrets.providers.identity_plan import (
    PLACEHOLDER_NOTE,
    Options,
    Piece,
    Plan,
    SetupReport,
    printed_audit_setup,
    shell_line,
)
from deparrow_secrets.record import record

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

ROLE = "Key Vault Secrets User"
ROLE_DEFINITION_ID = "4633458b-17de-408a-b874-0445c86b69e6"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_IDENTITY = "deparrow-secrets-identity"  # the guide's name
SUBSCRIPTION_PLACEHOLDER = "<SUBSCRIPTION_ID>"
RESOURCE_GROUP_PLACEHOLDER = "<RESOURCE_GROUP>"
ISSUER_PLACEHOLDER = "<OIDC_ISSUER_URL>"
CLIENT_ID_PLACEHOLDER = "<CLIENT_ID>"
IDENTITY_ID_PLACEHOLDER = "<IDENTITY_CLIENT_ID>"
PRINCIPAL_PLACEHOLDER = "<PRINCIPAL_OBJECT_ID>"


@record
class AzureIdentityOptions:
    """The options of Azure's identity (declared in its `PROVIDER.identity_options`),
    read from `Options` with `Options.read`, typed."""

    subscription: str | None = None
    resource_group: str | None = None
    identity_name: str | None = None
    oidc_issuer: str | None = None
    cluster: str | None = None
    dry_run: bool = False


def vault_name(env: EnvironmentConfig) -> str:
    """`https://deparrow-kv.vault.azure.net` -> `deparrow-kv` (any Azure cloud)."""
    return settings.vault_name(settings_of(env).vault_url or "")


def vault_scope(env: EnvironmentConfig, subscription: str | None,
                resource_group: str | None) -> str:
    return (f"/subscriptions/{subscription or SUBSCRIPTION_PLACEHOLDER}"
            f"/resourceGroups/{resource_group or RESOURCE_GROUP_PLACEHOLDER}"
            f"/providers/Microsoft.KeyVault/vaults/{vault_name(env)}")


def subject(config: Config) -> str:
    return f"system:serviceaccount:{config.namespace}:{config.service_account}"


def _principal_client_id(env: EnvironmentConfig) -> str:
    store = settings_of(env)
    if store.auth == "managed-identity":
        return store.identity_id or IDENTITY_ID_PLACEHOLDER
    return store.client_id or CLIENT_ID_PLACEHOLDER


def shared_vaults(config: Config, env: EnvironmentConfig) -> list[str]:
    mine = same_vault_key(settings_of(env).vault_url)
    return [o.name for o in config.environments.values()
            if o.name != env.name and isinstance(o.store, AzureSettings)
            and same_vault_key(o.store.vault_url) == mine]


def plan(config: Config, env: EnvironmentConfig, options: Options) -> Plan:
    given = options.read(AzureIdentityOptions)
    store = settings_of(env)
    result = Plan(env.name, env.provider)
    name = vault_name(env)
    scope = vault_scope(env, given.subscription, given.resource_group)
    workload = store.auth == "workload-identity"
    client_id = _principal_client_id(env)
    identity_name = given.identity_name or DEFAULT_IDENTITY
    resource_group = given.resource_group or RESOURCE_GROUP_PLACEHOLDER
    placeholders = given.subscription is None or given.resource_group is None

    result.pieces.append(Piece(
        "roleAssignment", f"Role assignment: {ROLE} on vault {name}", "json",
        {"role": ROLE, "roleDefinitionId": ROLE_DEFINITION_ID, "scope": scope,
         "assignee": {"clientId": client_id, "objectId": PRINCIPAL_PLACEHOLDER,
                      "principalType": "ServicePrincipal"}},
        notes=(f"Read access to secret values of this environment's vault {name} only "
               "(vaults using Azure RBAC).",)))
    result.pieces.append(Piece(
        "accessPolicy", "Alternative for vaults on the access-policy model", "json",
        {"vault": name, "objectId": PRINCIPAL_PLACEHOLDER, "secretPermissions": ["get"]},
        notes=("`get` only: `list` is needed just for dataFrom.find, which the rendered "
               "ExternalSecrets do not use.",)))
    if workload:
        result.pieces.append(Piece(
            "federatedCredential", f"Federated identity credential on {identity_name}",
            "json",
            {"name": f"{config.service_account}-{env.name}", "identityName": identity_name,
             "resourceGroup": resource_group,
             "issuer": given.oidc_issuer or ISSUER_PLACEHOLDER, "subject": subject(config),
             "audiences": [TOKEN_EXCHANGE_AUDIENCE]},
            notes=("Trusts tokens of exactly this ServiceAccount from this cluster.",)))
        result.pieces.append(Piece(
            "serviceAccount", "ServiceAccount (workload identity annotations)", "yaml",
            [service_account(config, env)]))
    else:
        result.pieces.append(Piece(
            "managedIdentity", "Managed identity (no federated credential)", "json",
            {"identityId": client_id, "assignTo": "the nodes that run ESO (AKS: the kubelet "
             "identity or a user-assigned identity of the node pool's scale set)"},
            notes=("Every pod on those nodes can use this identity; workload identity "
                   "binds access to the ServiceAccount instead.",)))
    result.pieces.append(Piece(
        "secretStore", "SecretStore (as `render` writes it; shown for its auth block)", "yaml",
        [secret_store(config, env)]))

    result.pieces.append(Piece(
        "commands", "Commands (az CLI)", "shell",
        _commands(config, env, given, name, client_id, identity_name, resource_group),
        notes=("Run by someone allowed to assign roles on the vault; deparrow-secrets "
               "runs none of them.",)))

    if workload and not store.client_id:
        result.warnings.append(
            f"clientId is not set under environments.{env.name}.store: the ServiceAccount has "
            "no azure.workload.identity/client-id annotation, so ESO cannot get a token")
    if not workload and not store.identity_id:
        result.warnings.append(
            f"identityId is not set under environments.{env.name}.store: ESO uses the node's "
            "identity only if it has exactly one")
    if workload and not given.oidc_issuer:
        result.warnings.append(
            "--oidc-issuer not given: the federated credential uses "
            + ("the issuer `az aks show` prints" if given.cluster else
               f"the placeholder {ISSUER_PLACEHOLDER} (or pass --cluster to look it up)"))
    others = shared_vaults(config, env)
    if others:
        result.warnings.append(
            f"environment(s) {', '.join(others)} use the same Key Vault {name}: a role "
            "assignment on it lets this identity read their values too; use one vault per "
            "environment")
    if placeholders or (workload and not given.oidc_issuer and not given.cluster):
        result.warnings.append(PLACEHOLDER_NOTE)
    return result


def _commands(config: Config, env: EnvironmentConfig, options: AzureIdentityOptions, name: str,
              client_id: str, identity_name: str, resource_group: str) -> list[str]:
    workload = settings_of(env).auth == "workload-identity"
    lines = ["# The identity's principal (object) id, from its client id:",
             "PRINCIPAL_ID=\"$(" + shell_line("az", "ad", "sp", "show", "--id", client_id,
                                              "--query", "id", "--output", "tsv",
                                              continuation=False) + ")\""]
    if options.subscription and options.resource_group:
        scope = vault_scope(env, options.subscription, options.resource_group)
    else:
        lookup = ["az", "keyvault", "show", "--name", name, "--query", "id", "--output", "tsv"]
        if options.resource_group:
            lookup += ["--resource-group", options.resource_group]
        if options.subscription:
            lookup += ["--subscription", options.subscription]
        scope = "\"$(" + shell_line(*lookup, continuation=False) + ")\""
    lines.append(shell_line("az", "role", "assignment", "create", "--role", ROLE,
                            "--assignee-object-id", '"$PRINCIPAL_ID"',
                            "--assignee-principal-type", "ServicePrincipal", "--scope", scope))
    lines.append("# Vaults on the access-policy model instead of Azure RBAC:")
    lines.append("# " + shell_line("az", "keyvault", "set-policy", "--name", name,
                                   "--object-id", '"$PRINCIPAL_ID"', "--secret-permissions",
                                   "get", continuation=False))
    if workload:
        if options.oidc_issuer:
            issuer = options.oidc_issuer
        elif options.cluster:
            issuer = "\"$(" + shell_line(
                "az", "aks", "show", "--name", options.cluster, "--resource-group",
                resource_group, "--query", "oidcIssuerProfile.issuerUrl", "--output", "tsv",
                continuation=False) + ")\""
        else:
            issuer = ISSUER_PLACEHOLDER
        lines.append(shell_line("az", "identity", "federated-credential", "create",
                                "--name", f"{config.service_account}-{env.name}",
                                "--identity-name", identity_name,
                                "--resource-group", resource_group,
                                "--issuer", issuer, "--subject", subject(config),
                                "--audiences", TOKEN_EXCHANGE_AUDIENCE))
    else:
        lines.append("# Managed identity: assign the identity to the nodes that run ESO, e.g.")
        lines.append("# " + shell_line("az", "vmss", "identity", "assign", "--name",
                                       "<NODE_POOL_VMSS>", "--resource-group",
                                       "<NODE_RESOURCE_GROUP>", "--identities",
                                       "<IDENTITY_RESOURCE_ID>", continuation=False))
    return lines


def setup(config: Config, env: EnvironmentConfig, options: Options) -> SetupReport:
    """Azure: print the commands, run nothing (no owner rights needed or used)."""
    result = plan(config, env, options)
    report = SetupReport(env.name, env.provider, dry_run=options.dry_run)
    report.commands = list(result.piece("commands").data)
    report.warnings = list(result.warnings)
    report.add(f"role assignment {ROLE} on {vault_name(env)}", "printed",
               "run the commands below: assigning roles needs rights this tool never uses")
    if settings_of(env).auth == "workload-identity":
        report.add(f"federated credential {config.service_account}-{env.name}", "printed")
    return report



# --------------------------------------------------------------------------- audit


def azure_diagnostic_commands(env: EnvironmentConfig) -> tuple[str, str]:
    """(check, create) of the vault's AuditEvent diagnostic setting."""
    name = vault_name(env)
    vault_id = f"$(az keyvault show --name {name} --query id --output tsv)"
    check_cmd = (f"az monitor diagnostic-settings list --resource {vault_id} "
                 "--query \"[].{name:name, logs:logs[?category=='AuditEvent' && enabled]}\"")
    create_cmd = (f"az monitor diagnostic-settings create --name deparrow-audit "
                  f"--resource {vault_id} --workspace WORKSPACE_RESOURCE_ID "
                  "--logs '[{\"category\":\"AuditEvent\",\"enabled\":true}]'")
    return check_cmd, create_cmd


def setup_audit(config: Config, env: EnvironmentConfig, *, file_path: str | None = None,
                socket_address: str | None = None, dry_run: bool = False) -> SetupReport:
    """Key Vault's diagnostic setting is on the management plane: the commands, printed."""
    check, create = azure_diagnostic_commands(env)
    return printed_audit_setup(
        env, file_path=file_path, socket_address=socket_address, dry_run=dry_run,
        item="Key Vault diagnostic setting deparrow-audit",
        detail="AuditEvent logs to a Log Analytics workspace", commands=[check, create])
