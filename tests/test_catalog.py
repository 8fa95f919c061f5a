"""The catalog: the guide's tables as data, another application's catalog, bad files.

Broken catalogs in tests/fixtures/catalog/ mark the line the error must name with
`# <- error`. They are used by a project whose staging environment is on Azure Key
Vault, so key names that cannot become distinct Key Vault names are errors too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deparrow_secrets.config.catalog import ALPHABETS, load_catalog
from deparrow_secrets.providers.azure.settings import secret_name as azure_name
from helpers import (
    CATALOG_FILE,
    FIXTURES,
    assert_input_error,
    invoke,
    isolate,
    load_documents,
    load_yaml_file,
    run_cli,
    write_config,
)

CATALOG_FIXTURES = FIXTURES / "catalog"

AZURE_PROJECT = """\
catalog: {catalog}
environments:
  dev:
    store: {{provider: local}}
  staging:
    store:
      provider: azure
      vaultUrl: https://deparrow-kv.vault.azure.net
      tenantId: 00000000-0000-0000-0000-000000000000
      clientId: 11111111-1111-1111-1111-111111111111
"""

# (fixture, command, key path or None, fragments of message and hint)
BAD_CATALOGS = [
    ("value_without_requirement", "render", "values.API_TOKEN",
     ["missing required key 'requirement'", "add `requirement:` under values.API_TOKEN"]),
    ("secret_lists_undefined_key", "status", "secrets.app-secrets[2]",
     ["'UNDEFINED_KEY' is not defined under values", "add it under `values:`"]),
    ("bad_alphabet", "render", "values.API_TOKEN.generate.alphabet",
     ["'base32' is not allowed", "allowed values: alphanumeric, urlsafe, hex, printable"]),
    ("length_out_of_range", "render", "values.API_TOKEN.generate.length",
     ["5000 is out of range", "use a number from 8 to 4096"]),
    ("shared_remote_home", "status", "values.DB_ADMIN_PASSWORD.remote",
     ["'DB_ADMIN_PASSWORD' and 'DB_PASSWORD' share the remote home database.password",
      "each value needs its own group/property"]),
    ("key_in_no_secret", "render", "values.ORPHAN_KEY",
     ["'ORPHAN_KEY' is in no Kubernetes Secret", "list it under `secrets:`"]),
    ("azure_name_collision", "render", "values.API-TOKEN",
     ["'API-TOKEN' and 'API_TOKEN' map to the same Key Vault secret 'API-TOKEN'",
      "environment staging", "underscores become dashes"]),
    ("azure_case_collision", "status", "values.api_token",
     ["'api_token' and 'API_TOKEN' map to the same Key Vault secret", "case-insensitive"]),
    ("azure_invalid_name", "render", "values.APP.TOKEN",
     ["'APP.TOKEN' cannot be a Key Vault secret name (only 0-9, a-z, A-Z and -)",
      "rename the key"]),
    ("bad_requirement", "render", "values.API_TOKEN.requirement",
     ["'sometimes' is not allowed", "allowed values: required, ha, optional"]),
    ("default_without_value", "status", "values.DB_USER",
     ["`source: default` needs a `default:` value", "add `default:` under values.DB_USER"]),
    ("generate_with_user_source", "render", "values.API_TOKEN.generate",
     ["`generate` only goes with `source: generated`", "remove `generate:`"]),
    ("bad_secret_name", "render", "secrets.App_Secrets",
     ["'App_Secrets' is not a valid Kubernetes Secret name", "hint: it must match"]),
    ("unknown_value_field", "status", "values.API_TOKEN.minLenght",
     ["unknown key 'minLenght'", "allowed keys here: description, requirement, source"]),
    ("secret_without_keys", "render", "secrets.empty-secret",
     ["a Secret needs at least one key", "hint:"]),
    ("duplicate_value", "render", None,
     ["duplicate key 'API_TOKEN'", "a key may appear once per mapping"]),
    ("missing_secrets_section", "status", "(top level)",
     ["missing required key 'secrets'", "add `secrets:`"]),
]


def test_every_catalog_fixture_is_in_the_table() -> None:
    names = {p.stem for p in CATALOG_FIXTURES.glob("*.yaml")} - {"valid"}
    assert names == {c[0] for c in BAD_CATALOGS}


@pytest.mark.parametrize(("fixture", "command", "key_path", "fragments"), BAD_CATALOGS,
                         ids=[c[0] for c in BAD_CATALOGS])
def test_bad_catalog_is_one_located_error(tmp_path: Path, fixture: str, command: str,
                                          key_path: str | None, fragments: list[str]) -> None:
    source = CATALOG_FIXTURES / f"{fixture}.yaml"
    shutil.copy(source, tmp_path / source.name)
    write_config(tmp_path, AZURE_PROJECT.format(catalog=source.name))
    run = run_cli([command], cwd=tmp_path)
    assert_input_error(run, source, key_path, fragments)
    assert not (tmp_path / "deparrow").exists() and not (tmp_path / ".deparrow-secrets").exists()


def test_azure_names_are_only_checked_where_azure_is_used(tmp_path: Path) -> None:
    """The same catalog is fine for Vault and AWS, which keep the key names as they are."""
    shutil.copy(CATALOG_FIXTURES / "azure_invalid_name.yaml", tmp_path / "catalog.yaml")
    write_config(tmp_path, "catalog: catalog.yaml\nenvironments:\n  staging:\n"
                 "    store: {provider: vault, server: 'https://vault.example.com'}\n")
    run = run_cli(["render"], cwd=tmp_path)
    assert run.code == 0, run.text


def test_catalog_option_overrides_and_missing_file_is_named(tmp_path: Path) -> None:
    shutil.copy(CATALOG_FIXTURES / "bad_requirement.yaml", tmp_path / "broken.yaml")
    run = run_cli(["--catalog", "broken.yaml", "status"], cwd=tmp_path)
    assert run.code == 2 and "broken.yaml:3: values.API_TOKEN.requirement: " in run.err, run.text
    run = run_cli(["--catalog", "absent.yaml", "status"], cwd=tmp_path)
    assert run.code == 2 and "absent.yaml: file not found" in run.err, run.text
    assert "Traceback" not in run.err


# --------------------------------------------------------------------------- DEparrow's catalog


def test_the_guides_tables_as_data() -> None:
    catalog = load_catalog()
    assert {s.name: list(s.keys) for s in catalog.secrets} == {
        "deparrow-secrets": ["DEPARROW_JWT_SECRET", "DEPARROW_SECRET_KEY", "POSTGRES_PASSWORD",
                             "POSTGRES_REPLICATION_PASSWORD", "REDIS_PASSWORD",
                             "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD",
                             "ANTHROPIC_API_KEY", "OPENAI_API_KEY"],
        "postgres-credentials": ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"],
        "redis-credentials": ["REDIS_PASSWORD"],
    }
    requirement = {k: v.requirement for k, v in catalog.values.items()}
    assert requirement.pop("POSTGRES_REPLICATION_PASSWORD") == "ha"
    assert requirement.pop("ANTHROPIC_API_KEY") == requirement.pop("OPENAI_API_KEY") == "optional"
    assert set(requirement.values()) == {"required"}
    assert catalog.values["POSTGRES_USER"].default == "deparrow"
    assert catalog.values["POSTGRES_DB"].default == "deparrow"
    assert catalog.values["ANTHROPIC_API_KEY"].source == "user"
    for value in catalog.values.values():
        if value.source == "generated":
            assert value.generate is not None and value.generate.length >= 32
            assert value.generate.alphabet in ALPHABETS
            assert value.min_length == value.generate.length
        assert value.description


def test_shared_values_are_one_value_with_one_home() -> None:
    catalog = load_catalog()
    carriers = {key: [s.name for s in catalog.secrets if key in s.keys] for key in catalog.values}
    assert carriers["POSTGRES_PASSWORD"] == ["deparrow-secrets", "postgres-credentials"]
    assert carriers["REDIS_PASSWORD"] == ["deparrow-secrets", "redis-credentials"]
    assert len(catalog.values) == len({(v.group, v.property or v.name)
                                       for v in catalog.values.values()})
    # The guide's AWS layout: database and redis objects with their own property names.
    homes = {k: (v.group, v.property or k) for k, v in catalog.values.items()}
    assert homes["POSTGRES_PASSWORD"] == ("database", "password")
    assert homes["POSTGRES_USER"] == ("database", "username")
    assert homes["POSTGRES_DB"] == ("database", "database")
    assert homes["REDIS_PASSWORD"] == ("redis", "password")
    assert homes["DEPARROW_JWT_SECRET"] == ("secrets", "DEPARROW_JWT_SECRET")
    assert len({azure_name(k).lower() for k in catalog.values}) == len(catalog.values)


@pytest.mark.parametrize(("ha", "optional", "extra"), [
    (False, frozenset(), set()),
    (True, frozenset(), {"POSTGRES_REPLICATION_PASSWORD"}),
    (False, frozenset({"OPENAI_API_KEY"}), {"OPENAI_API_KEY"}),
    (True, frozenset({"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}),
     {"POSTGRES_REPLICATION_PASSWORD", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"}),
])
def test_needed_values_follow_ha_and_optional_keys(ha: bool, optional: frozenset[str],
                                                   extra: set[str]) -> None:
    catalog = load_catalog()
    required = {k for k, v in catalog.values.items() if v.requirement == "required"}
    assert {v.name for v in catalog.needed(ha, optional)} == required | extra
    redis = next(s for s in catalog.secrets if s.name == "redis-credentials")
    assert catalog.secret_keys(redis, ha, optional) == ["REDIS_PASSWORD"]


def test_catalog_file_matches_the_parsed_catalog() -> None:
    """The test helpers read the YAML directly; both readings must agree."""
    raw = load_yaml_file(CATALOG_FILE)
    catalog = load_catalog()
    assert list(raw["values"]) == list(catalog.values)
    assert {k: v["requirement"] for k, v in raw["values"].items()} == {
        k: v.requirement for k, v in catalog.values.items()}


def test_another_applications_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing is hard-wired to DEparrow: the tree follows the catalog given."""
    shutil.copy(CATALOG_FIXTURES / "valid.yaml", tmp_path / "app-catalog.yaml")
    write_config(tmp_path, """\
catalog: app-catalog.yaml
environments:
  dev:
    store: {provider: local}
  production:
    store: {provider: aws, region: eu-central-1}
""")
    isolate(monkeypatch, tmp_path)
    run = invoke(capsys, ["render"])
    assert run.code == 0, run.text
    patch = tmp_path / "deparrow/k8s/overlays/production/patches/external-secrets.yaml"
    docs = load_documents(patch.read_text(encoding="utf-8"))
    externals = [d for d in docs if d["kind"] == "ExternalSecret"]
    assert [d["metadata"]["name"] for d in externals] == ["app-secrets-external"]
    assert externals[0]["spec"]["target"]["name"] == "app-secrets"
    assert {d["secretKey"]: d["remoteRef"] for d in externals[0]["spec"]["data"]} == {
        "API_TOKEN": {"key": "deparrow/production/secrets", "property": "API_TOKEN"},
        "DB_USER": {"key": "deparrow/production/secrets", "property": "DB_USER"},
    }
    assert "DEPARROW" not in patch.read_text(encoding="utf-8")
    run = invoke(capsys, ["provision", "--env", "dev", "-o", "json"])
    assert run.code == 0, run.text
    actions = {k["key"]: k["action"] for k in run.json()["keys"]}
    assert actions == {"API_TOKEN": "generate", "DB_USER": "default"}
    run = invoke(capsys, ["get", "DB_USER", "--reveal"])
    assert run.out == "app\n"
    run = invoke(capsys, ["get", "API_TOKEN", "--reveal"])
    token = run.out.strip()
    assert len(token) == 32 and set(token) <= set(ALPHABETS["urlsafe"])
