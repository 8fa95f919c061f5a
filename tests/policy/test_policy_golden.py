"""Golden files: what `policy` prints for fixed configurations, byte for byte.

Regenerate with `UPDATE_GOLDEN=1 pytest tests/policy/test_policy_golden.py`, then
review the diff: these files are the reviewed artefacts (IAM JSON, HCL, az/eksctl/vault
commands), and a change to them is a change of what users paste into their clouds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from policy_configs import (
    AWS_CONFIG,
    AZURE_CONFIG,
    VAULT_CLIENT_TOKEN_CONFIG,
    VAULT_CONFIG,
    VAULT_REVIEWER_CONFIG,
)

GOLDEN = Path(__file__).parent / "golden"
OIDC = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
AZURE_FULL = ["--subscription", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "--resource-group",
              "deparrow-rg", "--identity-name", "deparrow-production-identity",
              "--oidc-issuer", "https://eastus.oic.prod-aks.azure.com/tenant/issuer-id/"]
EXT = {"text": "txt", "json": "json", "hcl": "hcl", "yaml": "yaml", "shell": "sh"}

CASES = [
    ("aws-production", AWS_CONFIG, "production",
     ["--oidc-provider", OIDC, "--cluster", "deparrow-prod"], ["text", "json", "shell"]),
    ("aws-staging-placeholders", AWS_CONFIG, "staging", [], ["text"]),
    ("vault-production", VAULT_CONFIG, "production", [], ["text", "json", "hcl", "yaml"]),
    ("vault-production-client-token", VAULT_CLIENT_TOKEN_CONFIG, "production",
     ["--kubernetes-host", "https://203.0.113.10:6443"], ["text", "yaml"]),
    ("vault-production-reviewer-jwt", VAULT_REVIEWER_CONFIG, "production", [], ["text"]),
    ("azure-production-workload-identity", AZURE_CONFIG, "production", AZURE_FULL,
     ["text", "json", "shell"]),
    ("azure-staging-managed-identity", AZURE_CONFIG, "staging",
     ["--subscription", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "--resource-group",
      "deparrow-rg"], ["text", "json"]),
]


@pytest.mark.parametrize(
    "name, config, env, args, output",
    [(n, c, e, a, o) for n, c, e, a, outputs in CASES for o in outputs],
    ids=[f"{n}.{EXT[o]}" for n, _, _, _, outputs in CASES for o in outputs])
def test_golden(write_config, run_cli, name, config, env, args, output) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(config)), "policy", "--env", env,
                     "--output", output, *args)
    assert result.code == 0, result.err
    path = GOLDEN / f"{name}.{EXT[output]}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(result.out, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert result.out == path.read_text(encoding="utf-8")
