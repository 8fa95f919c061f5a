"""AWS Secrets Manager: one secret per remote object, its SecretString a JSON object.

Objects are named by the layout (`deparrow/<env>/secrets`, `deparrow/<env>/database`,
`deparrow/<env>/redis`); each SecretString is a JSON object of string properties.
Versions are Secrets Manager versions; the current one is the version with the
AWSCURRENT staging label, and every value read asks for that stage explicitly.

Check-and-set (Secrets Manager has none natively):

- create: `CreateSecret` fails with ResourceExistsException when the name is taken.
- update: `PutSecretValue` stores the new version under the private stage
  DEPARROW_PENDING (not AWSCURRENT, so nothing changes for readers), then
  `UpdateSecretVersionStage` moves AWSCURRENT to it with `RemoveFromVersionId` =
  the expected version. AWS refuses the move when that version no longer holds
  AWSCURRENT, so of racing writers exactly one wins; a loser removes its pending
  label and gets ConflictError. AWS moves AWSPREVIOUS to the old version itself.
  A loser's version stays behind without labels ("deprecated"; AWS deletes such
  versions when a secret has more than 100). To write nothing at all in the common
  stale case, an update first checks with `DescribeSecret` (metadata, no value)
  unless this store saw the expected version current within FRESH_SECONDS (the
  read-then-write path, 2 calls).
- Every logical write chooses one ClientRequestToken (the new version id) and reuses
  it across retries, so a retried request whose first response was lost creates no
  second version; a retried stage move that had in fact succeeded is recognised.
- After a successful update DEPARROW_PENDING stays on the new current version (removing
  it would cost a third call); the next update's PutSecretValue moves it away. It means
  nothing to ESO, which reads AWSCURRENT. `history()` shows stages as AWS has them.

On AWS's terms (docs/stores.md has the details): a refused stage move is classified by
where AWSCURRENT is, not by its (undocumented) error code; reads that contradict the
refusal are eventually-consistent stale reads and are looked at again, backing off,
within the call's time bound (then UncertainWriteError); a version AWS deleted (it keeps
100 unlabelled ones) is "no longer exists", not "scheduled for deletion"; a secret
scheduled for deletion refuses updates (SoftDeletedError, restore-secret hint); a
SecretString over 65,536 bytes is refused before any call.

moto (the test server) differs from AWS in two more ways handled here: ListSecretVersionIds
on a missing secret answers HTTP 500 (AWS: ResourceNotFoundException), and it reports
the listing time as every version's CreatedDate (ties keep the listing order).

Rollback is native: AWSCURRENT moves back (default: to the AWSPREVIOUS version).

Connection: boto3's standard credential chain (AWS_PROFILE, environment, SSO, IRSA
web identity, instance roles); region from AWS_REGION / AWS_DEFAULT_REGION, else the
environment's `store.region`; endpoint from AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_SECRETS_MANAGER), which botocore reads itself. botocore's own
retries are off (one attempt per call): call_with_retry is the only retry layer, so
DEPARROW_SECRETS_RETRIES bounds the attempts and DEPARROW_SECRETS_TIMEOUT the whole
operation.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from deparrow_secrets.deps import require
from deparrow_secrets.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
    StoreUnavailableError,
    UncertainWriteError,
)
from deparrow_secrets.providers.aws.settings import settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import (
    CallTimeout,
    RetryPolicy,
    Throttled,
    bounded,
    call_with_retry,
    remaining,
)

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "DEPARROW_PENDING"
FRESH_SECONDS = 10.0
MAX_SECRET_BYTES = 65_536
"""Secrets Manager's limit on a SecretString (UTF-8 bytes)."""
# Errors AWS may give for a stage move whose RemoveFromVersionId no longer holds the
# label (undocumented: moto says InvalidParameterException, AWS InvalidRequestException).
_MOVE_REFUSED = frozenset({"InvalidParameterException", "InvalidRequestException",
                           "ResourceNotFoundException"})
"""An expected version this store saw current so recently skips the DescribeSecret check."""

_PRINCIPAL_TIMEOUT = 2.0
_VERSION_ID = re.compile(r"[A-Za-z0-9-]{32,64}")
_ARN = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/-]+")
_FILTER_VALUE = re.compile(r"[a-zA-Z0-9 :_@/+=.-]{1,512}")

_THROTTLING = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "ProvisionedThroughputExceededException",
})
_SERVER = frozenset({
    "InternalServiceError", "InternalFailure", "InternalError", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
_DENIED = frozenset({
    "AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
})
_BAD_CREDENTIALS = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
    "AuthFailure",
})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_KMS = frozenset({
    "DecryptionFailure", "EncryptionFailure", "KMSAccessDeniedException",
    "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException",
})


class _AwsCode(Exception):
    """A service error the caller asked to handle itself (its code, and the error to
    translate if the caller decides it is not what it handles)."""

    def __init__(self, code: str, error: BaseException | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message") or "")


def _throttled(exc: BaseException) -> Throttled | None:
    return Throttled() if _code(exc) in _THROTTLING or _status(exc) == 429 else None


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        SSLError,
    )

    if isinstance(exc, ClientError):
        code, status = _code(exc), _status(exc)
        return code in _THROTTLING or code in _SERVER or status == 429 or status >= 500
    if isinstance(exc, SSLError):  # a certificate problem does not heal by retrying
        return False
    # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError (ConnectionError);
    # ReadTimeoutError, ConnectionClosedError (HTTPClientError).
    return isinstance(exc, ConnectionError | HTTPClientError)


class AwsStore(SecretStore):
    provider = "aws"

    def __init__(
        self,
        environment: str,
        region: str | None = None,
        *,
        prefix: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Connect with boto3's credential chain.

        `region` is the configured one; AWS_REGION / AWS_DEFAULT_REGION override it,
        the profile's region is the last resort. `prefix` (default `deparrow/<env>`)
        only scopes `health()`.
        """
        boto3 = require("boto3", "aws")
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError

        self.environment = environment
        self.prefix = prefix or f"deparrow/{environment}"
        self._policy = policy or RetryPolicy.from_env()
        try:
            # boto3.Session() reads AWS_PROFILE, AWS_CONFIG_FILE, ... itself.
            self._session = boto3.Session()
        except BotoCoreError as exc:  # ProfileNotFound and friends
            profile = (getattr(exc, "kwargs", None) or {}).get("profile")
            what = f"AWS profile {profile!r} not found" if profile else \
                f"AWS configuration: {type(exc).__name__}"
            raise ConfigError(f"environment {environment}: {what}",
                              hint="check AWS_PROFILE and ~/.aws/config "
                              "(AWS_CONFIG_FILE)") from None
        self.region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                       or region or self._session.region_name)
        if not self.region:
            raise ConfigError(f"environment {environment}: no AWS region",
                              hint="set `store.region` in deparrow-secrets.yaml or AWS_REGION")
        timeout = self._policy.timeout
        self._boto_config = BotoConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One attempt per call: our call_with_retry is the only retry layer, so the
            # attempts are bounded by DEPARROW_SECRETS_RETRIES and not multiplied.
            retries={"mode": "standard", "total_max_attempts": 1},
            user_agent_extra="deparrow-secrets",
        )
        self._client: Any = self._session.client(
            "secretsmanager", region_name=self.region, config=self._boto_config)
        self.endpoint: str = self._client.meta.endpoint_url
        self._sts: Any = None
        self._sts_lock = threading.Lock()
        self._fresh: dict[str, tuple[str, float]] = {}
        self._fresh_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> AwsStore:
        return cls(env.name, settings_of(env).region, prefix=env.remote_path)

    @property
    def policy(self) -> RetryPolicy:
        """Retries and the time bound of every operation."""
        return self._policy

    @property
    def session(self) -> Any:
        """The boto3 session (profile, credentials), for other AWS services of the tool."""
        return self._session

    @property
    def client(self) -> Any:
        """The boto3 Secrets Manager client (for event hooks in tests and diagnostics)."""
        return self._client

    def __repr__(self) -> str:
        return (f"AwsStore(environment={self.environment!r}, region={self.region!r}, "
                f"endpoint={self.endpoint!r})")

    def close(self) -> None:
        for client in (self._client, self._sts):
            if client is not None and hasattr(client, "close"):
                client.close()

    # ------------------------------------------------------------------ calls

    def _call(self, key: str | None, what: str, fn: Callable[[], T],
              handle: frozenset[str] = frozenset()) -> T:
        """`fn` with retries; service errors whose code is in `handle` raise _AwsCode.

        Everything else becomes a StoreError subclass without the SDK exception chained.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        def give_up(exc: BaseException, attempts: int) -> BaseException:
            return self._unavailable(exc, attempts, key, what)

        try:
            return call_with_retry(fn, _is_transient, self._policy, give_up,
                                   throttled=_throttled,
                                   waiting_for=f"Secrets Manager at {self.endpoint}")
        except ClientError as exc:
            code = _code(exc)
            if code in handle:
                raise _AwsCode(code, exc) from None
            raise self._translate(exc, key, what) from None
        except BotoCoreError as exc:
            raise self._translate(exc, key, what) from None

    def _err(self, cls: type[StoreError], message: str, key: str | None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

    def _where(self) -> str:
        return f"endpoint {self.endpoint}, region {self.region}"

    def _unavailable(self, exc: BaseException, attempts: int, key: str | None,
                     what: str) -> StoreError:
        from botocore.exceptions import (
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        timeout = self._policy.timeout
        code = _code(exc)
        hint = (f"is the endpoint reachable (AWS_ENDPOINT_URL, network, HTTPS proxy) and the "
                f"region right? https://health.aws.amazon.com shows outages; "
                f"DEPARROW_SECRETS_TIMEOUT (now {timeout:g}s) and DEPARROW_SECRETS_RETRIES "
                f"(now {self._policy.attempts}) tune the limits")
        if code in _THROTTLING or _status(exc) == 429:
            reason = f"throttled by Secrets Manager ({code or 'HTTP 429'})"
            hint = ("the account's Secrets Manager request quota is exhausted; wait a minute "
                    f"and retry, or raise DEPARROW_SECRETS_RETRIES (now {self._policy.attempts})")
        elif code or _status(exc):
            reason = f"server error {code or ''} (HTTP {_status(exc)})".replace("  ", " ")
        elif isinstance(exc, CallTimeout):
            reason = f"no complete answer within {exc.seconds:g}s (timed out)"
        elif isinstance(exc, ReadTimeoutError):
            reason = f"no response within {timeout:g}s (timed out)"
        elif isinstance(exc, ConnectTimeoutError):
            reason = f"connection timed out after {timeout:g}s"
        elif isinstance(exc, EndpointConnectionError):
            reason = "could not connect"
        else:
            reason = f"connection failed ({type(exc).__name__})"
        if what in ("write", "rollback"):
            hint += (f"; the {what} may or may not have been applied: check with "
                     f"`deparrow-secrets history KEY --env {self.environment}` before "
                     "trying again")
        return self._err(StoreUnavailableError,
                         f"Secrets Manager unavailable during {what} after {attempts} "
                         f"attempt(s): {reason} ({self._where()})", key, hint)

    def _translate(self, exc: BaseException, key: str | None, what: str) -> StoreError:
        """A non-transient SDK error as a StoreError; AWS messages are never copied
        (some echo request parameters), only a principal ARN parsed out of them."""
        from botocore.exceptions import (
            ClientError,
            CredentialRetrievalError,
            NoCredentialsError,
            ParamValidationError,
            PartialCredentialsError,
            SSLError,
        )

        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in _DENIED:
                who = self._principal(_message(exc), lookup=True)
                return self._err(AccessDeniedError,
                                 f"access denied{who} during {what} ({code})", key,
                                 hint=self._grant_hint(key, what))
            if code in _BAD_CREDENTIALS or code in _EXPIRED:
                state = "expired" if code in _EXPIRED else "not valid here"
                return self._err(AccessDeniedError,
                                 f"access denied: the AWS credentials are {state} ({code}; "
                                 f"{self._credential_source()})", key,
                                 hint="refresh them (aws sso login, a new session token) or "
                                 "check that AWS_ENDPOINT_URL and the region match the "
                                 "account the credentials belong to")
            if code in _KMS:
                who = self._principal(_message(exc), lookup=True)
                return self._err(AccessDeniedError,
                                 f"access denied by KMS{who} during {what} ({code})", key,
                                 hint="the principal needs kms:Decrypt (read) and "
                                 "kms:GenerateDataKey (write) on the secret's KMS key, "
                                 "and the key must be enabled")
            if code == "ResourceNotFoundException":
                return self._err(NotFoundError, "the secret does not exist", key)
            if code == "InvalidRequestException" and "delet" in _message(exc).lower():
                return self._deleted(key)
            if code == "LimitExceededException":
                return self._err(StoreError, f"Secrets Manager limit reached during {what} "
                                 f"({code})", key,
                                 hint="too many versions or secrets; see the service quotas")
            return self._err(StoreError, f"Secrets Manager refused the {what} ({code}, HTTP "
                             f"{_status(exc)})", key)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError
                      | CredentialRetrievalError):
            return self._err(AccessDeniedError,
                             f"access denied: no usable AWS credentials ({type(exc).__name__})",
                             key, hint="set AWS_PROFILE (then aws sso login if it is an SSO "
                             "profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run "
                             "where a role is available (IRSA, instance profile)")
        if isinstance(exc, SSLError):
            return self._err(StoreUnavailableError,
                             f"TLS verification failed ({self._where()})", key,
                             hint="set AWS_CA_BUNDLE to the CA that signs the endpoint's "
                             "certificate")
        if isinstance(exc, ParamValidationError):
            return self._err(StoreError, f"the {what} request is invalid (the SDK rejected "
                             "a parameter)", key)
        token_error = type(exc).__name__
        if "Token" in token_error or "SSO" in token_error:
            return self._err(AccessDeniedError, f"access denied: AWS login failed "
                             f"({token_error})", key, hint="run aws sso login")
        return self._err(StoreError, f"Secrets Manager {what} failed ({token_error}; "
                         f"{self._where()})", key)

    def _grant_hint(self, key: str | None, what: str) -> str:
        actions = {
            "read": "secretsmanager:GetSecretValue",
            "write": "secretsmanager:CreateSecret, PutSecretValue, UpdateSecretVersionStage "
                     "and DescribeSecret",
            "history": "secretsmanager:ListSecretVersionIds",
            "rollback": "secretsmanager:ListSecretVersionIds and UpdateSecretVersionStage",
            "list": "secretsmanager:ListSecrets",
            "health": "secretsmanager:ListSecrets",
        }.get(what, "the secretsmanager action")
        resource = f" on arn:aws:secretsmanager:{self.region}:<account>:secret:{key}-*" \
            if key else ""
        return f"grant {actions}{resource} to this principal (IAM policy)"

    def _credential_source(self) -> str:
        profile = self._session.profile_name
        try:
            creds = self._session.get_credentials()
        except Exception:  # noqa: BLE001 - best effort, diagnostic only
            creds = None
        method = getattr(creds, "method", None) or "unknown"
        return f"credentials from {method}, profile {profile}"

    def _principal(self, aws_message: str, lookup: bool) -> str:
        """' as <arn>' when known: parsed from the AWS message, else asked of STS."""
        match = _ARN.search(aws_message)
        if match:
            return f" as {match.group(0)}"
        if lookup:
            arn = self.caller_arn()
            if arn:
                return f" as {arn}"
        return ""

    def caller_arn(self) -> str | None:
        """The caller's ARN from sts:GetCallerIdentity (one short attempt), or None."""
        try:
            with self._sts_lock:
                if self._sts is None:
                    from botocore.config import Config as BotoConfig

                    quick = min(_PRINCIPAL_TIMEOUT, self._policy.timeout)
                    self._sts = self._session.client(
                        "sts", region_name=self.region,
                        config=BotoConfig(connect_timeout=quick, read_timeout=quick,
                                          retries={"mode": "standard",
                                                   "total_max_attempts": 1}))
            arn = self._sts.get_caller_identity().get("Arn")
        except Exception:  # noqa: BLE001 - best effort, diagnostic only
            return None
        return arn if isinstance(arn, str) and _ARN.fullmatch(arn) else None

    # ------------------------------------------------------------------ freshness

    def _saw_current(self, key: str, version: str) -> None:
        with self._fresh_lock:
            self._fresh[key] = (version, time.monotonic())

    def _forget(self, key: str) -> None:
        with self._fresh_lock:
            self._fresh.pop(key, None)

    def _recently_current(self, key: str, version: str) -> bool:
        with self._fresh_lock:
            seen = self._fresh.get(key)
        return (seen is not None and seen[0] == version
                and time.monotonic() - seen[1] < FRESH_SECONDS)

    # ------------------------------------------------------------------ reads

    def _parse(self, key: str, version: str, resp: Mapping[str, Any]) -> dict[str, SecretValue]:
        text = resp.get("SecretString")
        if text is None:
            raise self._err(IntegrityError, f"version {version} holds binary data, not a JSON "
                            "object of strings", key,
                            hint="this tool manages SecretString JSON objects only")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise self._err(IntegrityError, f"version {version} is not a JSON object of "
                            "strings", key,
                            hint="fix the secret in the console or with aws secretsmanager "
                            "put-secret-value (every property a string)")
        return {k: SecretValue(v) for k, v in data.items()}

    @bounded
    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        if version is None:
            try:
                resp = self._call(key, "read", lambda: self._client.get_secret_value(
                    SecretId=key, VersionStage=CURRENT),
                    handle=frozenset({"ResourceNotFoundException"}))
            except _AwsCode:
                self._forget(key)
                return None
        else:
            if not _VERSION_ID.fullmatch(version):
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            try:
                resp = self._call(key, "read", lambda: self._client.get_secret_value(
                    SecretId=key, VersionId=version),
                    handle=frozenset({"ResourceNotFoundException", "InvalidRequestException"}))
            except _AwsCode as refused:
                raise self._version_gone(key, version, refused) from None
        got = str(resp["VersionId"])
        values = self._parse(key, got, resp)
        if CURRENT in (resp.get("VersionStages") or ()):
            self._saw_current(key, got)
        return Snapshot(key, got, values)

    def _version_gone(self, key: str, version: str, refused: _AwsCode) -> StoreError:
        """Why a named version cannot be read: the secret is scheduled for deletion, or
        the version is gone (AWS deletes unlabelled versions beyond 100 once they are a day
        old, and says InvalidRequestException "... because it was deleted")."""
        if refused.code == "InvalidRequestException":
            try:
                resp = self._call(key, "read", lambda: self._client.describe_secret(
                    SecretId=key), handle=frozenset({"ResourceNotFoundException"}))
            except _AwsCode:
                resp = {}
            if resp.get("DeletedDate"):
                return self._deleted(key)
            if resp:
                return self._err(NotFoundError, f"version {version} no longer exists: "
                                 "Secrets Manager deleted it (it keeps at most 100 versions "
                                 "without a staging label)", key,
                                 hint="name another version (see the history)")
        return self._err(NotFoundError, f"version {version} does not exist", key)

    def _versions(self, key: str) -> list[dict[str, Any]]:
        """Every version (deprecated ones too) in the service's order; [] if no secret."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"SecretId": key, "IncludeDeprecated": True,
                                      "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token

            def page(kwargs: dict[str, Any] = kwargs) -> Any:
                from botocore.exceptions import ClientError

                try:
                    return self._client.list_secret_version_ids(**kwargs)
                except ClientError as exc:
                    if _status(exc) < 500 or "NextToken" in kwargs:
                        raise
                    # moto answers a missing secret with HTTP 500 where AWS says
                    # ResourceNotFoundException: ask DescribeSecret before calling it a
                    # server fault (costs a call only on a 5xx).
                    self._client.describe_secret(SecretId=key)
                    raise

            try:
                resp = self._call(key, "history", page,
                                  handle=frozenset({"ResourceNotFoundException"}))
            except _AwsCode:
                return []
            out.extend(resp.get("Versions") or [])
            token = resp.get("NextToken")
            if not token:
                return out

    @bounded
    def history(self, key: str) -> list[VersionInfo]:
        versions = self._versions(key)
        # Oldest first. Ties (moto reports one date for all; AWS has milliseconds) keep
        # the service's listing order, which is creation order.
        indexed = sorted(enumerate(versions),
                         key=lambda iv: (iv[1].get("CreatedDate") is None,
                                         iv[1].get("CreatedDate") or 0, iv[0]))
        out = []
        for _, v in indexed:
            stages = tuple(v.get("VersionStages") or ())
            out.append(VersionInfo(str(v["VersionId"]), v.get("CreatedDate"),
                                   CURRENT in stages, stages))
        return out

    @bounded
    def list_objects(self, prefix: str = "") -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MaxResults": 100}
            # The name filter is a server-side prefix match; values outside its alphabet
            # (or starting with "!", which negates) are filtered here only.
            if prefix and _FILTER_VALUE.fullmatch(prefix):
                kwargs["Filters"] = [{"Key": "name", "Values": [prefix]}]
            if token:
                kwargs["NextToken"] = token
            resp = self._call(None, "list", functools.partial(self._client.list_secrets, **kwargs))
            names.extend(str(s["Name"]) for s in resp.get("SecretList") or ())
            token = resp.get("NextToken")
            if not token:
                break
        return sorted({n for n in names if n.startswith(prefix)})

    # ------------------------------------------------------------------ writes

    @bounded
    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        payload = json.dumps({str(k): SecretValue(v).reveal() for k, v in values.items()},
                             ensure_ascii=False)
        # One token per logical write, reused by every retry of every call below.
        token = str(uuid.uuid4())
        self._check_size(key, payload)
        if expected_version is None:
            return self._create(key, payload, token)
        return self._update(key, payload, expected_version, token)

    def _create(self, key: str, payload: str, token: str) -> str:
        try:
            resp = self._call(key, "write", lambda: self._client.create_secret(
                Name=key, SecretString=payload, ClientRequestToken=token),
                handle=frozenset({"ResourceExistsException"}))
        except _AwsCode:
            self._forget(key)
            raise self._exists(key) from None
        version = str(resp.get("VersionId") or token)
        self._saw_current(key, version)
        return version

    def _exists(self, key: str) -> StoreError:
        """The ConflictError of a create that found the name taken (one DescribeSecret)."""
        try:
            resp = self._call(key, "write", lambda: self._client.describe_secret(SecretId=key),
                              handle=frozenset({"ResourceNotFoundException"}))
        except _AwsCode:
            resp = {}
        if resp.get("DeletedDate"):
            return self._deleted(key)
        stages = resp.get("VersionIdsToStages") or {}
        now = next((v for v, s in stages.items() if CURRENT in s), None)
        return self._err(ConflictError, "already exists" + (f" (version {now})" if now else "")
                         + ", expected no secret", key,
                         hint="read it and write with its current version")

    def _deleted(self, key: str | None) -> StoreError:
        return self._err(SoftDeletedError, "the secret is scheduled for deletion: it cannot be "
                         "read or updated until it is restored (nothing was written)", key,
                         hint=f"restore it (aws secretsmanager restore-secret --secret-id "
                         f"{key or 'NAME'}) or wait until the deletion is done")

    def _describe(self, key: str, what: str) -> dict[str, Any] | None:
        """DescribeSecret (metadata, no value); None if the secret does not exist.

        A secret scheduled for deletion raises SoftDeletedError: AWS refuses to update it.
        """
        try:
            resp = self._call(key, what, lambda: self._client.describe_secret(SecretId=key),
                              handle=frozenset({"ResourceNotFoundException"}))
        except _AwsCode:
            return None
        if resp.get("DeletedDate"):
            raise self._deleted(key)
        return dict(resp)

    def _stages(self, key: str, what: str) -> dict[str, list[str]] | None:
        """DescribeSecret's version -> stages map (labelled versions only); None if absent."""
        resp = self._describe(key, what)
        if resp is None:
            return None
        return {str(k): list(v) for k, v in (resp.get("VersionIdsToStages") or {}).items()}

    def _conflict(self, key: str, expected: str, stages: dict[str, list[str]] | None
                  ) -> StoreError:
        self._forget(key)
        if stages is None:
            return self._err(ConflictError, f"no longer exists (expected version {expected})",
                             key, hint="read it again and retry")
        now = next((v for v, s in stages.items() if CURRENT in s), "none")
        return self._err(ConflictError, f"changed since it was read (now version {now}, "
                         f"expected {expected})", key, hint="read it again and retry")

    def _check_size(self, key: str, payload: str) -> None:
        size = len(payload.encode("utf-8"))
        if size > MAX_SECRET_BYTES:
            raise InputError(f"[environment {self.environment}, provider aws, remote key "
                             f"{key}] the object's JSON is {size:,} bytes; a Secrets Manager "
                             f"secret holds at most {MAX_SECRET_BYTES:,} (nothing was sent)",
                             hint="shorten the values, or move some keys to another group")

    def _update(self, key: str, payload: str, expected: str, token: str) -> str:
        if not self._recently_current(key, expected):
            stages = self._stages(key, "write")
            if stages is None or CURRENT not in stages.get(expected, ()):
                raise self._conflict(key, expected, stages)
        try:
            self._call(key, "write", lambda: self._client.put_secret_value(
                SecretId=key, SecretString=payload, ClientRequestToken=token,
                VersionStages=[PENDING]),
                handle=frozenset({"ResourceNotFoundException", "InvalidRequestException"}))
        except _AwsCode as refused:
            # Gone, or (InvalidRequestException) scheduled for deletion: ask, do not parse
            # the message. Anything else is the refusal as AWS gave it.
            stages = self._stages(key, "write")
            if stages is not None and refused.error is not None:
                raise self._translate(refused.error, key, "write") from None
            raise self._conflict(key, expected, None) from None
        try:
            self._call(key, "write", lambda: self._client.update_secret_version_stage(
                SecretId=key, VersionStage=CURRENT, MoveToVersionId=token,
                RemoveFromVersionId=expected), handle=_MOVE_REFUSED)
        except _AwsCode as refused:
            return self._settle_refused_move(key, expected, token, refused)
        self._saw_current(key, token)
        return token

    def _settle_refused_move(self, key: str, expected: str, token: str,
                             refused: _AwsCode) -> str:
        """What a refused stage move meant, from where AWSCURRENT is (not from the code).

        On our version: a retried move whose first answer was lost; ours is current. On
        another version: someone else won; ConflictError. Still on `expected`: AWS refused
        the move because `expected` no longer holds the label, so the read is stale
        (Secrets Manager reads are eventually consistent): look again, backing off, within
        the call's time bound; if it never settles, say that the outcome is unknown.
        """
        pause = 0.1
        while True:
            stages = self._stages(key, "write")
            if stages is None:
                raise self._conflict(key, expected, None) from None
            holder = next((v for v, s in stages.items() if CURRENT in s), None)
            if holder == token:
                self._saw_current(key, token)
                return token
            if holder is not None and holder != expected:
                if PENDING in stages.get(token, ()):
                    self._drop_pending(key, token)
                raise self._conflict(key, expected, stages) from None
            if pause >= remaining(self._policy):
                break
            time.sleep(pause)
            pause *= 2
        self._forget(key)
        raise self._err(UncertainWriteError,
                        f"the write may have raced another writer: Secrets Manager refused to "
                        f"make the new version {token} current ({refused.code}) but still "
                        f"reports version {expected} current", key,
                        hint="reads can lag behind writes; check what is current with "
                        "`deparrow-secrets history KEY --env " + self.environment
                        + "` before writing again")

    def _drop_pending(self, key: str, version: str) -> None:
        """Best effort: a losing version keeps no label (AWS may then expire it)."""
        with contextlib.suppress(_AwsCode, StoreError):
            self._call(key, "write", lambda: self._client.update_secret_version_stage(
                SecretId=key, VersionStage=PENDING, RemoveFromVersionId=version),
                handle=_MOVE_REFUSED)

    @bounded
    def rollback(self, key: str, version: str | None = None) -> str:
        """Move AWSCURRENT back to `version` (default: the AWSPREVIOUS one); AWS moves
        AWSPREVIOUS to the version that was current. Returns the version now current."""
        versions = self.history(key)
        if not versions:
            raise self._err(NotFoundError, "nothing to roll back: the secret does not exist",
                            key)
        current = next((v.version for v in versions if v.current), None)
        if version is None:
            version = next((v.version for v in versions if PREVIOUS in v.labels), None)
            if version is None:
                raise self._err(NotFoundError, "no previous version (AWSPREVIOUS) to roll "
                                "back to", key)
        elif version not in {v.version for v in versions}:
            raise self._err(NotFoundError, f"version {version} does not exist (or no longer: "
                            "Secrets Manager deletes unlabelled versions beyond 100)", key,
                            hint="name another version (see the history)")
        if version == current:
            self._saw_current(key, version)
            return version
        kwargs: dict[str, Any] = {"SecretId": key, "VersionStage": CURRENT,
                                  "MoveToVersionId": version}
        if current is not None:
            kwargs["RemoveFromVersionId"] = current
        try:
            self._call(key, "rollback",
                       lambda: self._client.update_secret_version_stage(**kwargs),
                       handle=_MOVE_REFUSED)
        except _AwsCode:
            stages = self._stages(key, "rollback")
            if stages is not None and CURRENT in stages.get(version, ()):
                self._saw_current(key, version)
                return version  # our retried move had gone through
            if stages is not None and version not in {str(v.get("VersionId"))
                                                      for v in self._versions(key)}:
                raise self._err(NotFoundError, f"version {version} no longer exists: "
                                "Secrets Manager deleted it (it keeps at most 100 versions "
                                "without a staging label)", key,
                                hint="name another version (see the history)") from None
            raise self._conflict(key, current or "none", stages) from None
        self._saw_current(key, version)
        return version

    # ------------------------------------------------------------------ health

    @bounded
    def health(self) -> Health:
        """ListSecrets (one name, no value) proves reach and credentials; STS adds who."""
        kwargs: dict[str, Any] = {"MaxResults": 1}
        if _FILTER_VALUE.fullmatch(self.prefix):
            kwargs["Filters"] = [{"Key": "name", "Values": [self.prefix]}]
        try:
            self._call(None, "health", lambda: self._client.list_secrets(**kwargs))
        except StoreError as exc:
            return Health(False, str(exc))
        who = self.caller_arn()
        as_who = f" as {who}" if who else ""
        return Health(True, f"Secrets Manager reachable{as_who} ({self._where()})")
