"""The three practices the tool already enforces, reported from the existing checks:
nothing committed (lint's embedded-value rules and scan), least privilege (lint's policy
rules and the scope of the policy `policy` renders), separate stores (lint's store rule
and verify's configured locations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.findings import ERROR, Finding, Rule, declare
from deparrow_secrets.posture.model import FAIL, PASS, UNKNOWN, Verdict
from deparrow_secrets.project import Project
from deparrow_secrets.providers import builtin_settings
from deparrow_secrets.providers.aws.settings import AwsSettings
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.local.settings import LocalSettings
from deparrow_secrets.providers.vault.settings import VaultSettings

RULES = declare(
    Rule("nothing-committed", ERROR,
         "No secret value is committed: lint's embedded-value rules over the manifests and "
         "the configuration, and scan of the working tree for the environment's values.",
         "deparrow-secrets lint and deparrow-secrets scan --env ENV name each file and key; "
         "move the value to the store and rotate it.", tool="posture"),
    Rule("least-privilege", ERROR,
         "ESO's identity can read one environment's secrets and nothing more: lint's policy "
         "rules over the committed policies, and the scope of the policy the tool renders.",
         "deparrow-secrets policy --env ENV prints the scoped policy; deparrow-secrets "
         "setup --env ENV applies it.", tool="posture"),
    Rule("separate-stores", ERROR,
         "Each environment has its own store location: lint's store rule over manifests and "
         "configuration, and verify's check of the configured locations.",
         "Give each environment its own store location (path, prefix or Key Vault).",
         tool="posture"),
)

COMMITTED_RULES = ("secret-data-outside-dev", "generator-literals-outside-dev",
                   "placeholder-value")
PRIVILEGE_RULES = ("policy-too-broad", "policy-wildcard-action")
STORE_RULES = ("store-shared-between-envs",)


def _where(findings: Sequence[Finding]) -> list[str]:
    return [f"{f.file}{':' + str(f.line) if f.line else ''} [{f.rule}]"
            + (f" at {f.key_path}" if f.key_path else "") for f in findings[:10]] + \
        ([f"... {len(findings) - 10} more"] if len(findings) > 10 else [])


def lint_tree(project: Project) -> tuple[list[Finding], int]:
    from deparrow_secrets.lint.engine import lint

    result = lint([], project, cwd=project.config.root)
    return result.findings, len(result.files)


def nothing_committed(project: Project, env: EnvironmentConfig,
                      findings: Sequence[Finding], files: int) -> Verdict:
    from deparrow_secrets.scan.engine import scan
    from deparrow_secrets.scan.values import environment_values

    linted = [f for f in findings if f.rule in COMMITTED_RULES]
    evidence = [f"lint: {files} file(s), {len(linted)} embedded-value finding(s)"]
    values, note = environment_values(project, env, remote=True)
    scanned = scan(values, env.name, [], project, history=False, generic=False)
    evidence.append(f"scan: {len(values)} value(s) of {env.name} searched in "
                    f"{scanned.stats.files} file(s) of the working tree, "
                    f"{len(scanned.findings)} found")
    if note:
        evidence.append(note)
    bad = linted + scanned.findings
    if bad:
        return Verdict("nothing-committed", "repository", FAIL,
                       f"{len(bad)} committed secret value(s) or placeholder(s)",
                       evidence + _where(bad),
                       fix=f"deparrow-secrets lint and deparrow-secrets scan --env {env.name} "
                       f"{'--remote ' if env.uses_eso else ''}name each file and key: move "
                       "the value to the store, and rotate any value that was committed")
    return Verdict("nothing-committed", "repository", PASS,
                   "no secret value in the manifests, the configuration or the working tree",
                   evidence)


def least_privilege(project: Project, env: EnvironmentConfig,
                    findings: Sequence[Finding]) -> Verdict:
    broad = [f for f in findings if f.rule in PRIVILEGE_RULES]
    evidence = [f"lint's policy rules: {len(broad)} finding(s)"]
    scope = _rendered_scope(project, env)
    if scope:
        evidence.append(scope)
    if broad:
        return Verdict("least-privilege", env.provider, FAIL,
                       f"{len(broad)} committed policy(ies) grant more than one environment "
                       "or wildcard actions", evidence + _where(broad),
                       fix=f"replace them with what deparrow-secrets policy --env {env.name} "
                       f"prints; apply with deparrow-secrets setup --env {env.name}")
    if not env.uses_eso:
        return Verdict("least-privilege", env.provider, PASS, "dev uses no ESO identity: the "
                       "embedded store is read by the tool only", evidence)
    return Verdict("least-privilege", env.provider, PASS, "ESO's identity is scoped to "
                   f"{env.name}'s secrets", evidence,
                   commands=[f"deparrow-secrets setup --env {env.name} --dry-run (compares "
                             "what the store has with the scoped policy)"])


def _rendered_scope(project: Project, env: EnvironmentConfig) -> str | None:
    match builtin_settings(env):
        case AwsSettings() as aws:
            from deparrow_secrets.providers.aws.identity import actions, secret_arn_pattern

            account = aws.account_id or "ACCOUNT"
            return (f"rendered IAM policy: {', '.join(actions(env))} on "
                    f"{secret_arn_pattern(env, account)}"
                    + (f", kms:Decrypt on {aws.kms_key_arn}" if aws.kms_key_arn else ""))
        case VaultSettings() as vault:
            from deparrow_secrets.providers.vault.identity import data_path

            return f"rendered Vault policy {vault.policy}: read on {data_path(env)}"
        case AzureSettings():
            return "rendered role assignment: Key Vault Secrets User on the vault of " \
                f"{env.name} only"
        case LocalSettings() | None:
            return None
        case unknown:
            assert_never(unknown)


def separate_stores(project: Project, env: EnvironmentConfig,
                    findings: Sequence[Finding]) -> Verdict:
    shared = [line for line in project.config.shared_store_locations() if f" {env.name} " in
              f" {line.replace(',', ' ')} "]
    linted = [f for f in findings if f.rule in STORE_RULES]
    location = env.store.location(env.name)
    evidence = [f"{env.name}: {location[0]} {' '.join(p for p in location[1:] if p)}",
                f"lint's store rule: {len(linted)} finding(s)"]
    if shared or linted:
        return Verdict("separate-stores", env.provider, FAIL,
                       "another environment uses the same store location",
                       evidence + shared + _where(linted),
                       fix="give each environment its own location (Vault path, AWS prefix, "
                       "Key Vault or local store file) in deparrow-secrets.yaml")
    if len(project.config.environments) < 2:
        return Verdict("separate-stores", env.provider, UNKNOWN, "only one environment is "
                       "configured", evidence, fix="nothing to do until a second "
                       "environment is added", reason="nothing to compare with")
    return Verdict("separate-stores", env.provider, PASS,
                   f"{env.name} has a store location of its own", evidence)
