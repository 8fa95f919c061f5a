"""`store:` of an environment on AWS Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from deparrow_secrets.config.catalog import CatalogValue
from deparrow_secrets.config.settings import (
    STORE_PATH,
    EnvironmentConfig,
    RemoteRef,
    StoreSettings,
)
from deparrow_secrets.config.yamlfile import Checker, KeyPath
from deparrow_secrets.record import record

KMS_KEY_ARN = r"arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]+"
REGION = r"[a-z]{2}(-[a-z]+)+-\d"
KEYS = ["provider", "region", "accountId", "roleArn", "prefix", "fetchMetadata", "kmsKeyArn"]


@record
class AwsSettings(StoreSettings):
    provider: ClassVar[str] = "aws"

    region: str | None = None
    account_id: str | None = None
    role_arn: str | None = None
    prefix: str | None = None
    fetch_metadata: bool = False
    kms_key_arn: str | None = None

    def remote_path(self, environment: str) -> str:
        return self.prefix or f"deparrow/{environment}"

    def remote_ref(self, environment: str, value: CatalogValue) -> RemoteRef:
        """One JSON secret per catalog group: `<prefix>/<group>`."""
        return RemoteRef(f"{self.remote_path(environment)}/{value.group}",
                         value.property or value.name)

    def location(self, environment: str) -> tuple[str, ...]:
        return ("aws", self.account_id or "", self.region or "", self.remote_path(environment))


def parse(c: Checker, path: KeyPath, m: Mapping[str, Any]) -> AwsSettings:
    c.mapping(path, m, KEYS, required=("region",))

    def s(key: str, pattern: str | None = None, what: str | None = None) -> str | None:
        return None if m.get(key) is None else \
            c.string((*path, key), m[key], pattern=pattern, what=what)

    return AwsSettings(
        region=s("region", REGION, "AWS region"),
        account_id=s("accountId", r"\d{12}", "AWS account id (12 digits, quoted)"),
        role_arn=s("roleArn", r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", "IAM role ARN"),
        prefix=s("prefix", STORE_PATH, "secret name prefix"),
        fetch_metadata=c.boolean((*path, "fetchMetadata"), m.get("fetchMetadata", False)),
        kms_key_arn=s("kmsKeyArn", KMS_KEY_ARN,
                      "KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)"))


def settings_of(env: EnvironmentConfig) -> AwsSettings:
    if not isinstance(env.store, AwsSettings):
        raise TypeError(f"environment {env.name} is not on AWS Secrets Manager")
    return env.store
