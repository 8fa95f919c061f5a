"""The Azure Key Vault store through the real azure-keyvault-secrets SDK against the HTTPS fake.

`fakes/azure_keyvault.py` is a fake of the Key Vault REST surface, not Key Vault: see its
docstring for what it covers. It runs with `version_order="id"` here, as the real service
lists versions, so nothing may rely on listing order.
"""

from __future__ import annotations

import secrets
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    UncertainWriteError,
)
from deparrow_secrets.providers import open_store
from deparrow_secrets.providers.azure import store as azure_mod
from deparrow_secrets.providers.azure.errors import SecretSoftDeletedError
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.azure.store import AzureStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE
from deparrow_secrets.stores.retry import RetryPolicy
from deparrow_secrets.testing import StoreConformance, race_writers
from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=5.0)


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeKeyVault]:
    with FakeKeyVault(vault_name="deparrow-kv", version_order="id", short_pages=True) as fake:
        yield fake


@pytest.fixture
def fake(vault: FakeKeyVault) -> FakeKeyVault:
    vault.reset()
    return vault


def connect(fake: FakeKeyVault, policy: RetryPolicy = FAST, **kwargs: object) -> AzureStore:
    return AzureStore(fake.url, StaticTokenCredential(), environment="staging", policy=policy,
                      connection_verify=fake.ca_path, polling_interval=0.02, **kwargs)


@pytest.fixture
def store(fake: FakeKeyVault) -> Iterator[AzureStore]:
    with connect(fake) as s:
        yield s


def value() -> SecretValue:
    return SecretValue(secrets.token_urlsafe(24))


def name(label: str = "s") -> str:
    return f"DEPARROW-{label.upper()}-{secrets.token_hex(4)}"


class TestAzureConformance(StoreConformance):
    @pytest.fixture
    def store(self, fake: FakeKeyVault) -> Iterator[AzureStore]:
        with connect(fake) as s:
            yield s

    @pytest.fixture
    def second_store(self, fake: FakeKeyVault) -> Iterator[AzureStore]:
        with connect(fake) as s:
            yield s


class TestAzureConformanceUnderReadLag(StoreConformance):
    """The same suite while new versions show in reads 0.2 s late."""

    @pytest.fixture
    def store(self, fake: FakeKeyVault) -> Iterator[AzureStore]:
        fake.read_lag(0.2)
        with connect(fake) as s:
            yield s

    @pytest.fixture
    def second_store(self, fake: FakeKeyVault) -> Iterator[AzureStore]:
        with connect(fake) as s:
            yield s


# ------------------------------------------------------------------ layout and versions


def test_layout_is_one_key_vault_secret_per_key(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("jwt-secret")
    val = value()
    version = store.write(key, {WHOLE: val}, None)
    with fake.make_client() as sdk:  # the SDK's own client, not our code
        secret = sdk.get_secret(key)
        assert secret.value == val.reveal()
        assert secret.properties.version == version
        assert [p.name for p in sdk.list_properties_of_secrets()] == [key]


def test_only_whole_values_and_key_vault_names(fake: FakeKeyVault, store: AzureStore) -> None:
    with pytest.raises(ValueError):
        store.write(name(), {"PROP": value()}, None)
    with pytest.raises(ValueError):
        store.write(name(), {WHOLE: value(), "X": value()}, None)
    fake.clear_requests()
    for bad in ("DEPARROW_JWT_SECRET", "a/b", "", "x" * 128):
        with pytest.raises(InputError):
            store.write(bad, {WHOLE: value()}, None)
        with pytest.raises(InputError):
            store.read(bad)
    assert fake.requests == []  # refused before any call


def test_history_orders_same_second_writes_without_listing_order(store: AzureStore) -> None:
    key = name("hist")
    versions: list[str] = []
    current = None
    for _ in range(6):
        current = store.write(key, {WHOLE: value()}, current)
        versions.append(current)
    hist = store.history(key)
    assert [h.version for h in hist] == versions
    assert [h.current for h in hist] == [False] * 5 + [True]


@pytest.fixture
def full_pages() -> Iterator[FakeKeyVault]:
    """A fake whose pages are full (the module's fake pages short, as the service may)."""
    with FakeKeyVault(vault_name="deparrow-kv", version_order="id") as fake:
        yield fake


def test_write_and_read_cost(full_pages: FakeKeyVault) -> None:
    fake = full_pages
    with connect(fake) as store:
        _write_and_read_cost(fake, store)


def _write_and_read_cost(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("cost")
    store.read(key)  # the challenge round trip of a fresh client happens here
    fake.clear_requests()
    v1 = store.write(key, {WHOLE: value()}, None)
    create = [(r.method, r.status) for r in fake.requests]
    fake.clear_requests()
    store.write(key, {WHOLE: value()}, v1)
    update = [(r.method, r.status) for r in fake.requests]
    fake.clear_requests()
    store.read(key)
    read = [(r.method, r.status) for r in fake.requests]
    # create: get latest (404), PUT, list, get latest, PATCH (commit tag), get latest
    assert create == [("GET", 404), ("PUT", 200), ("GET", 200), ("GET", 200),
                      ("PATCH", 200), ("GET", 200)]
    assert len(update) == 7 and [m for m, _ in update].count("PUT") == 1
    assert read == [("GET", 200)]


def test_rollback_twice_goes_back_in_content(store: AzureStore) -> None:
    key = name("rb")
    a, b = value(), value()
    v1 = store.write(key, {WHOLE: a}, None)
    store.write(key, {WHOLE: b}, v1)
    store.rollback(key)
    assert store.read_value(key, WHOLE) == a
    store.rollback(key)
    assert store.read_value(key, WHOLE) == b


def test_many_racing_writers_never_disagree_with_the_store(fake: FakeKeyVault) -> None:
    """Four writers, same second: at most one wins; the winner's value (else the base) stays."""
    stores = [connect(fake) for _ in range(4)]
    try:
        for _ in range(8):
            key = name("race4")
            base_value = value()
            base = stores[0].write(key, {WHOLE: base_value}, None)
            candidates = [value() for _ in stores]
            outcomes = race_writers(list(stores), key, [{WHOLE: c} for c in candidates], base)
            winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
            assert all(isinstance(o, (str, ConflictError)) for o in outcomes), outcomes
            assert len(winners) <= 1, outcomes
            current = stores[0].read_value(key, WHOLE)
            assert current == (candidates[winners[0]] if winners else base_value)
    finally:
        for s in stores:
            s.close()


# ------------------------------------------------------------------ soft delete


def test_soft_deleted_name_is_reported_and_recoverable(fake: FakeKeyVault,
                                                       store: AzureStore) -> None:
    key = name("deleted")
    old = value()
    v1 = store.write(key, {WHOLE: old}, None)
    with fake.make_client() as sdk:
        sdk.begin_delete_secret(key, _polling_interval=0.01).wait()
    assert key not in store.list_objects()
    assert store.deleted() == [key]
    assert store.read(key) is None
    new = value()
    with pytest.raises(SecretSoftDeletedError) as info:
        store.write(key, {WHOLE: new}, None)
    err = info.value
    assert "soft-deleted" in str(err)
    assert f"az keyvault secret recover --vault-name 127.0.0.1 --name {key}" in str(err)
    assert err.exit_code == 6 and not isinstance(err, ConflictError)
    assert fake.deleted_secret_names() == [key]  # nothing purged, nothing recreated
    assert store.recover(key) == v1
    assert store.deleted() == []
    assert store.read_value(key, WHOLE) == old
    store.write(key, {WHOLE: new}, v1)
    assert store.read_value(key, WHOLE) == new


def test_recover_waits_for_the_service(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("lag")
    store.write(key, {WHOLE: value()}, None)
    with fake.make_client() as sdk:
        sdk.begin_delete_secret(key, _polling_interval=0.01).wait()
    fake.operation_lag(3)  # the next three polls still answer 404
    store.recover(key)
    assert store.read(key) is not None
    with pytest.raises(NotFoundError, match="no soft-deleted secret"):
        store.recover(name("never"))


def test_recover_is_bounded(fake: FakeKeyVault) -> None:
    key = name("slow")
    with connect(fake, recover_timeout=0.2) as s:
        s.write(key, {WHOLE: value()}, None)
        with fake.make_client() as sdk:
            sdk.begin_delete_secret(key, _polling_interval=0.01).wait()
        fake.operation_lag(10_000)
        with pytest.raises(StoreUnavailableError, match="did not finish"):
            s.recover(key)
        fake.operation_lag(0)


# ------------------------------------------------------------------ faults


def assert_no_value(err: BaseException, *values: SecretValue) -> None:
    text = str(err) + repr(err) + "".join(traceback.format_exception(err))
    for v in values:
        assert v.reveal() not in text
    assert err.__cause__ is None and err.__suppress_context__


def test_throttling_is_retried(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("throttle")
    val = value()
    store.write(key, {WHOLE: val}, None)
    fake.throttle(2)
    assert store.read_value(key, WHOLE) == val
    assert [r.status for r in fake.requests[-3:]] == [429, 429, 200]


def test_persistent_503_is_unavailable(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("down")
    val = value()
    store.write(key, {WHOLE: val}, None)
    fake.fail(10, 503)
    with pytest.raises(StoreUnavailableError) as info:
        store.read(key)
    err = info.value
    text = str(err)
    assert "staging" in text and "azure" in text and fake.url in text and key in text
    assert "503" in text and "4 attempts" in text and "hint" in text
    assert_no_value(err, val)
    fake.fail(10, 503)
    with pytest.raises(StoreUnavailableError) as info:
        store.write(key, {WHOLE: value()}, None)
    fake.clear_faults()
    assert store.read_value(key, WHOLE) == val  # nothing was written


def test_access_denied_names_the_principal(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("denied")
    val = value()
    store.write(key, {WHOLE: val}, None)
    for rbac in (False, True):
        fake.deny(True, rbac=rbac)
        with pytest.raises(AccessDeniedError) as info:
            store.read(key)
        err = info.value
        assert "access denied" in str(err)
        assert f"appid={fake.app_id};oid={fake.principal_id}" in str(err)
        assert "iss=" not in str(err) and "sts.windows.net" not in str(err)
        assert not isinstance(err, NotFoundError) and err.exit_code == 4
        assert_no_value(err, val)
    fake.deny(True)
    new = value()
    with pytest.raises(AccessDeniedError) as info:
        store.write(key, {WHOLE: new}, None)
    assert_no_value(info.value, new)
    health = store.health()
    assert not health.ok and "access denied" in health.detail
    fake.deny(False)
    assert store.health().ok


def test_refused_token_is_access_denied_with_login_hint() -> None:
    with FakeKeyVault(token="the-only-good-token") as fake:  # noqa: S106 - fake, not a secret
        s = AzureStore(fake.url, StaticTokenCredential("another-token"), environment="staging",
                       policy=FAST, connection_verify=fake.ca_path)
        with s, pytest.raises(AccessDeniedError) as info:
            s.read(name())
    assert "access denied" in str(info.value) and "az login" in str(info.value)
    assert "another-token" not in str(info.value)


def test_timeout_then_recovery(fake: FakeKeyVault) -> None:
    key = name("slow")
    val = value()
    slow = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, timeout=0.3)
    with connect(fake, policy=slow) as s:
        s.write(key, {WHOLE: val}, None)
        fake.delay(1.0)
        with pytest.raises(StoreUnavailableError) as info:
            s.read(key)
        assert "within 0.3 s (timed out)" in str(info.value)
        assert_no_value(info.value, val)
        fake.delay(0)
        assert s.read_value(key, WHOLE) == val


def test_unreachable_vault_is_unavailable(fake: FakeKeyVault) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = AzureStore(f"https://127.0.0.1:{port}", StaticTokenCredential(), policy=FAST,
                   connection_verify=fake.ca_path)
    with s, pytest.raises(StoreUnavailableError, match="could not be reached"):
        s.list_objects()


def test_untrusted_certificate_is_refused_with_ca_hint(
        fake: FakeKeyVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    fake.clear_requests()
    s = AzureStore(fake.url, StaticTokenCredential(), policy=FAST)  # system CAs only
    with s, pytest.raises(StoreUnavailableError) as info:
        s.list_objects()
    assert "not trusted" in str(info.value) and "REQUESTS_CA_BUNDLE" in str(info.value)
    assert fake.requests == []  # no request got through; not retried as a transient fault


def test_repr_and_health(fake: FakeKeyVault, store: AzureStore) -> None:
    assert fake.url in repr(store) and "staging" in repr(store)
    fake.clear_requests()
    assert store.health().ok
    gets = [r for r in fake.requests if r.authorized]
    assert [(r.method, r.path) for r in gets] == [("GET", "/secrets")]
    assert "maxresults=1" in gets[0].query


# ------------------------------------------------------------------ from_config


def azure_env(url: str = "https://deparrow-kv.vault.azure.net") -> tuple[Config, EnvironmentConfig]:
    env = EnvironmentConfig("staging", AzureSettings(vault_url=url,
                                                   tenant_id="00000000-0000-0000-0000-000000000000"))
    return Config(root=Path("."), file=None, environments={"staging": env}), env


def test_from_config_uses_env_url_ca_bundle_and_default_credential(
        fake: FakeKeyVault, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[StaticTokenCredential] = []

    def credential() -> StaticTokenCredential:
        made.append(StaticTokenCredential())
        return made[-1]

    monkeypatch.setattr(azure_mod, "_default_credential", credential)
    monkeypatch.setenv("AZURE_KEYVAULT_URL", fake.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    config, env = azure_env()
    with open_store(config, env) as s:
        assert isinstance(s, AzureStore) and s.vault_url == fake.url
        key = name("cfg")
        val = value()
        s.write(key, {WHOLE: val}, None)
        assert s.read_value(key, WHOLE) == val
    assert made and made[0].token_requests  # the default credential was the one used


def test_from_config_without_env_uses_the_config_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure_mod, "_default_credential", StaticTokenCredential)
    monkeypatch.delenv("AZURE_KEYVAULT_URL", raising=False)
    config, env = azure_env()
    with AzureStore.from_config(config, env) as s:
        assert s.vault_url == "https://deparrow-kv.vault.azure.net"
        assert s.vault_name == "deparrow-kv"


def test_put_timed_out_but_applied_is_not_a_conflict(fake: FakeKeyVault) -> None:
    """The retry repeats a PUT that the service carried out after all: same write, no conflict."""
    key = name("dup")
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, timeout=5.0)
    with connect(fake, policy=policy, read_timeout=0.4) as s:  # each attempt: 0.4 s
        v1 = s.write(key, {WHOLE: value()}, None)
        val = value()
        fake.delay_next(1.0, method="PUT")
        v2 = s.write(key, {WHOLE: val}, v1)
        deadline = time.monotonic() + 5
        while fake.request_count("PUT", f"/secrets/{key}") < 3:  # the slow PUT lands late
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert s.read_value(key, WHOLE) == val
        assert s.read(key).version != v2  # the late duplicate is the latest now ...
        third = value()
        s.write(key, {WHOLE: third}, v2)  # ... and still counts as the version we returned
        assert s.read_value(key, WHOLE) == third


def test_disabled_current_version_is_an_integrity_error(fake: FakeKeyVault,
                                                       store: AzureStore) -> None:
    key = name("disabled")
    v1 = store.write(key, {WHOLE: value()}, None)
    with fake.make_client() as sdk:
        sdk.update_secret_properties(key, v1, enabled=False)
    with pytest.raises(IntegrityError, match="disabled"):
        store.read(key)
    assert store.history(key)[0].labels == ("disabled",)
    with pytest.raises(ConflictError):
        store.write(key, {WHOLE: value()}, None)  # it exists, even if unreadable


# ------------------------------------------------------------------ real DefaultAzureCredential

_PROBE = """
import json, sys
from pathlib import Path
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import DeparrowError
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.azure.store import AzureStore
from deparrow_secrets.stores.interface import WHOLE

env = EnvironmentConfig("staging", AzureSettings(vault_url="https://deparrow-kv.vault.azure.net",
                                                 tenant_id=sys.argv[2]))
config = Config(root=Path("."), file=None, environments={"staging": env})
val = SecretValue(sys.stdin.readline().rstrip("\\n"))
try:
    with AzureStore.from_config(config, env) as store:
        version = store.write(sys.argv[1], {WHOLE: val}, None)
        ok = store.read_value(sys.argv[1], WHOLE) == val
        print(json.dumps({"version": version, "read_back": ok,
                          "credential": type(store._credential).__name__}))
except DeparrowError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def run_probe(fake: FakeKeyVault, tmp_path: Path, key: str, val: SecretValue,
              **overrides: str) -> dict[str, object]:
    import json
    import os
    import subprocess
    import sys

    app = fake.enable_entra()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AZURE_") and k.lower() not in ("https_proxy", "http_proxy",
                                                               "all_proxy", "no_proxy")}
    env.update(app.env(), AZURE_KEYVAULT_URL=fake.url, HOME=str(tmp_path),
               AZURE_CONFIG_DIR=str(tmp_path / "az"), **overrides)
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    proc = subprocess.run([sys.executable, str(script), key, app.tenant_id],
                          input=val.reveal() + "\n", capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert val.reveal() not in proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_from_config_with_the_real_default_credential(tmp_path: Path) -> None:
    """Unchanged DefaultAzureCredential -> EnvironmentCredential -> MSAL -> fake Entra ID."""
    with FakeKeyVault(vault_name="deparrow-kv") as fake:
        key, val = name("entra"), value()
        out = run_probe(fake, tmp_path, key, val)
        assert out["credential"] == "DefaultAzureCredential" and out["read_back"] is True
        assert fake.issued_tokens  # the vault took only tokens from the token endpoint
        paths = [(r.method, r.path) for r in fake.requests if not r.authorized]
        tenant = fake.tenant_id
        assert ("GET", f"/{tenant}/v2.0/.well-known/openid-configuration") in paths
        assert ("POST", f"/{tenant}/oauth2/v2.0/token") in paths
        assert fake.proxy_tunnels == ["login.microsoftonline.com:443"]  # instance discovery
        with fake.make_client(StaticTokenCredential(fake.issued_tokens[-1])) as sdk:
            secret = sdk.get_secret(key)
        assert secret.value == val.reveal() and secret.properties.version == out["version"]


def test_wrong_client_secret_is_access_denied(tmp_path: Path) -> None:
    with FakeKeyVault() as fake:
        out = run_probe(fake, tmp_path, name("entra"), value(),
                        AZURE_CLIENT_SECRET=secrets.token_urlsafe(16))
        assert out["error"] == "AccessDeniedError"
        assert "access denied" in str(out["message"]) and "az login" in str(out["message"])
        assert fake.issued_tokens == [] and fake.secret_names() == []


# ------------------------------------------------------------------ Key Vault on its own terms


@pytest.mark.parametrize("writers", [2, 4])
def test_racing_writers_under_read_lag_never_both_win(fake: FakeKeyVault, writers: int) -> None:
    """Key Vault documents no read-your-writes: new versions show in reads 0.3 s late."""
    stores = [connect(fake) for _ in range(writers)]
    try:
        for _ in range(6):
            key = name("lag")
            base_value = value()
            base = stores[0].write(key, {WHOLE: base_value}, None)
            fake.read_lag(0.3)
            candidates = [value() for _ in stores]
            outcomes = race_writers(list(stores), key, [{WHOLE: c} for c in candidates], base)
            fake.read_lag(0)
            assert all(isinstance(o, (str, ConflictError)) for o in outcomes), outcomes
            winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
            assert len(winners) <= 1, outcomes
            time.sleep(0.35)  # every version visible again
            current = stores[0].read_value(key, WHOLE)
            assert current == (candidates[winners[0]] if winners else base_value)
    finally:
        for s in stores:
            s.close()


def test_read_lag_beyond_what_the_store_waits_for_is_reported(fake: FakeKeyVault) -> None:
    key = name("lag-long")
    with connect(fake, policy=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05,
                                          timeout=1.5)) as s:
        v1 = s.write(key, {WHOLE: value()}, None)
        fake.read_lag(5.0)
        began = time.monotonic()
        with pytest.raises(UncertainWriteError) as info:
            s.write(key, {WHOLE: value()}, v1)
        assert time.monotonic() - began < 3
    text = str(info.value)
    assert "may have raced another writer" in text and "history KEY --env staging" in text
    assert info.value.exit_code == 5


def test_write_right_after_recover_waits_out_object_is_being_recovered(
        fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("recovering")
    v1 = store.write(key, {WHOLE: value()}, None)
    with fake.make_client() as sdk:
        sdk.begin_delete_secret(key, _polling_interval=0.01).wait()
    fake.recovering_writes(2)  # Key Vault: 409 ObjectIsBeingRecovered for a while
    assert store.recover(key) == v1
    new = value()
    store.write(key, {WHOLE: new}, v1)
    assert store.read_value(key, WHOLE) == new
    assert [r.status for r in fake.requests if r.method == "PUT"][-3:] == [409, 409, 200]


def test_throttled_without_retry_after_backs_off_exponentially(fake: FakeKeyVault) -> None:
    key = name("throttle-bare")
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=10.0,
                         throttle_delay=0.2)
    with connect(fake, policy=policy) as s:
        val = value()
        s.write(key, {WHOLE: val}, None)
        fake.throttle(2, retry_after=None)
        began = time.monotonic()
        assert s.read_value(key, WHOLE) == val
        assert time.monotonic() - began >= 0.2 + 0.4  # 1, 2, 4, ... times throttle_delay


def test_throttled_confirmation_says_the_write_may_have_been_applied(
        fake: FakeKeyVault) -> None:
    key = name("half")
    policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05, timeout=3.0,
                         throttle_delay=0.05)
    with connect(fake, policy=policy) as s:
        v1 = s.write(key, {WHOLE: value()}, None)
        new = value()
        fake.throttle(10, retry_after=None, after="PUT")  # the PUT lands, its check is throttled
        with pytest.raises(StoreUnavailableError) as info:
            s.write(key, {WHOLE: new}, v1)
        fake.clear_faults()
        text = str(info.value)
        assert "may have been applied" in text and "history KEY --env staging" in text
        assert "throttled" in text
        assert_no_value(info.value, new)
        assert s.read_value(key, WHOLE) == new  # it was: the message did not lie


def test_tag_and_size_limits(fake: FakeKeyVault, store: AzureStore) -> None:
    key = name("limits")
    many = {f"owner-{i}": "x" for i in range(16)}
    v1 = fake.seed(key, value().reveal(), tags=many)  # the portal could not, but be strict
    fake.clear_requests()
    store.write(key, {WHOLE: value()}, v1)  # foreign tags are cut to what fits
    with fake.make_client() as sdk:
        assert len(sdk.get_secret(key).properties.tags or {}) <= 15
        with pytest.raises(Exception, match="exceeds the maximum of 15"):
            sdk.set_secret(name(), "v", tags={f"t{i}": "x" for i in range(16)})
    fake.clear_requests()
    too_big = SecretValue("x" * (25 * 1024 + 1))
    with pytest.raises(InputError, match="25,600 bytes") as info:
        store.write(name("big"), {WHOLE: too_big}, None)
    assert fake.requests == [] and info.value.exit_code == 2
    fits = SecretValue(secrets.token_hex(12_800))
    store.write(key, {WHOLE: fits}, store.read(key).version)  # type: ignore[union-attr]
    assert store.read_value(key, WHOLE) == fits


def test_certificate_backed_secrets_are_listed_by_the_service_not_by_us(
        fake: FakeKeyVault, store: AzureStore) -> None:
    ours = name("ours")
    store.write(ours, {WHOLE: value()}, None)
    fake.seed_certificate("DEPARROW-TLS-CERT")
    with fake.make_client() as sdk:
        managed = {p.name: p.managed for p in sdk.list_properties_of_secrets()}
    assert managed == {ours: None, "DEPARROW-TLS-CERT": True}
    assert store.list_objects("DEPARROW-") == [ours]


def test_a_challenge_for_another_resource_gets_no_token(fake: FakeKeyVault) -> None:
    """Even on loopback (where the SDK's own domain check must be off for the fake), the
    credential is asked only for Key Vault's resource."""
    from azure.keyvault.secrets._shared import HttpChallengeCache

    HttpChallengeCache.clear()  # the SDK caches challenges per host:port, process-wide
    fake.challenge_resource = "https://management.azure.com"
    credential = StaticTokenCredential()
    try:
        with AzureStore(fake.url, credential, policy=FAST,
                        connection_verify=fake.ca_path) as s, \
                pytest.raises(AccessDeniedError, match="another domain") as info:
            s.read(name())
    finally:
        fake.challenge_resource = "https://vault.azure.net"
        HttpChallengeCache.clear()
    assert credential.token_requests == [] and "no token was sent" in str(info.value)


def test_challenge_check_stays_on_for_any_name_but_the_fakes_address(
        fake: FakeKeyVault) -> None:
    """`localhost` is a name anything can answer for: the SDK's check applies (the fake's
    challenge names vault.azure.net, which localhost is not part of)."""
    from azure.keyvault.secrets._shared import HttpChallengeCache

    HttpChallengeCache.clear()
    port = fake.url.rsplit(":", 1)[1]
    credential = StaticTokenCredential()
    with AzureStore(f"https://localhost:{port}", credential, policy=FAST,
                    connection_verify=fake.ca_path) as s, \
            pytest.raises(AccessDeniedError, match="another domain"):
        s.read(name())
    assert credential.token_requests == []
    for url, on in (("https://deparrow-kv.vault.azure.net", True), (fake.url, False)):
        with AzureStore(url, StaticTokenCredential(), policy=FAST) as s:
            policies = s._client._client._config.authentication_policy  # the SDK's own
            assert policies._verify_challenge_resource is on


# ------------------------------------------------------------------ the error translator

CANARY = secrets.token_urlsafe(12)  # stands for request text a service message can quote


class _Answer:
    """What azure-core's HttpResponseError reads of a response."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        import json

        error: dict[str, object] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        self.status_code = status
        self.reason = "answer"
        self.headers = headers or {}
        self.request = None
        self.content_type = "application/json"
        self._body = json.dumps({"error": error}).encode()

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


def _http(status: int, code: str, inner: str | None = None,
          headers: dict[str, str] | None = None, message: str = "") -> BaseException:
    from azure.core.exceptions import HttpResponseError

    return HttpResponseError(response=_Answer(status, code, f"{message} {CANARY}", inner,
                                              headers))


def _auth() -> BaseException:
    from azure.core.exceptions import ClientAuthenticationError

    return ClientAuthenticationError(f"token request failed: {CANARY}")


def _connection(text: str) -> BaseException:
    from azure.core.exceptions import ServiceRequestError

    return ServiceRequestError(f"{text} {CANARY}")


TRANSLATIONS = [
    # (case, exception, our error, transient, words the message or hint must hold)
    ("403 names the principal and the permission only",
     lambda: _http(403, "Forbidden", "AccessDenied", message="Caller is not authorized. "
                   "appid=0a1b;oid=2c3d; does not have secrets get permission on key vault"),
     AccessDeniedError, False, ["appid=0a1b;oid=2c3d", "missing secrets get permission"]),
    ("403 on a disabled version", lambda: _http(403, "Forbidden", "SecretDisabled"),
     IntegrityError, False, ["disabled", "set-attributes --enabled true"]),
    ("409 soft-deleted", lambda: _http(409, "Conflict", "ObjectIsDeletedButRecoverable"),
     SecretSoftDeletedError, False, ["az keyvault secret recover --vault-name deparrow-kv "
                                     "--name DEPARROW-K"]),
    ("409 still recovering is retried",
     lambda: _http(409, "Conflict", "ObjectIsBeingRecovered"), StoreError, True,
     ["409 ObjectIsBeingRecovered"]),
    ("409 of another kind", lambda: _http(409, "Conflict"), StoreError, False, ["409 Conflict"]),
    ("404", lambda: _http(404, "SecretNotFound"), NotFoundError, False, ["not found"]),
    ("429 is retried", lambda: _http(429, "Throttled"), StoreError, True, ["429"]),
    ("503 is retried", lambda: _http(503, "ServiceUnavailable"), StoreError, True, ["503"]),
    ("400 is not", lambda: _http(400, "BadParameter"), StoreError, False, ["400 BadParameter"]),
    ("401 or no token", _auth, AccessDeniedError, False, ["az login", "AZURE_FEDERATED_TOKEN"]),
    ("connection refused is retried", lambda: _connection("connection refused"),
     StoreError, True, ["read failed"]),
    ("an untrusted certificate is not retried",
     lambda: _connection("[SSL: CERTIFICATE_VERIFY_FAILED]"), StoreUnavailableError, False,
     ["TLS certificate is not trusted", "REQUESTS_CA_BUNDLE"]),
    ("a challenge for another domain",
     lambda: ValueError(f"challenge resource does not match {CANARY}"), AccessDeniedError,
     False, ["another domain", "no token was sent"]),
]


@pytest.mark.parametrize("case, make, error, transient, words", TRANSLATIONS,
                         ids=[row[0] for row in TRANSLATIONS])
def test_the_translator_classifies_and_never_quotes_the_service(
        case: str, make: object, error: type[Exception], transient: bool,
        words: list[str]) -> None:
    from deparrow_secrets.providers.azure.errors import KeyVaultErrors, is_transient

    assert callable(make)
    exc = make()
    translator = KeyVaultErrors("https://deparrow-kv.vault.azure.net", "staging", FAST)
    translated = translator.translate(exc, "DEPARROW-K", "read")
    assert type(translated) is error
    text = f"{translated}\n{translated.hint}"
    assert all(w in text for w in words), text
    assert CANARY not in text
    assert is_transient(exc) is transient
    if transient:
        given_up = translator.give_up("DEPARROW-K")(exc, 4)
        assert isinstance(given_up, StoreUnavailableError)
        assert "gave up after 4 attempts" in str(given_up) and CANARY not in str(given_up)


@pytest.mark.parametrize("headers, retry_after", [({"Retry-After": "7"}, 7.0), ({}, None),
                                                  ({"Retry-After": "soon"}, None)])
def test_throttling_carries_retry_after_when_it_has_one(headers: dict[str, str],
                                                        retry_after: float | None) -> None:
    from deparrow_secrets.providers.azure.errors import throttled

    found = throttled(_http(429, "Throttled", headers=headers))
    assert found is not None and found.retry_after == retry_after
    assert throttled(_http(503, "ServiceUnavailable", headers=headers)) is None
