"""Fixed configurations of the identity tests (one per provider)."""

from __future__ import annotations

ACCOUNT = "123456789012"

AWS_CONFIG = f"""\
namespace: deparrow
serviceAccount: deparrow-external-secrets-sa
environments:
  dev:
    store: {{provider: local}}
  staging:
    store:
      provider: aws
      region: us-east-1
      accountId: "{ACCOUNT}"
      roleArn: arn:aws:iam::{ACCOUNT}:role/deparrow-external-secrets-staging
  production:
    ha: true
    store:
      provider: aws
      region: us-east-1
      accountId: "{ACCOUNT}"
      roleArn: arn:aws:iam::{ACCOUNT}:role/eso/deparrow-external-secrets
"""

VAULT_CONFIG = """\
environments:
  staging:
    store:
      provider: vault
      server: https://vault.example.com
      audience: vault
      policy: deparrow-secrets-staging
      role: deparrow-secrets-staging
  production:
    ha: true
    store:
      provider: vault
      server: https://vault.example.com
      audience: vault
      policy: deparrow-secrets-production
      role: deparrow-secrets-production
"""

# Vault outside the cluster (OpenBao here), reviewing ESO's token with that token: no
# audience, so the token carries the API server's own.
VAULT_CLIENT_TOKEN_CONFIG = VAULT_CONFIG.replace(
    "      audience: vault\n", "      tokenReview: client-token\n")
# Vault outside the cluster with a token reviewer JWT: audience `vault` is fine there.
VAULT_REVIEWER_CONFIG = VAULT_CONFIG.replace(
    "      audience: vault\n", "      audience: vault\n      tokenReview: reviewer-jwt\n")

AZURE_CONFIG = """\
environments:
  staging:
    store:
      provider: azure
      vaultUrl: https://deparrow-staging-kv.vault.azure.net
      tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
      auth: managed-identity
      identityId: 5a4f0c3e-8f5b-4c8e-9c7d-2b1a0e9f8d7c
  production:
    ha: true
    store:
      provider: azure
      vaultUrl: https://deparrow-production-kv.vault.azure.net
      tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
      auth: workload-identity
      clientId: 0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f
"""
