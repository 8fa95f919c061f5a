"""deparrow-secrets.yaml: defaults, the fields of the design brief, and bad files.

Every broken file in tests/fixtures/config/ marks the line the error must name with
`# <- error`; the CLI runs as a real process and must exit 2 with one message giving
file, line, key path and what is allowed, and no traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deparrow_secrets.config.settings import ENVIRONMENTS
from deparrow_secrets.errors import ConfigError
from deparrow_secrets.providers import BUILTIN as PROVIDERS
from deparrow_secrets.providers import load_config
from helpers import FIXTURES, REPO_ROOT, assert_input_error, isolate, run_cli, write_config

CONFIG_FIXTURES = FIXTURES / "config"

# (fixture, command, key path or None, fragments of message and hint)
BAD_CONFIGS = [
    ("unknown_top_level_key", "render", "secretStores",
     ["unknown key 'secretStores'", "allowed keys here: namespace, serviceAccount, secretStore"]),
    ("unknown_environment", "status", "environments.prod",
     ["unknown key 'prod'", "allowed keys here: dev, staging, production"]),
    ("unknown_provider", "render", "environments.staging.store.provider",
     ["'gcp' is not allowed", "allowed values: local, vault, aws, azure"]),
    ("ha_not_boolean", "render", "environments.production.ha",
     ["expected true or false, got a string", "allowed values: true, false"]),
    ("bad_duration", "render", "environments.staging.refreshInterval",
     ["'1 hour' is not a valid duration (examples: 1h, 30m, 15s)", "hint: it must match"]),
    ("vault_without_server", "status", "environments.staging.store",
     ["missing required key 'server'", "add `server:` under environments.staging.store"]),
    ("vault_server_not_url", "render", "environments.staging.store.server",
     ["is not a valid URL", "hint: it must match"]),
    ("aws_bad_region", "render", "environments.production.store.region",
     ["'us-east' is not a valid AWS region", "hint: it must match"]),
    ("aws_account_not_12_digits", "status", "environments.production.store.accountId",
     ["'12345678901' is not a valid AWS account id (12 digits, quoted)", "must match \\d{12}"]),
    ("aws_bad_role_arn", "render", "environments.production.store.roleArn",
     ["is not a valid IAM role ARN", "hint: it must match arn:aws"]),
    ("azure_identity_with_workload_identity", "render",
     "environments.production.store.identityId",
     ["identityId goes with `auth: managed-identity`", "use clientId for workload identity"]),
    ("azure_client_with_managed_identity", "render", "environments.production.store.clientId",
     ["clientId goes with `auth: workload-identity`", "use identityId for managed identity"]),
    ("azure_bad_auth", "status", "environments.staging.store.auth",
     ["'pod-identity' is not allowed", "allowed values: workload-identity, managed-identity"]),
    ("azure_missing_tenant", "render", "environments.staging.store",
     ["missing required key 'tenantId'", "add `tenantId:`"]),
    ("optional_keys_names_required_key", "render", "environments.staging.optionalKeys[1]",
     ["'REDIS_PASSWORD' is not an optional value of the catalog",
      "optional values: ANTHROPIC_API_KEY, OPENAI_API_KEY"]),
    ("optional_keys_unknown_key", "status", "environments.staging.optionalKeys[0]",
     ["'ANTHROPIC_APIKEY' is not an optional value", "optional values: ANTHROPIC_API_KEY"]),
    ("optional_keys_not_a_list", "render", "environments.staging.optionalKeys",
     ["expected a list, got a string", "hint: write the items as [A, B]"]),
    ("yaml_syntax_error", "render", None,
     ["invalid YAML: mapping values are not allowed here", "fix the YAML syntax"]),
    ("duplicate_key", "status", None,
     ["duplicate key 'store'", "a key may appear once per mapping"]),
    ("unknown_store_key", "render", "environments.dev.store.server",
     ["unknown key 'server'", "allowed keys here: provider, path"]),
    ("bad_namespace", "status", "namespace",
     ["'Deparrow_NS' is not a valid Kubernetes namespace", "hint: it must match"]),
    ("environment_not_a_mapping", "render", "environments.dev",
     ["expected a mapping, got a string", "hint: write `key: value` lines"]),
    ("top_level_not_a_mapping", "render", "(top level)",
     ["expected a mapping, got a list", "hint:"]),
    ("azure_identity_id_not_guid", "render", "environments.staging.store.identityId",
     ["identityId must be the managed identity's client id (a GUID)",
      "az identity show --name <IDENTITY> --resource-group <GROUP> --query clientId"]),
    ("vault_client_token_vault_audience", "render", "environments.staging.store.audience",
     ["tokenReview: client-token with audience 'vault' cannot log in", "(403)",
      "remove `audience:`", "tokenReview: reviewer-jwt"]),
    ("vault_bad_token_review", "status", "environments.staging.store.tokenReview",
     ["'outside' is not allowed", "in-cluster, reviewer-jwt, client-token"]),
]


def test_every_config_fixture_is_in_the_table() -> None:
    assert {p.stem for p in CONFIG_FIXTURES.glob("*.yaml")} == {c[0] for c in BAD_CONFIGS}
    assert len(BAD_CONFIGS) >= 15


@pytest.mark.parametrize(("fixture", "command", "key_path", "fragments"), BAD_CONFIGS,
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_one_located_error(tmp_path: Path, fixture: str, command: str,
                                         key_path: str | None, fragments: list[str]) -> None:
    source = CONFIG_FIXTURES / f"{fixture}.yaml"
    shutil.copy(source, tmp_path / source.name)
    run = run_cli(["--config", source.name, command], cwd=tmp_path)
    assert_input_error(run, source, key_path, fragments)
    assert run.out == ""
    # Nothing was written next to the broken file.
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_secret_values_in_a_bad_line_are_not_echoed(tmp_path: Path) -> None:
    """A duplicate key reports the key, not the values ruamel would quote."""
    import secrets

    first, second = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    write_config(tmp_path, f"namespace: {first.lower()}\nnamespace: {second.lower()}\n")
    run = run_cli(["status"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "duplicate key 'namespace'" in run.err
    assert first.lower() not in run.err and second.lower() not in run.err


def test_missing_config_file_named_with_config_option(tmp_path: Path) -> None:
    run = run_cli(["--config", "nowhere.yaml", "status"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "nowhere.yaml: file not found" in run.err
    assert "Traceback" not in run.err


def test_unknown_environment_on_the_command_line(tmp_path: Path) -> None:
    run = run_cli(["status", "--env", "prod"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "unknown environment 'prod'" in run.err
    assert "allowed names: dev, staging, production" in run.err
    run = run_cli(["status", "--env", "staging"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "add it under `environments:`" in run.err
    assert not (tmp_path / ".deparrow-secrets").exists()


# --------------------------------------------------------------------------- valid files


def test_no_file_means_dev_on_the_embedded_store(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path)
    assert config.file is None
    assert list(config.environments) == ["dev"]
    dev = config.environments["dev"]
    assert (dev.provider, dev.ha, dev.uses_eso) == ("local", False, False)
    assert (config.namespace, config.service_account, config.secret_store) == (
        "deparrow", "deparrow-external-secrets-sa", "deparrow-secretstore")
    assert config.manifests_dir == tmp_path / "deparrow" / "k8s"


def test_the_repository_configuration() -> None:
    config = load_config(REPO_ROOT / "deparrow-secrets.yaml")
    assert list(config.environments) == ENVIRONMENTS
    staging, production = config.environments["staging"], config.environments["production"]
    assert staging.provider == "vault" and not staging.ha
    assert staging.store.server == "https://vault.deparrow.internal:8200"
    assert (staging.store.mount, staging.store.auth_mount, staging.store.audience) == (
        "secret", "kubernetes", "vault")
    assert staging.remote_path == "deparrow/staging"
    assert production.provider == "aws" and production.ha
    assert production.store.account_id == "381492097654"
    assert production.remote_path == "deparrow/production"
    assert production.refresh_interval == "1h"


def test_defaults_of_every_provider(tmp_path: Path) -> None:
    write_config(tmp_path, """\
environments:
  dev:
    store: {provider: local, path: state/dev.db}
  staging:
    store: {provider: vault, server: "http://vault.vault.svc:8200"}
  production:
    store: {provider: azure, vaultUrl: "https://kv.vault.azure.net", tenantId: tid}
""")
    config = load_config(cwd=tmp_path)
    dev, staging, production = (config.environments[n] for n in ENVIRONMENTS)
    assert dev.store.path == "state/dev.db" and not dev.ha
    assert (staging.store.mount, staging.store.role, staging.store.auth_mount) == (
        "secret", "deparrow-secrets", "kubernetes")
    assert staging.remote_path == "deparrow/staging" and staging.refresh_interval == "1h"
    assert production.ha, "production is HA unless it says otherwise"
    assert production.store.auth == "workload-identity"
    assert {e.provider for e in config.environments.values()} <= set(PROVIDERS)


def test_custom_paths_and_names(tmp_path: Path) -> None:
    write_config(tmp_path, """\
namespace: shop
serviceAccount: shop-eso
secretStore: shop-store
manifests: deploy/k8s
environments:
  staging:
    ha: true
    refreshInterval: 15m
    optionalKeys: [OPENAI_API_KEY]
    store: {provider: vault, server: "https://v.example.com", path: apps/shop/staging}
  production:
    ha: false
    refreshInterval: "0"
    store: {provider: aws, region: eu-west-1, prefix: shop/prod}
""")
    config = load_config(cwd=tmp_path)
    staging, production = config.environments["staging"], config.environments["production"]
    assert (config.namespace, config.service_account, config.secret_store) == (
        "shop", "shop-eso", "shop-store")
    assert config.manifests_dir == tmp_path / "deploy" / "k8s"
    assert staging.ha and staging.refresh_interval == "15m"
    assert staging.optional_keys == frozenset({"OPENAI_API_KEY"})
    assert staging.remote_path == "apps/shop/staging"
    assert not production.ha and production.refresh_interval == "0"
    assert production.remote_path == "shop/prod"


def test_catalog_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config_file = tmp_path / "conf" / "deparrow-secrets.yaml"
    config_file.write_text("catalog: app-catalog.yaml\n", encoding="utf-8")
    config = load_config(config_file, cwd=tmp_path)
    assert config.catalog == tmp_path / "conf" / "app-catalog.yaml"
    assert config.root == tmp_path / "conf"


def test_config_error_is_an_input_error_with_location(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n    ha: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert (info.value.line, info.value.key_path) == (4, "environments.dev.ha")
    assert info.value.exit_code == 2
