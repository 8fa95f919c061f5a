"""Lint: known mistakes in Kubernetes manifests, the configuration and identity policies.

`engine.lint(paths, project)` returns findings with stable rule ids, declared by the
rule modules (`rules.LINT_RULES`); `deparrow_secrets.findings.output` renders them as
text, json or SARIF 2.1.0 (shared with scan, doctor and posture).
"""
