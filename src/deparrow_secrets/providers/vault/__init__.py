"""HashiCorp Vault and OpenBao (KV v2), read by ESO's `vault` provider with kubernetes auth."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deparrow_secrets.providers.interface import EsoProvider, IdentityOption
from deparrow_secrets.providers.vault import settings
from deparrow_secrets.providers.vault.settings import settings_of

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig
    from deparrow_secrets.config.yamlfile import Checker, KeyPath
    from deparrow_secrets.stores.interface import SecretStore


class VaultProvider(EsoProvider):
    name = "vault"
    identity_options: tuple[IdentityOption, ...] = (
        IdentityOption("kubernetes_host", "--kubernetes-host", "URL",
                       "the Kubernetes API as Vault reaches it "
                       "(default https://kubernetes.default.svc:443)."),
        IdentityOption("kubernetes_ca_cert", "--kubernetes-ca-cert", "FILE",
                       "CA certificate of the Kubernetes API (Vault outside the cluster).",
                       is_file=True),
        IdentityOption("token_reviewer_jwt_file", "--token-reviewer-jwt-file", "FILE",
                       "file with the JWT Vault uses for TokenReview (never on the command "
                       "line).", is_file=True),
    )

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> settings.VaultSettings:
        return settings.parse(checker, path, block)

    def store_class(self) -> type[SecretStore]:
        from deparrow_secrets.providers.vault.store import VaultStore

        return VaultStore

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        store = settings_of(env)
        sa_ref: dict[str, Any] = {"name": config.service_account}
        if store.audience:
            sa_ref["audiences"] = [store.audience]
        block: dict[str, Any] = {"server": store.server, "path": store.mount, "version": "v2"}
        if store.vault_namespace:
            block["namespace"] = store.vault_namespace
        block["auth"] = {"kubernetes": {"mountPath": store.auth_mount, "role": store.role,
                                        "serviceAccountRef": sa_ref}}
        return {"vault": block}

    def eso_remote_key(self, env: EnvironmentConfig, key: str) -> str:
        """The remoteRef.key that ESO's Vault provider resolves to `<mount>/data/<key>`.

        ESO's buildPath (providers/v1/vault/client_get.go) strips a leading `<mount>/`
        from the key, then a leading `data/`, and puts `<mount>/data/` in front of the
        rest. A bare `<path>` whose first segment equals the mount name would lose that
        segment (mount `deparrow`, path `deparrow/staging` reads `deparrow/data/staging`),
        so the key always starts with the mount; a path that itself starts with `data/`
        needs the `data/` written out, or buildPath would strip it as the KV v2 infix.
        """
        mount = settings_of(env).mount.strip("/")
        path = key.strip("/")
        if path == "data" or path.startswith("data/"):
            return f"{mount}/data/{path}"
        return f"{mount}/{path}"

    def needs_auth_delegator(self, env: EnvironmentConfig) -> bool:
        """Only when Vault reviews ESO's token with that token itself: in the other modes
        the reviewer is Vault's pod or the reviewer JWT's account, not ESO's."""
        return settings_of(env).token_review == "client-token"

    def store_port(self, env: EnvironmentConfig) -> int:
        server = settings_of(env).server
        if not server:
            return 443
        from urllib.parse import urlparse

        parsed = urlparse(server)
        return parsed.port or (443 if parsed.scheme == "https" else 80)

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        e = env.name
        return (f"check Vault's kubernetes auth role and mount (`deparrow-secrets policy "
                f"--env {e}`), apply them with `deparrow-secrets setup --env {e}`, and "
                "make sure the auth-delegator binding exists")

    def endpoint_override(self, env: EnvironmentConfig) -> str | None:
        for name in ("VAULT_ADDR", "BAO_ADDR"):
            address = os.environ.get(name)
            if address:
                configured = settings_of(env).server
                if address.rstrip("/") == (configured or "").rstrip("/"):
                    return None
                return (f"{env.name}: using Vault at {address} from ${name}"
                        + (f" (the configuration says {configured})" if configured else ""))
        return None


PROVIDER = VaultProvider()
