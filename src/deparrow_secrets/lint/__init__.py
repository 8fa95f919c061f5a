"""Lint: known mistakes in Kubernetes manifests, the configuration and identity policies.

`engine.lint(paths, project)` returns findings with stable rule ids (`findings.RULES`);
`output` renders them as text, json or SARIF 2.1.0 (shared with `scan`).
"""
