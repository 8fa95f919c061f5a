"""AWS Secrets Manager: one secret per remote object, its SecretString a JSON object of
string properties; the current version is the one labelled AWSCURRENT.

This module is the check-and-set logic only: the session, clients and retries are
`connection.py`'s, error translation is `errors.py`'s. Why the writes are shaped as
they are (private pending stage, one stage move that AWS refuses to the loser of a
race, stale reads looked at again, versions AWS deletes, moto's differences) is in
docs/stores.md, "AWS Secrets Manager".
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from deparrow_secrets.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
    UncertainWriteError,
)
from deparrow_secrets.providers.aws.connection import AwsConnection
from deparrow_secrets.providers.aws.errors import (
    AwsCode,
    Operation,
    scheduled_for_deletion,
    status_of,
)
from deparrow_secrets.providers.aws.settings import settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import RetryPolicy, bounded, remaining

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

SERVICE = "Secrets Manager"
CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "DEPARROW_PENDING"
FRESH_SECONDS = 10.0
"""An expected version this store saw current so recently skips the DescribeSecret check."""
MAX_SECRET_BYTES = 65_536
"""Secrets Manager's limit on a SecretString (UTF-8 bytes)."""
# Errors AWS may give for a stage move whose RemoveFromVersionId no longer holds the
# label (undocumented: moto says InvalidParameterException, AWS InvalidRequestException).
_MOVE_REFUSED = frozenset({"InvalidParameterException", "InvalidRequestException",
                           "ResourceNotFoundException"})
_VERSION_ID = re.compile(r"[A-Za-z0-9-]{32,64}")
_FILTER_VALUE = re.compile(r"[a-zA-Z0-9 :_@/+=.-]{1,512}")
_GRANTS = {
    "read": "secretsmanager:GetSecretValue",
    "write": "secretsmanager:CreateSecret, PutSecretValue, UpdateSecretVersionStage "
             "and DescribeSecret",
    "history": "secretsmanager:ListSecretVersionIds",
    "rollback": "secretsmanager:ListSecretVersionIds and UpdateSecretVersionStage",
    "list": "secretsmanager:ListSecrets",
    "health": "secretsmanager:ListSecrets",
}


class AwsStore(SecretStore):
    provider = "aws"

    def __init__(
        self,
        environment: str,
        region: str | None = None,
        *,
        prefix: str | None = None,
        policy: RetryPolicy | None = None,
        connection: AwsConnection | None = None,
    ) -> None:
        """Connect with boto3's credential chain (`connection.py`: region, endpoint,
        retries). `prefix` (default `deparrow/<env>`) only scopes `health()`."""
        self.environment = environment
        self.prefix = prefix or f"deparrow/{environment}"
        self.connection = connection or AwsConnection(environment, region, policy=policy)
        self._client: Any = self.connection.client("secretsmanager")
        self.endpoint: str = self._client.meta.endpoint_url
        self._fresh: dict[str, tuple[str, float]] = {}
        self._fresh_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> AwsStore:
        return cls(env.name, settings_of(env).region, prefix=env.remote_path)

    @property
    def policy(self) -> RetryPolicy:
        """Retries and the time bound of every operation."""
        return self.connection.policy

    @property
    def region(self) -> str:
        return self.connection.region

    @property
    def session(self) -> Any:
        """The boto3 session (profile, credentials), for other AWS services of the tool."""
        return self.connection.session

    @property
    def client(self) -> Any:
        """The boto3 Secrets Manager client (for event hooks in tests and diagnostics)."""
        return self._client

    def __repr__(self) -> str:
        return (f"AwsStore(environment={self.environment!r}, region={self.region!r}, "
                f"endpoint={self.endpoint!r})")

    def close(self) -> None:
        self.connection.close()

    def caller_arn(self) -> str | None:
        """The caller's ARN from sts:GetCallerIdentity (one short attempt), or None."""
        return self.connection.caller_arn()

    # ------------------------------------------------------------------ calls

    def _op(self, key: str | None, what: str) -> Operation:
        resource = f" on arn:aws:secretsmanager:{self.region}:<account>:secret:{key}-*" \
            if key else ""
        unsure = (f"the {what} may or may not have been applied: check with "
                  f"`deparrow-secrets history KEY --env {self.environment}` before trying "
                  "again") if what in ("write", "rollback") else None
        return Operation(SERVICE, self.endpoint, what, key,
                         grant=f"grant {_GRANTS.get(what, 'the secretsmanager action')}"
                         f"{resource} to this principal (IAM policy)",
                         unsure=unsure, missing="the secret does not exist")

    def _call(self, key: str | None, what: str, fn: Callable[[], T],
              handle: frozenset[str] = frozenset()) -> T:
        """`fn` through the connection; service errors whose code is in `handle` raise
        AwsCode. Everything else becomes a StoreError subclass without the SDK exception
        chained (a secret scheduled for deletion: SoftDeletedError)."""
        try:
            return self.connection.call(fn, self._op(key, what),
                                        handle=handle | {"InvalidRequestException"})
        except AwsCode as refused:
            if refused.code in handle or refused.error is None:
                raise
            error = refused.error
        raise self._translate(error, key, what) from None

    def _translate(self, exc: BaseException, key: str | None, what: str) -> StoreError:
        if scheduled_for_deletion(exc):
            return self._deleted(key)
        return self.connection.translate(exc, self._op(key, what))

    def _err(self, cls: type[StoreError], message: str, key: str | None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

    def _where(self) -> str:
        return f"endpoint {self.endpoint}, region {self.region}"

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
            except AwsCode:
                self._forget(key)
                return None
        else:
            if not _VERSION_ID.fullmatch(version):
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            try:
                resp = self._call(key, "read", lambda: self._client.get_secret_value(
                    SecretId=key, VersionId=version),
                    handle=frozenset({"ResourceNotFoundException", "InvalidRequestException"}))
            except AwsCode as refused:
                raise self._version_gone(key, version, refused) from None
        got = str(resp["VersionId"])
        values = self._parse(key, got, resp)
        if CURRENT in (resp.get("VersionStages") or ()):
            self._saw_current(key, got)
        return Snapshot(key, got, values)

    def _version_gone(self, key: str, version: str, refused: AwsCode) -> StoreError:
        """Why a named version cannot be read: the secret is scheduled for deletion, or
        the version is gone (AWS deletes unlabelled versions beyond 100 once they are a day
        old, and says InvalidRequestException "... because it was deleted")."""
        if refused.code == "InvalidRequestException":
            try:
                resp = self._call(key, "read", lambda: self._client.describe_secret(
                    SecretId=key), handle=frozenset({"ResourceNotFoundException"}))
            except AwsCode:
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
                    if status_of(exc) < 500 or "NextToken" in kwargs:
                        raise
                    # moto answers a missing secret with HTTP 500 where AWS says
                    # ResourceNotFoundException: ask DescribeSecret before calling it a
                    # server fault (costs a call only on a 5xx).
                    self._client.describe_secret(SecretId=key)
                    raise

            try:
                resp = self._call(key, "history", page,
                                  handle=frozenset({"ResourceNotFoundException"}))
            except AwsCode:
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
        except AwsCode:
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
        except AwsCode:
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
        except AwsCode:
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
        except AwsCode as refused:
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
        except AwsCode as refused:
            return self._settle_refused_move(key, expected, token, refused)
        self._saw_current(key, token)
        return token

    def _settle_refused_move(self, key: str, expected: str, token: str,
                             refused: AwsCode) -> str:
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
            if pause >= remaining(self.policy):
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
        with contextlib.suppress(AwsCode, StoreError):
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
        except AwsCode:
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
