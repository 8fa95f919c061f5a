"""The one AWS error translator (providers/aws/errors.py), without a server: every class of
answer maps to the tool's error, and AWS's own message never reaches the text."""

from __future__ import annotations

import secrets
import traceback

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from deparrow_secrets.errors import (
    AccessDeniedError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from deparrow_secrets.providers.aws import errors
from deparrow_secrets.providers.aws.errors import Operation
from deparrow_secrets.stores.retry import RetryPolicy

PRINCIPAL = "arn:aws:iam::123456789012:role/deparrow-ci"


class FakeCaller:
    environment = "production"
    region = "eu-west-1"
    policy = RetryPolicy(attempts=3, timeout=7.0)

    def __init__(self, arn: str | None = None) -> None:
        self.arn = arn
        self.lookups = 0

    def caller_arn(self) -> str | None:
        self.lookups += 1
        return self.arn

    def credential_source(self) -> str:
        return "credentials from env, profile None"


OP = Operation("IAM", "http://127.0.0.1:1", "iam create-policy", "arn:aws:iam::1:policy/P",
               grant="grant iam:CreatePolicy on arn:aws:iam::1:policy/P",
               unsure="run setup again")


def answer(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "CreatePolicy")


def shown(exc: StoreError) -> str:
    return str(exc) + repr(exc) + "".join(traceback.format_exception(exc))


EXPECTED: list[tuple[frozenset[str], type[StoreError]]] = [
    (errors.DENIED, AccessDeniedError), (errors.BAD_CREDENTIALS, AccessDeniedError),
    (errors.EXPIRED, AccessDeniedError), (errors.KMS, AccessDeniedError),
    (errors.NOT_FOUND, NotFoundError), (errors.LIMIT, StoreError),
    (frozenset({"MalformedPolicyDocument", "ValidationError"}), StoreError),
]


@pytest.mark.parametrize(("code", "cls"), [(c, cls) for codes, cls in EXPECTED
                                           for c in sorted(codes)])
def test_every_code_is_translated_without_the_aws_message(code: str,
                                                          cls: type[StoreError]) -> None:
    canary = secrets.token_urlsafe(12)
    err = errors.translate(answer(code, f"Something about {canary}"), FakeCaller(), OP)
    assert type(err) is cls
    assert canary not in shown(err)
    assert code in str(err) or isinstance(err, NotFoundError)
    assert "[environment production, provider aws, remote key arn:aws:iam::1:policy/P]" \
        in str(err)


def test_denial_names_the_principal_from_the_message_else_asks() -> None:
    canary = secrets.token_urlsafe(12)
    caller = FakeCaller(arn="arn:aws:sts::123456789012:assumed-role/r/s")
    parsed = errors.translate(answer("AccessDenied", f"User: {PRINCIPAL} is not authorized "
                                     f"{canary}"), caller, OP)
    assert f"access denied as {PRINCIPAL} during iam create-policy" in str(parsed)
    assert caller.lookups == 0 and parsed.hint == OP.grant
    asked = errors.translate(answer("AccessDenied", canary), caller, OP)
    assert "access denied as arn:aws:sts::123456789012:assumed-role/r/s" in str(asked)
    assert caller.lookups == 1
    assert canary not in shown(parsed) + shown(asked)


def test_giving_up_is_unavailable_without_the_aws_message() -> None:
    canary = secrets.token_urlsafe(12)
    caller = FakeCaller()
    throttled = answer("Throttling", f"Rate exceeded {canary}")
    assert errors.is_transient(throttled) and errors.throttled(throttled) is not None
    err = errors.unavailable(throttled, 3, caller, OP)
    assert isinstance(err, StoreUnavailableError)
    assert "throttled by IAM (Throttling)" in str(err) and "3 attempt(s)" in str(err)
    assert canary not in shown(err)
    down = errors.unavailable(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 2,
                              caller, OP)
    assert "cannot reach AWS IAM during iam create-policy after 2 attempt(s)" in str(down)
    assert down.hint is not None and down.hint.endswith("; run setup again")
    server = answer("ServiceFailure", canary, status=500)
    assert errors.is_transient(server) and errors.throttled(server) is None
    assert canary not in shown(errors.unavailable(server, 3, caller, OP))


def test_missing_credentials_and_non_transient_answers() -> None:
    err = errors.translate(NoCredentialsError(), FakeCaller(), OP)
    assert isinstance(err, AccessDeniedError) and "no usable AWS credentials" in str(err)
    assert not errors.is_transient(answer("AccessDenied", "x"))
    assert not errors.is_transient(NoCredentialsError())
