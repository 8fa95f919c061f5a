"""AWS Secrets Manager store against a real moto_server: conformance, layout, CAS with
stages, idempotent retries, throttling, access denied, server down and slow links.

Faults moto cannot produce are injected with botocore event handlers on the store's
own client (`before-call` raises before anything is sent, `after-call` raises after
the server has answered: a lost response).
"""

from __future__ import annotations

import json
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import (
    EXIT_DENIED,
    EXIT_UNAVAILABLE,
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
from deparrow_secrets.providers import open_store
from deparrow_secrets.providers.aws.settings import AwsSettings
from deparrow_secrets.providers.aws.store import CURRENT, PENDING, PREVIOUS, AwsStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore
from deparrow_secrets.stores.layout import Layout, RemoteRef
from deparrow_secrets.testing import StoreConformance, race_writers, value
from servers import AwsShaped, DelayProxy, MotoServer, free_port, version_stages

ENV = "production"


def make_config(root: Path, region: str = "us-east-1") -> tuple[Config, EnvironmentConfig]:
    env = EnvironmentConfig(ENV, AwsSettings(region=region), ha=True)
    return Config(root=root, file=None, environments={ENV: env}), env


def connect(root: Path, region: str = "us-east-1") -> AwsStore:
    config, env = make_config(root, region)
    store = open_store(config, env)
    assert isinstance(store, AwsStore)
    return store


def group(n: int = 3) -> dict[str, SecretValue]:
    return {f"KEY_{i}": value() for i in range(n)}


def unique(label: str) -> str:
    return f"deparrow/test/{label}-{secrets.token_hex(4)}"


class Calls:
    """Operation names of the HTTP requests a client sends (botocore `before-send`)."""

    def __init__(self, client: Any) -> None:
        self.ops: list[str] = []
        self._client = client
        self._id = f"calls-{secrets.token_hex(4)}"
        client.meta.events.register("before-send", self._on_send, unique_id=self._id)

    def _on_send(self, event_name: str, **_: Any) -> None:
        self.ops.append(event_name.rsplit(".", 1)[-1])

    def take(self) -> list[str]:
        ops, self.ops = self.ops, []
        return ops

    def stop(self) -> None:
        self._client.meta.events.unregister("before-send", unique_id=self._id)


def service_error(code: str, operation: str, message: str = "", status: int = 400
                  ) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def inject(client: Any, event: str, make: Callable[[], BaseException], times: int
           ) -> list[int]:
    """Raise `make()` from handler `event` for the first `times` calls; returns a counter."""
    seen = [0]

    def handler(**_: Any) -> None:
        seen[0] += 1
        if seen[0] <= times:
            raise make()

    client.meta.events.register(event, handler)
    return seen


def stages_of(moto: MotoServer, key: str) -> dict[str, list[str]]:
    """Every version's stages, listed the way AWS shapes the answer (AwsShaped)."""
    client = moto.client("secretsmanager")
    AwsShaped(client, moto)
    resp = client.list_secret_version_ids(SecretId=key, IncludeDeprecated=True)
    return {v["VersionId"]: sorted(version_stages(v)) for v in resp["Versions"]}


@pytest.fixture
def store(aws_env: MotoServer, tmp_path: Path) -> Iterator[AwsStore]:
    with connect(tmp_path) as s:
        assert isinstance(s, AwsStore)
        yield s


# --------------------------------------------------------------------------- conformance


class TestAwsConformance(StoreConformance):
    @pytest.fixture
    def store(self, aws_env: MotoServer, tmp_path: Path) -> Iterator[SecretStore]:
        with connect(tmp_path) as s:
            yield s

    @pytest.fixture
    def second_store(self, aws_env: MotoServer, tmp_path: Path) -> Iterator[SecretStore]:
        with connect(tmp_path) as s:  # its own boto3 session and client
            yield s


class TestAwsConformanceAwsShaped(StoreConformance):
    """The same suite with moto answering as AWS does (see servers.AwsShaped)."""

    @pytest.fixture
    def store(self, aws_env: MotoServer, tmp_path: Path) -> Iterator[SecretStore]:
        with connect(tmp_path) as s:
            AwsShaped(s.client, aws_env)
            yield s

    @pytest.fixture
    def second_store(self, aws_env: MotoServer, tmp_path: Path) -> Iterator[SecretStore]:
        with connect(tmp_path) as s:
            AwsShaped(s.client, aws_env)
            yield s


# --------------------------------------------------------------------------- connection


def test_from_config_uses_environment_endpoint_and_region(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with connect(tmp_path, region="eu-west-1") as s:
        assert s.region == "eu-west-1"  # the file's region when the environment has none
        assert s.endpoint == aws_env.endpoint  # AWS_ENDPOINT_URL, read by botocore itself
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with connect(tmp_path, region="eu-west-1") as s:
        assert s.region == "us-west-2"
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with connect(tmp_path, region="eu-west-1") as s:
        assert s.region == "us-east-1"  # AWS_REGION wins over AWS_DEFAULT_REGION
        s.write(unique("region"), group(), None)
        assert s.health().ok


def test_aws_profile_is_honoured(aws_env: MotoServer, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key_id = f"profile{secrets.token_hex(4)}"
    creds = tmp_path / "credentials"
    creds.write_text(f"[deparrow-test]\naws_access_key_id = {key_id}\n"
                     f"aws_secret_access_key = {secrets.token_hex(16)}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "deparrow-test")
    with connect(tmp_path) as s:
        used = s.client._request_signer._credentials.get_frozen_credentials()
        assert used.access_key == key_id
        key = unique("profile")
        s.write(key, group(), None)
        assert s.read(key) is not None


def test_unknown_profile_and_missing_credentials(aws_env: MotoServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with connect(tmp_path) as s, pytest.raises(AccessDeniedError,
                                               match="no usable AWS credentials") as info:
        s.read(unique("nocreds"))
    assert "not found" not in str(info.value)
    monkeypatch.setenv("AWS_PROFILE", "deparrow-missing")
    with pytest.raises(ConfigError, match="AWS profile 'deparrow-missing' not found"):
        connect(tmp_path)


def test_repr_shows_region_and_endpoint_not_credentials(store: AwsStore,
                                                        aws_env: MotoServer) -> None:
    text = repr(store)
    assert "us-east-1" in text and aws_env.endpoint in text
    assert aws_env.access_key_id not in text and aws_env.secret_access_key not in text


def test_health_names_the_principal_and_reads_no_value(store: AwsStore) -> None:
    store.caller_arn()  # creates the STS client so its calls can be counted too
    sm, sts = Calls(store.client), Calls(store.connection._sts)
    health = store.health()
    assert health.ok and "arn:aws:sts::" in health.detail
    assert sm.take() == ["ListSecrets"] and sts.take() == ["GetCallerIdentity"]


# --------------------------------------------------------------------------- layout


def test_layout_writes_exactly_the_guide_objects(store: AwsStore, aws_env: MotoServer,
                                                 tmp_path: Path) -> None:
    _, env = make_config(tmp_path)
    layout = Layout(load_catalog(), env)
    assert layout.ref("POSTGRES_USER") == RemoteRef("deparrow/production/database", "username")
    database = {"username": value(), "password": value(), "database": value()}
    store.write("deparrow/production/database", database, None)

    direct = aws_env.client("secretsmanager")
    names = [s["Name"] for s in direct.list_secrets()["SecretList"]]
    assert names == ["deparrow/production/database"]
    got = direct.get_secret_value(SecretId="deparrow/production/database",
                                  VersionStage="AWSCURRENT")
    assert json.loads(got["SecretString"]) == {k: v.reveal() for k, v in database.items()}

    # Every object of the layout, written through the store, is one JSON secret.
    objects = layout.objects([v.name for v in layout.needed()])
    assert set(objects) == {f"deparrow/{ENV}/{g}" for g in ("secrets", "database", "redis")}
    for name, keys in objects.items():
        if name != "deparrow/production/database":
            store.write(name, {layout.ref(k).property: value() for k in keys}, None)
    assert sorted(store.list_objects("deparrow/production/")) == sorted(objects)


def test_secret_that_is_not_a_json_object_of_strings(store: AwsStore,
                                                     aws_env: MotoServer) -> None:
    direct = aws_env.client("secretsmanager")
    hidden = secrets.token_urlsafe(16)
    for label, text in (("notjson", f"{hidden} is not json"), ("array", json.dumps([hidden])),
                        ("number", json.dumps({"port": 5432, "x": hidden}))):
        key = unique(label)
        direct.create_secret(Name=key, SecretString=text)
        with pytest.raises(IntegrityError) as info:
            store.read(key)
        shown = str(info.value) + repr(info.value) + "".join(
            traceback.format_exception(info.value))
        assert key in str(info.value) and hidden not in shown


# --------------------------------------------------------------------------- CAS and calls


def test_http_calls_per_operation(store: AwsStore, tmp_path: Path) -> None:
    calls = Calls(store.client)
    key = unique("calls")
    v1 = store.write(key, group(), None)
    assert calls.take() == ["CreateSecret"]
    snap = store.read(key)
    assert snap is not None and calls.take() == ["GetSecretValue"]
    v2 = store.write(key, group(), snap.version)  # read-then-write: no extra check
    assert calls.take() == ["PutSecretValue", "UpdateSecretVersionStage"]
    store.history(key)
    assert calls.take() == ["ListSecretVersionIds"]
    assert store.rollback(key) == v1
    assert calls.take() == ["ListSecretVersionIds", "UpdateSecretVersionStage"]
    store.list_objects("deparrow/test/")
    assert calls.take() == ["ListSecrets"]

    # A store that never saw the expected version checks it first (metadata only), so a
    # stale write is refused before anything is stored.
    with connect(tmp_path) as other:
        other_calls = Calls(other.client)
        v3 = other.write(key, group(), v1)
        assert other_calls.take() == ["DescribeSecret", "PutSecretValue",
                                      "UpdateSecretVersionStage"]
        with pytest.raises(ConflictError, match=f"now version {v3}"):
            other.write(key, group(), v2)
        assert other_calls.take() == ["DescribeSecret"]
    assert len(store.history(key)) == 3


def test_update_keeps_the_new_version_pending_until_the_stage_move(
        store: AwsStore, aws_env: MotoServer) -> None:
    key = unique("pending")
    first = group()
    v1 = store.write(key, first, None)
    seen: dict[str, Any] = {}

    def before_move(**_: Any) -> None:
        seen.update(stages_of(aws_env, key))
        snap = store.read(key)  # readers still get the old value
        seen["read"] = snap and dict(snap.values)

    store.client.meta.events.register(
        "before-call.secrets-manager.UpdateSecretVersionStage", before_move)
    v2 = store.write(key, group(), v1)
    assert seen[v1] == [CURRENT] and seen[v2] == [PENDING]
    assert seen["read"] == first
    after = stages_of(aws_env, key)
    assert after[v1] == [PREVIOUS] and CURRENT in after[v2]  # AWSPREVIOUS moved by AWS


def test_conflict_when_stage_move_is_refused(store: AwsStore, aws_env: MotoServer,
                                             tmp_path: Path) -> None:
    """A writer that passed the check loses at the stage move; its pending label goes."""
    key = unique("refused")
    base = store.write(key, group(), None)
    with connect(tmp_path) as rival:
        winner = group()

        def rival_writes(**_: Any) -> None:
            if not rival_writes.done:  # type: ignore[attr-defined]
                rival_writes.done = True  # type: ignore[attr-defined]
                rival.write(key, winner, base)

        rival_writes.done = False  # type: ignore[attr-defined]
        store.client.meta.events.register(
            "before-call.secrets-manager.UpdateSecretVersionStage", rival_writes)
        with pytest.raises(ConflictError, match="changed since it was read"):
            store.write(key, group(), base)
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == winner
    stages = stages_of(aws_env, key)
    losers = [v for v, s in stages.items() if v not in (base, snap.version)]
    assert len(losers) == 1 and stages[losers[0]] == []  # left without any label


def test_four_racing_writers_exactly_one_wins(aws_env: MotoServer, tmp_path: Path) -> None:
    stores = [connect(tmp_path) for _ in range(4)]
    try:
        key = unique("race4")
        base = stores[0].write(key, group(), None)
        candidates = [group() for _ in stores]
        outcomes = race_writers(list(stores), key, candidates, base)
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
        assert len(winners) == 1, outcomes
        assert sum(isinstance(o, ConflictError) for o in outcomes) == 3, outcomes
        won = outcomes[winners[0]]
        snap = stores[1].read(key)
        assert snap is not None and snap.version == won
        assert dict(snap.values) == candidates[winners[0]]
        stages = stages_of(aws_env, key)
        assert [v for v, s in stages.items() if CURRENT in s] == [won]
        assert [v for v, s in stages.items() if PREVIOUS in s] == [base]
        assert all(PENDING not in s for v, s in stages.items() if v != won)
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- rollback


def test_rollback_moves_the_stages_like_aws(store: AwsStore, aws_env: MotoServer) -> None:
    key = unique("rollback")
    groups = [group() for _ in range(3)]
    v1 = store.write(key, groups[0], None)
    v2 = store.write(key, groups[1], v1)
    v3 = store.write(key, groups[2], v2)

    assert store.rollback(key) == v2  # default: the AWSPREVIOUS version
    snap = store.read(key)
    assert snap is not None and snap.version == v2 and dict(snap.values) == groups[1]
    stages = stages_of(aws_env, key)
    assert CURRENT in stages[v2] and PREVIOUS not in stages[v2]
    assert PREVIOUS in stages[v3] and CURRENT not in stages[v3]
    assert stages[v1] == []
    hist = store.history(key)
    assert [h.version for h in hist] == [v1, v2, v3]
    assert [h.current for h in hist] == [False, True, False]

    assert store.rollback(key, v1) == v1  # to a deprecated (label-less) version
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == groups[0]
    stages = stages_of(aws_env, key)
    assert stages[v1] == [CURRENT] and stages[v2] == [PREVIOUS]

    # Writing after a rollback continues from the version now current.
    v4 = store.write(key, groups[2], v1)
    assert stages_of(aws_env, key)[v1] == [PREVIOUS] and v4 != v3


# --------------------------------------------------------------------------- idempotency


def lost_response() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="http://lost.invalid/")


def test_retried_put_with_lost_response_makes_one_version(store: AwsStore) -> None:
    key = unique("idem-put")
    v1 = store.write(key, group(), None)
    calls = Calls(store.client)
    lost = inject(store.client, "after-call.secrets-manager.PutSecretValue", lost_response, 1)
    second = group()
    v2 = store.write(key, second, v1)
    assert lost[0] == 2  # the server stored the first attempt; the retry reused its token
    assert calls.take().count("PutSecretValue") == 2
    assert [h.version for h in store.history(key)] == [v1, v2]
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == second


def test_retried_stage_move_with_lost_response_is_not_a_conflict(store: AwsStore) -> None:
    key = unique("idem-move")
    v1 = store.write(key, group(), None)
    lost = inject(store.client, "after-call.secrets-manager.UpdateSecretVersionStage",
                  lost_response, 1)
    second = group()
    v2 = store.write(key, second, v1)  # the retried move is refused: it had succeeded
    assert lost[0] == 2
    assert [h.version for h in store.history(key)] == [v1, v2]
    snap = store.read(key)
    assert snap is not None and snap.version == v2 and dict(snap.values) == second


def test_retried_create_with_lost_response_makes_one_version(store: AwsStore) -> None:
    key = unique("idem-create")
    lost = inject(store.client, "after-call.secrets-manager.CreateSecret", lost_response, 1)
    first = group()
    v1 = store.write(key, first, None)
    assert lost[0] == 2
    assert [h.version for h in store.history(key)] == [v1]
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == first


# --------------------------------------------------------------------------- faults


def throttled() -> ClientError:
    return service_error("ThrottlingException", "GetSecretValue", "Rate exceeded")


def test_throttling_is_retried(store: AwsStore) -> None:
    key = unique("throttle")
    first = group()
    store.write(key, first, None)
    seen = inject(store.client, "before-call.secrets-manager.GetSecretValue", throttled, 2)
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == first
    assert seen[0] == 3


def test_throttling_beyond_the_attempts_is_unavailable(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "3")
    with connect(tmp_path) as s:
        key = unique("throttle-out")
        s.write(key, group(), None)
        seen = inject(s.client, "before-call.secrets-manager.GetSecretValue", throttled, 99)
        with pytest.raises(StoreUnavailableError) as info:
            s.read(key)
    assert seen[0] == 3
    text = str(info.value)
    assert "throttl" in text.lower() and key in text and f"environment {ENV}" in text
    assert info.value.exit_code == EXIT_UNAVAILABLE


def test_server_error_is_retried(store: AwsStore) -> None:
    key = unique("5xx")
    first = group()
    store.write(key, first, None)
    seen = inject(store.client, "before-call.secrets-manager.GetSecretValue",
                  lambda: service_error("InternalServiceError", "GetSecretValue", status=500),
                  1)
    snap = store.read(key)
    assert snap is not None and dict(snap.values) == first and seen[0] == 2


PRINCIPAL = "arn:aws:iam::123456789012:user/deparrow-ci"


@pytest.mark.parametrize(("code", "message", "expect"), [
    ("AccessDeniedException",
     f"User: {PRINCIPAL} is not authorized to perform: secretsmanager:GetSecretValue on "
     "resource: deparrow/test because no identity-based policy allows the action",
     PRINCIPAL),
    ("AccessDeniedException", "not authorized", "arn:aws:sts::"),  # principal asked of STS
    ("UnrecognizedClientException", "The security token included in the request is invalid",
     "not valid"),
    ("ExpiredTokenException", "The security token included in the request is expired",
     "expired"),
    ("DecryptionFailure", "can't decrypt the protected secret text using the KMS key", "KMS"),
])
def test_access_denied_is_never_not_found(store: AwsStore, code: str, message: str,
                                          expect: str) -> None:
    key = unique("denied")
    first = group()
    store.write(key, first, None)
    seen = inject(store.client, "before-call.secrets-manager.GetSecretValue",
                  lambda: service_error(code, "GetSecretValue", message), 99)
    with pytest.raises(AccessDeniedError) as info:
        store.read(key)
    assert seen[0] == 1  # not retried
    text = str(info.value)
    assert "access denied" in text and "not found" not in text.lower()
    assert expect in text and key in text
    assert info.value.exit_code == EXIT_DENIED
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_access_denied_on_write(store: AwsStore) -> None:
    inject(store.client, "before-call.secrets-manager.CreateSecret",
           lambda: service_error("AccessDeniedException", "CreateSecret",
                                 f"User: {PRINCIPAL} is not authorized"), 99)
    with pytest.raises(AccessDeniedError, match="access denied as " + PRINCIPAL) as info:
        store.write(unique("denied-write"), group(), None)
    assert "secretsmanager:CreateSecret" in str(info.value)  # the hint names the action


def test_server_down_is_unavailable_in_bounded_time(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1")
    with connect(tmp_path) as s:
        key = unique("down")
        calls = Calls(s.client)
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            s.read(key)
        elapsed = time.monotonic() - began
        # One retry layer: DEPARROW_SECRETS_RETRIES attempts, botocore adds none.
        assert calls.take() == ["GetSecretValue", "GetSecretValue"]
        text = str(info.value)
        for part in (f"environment {ENV}", "provider aws", key, closed, "us-east-1",
                     "could not connect", "2 attempt", "AWS_ENDPOINT_URL"):
            assert part in text, (part, text)
        assert elapsed < 10, elapsed
        assert not s.health().ok


def test_slow_endpoint_times_out_then_converges(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fault_proxy: Callable[..., DelayProxy]) -> None:
    key = unique("slow")
    first = group()
    aws_env.client("secretsmanager").create_secret(
        Name=key, SecretString=json.dumps({k: v.reveal() for k, v in first.items()}))
    proxy = fault_proxy(aws_env.port, mode="delay", delay_seconds=4.0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1")
    with connect(tmp_path) as s:
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="timed out") as info:
            s.read(key)
        assert time.monotonic() - began < 8
        assert proxy.url in str(info.value)
        proxy.mode = "pass"
        snap = s.read(key)
        assert snap is not None and dict(snap.values) == first


def test_write_that_gives_up_says_outcome_unknown(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    with connect(tmp_path) as s:
        inject(s.client, "after-call.secrets-manager.CreateSecret", lost_response, 99)
        key = unique("unknown")
        with pytest.raises(StoreUnavailableError, match="may or may not have been applied: "
                           "check with `deparrow-secrets history KEY --env production`"):
            s.write(key, group(), None)
        assert len(s.history(key)) == 1  # both attempts used one token: one version


def test_secret_scheduled_for_deletion(store: AwsStore, aws_env: MotoServer) -> None:
    """AWS refuses to update a secret scheduled for deletion (moto does not): the store
    stops with the restore-secret hint, as for a soft-deleted Key Vault secret."""
    shaped = AwsShaped(store.client, aws_env)
    key = unique("deleted")
    v1 = store.write(key, group(), None)  # seen current just now: the update skips a check
    shaped.direct.delete_secret(SecretId=key)
    for attempt in (lambda: store.write(key, group(), v1), lambda: store.read(key),
                    lambda: store.write(key, group(), None)):
        with pytest.raises(SoftDeletedError, match="scheduled for deletion") as info:
            attempt()
        assert f"aws secretsmanager restore-secret --secret-id {key}" in str(info.value)
        assert info.value.exit_code == 6
    shaped.direct.restore_secret(SecretId=key)
    assert [h.version for h in store.history(key)] == [v1]  # nothing was written


def test_oversize_value_is_refused_before_any_call(store: AwsStore) -> None:
    key = unique("big")
    calls = Calls(store.client)
    big = {"KEY_0": SecretValue(secrets.token_hex(32_768))}  # 65,536 characters + the JSON
    with pytest.raises(InputError, match="65,536") as info:
        store.write(key, big, None)
    assert info.value.exit_code == 2 and calls.take() == []
    assert big["KEY_0"].reveal() not in str(info.value)
    fits = {"KEY_0": SecretValue(secrets.token_hex(32_000))}
    store.write(key, fits, None)
    assert store.read_value(key, "KEY_0") == fits["KEY_0"]


@pytest.mark.parametrize("code", ["InvalidParameterException", "InvalidRequestException"])
def test_losing_stage_move_is_a_conflict_whatever_the_code(
        aws_env: MotoServer, tmp_path: Path, code: str) -> None:
    stores = [connect(tmp_path) for _ in range(2)]
    try:
        for s in stores:
            AwsShaped(s.client, aws_env, move_refusal_code=code)
        key = unique("move-code")
        base = stores[0].write(key, group(), None)
        for s in stores:
            s.read(key)  # both saw `base` current: both go straight to the stage move
        candidates = [group(), group()]
        outcomes = race_writers(list(stores), key, candidates, base)
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, (str, ConflictError)) for o in outcomes), outcomes
        snap = stores[0].read(key)
        assert snap is not None and dict(snap.values) == candidates[winners[0]]
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("code", ["InvalidParameterException", "InvalidRequestException"])
def test_retried_move_that_succeeded_is_a_success_whatever_the_code(
        store: AwsStore, aws_env: MotoServer, code: str) -> None:
    AwsShaped(store.client, aws_env, move_refusal_code=code)
    key = unique("move-retried")
    v1 = store.write(key, group(), None)
    inject(store.client, "after-call.secrets-manager.UpdateSecretVersionStage", lost_response, 1)
    second = group()
    v2 = store.write(key, second, v1)
    snap = store.read(key)
    assert snap is not None and snap.version == v2 and dict(snap.values) == second


def test_stale_reads_after_a_lost_response_are_waited_out(store: AwsStore,
                                                          aws_env: MotoServer) -> None:
    """The retried move is refused (it had succeeded) and DescribeSecret still shows the
    old state for a moment: the store looks again, backing off, instead of calling it a
    conflict."""
    shaped = AwsShaped(store.client, aws_env)
    key = unique("stale")
    v1 = store.write(key, group(), None)
    inject(store.client, "after-call.secrets-manager.UpdateSecretVersionStage", lost_response, 1)
    shaped.stale(key, 0.8)
    second = group()
    began = time.monotonic()
    v2 = store.write(key, second, v1)
    assert time.monotonic() - began >= 0.7  # it did wait for the reads to catch up
    snap = store.read(key)
    assert snap is not None and snap.version == v2 and dict(snap.values) == second


def test_reads_stale_beyond_the_time_bound_say_the_outcome_is_unknown(
        aws_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1.5")
    with connect(tmp_path) as s:
        shaped = AwsShaped(s.client, aws_env)
        key = unique("stale-long")
        v1 = s.write(key, group(), None)
        inject(s.client, "after-call.secrets-manager.UpdateSecretVersionStage", lost_response, 1)
        shaped.stale(key, 60)
        began = time.monotonic()
        with pytest.raises(UncertainWriteError) as info:
            s.write(key, group(), v1)
        assert time.monotonic() - began < 3
    text = str(info.value)
    assert "may have raced another writer" in text and f"history KEY --env {ENV}" in text
    assert info.value.exit_code == 5


def test_deleted_version_in_history_read_and_rollback(store: AwsStore,
                                                      aws_env: MotoServer) -> None:
    """AWS deletes unlabelled versions beyond 100; reading one says "... it was deleted"."""
    shaped = AwsShaped(store.client, aws_env)
    key = unique("expired")
    v1 = store.write(key, group(), None)
    v2 = store.write(key, group(), v1)
    v3 = store.write(key, group(), v2)
    v4 = store.write(key, group(), v3)
    hist = store.history(key)
    assert [h.labels for h in hist if h.version == v1] == [()]  # listed without stages
    shaped.expire(key, v1)  # between the listing and the read
    with pytest.raises(NotFoundError, match="no longer exists") as info:
        store.read(key, v1)
    assert "scheduled for deletion" not in str(info.value)
    assert v1 not in [h.version for h in store.history(key)]
    with pytest.raises(NotFoundError, match="does not exist"):
        store.rollback(key, v1)
    # Deleted between rollback's listing and its stage move.
    store.client.meta.events.register_first(
        "before-parameter-build.secrets-manager.UpdateSecretVersionStage",
        lambda **_: shaped.expire(key, v2), unique_id=f"expire-{v2}")
    with pytest.raises(NotFoundError, match="no longer exists"):
        store.rollback(key, v2)
    snap = store.read(key)
    assert snap is not None and snap.version == v4


def test_list_pages_through_every_secret(store: AwsStore, aws_env: MotoServer) -> None:
    direct = aws_env.client("secretsmanager")
    prefix = f"deparrow/paging-{secrets.token_hex(3)}/"
    names = sorted(f"{prefix}{i:03d}" for i in range(105))
    for name in names:
        direct.create_secret(Name=name, SecretString="{}")
    direct.create_secret(Name=f"other/{prefix}x", SecretString="{}")
    calls = Calls(store.client)
    assert store.list_objects(prefix) == names
    assert calls.take() == ["ListSecrets", "ListSecrets"]
    assert store.list_objects(prefix + "10") == names[100:]


# --------------------------------------------------------------------------- no values


def test_no_value_in_any_raised_error(store: AwsStore, aws_env: MotoServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    key = unique("leak")
    first = group()
    v1 = store.write(key, first, None)
    second = group()
    store.write(key, second, v1)
    third, fourth = group(), group()
    raised: list[StoreError] = []
    attempts = [
        lambda: store.write(key, third, v1),  # conflict
        lambda: store.write(key, second, None),  # exists
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError) as info:
            attempt()
        raised.append(info.value)
    inject(store.client, "before-call.secrets-manager.PutSecretValue",
           lambda: service_error("AccessDeniedException", "PutSecretValue", "denied"), 99)
    with pytest.raises(AccessDeniedError) as denied:
        store.write(key, fourth, store.read(key).version)  # type: ignore[union-attr]
    raised.append(denied.value)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "1")
    inject(store.client, "before-call.secrets-manager.GetSecretValue", throttled, 99)
    store.connection.policy = type(store.policy).from_env()
    with pytest.raises(StoreUnavailableError) as down:
        store.read(key)
    raised.append(down.value)
    values = [v.reveal() for g in (first, second, third, fourth) for v in g.values()]
    for exc in raised:
        shown = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
        # Nothing from the SDK chained: no cause, and any context suppressed.
        assert exc.__cause__ is None
        assert exc.__context__ is None or exc.__suppress_context__
        for v in values:
            assert v not in shown


def test_helpers_read_listings_as_aws_shapes_them(store: AwsStore, aws_env: MotoServer) -> None:
    """AWS omits VersionStages for an unlabelled version (moto sends []): helpers cope."""
    AwsShaped(store.client, aws_env)
    key = unique("shape")
    v1 = store.write(key, group(), None)
    v2 = store.write(key, group(), v1)
    v3 = store.write(key, group(), v2)
    listed = store.client.list_secret_version_ids(SecretId=key, IncludeDeprecated=True)
    unlabelled = [v for v in listed["Versions"] if v["VersionId"] == v1]
    assert unlabelled and "VersionStages" not in unlabelled[0]
    assert [version_stages(v) for v in unlabelled] == [[]]
    assert stages_of(aws_env, key)[v3] == sorted([CURRENT, PENDING])
    assert {h.version: h.labels for h in store.history(key)}[v1] == ()
