"""`store:` of an environment on HashiCorp Vault or OpenBao (KV v2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from deparrow_secrets.config.settings import STORE_PATH, URL, EnvironmentConfig, StoreSettings
from deparrow_secrets.config.yamlfile import Checker, KeyPath
from deparrow_secrets.record import record

# How Vault's kubernetes auth reviews the token ESO logs in with (TokenReview):
# - in-cluster: Vault runs in a pod of the cluster and reviews with its own pod's token
#   (that account, not ESO's, needs system:auth-delegator);
# - reviewer-jwt: Vault runs outside and reviews with a long-lived reviewer JWT (the
#   reviewer's account needs system:auth-delegator);
# - client-token: Vault runs outside and reviews each token with that token itself, so
#   ESO's ServiceAccount needs system:auth-delegator and the token must be valid for
#   the API server's own audience (a token whose only audience is `vault` gets 403).
TOKEN_REVIEW = ["in-cluster", "reviewer-jwt", "client-token"]
KEYS = ["provider", "server", "mount", "path", "role", "authMount", "audience", "namespace",
        "policy", "tokenReview"]


@record
class VaultSettings(StoreSettings):
    provider: ClassVar[str] = "vault"

    server: str | None = None
    mount: str = "secret"
    path: str | None = None
    role: str = "deparrow-secrets"
    auth_mount: str = "kubernetes"
    audience: str | None = None
    vault_namespace: str | None = None
    policy: str = "deparrow-secrets-policy"
    token_review: str = "in-cluster"

    def remote_path(self, environment: str) -> str:
        return self.path or f"deparrow/{environment}"

    def location(self, environment: str) -> tuple[str, ...]:
        return ("vault", (self.server or "").rstrip("/"), self.vault_namespace or "",
                self.mount, self.remote_path(environment))


def parse(c: Checker, path: KeyPath, m: Mapping[str, Any]) -> VaultSettings:
    c.mapping(path, m, KEYS, required=("server",))

    def s(key: str, pattern: str | None = None, what: str | None = None) -> str | None:
        return None if m.get(key) is None else \
            c.string((*path, key), m[key], pattern=pattern, what=what)

    review = c.choice((*path, "tokenReview"), m.get("tokenReview", "in-cluster"), TOKEN_REVIEW)
    vault = VaultSettings(
        server=s("server", URL, "URL"), mount=s("mount", STORE_PATH) or "secret",
        path=s("path", STORE_PATH, "Vault path"), role=s("role") or "deparrow-secrets",
        auth_mount=s("authMount", STORE_PATH) or "kubernetes", audience=s("audience"),
        vault_namespace=s("namespace"), policy=s("policy") or "deparrow-secrets-policy",
        token_review=review)
    if review == "client-token" and vault.audience and vault_only_audience(vault.audience):
        raise c.fail(
            (*path, "audience"),
            f"tokenReview: client-token with audience '{vault.audience}' cannot log in: "
            "Vault reviews ESO's token with that same token, and the API server rejects "
            "a token whose only audience is not its own (403)",
            hint="remove `audience:` (the token then carries the API server's default "
            "audience), or set it to an audience the API server accepts, or use "
            "`tokenReview: reviewer-jwt` with --token-reviewer-jwt-file")
    return vault


def vault_only_audience(audience: str) -> bool:
    """An audience only Vault uses (`vault`, `openbao`, `https://vault.example.com`), which
    a Kubernetes API server never accepts as its own."""
    lowered = audience.lower()
    return ("vault" in lowered or "bao" in lowered) and "kubernetes" not in lowered


def settings_of(env: EnvironmentConfig) -> VaultSettings:
    if not isinstance(env.store, VaultSettings):
        raise TypeError(f"environment {env.name} is not on Vault")
    return env.store
