"""The one translator of AWS SDK errors, for the store and for `setup` alike.

It classifies (transient, throttled, denied, bad credentials, KMS, not found, quota) and
turns a botocore error into a StoreError subclass: the operation, the principal, where
the call went and a hint naming the fix. An AWS error message is never copied into
output (some echo request parameters); only a principal ARN is parsed out of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from deparrow_secrets.errors import (
    AccessDeniedError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from deparrow_secrets.stores.retry import CallTimeout, Throttled

if TYPE_CHECKING:
    from deparrow_secrets.stores.retry import RetryPolicy

PROVIDER = "aws"
ARN = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/-]+")
"""An IAM or STS principal (what an access-denied message may name)."""

THROTTLING = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "ProvisionedThroughputExceededException",
})
SERVER = frozenset({
    "InternalServiceError", "InternalFailure", "InternalError", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
    "ServiceFailure",
})
DENIED = frozenset({
    "AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
})
BAD_CREDENTIALS = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
    "AuthFailure",
})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
KMS = frozenset({
    "DecryptionFailure", "EncryptionFailure", "KMSAccessDeniedException",
    "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException",
})
NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchEntity"})
LIMIT = frozenset({"LimitExceededException", "LimitExceeded"})


@dataclass(frozen=True)
class Operation:
    """One AWS call as its failure is worded: the caller supplies what is specific to it."""

    service: str
    """The service as messages name it ("Secrets Manager", "IAM", "STS")."""
    endpoint: str
    what: str
    """The operation ("read", "iam create-policy")."""
    key: str | None
    """The remote key or resource the message names."""
    grant: str
    """The hint of an access denial: what to grant, on what."""
    unsure: str | None = None
    """For a change: why and how to check whether it was applied when the call gave up."""
    missing: str = "does not exist"
    """The message of a not-found answer the caller did not handle itself."""


class Caller(Protocol):
    """What the translator asks of the connection the call went through."""

    @property
    def environment(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def policy(self) -> RetryPolicy: ...

    def caller_arn(self) -> str | None: ...

    def credential_source(self) -> str: ...


class AwsCode(Exception):
    """A service error the caller asked to handle itself (its code, and the error to
    translate if the caller decides it is not what it handles)."""

    def __init__(self, code: str, error: BaseException | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


def code_of(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def status_of(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def _message(exc: BaseException) -> str:
    """AWS's message: read to classify and to find a principal in, never shown."""
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message") or "")


def scheduled_for_deletion(exc: BaseException) -> bool:
    """Secrets Manager's refusal to touch a secret scheduled for deletion."""
    return code_of(exc) == "InvalidRequestException" and "delet" in _message(exc).lower()


def throttled(exc: BaseException) -> Throttled | None:
    return Throttled() if code_of(exc) in THROTTLING or status_of(exc) == 429 else None


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        SSLError,
    )

    if isinstance(exc, ClientError):
        code, status = code_of(exc), status_of(exc)
        return code in THROTTLING or code in SERVER or status == 429 or status >= 500
    if isinstance(exc, SSLError):  # a certificate problem does not heal by retrying
        return False
    # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError (ConnectionError);
    # ReadTimeoutError, ConnectionClosedError (HTTPClientError).
    return isinstance(exc, ConnectionError | HTTPClientError)


def _error(cls: type[StoreError], caller: Caller, op: Operation, message: str,
           hint: str | None = None) -> StoreError:
    return cls(message, environment=caller.environment, provider=PROVIDER,
               remote_key=op.key, hint=hint)


def _where(caller: Caller, op: Operation) -> str:
    return f"endpoint {op.endpoint}, region {caller.region}"


def principal(caller: Caller, aws_message: str, lookup: bool = True) -> str:
    """' as <arn>' when known: parsed from the AWS message, else asked of STS."""
    match = ARN.search(aws_message)
    if match:
        return f" as {match.group(0)}"
    if lookup:
        arn = caller.caller_arn()
        if arn:
            return f" as {arn}"
    return ""


def unavailable(exc: BaseException, attempts: int, caller: Caller, op: Operation
                ) -> StoreError:
    """The error of a call that gave up: retries spent, the deadline passed, or no way
    to reach the endpoint."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    policy = caller.policy
    code, status = code_of(exc), status_of(exc)
    head = f"{op.service} unavailable"
    hint = (f"is the endpoint reachable (AWS_ENDPOINT_URL, network, HTTPS proxy) and the "
            f"region right? https://health.aws.amazon.com shows outages; "
            f"DEPARROW_SECRETS_TIMEOUT (now {policy.timeout:g}s) and DEPARROW_SECRETS_RETRIES "
            f"(now {policy.attempts}) tune the limits")
    if code in THROTTLING or status == 429:
        reason = f"throttled by {op.service} ({code or 'HTTP 429'})"
        hint = (f"the account's {op.service} request quota is exhausted; wait a minute and "
                f"retry, or raise DEPARROW_SECRETS_RETRIES (now {policy.attempts})")
    elif code or status:
        reason = f"server error {code or ''} (HTTP {status})".replace("  ", " ")
    elif isinstance(exc, CallTimeout):
        reason = f"no complete answer within {exc.seconds:g}s (timed out)"
    elif isinstance(exc, ReadTimeoutError):
        reason = f"no response within {policy.timeout:g}s (timed out)"
    elif isinstance(exc, ConnectTimeoutError):
        head, reason = f"cannot reach AWS {op.service}", \
            f"connection timed out after {policy.timeout:g}s"
    elif isinstance(exc, EndpointConnectionError):
        head, reason = f"cannot reach AWS {op.service}", "could not connect"
    else:
        head, reason = f"cannot reach AWS {op.service}", \
            f"connection failed ({type(exc).__name__})"
    if op.unsure:
        hint += "; " + op.unsure
    return _error(StoreUnavailableError, caller, op,
                  f"{head} during {op.what} after {attempts} attempt(s): {reason} "
                  f"({_where(caller, op)})", hint)


def translate(exc: BaseException, caller: Caller, op: Operation) -> StoreError:
    """A non-transient SDK error as a StoreError; AWS messages are never copied, only a
    principal ARN parsed out of them."""
    from botocore.exceptions import (
        ClientError,
        CredentialRetrievalError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
        SSLError,
    )

    if isinstance(exc, ClientError):
        code = code_of(exc)
        if code in DENIED:
            return _error(AccessDeniedError, caller, op,
                          f"access denied{principal(caller, _message(exc))} during "
                          f"{op.what} ({code})", op.grant)
        if code in BAD_CREDENTIALS or code in EXPIRED:
            state = "expired" if code in EXPIRED else "not valid here"
            return _error(AccessDeniedError, caller, op,
                          f"access denied: the AWS credentials are {state} ({code}; "
                          f"{caller.credential_source()})",
                          "refresh them (aws sso login, a new session token) or check that "
                          "AWS_ENDPOINT_URL and the region match the account the "
                          "credentials belong to")
        if code in KMS:
            return _error(AccessDeniedError, caller, op,
                          f"access denied by KMS{principal(caller, _message(exc))} during "
                          f"{op.what} ({code})",
                          "the principal needs kms:Decrypt (read) and kms:GenerateDataKey "
                          "(write) on the secret's KMS key, and the key must be enabled")
        if code in NOT_FOUND:
            return _error(NotFoundError, caller, op, op.missing)
        if code in LIMIT:
            return _error(StoreError, caller, op, f"{op.service} limit reached during "
                          f"{op.what} ({code})",
                          "too many versions or resources; see the service quotas")
        return _error(StoreError, caller, op, f"{op.service} refused the {op.what} ({code}, "
                      f"HTTP {status_of(exc)})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError
                  | CredentialRetrievalError):
        return _error(AccessDeniedError, caller, op,
                      f"access denied: no usable AWS credentials ({type(exc).__name__})",
                      "set AWS_PROFILE (then aws sso login if it is an SSO profile) or "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is "
                      "available (IRSA, instance profile)")
    if isinstance(exc, SSLError):
        return _error(StoreUnavailableError, caller, op,
                      f"TLS verification failed ({_where(caller, op)})",
                      "set AWS_CA_BUNDLE to the CA that signs the endpoint's certificate")
    if isinstance(exc, ParamValidationError):
        return _error(StoreError, caller, op, f"the {op.what} request is invalid (the SDK "
                      "rejected a parameter)")
    name = type(exc).__name__
    if "Token" in name or "SSO" in name:
        return _error(AccessDeniedError, caller, op,
                      f"access denied: AWS login failed ({name})", "run aws sso login")
    return _error(StoreError, caller, op, f"{op.service} {op.what} failed ({name}; "
                  f"{_where(caller, op)})")
