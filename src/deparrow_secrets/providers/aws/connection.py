"""The tool's connection to AWS: one boto3 session and its clients, shared by the store
and by `setup`.

Credentials come from boto3's standard chain (AWS_PROFILE, environment, SSO, IRSA web
identity, instance roles); the region from AWS_REGION / AWS_DEFAULT_REGION, else the
environment's `store.region`, else the profile's; endpoints from AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_<SERVICE>), which botocore reads itself. botocore's own retries are
off (one attempt per request): `call` is the only retry layer, so
DEPARROW_SECRETS_RETRIES bounds the attempts and DEPARROW_SECRETS_TIMEOUT the whole
call, and every failure goes through the one translator (`errors.py`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from deparrow_secrets.deps import require
from deparrow_secrets.errors import ConfigError, StoreError
from deparrow_secrets.providers.aws import errors
from deparrow_secrets.providers.aws.errors import ARN, AwsCode, Operation
from deparrow_secrets.providers.aws.settings import settings_of
from deparrow_secrets.stores.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import EnvironmentConfig

T = TypeVar("T")

PRINCIPAL_TIMEOUT = 2.0
"""Seconds the diagnostic principal lookup may take (one attempt, never retried)."""


class AwsConnection:
    """A boto3 session, its region and the clients of the services the tool calls."""

    def __init__(self, environment: str, region: str | None = None, *,
                 policy: RetryPolicy | None = None) -> None:
        """`region` is the configured one; AWS_REGION / AWS_DEFAULT_REGION override it,
        the profile's region is the last resort."""
        boto3 = require("boto3", "aws")
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError

        self.environment = environment
        self.policy = policy or RetryPolicy.from_env()
        try:
            # boto3.Session() reads AWS_PROFILE, AWS_CONFIG_FILE, ... itself.
            self.session: Any = boto3.Session()
        except BotoCoreError as exc:  # ProfileNotFound and friends
            profile = (getattr(exc, "kwargs", None) or {}).get("profile")
            what = f"AWS profile {profile!r} not found" if profile else \
                f"AWS configuration: {type(exc).__name__}"
            raise ConfigError(f"environment {environment}: {what}",
                              hint="check AWS_PROFILE and ~/.aws/config "
                              "(AWS_CONFIG_FILE)") from None
        resolved = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                    or region or self.session.region_name)
        if not resolved:
            raise ConfigError(f"environment {environment}: no AWS region",
                              hint="set `store.region` in deparrow-secrets.yaml or AWS_REGION")
        self.region: str = resolved
        timeout = self.policy.timeout
        self.boto_config = BotoConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One attempt per request: `call` is the only retry layer, so the attempts
            # are bounded by DEPARROW_SECRETS_RETRIES and not multiplied.
            retries={"mode": "standard", "total_max_attempts": 1},
            user_agent_extra="deparrow-secrets",
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._sts: Any = None
        self._sts_lock = threading.Lock()

    @classmethod
    def from_config(cls, env: EnvironmentConfig) -> AwsConnection:
        return cls(env.name, settings_of(env).region)

    def __repr__(self) -> str:
        return f"AwsConnection(environment={self.environment!r}, region={self.region!r})"

    def client(self, service: str) -> Any:
        """The client of `service` ("secretsmanager", "iam", "sts", ...) on this session,
        region and configuration; one per service."""
        with self._clients_lock:
            client = self._clients.get(service)
            if client is None:
                client = self.session.client(service, region_name=self.region,
                                             config=self.boto_config)
                self._clients[service] = client
            return client

    def close(self) -> None:
        with self._clients_lock:
            clients = [*self._clients.values(), self._sts]
            self._clients.clear()
        for client in clients:
            if client is not None and hasattr(client, "close"):
                client.close()

    # ------------------------------------------------------------------ calls

    def call(self, fn: Callable[[], T], op: Operation,
             handle: frozenset[str] = frozenset()) -> T:
        """`fn` with retries within the current deadline; service errors whose code is in
        `handle` raise AwsCode. Everything else becomes a StoreError subclass (the
        translator's), without the SDK exception chained."""
        from botocore.exceptions import BotoCoreError, ClientError

        def give_up(exc: BaseException, attempts: int) -> BaseException:
            return errors.unavailable(exc, attempts, self, op)

        failure: StoreError
        try:
            return call_with_retry(fn, errors.is_transient, self.policy, give_up,
                                   throttled=errors.throttled,
                                   waiting_for=f"{op.service} at {op.endpoint}")
        except ClientError as exc:
            code = errors.code_of(exc)
            if code in handle:
                raise AwsCode(code, exc) from None
            failure = errors.translate(exc, self, op)
        except BotoCoreError as exc:
            failure = errors.translate(exc, self, op)
        raise failure from None

    def translate(self, exc: BaseException, op: Operation) -> StoreError:
        return errors.translate(exc, self, op)

    # ------------------------------------------------------------------ who

    def credential_source(self) -> str:
        profile = self.session.profile_name
        try:
            creds = self.session.get_credentials()
        except Exception:  # noqa: BLE001 - best effort, diagnostic only
            creds = None
        method = getattr(creds, "method", None) or "unknown"
        return f"credentials from {method}, profile {profile}"

    def caller_arn(self) -> str | None:
        """The caller's ARN from sts:GetCallerIdentity (one short attempt), or None."""
        try:
            with self._sts_lock:
                if self._sts is None:
                    from botocore.config import Config as BotoConfig

                    quick = min(PRINCIPAL_TIMEOUT, self.policy.timeout)
                    self._sts = self.session.client(
                        "sts", region_name=self.region,
                        config=BotoConfig(connect_timeout=quick, read_timeout=quick,
                                          retries={"mode": "standard",
                                                   "total_max_attempts": 1}))
            arn = self._sts.get_caller_identity().get("Arn")
        except Exception:  # noqa: BLE001 - best effort, diagnostic only
            return None
        return arn if isinstance(arn, str) and ARN.fullmatch(arn) else None
