"""AWS Secrets Manager, read by ESO's `aws` provider with IRSA (a role for its
ServiceAccount)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deparrow_secrets.providers.aws import settings
from deparrow_secrets.providers.aws.settings import settings_of
from deparrow_secrets.providers.interface import CLUSTER_OPTION, EsoProvider, IdentityOption

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig
    from deparrow_secrets.config.yamlfile import Checker, KeyPath
    from deparrow_secrets.stores.interface import SecretStore


class AwsProvider(EsoProvider):
    name = "aws"
    identity_options: tuple[IdentityOption, ...] = (
        IdentityOption("oidc_provider", "--oidc-provider", "HOST/PATH",
                       "the cluster's OIDC provider, e.g. "
                       "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE (for the trust policy)."),
        CLUSTER_OPTION,
        IdentityOption("create_role", "--create-role", "",
                       "also create or update the IRSA role and attach the policy "
                       "(needs --oidc-provider).",
                       is_flag=True, setup_only=True),
    )

    def parse_settings(self, checker: Checker, path: KeyPath, block: Mapping[str, Any],
                       environment: str) -> settings.AwsSettings:
        return settings.parse(checker, path, block)

    def store_class(self) -> type[SecretStore]:
        from deparrow_secrets.providers.aws.store import AwsStore

        return AwsStore

    def service_account_annotations(self, config: Config,
                                    env: EnvironmentConfig) -> dict[str, str]:
        role_arn = settings_of(env).role_arn
        return {"eks.amazonaws.com/role-arn": role_arn} if role_arn else {}

    def secret_store_provider(self, config: Config, env: EnvironmentConfig) -> dict[str, Any]:
        return {"aws": {"service": "SecretsManager", "region": settings_of(env).region,
                        "auth": {"jwt": {"serviceAccountRef": {
                            "name": config.service_account}}}}}

    def auth_failure_hint(self, env: EnvironmentConfig) -> str:
        e = env.name
        return (f"check the IAM role's trust policy names this ServiceAccount "
                f"(`deparrow-secrets policy --env {e}`; `setup --env {e}` applies it) "
                "and the ServiceAccount's eks.amazonaws.com/role-arn annotation")

    def endpoint_override(self, env: EnvironmentConfig) -> str | None:
        for name in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"):
            address = os.environ.get(name)
            if address:
                return (f"{env.name}: using the AWS Secrets Manager endpoint {address} "
                        f"from ${name}, not AWS's own")
        return None


PROVIDER = AwsProvider()
