"""Azure: ESO fields of the SecretStore, role assignment scope, printed commands."""

from __future__ import annotations

import json
import socket

import pytest
from policy_configs import AZURE_CONFIG

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.policy import build_plan, run_setup
from deparrow_secrets.providers.azure.identity import ROLE, vault_scope
from deparrow_secrets.providers.azure.settings import AzureSettings, vault_name
from deparrow_secrets.providers.identity_plan import Options
from deparrow_secrets.render.manifests import secret_store, service_account
from deparrow_secrets.render.validate import validate_object

FULL = Options(subscription="0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", resource_group="deparrow-rg",
               oidc_issuer="https://eastus.oic.prod-aks.azure.com/tenant/issuer-id/")


@pytest.fixture
def config(write_config, load):  # type: ignore[no-untyped-def]
    return load(write_config(AZURE_CONFIG))


def commands(plan) -> list[str]:  # type: ignore[no-untyped-def]
    """The command lines with continuations joined."""
    return [" ".join(line.replace("\\\n", " ").split()) for line in plan.piece("commands").data]


@pytest.mark.parametrize("env_name, auth_type", [("production", "WorkloadIdentity"),
                                                 ("staging", "ManagedIdentity")])
def test_secret_store_validates_against_the_eso_crd(config, env_name, auth_type) -> None:  # type: ignore[no-untyped-def]
    env = config.environment(env_name)
    store = secret_store(config, env)
    assert validate_object(store) == []  # unknown fields rejected
    block = store["spec"]["provider"]["azurekv"]
    assert block["authType"] == auth_type
    assert "authManagedIdentity" not in block  # the guide's field, which ESO does not have
    guide_style = json.loads(json.dumps(store))
    guide_style["spec"]["provider"]["azurekv"]["authManagedIdentity"] = {"identityId": "x"}
    assert [p.rule for p in validate_object(guide_style)] == ["unknown-field"]
    if auth_type == "WorkloadIdentity":
        assert block["serviceAccountRef"] == {"name": "deparrow-external-secrets-sa"}
        assert "identityId" not in block
    else:
        assert block["identityId"] == env.store.identity_id
        assert "serviceAccountRef" not in block
    # what `policy` prints is that same object
    plan = build_plan(config, env, FULL)
    assert plan.piece("secretStore").data == [store]
    for piece in plan.pieces:
        if piece.format == "yaml":
            for obj in piece.data:
                assert validate_object(obj) == [], obj["kind"]


def test_workload_identity_pieces(config) -> None:  # type: ignore[no-untyped-def]
    env = config.environment("production")
    plan = build_plan(config, env, FULL)
    sa = plan.piece("serviceAccount").data[0]
    assert sa == service_account(config, env)
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f",
        "azure.workload.identity/tenant-id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}
    fc = plan.piece("federatedCredential").data
    assert fc["subject"] == "system:serviceaccount:deparrow:deparrow-external-secrets-sa"
    assert fc["audiences"] == ["api://AzureADTokenExchange"]
    assert fc["issuer"] == FULL.text("oidc_issuer")
    assert plan.piece("accessPolicy").data["secretPermissions"] == ["get"]
    lines = commands(plan)
    assert (
        "az role assignment create --role 'Key Vault Secrets User' --assignee-object-id "
        '"$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal --scope '
        "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/deparrow-rg/"
        "providers/Microsoft.KeyVault/vaults/deparrow-production-kv") in lines
    assert (
        "az identity federated-credential create --name deparrow-external-secrets-sa-production"
        " --identity-name deparrow-secrets-identity --resource-group deparrow-rg --issuer "
        "https://eastus.oic.prod-aks.azure.com/tenant/issuer-id/ --subject "
        "system:serviceaccount:deparrow:deparrow-external-secrets-sa --audiences "
        "api://AzureADTokenExchange") in lines
    assert ("# az keyvault set-policy --name deparrow-production-kv --object-id "
            '"$PRINCIPAL_ID" --secret-permissions get') in lines
    assert not any("list" in line.split("--secret-permissions")[-1] for line in lines
                   if "set-policy" in line)
    assert not plan.warnings


def test_managed_identity_has_no_federated_credential(config) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment("staging"), FULL)
    keys = [p.key for p in plan.pieces]
    assert "federatedCredential" not in keys and "managedIdentity" in keys
    assert not any("federated-credential" in line for line in commands(plan))
    assert plan.piece("roleAssignment").data["assignee"]["clientId"] == \
        "5a4f0c3e-8f5b-4c8e-9c7d-2b1a0e9f8d7c"


def test_production_cannot_read_staging(config) -> None:  # type: ignore[no-untyped-def]
    scopes = {}
    for name in ("staging", "production"):
        plan = build_plan(config, config.environment(name), FULL)
        scopes[name] = plan.piece("roleAssignment").data["scope"]
        other = "staging" if name == "production" else "production"
        # nothing in the plan names the other environment's vault
        assert f"deparrow-{other}-kv" not in json.dumps(plan.to_json())
        assert scopes[name].endswith(f"/vaults/deparrow-{name}-kv")
    assert scopes["production"] != scopes["staging"]
    assert not scopes["production"].startswith(scopes["staging"])  # not a parent scope


def test_shared_vault_is_reported(write_config, load) -> None:  # type: ignore[no-untyped-def]
    config = load(write_config(AZURE_CONFIG.replace("deparrow-staging-kv",
                                                    "deparrow-production-kv")))
    plan = build_plan(config, config.environment("production"), FULL)
    assert any("staging use the same Key Vault" in w for w in plan.warnings)


def test_a_shared_vault_is_reported_however_its_url_is_written(write_config, load) -> None:  # type: ignore[no-untyped-def]
    config = load(write_config(AZURE_CONFIG.replace(
        "https://deparrow-staging-kv.vault.azure.net", "https://Deparrow-Production-KV.vault.azure.net/")))
    plan = build_plan(config, config.environment("production"), FULL)
    assert any("staging use the same Key Vault" in w for w in plan.warnings)


VAULT_URLS = [
    ("https://deparrow-kv.vault.azure.net", "deparrow-kv"),
    ("https://Deparrow-KV.vault.azure.net/", "deparrow-kv"),
    ("https://deparrow-kv.vault.azure.cn", "deparrow-kv"),
    ("https://deparrow-kv.vault.usgovcloudapi.net", "deparrow-kv"),
    ("https://deparrow-hsm.managedhsm.azure.net", "deparrow-hsm"),
    # Outside Key Vault's domains (an emulator): the whole host, as the store's hints say.
    ("https://kv.example.internal:8443", "kv.example.internal"),
]


@pytest.mark.parametrize("url, name", VAULT_URLS)
def test_the_role_scope_names_the_vault_as_the_store_does(url: str, name: str) -> None:
    env = EnvironmentConfig("production", AzureSettings(vault_url=url, tenant_id="t"))
    assert vault_name(url) == name  # the helper the store's hints use
    assert vault_scope(env, "s", "g") == ("/subscriptions/s/resourceGroups/g/providers/"
                                          f"Microsoft.KeyVault/vaults/{name}")


def test_placeholders_and_lookups(config) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment("production"), Options(cluster="aks-prod"))
    assert vault_scope(config.environment("production"), None, None) == \
        plan.piece("roleAssignment").data["scope"]
    assert "<SUBSCRIPTION_ID>" in plan.piece("roleAssignment").data["scope"]
    lines = commands(plan)
    assert any('--scope "$(az keyvault show --name deparrow-production-kv --query id '
               '--output tsv)"' in line for line in lines)
    assert any("--issuer \"$(az aks show --name aks-prod --resource-group '<RESOURCE_GROUP>' "
               "--query oidcIssuerProfile.issuerUrl --output tsv)\"" in line for line in lines)
    assert any("placeholders" in w for w in plan.warnings)


def test_setup_prints_and_calls_nothing(config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_network(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("setup for azure must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    report = run_setup(config, config.environment("production"), FULL)
    assert not report.changed
    assert {c.action for c in report.changes} == {"printed"}
    assert report.commands == build_plan(config, config.environment("production"),
                                         FULL).piece("commands").data
    assert any(ROLE in line for line in report.commands)
