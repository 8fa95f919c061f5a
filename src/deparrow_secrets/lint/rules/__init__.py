"""Lint rules: small functions over a LintContext, each yielding Findings.

Each rule module declares its rules' metadata (id, severity, title, fix) beside the
checks that report them (`RULES`); one check function may report several related
rule ids (the schema check reports three).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from deparrow_secrets.findings import Finding, Rule
from deparrow_secrets.lint import documents
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.rules import catalog, config, embedded, policy, schema, stores

Check = Callable[[LintContext], Iterable[Finding]]

LINT_RULES: tuple[Rule, ...] = (*documents.RULES, *schema.RULES, *embedded.RULES,
                                *stores.RULES, *catalog.RULES, *policy.RULES)
"""Every lint rule, in the order `lint --list-rules` and SARIF's rule table show them."""

CHECKS: list[Check] = [
    schema.check_schema,
    embedded.check_secret_data,
    embedded.check_generator_literals,
    embedded.check_placeholders,
    embedded.check_env_files,
    stores.check_service_account_ref,
    stores.check_azure_tenant,
    stores.check_refresh,
    stores.check_shared_paths,
    stores.check_shared_stores,
    catalog.check_azure_names,
    catalog.check_catalog_keys,
    catalog.check_targets_consumed,
    policy.check_iam_policies,
    policy.check_vault_policies,
    config.check_config,
]
