"""DEPARROW_SECRETS_TIMEOUT bounds a whole store call: every retry and a server that trickles
its answer one byte every half second (each socket read is quick, so SDK read timeouts
alone never fire). The one progress line on stderr names the endpoint and no value."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deparrow_secrets.errors import InputError, StoreUnavailableError
from deparrow_secrets.providers.aws.store import AwsStore
from deparrow_secrets.providers.azure.store import AzureStore
from deparrow_secrets.providers.vault.connection import VaultConnection
from deparrow_secrets.providers.vault.store import VaultStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE, SecretStore
from deparrow_secrets.stores.retry import RetryPolicy
from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential
from helpers import Run
from servers import DelayProxy, MotoServer, OpenBaoServer

BOUND = 1.5
SLACK = 1.5  # thread start-up, the last socket close, a loaded CI machine


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", str(BOUND))
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "4")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def keyvault() -> Iterator[FakeKeyVault]:
    with FakeKeyVault(vault_name="deparrow-kv") as fake:
        yield fake


def _vault(openbao: OpenBaoServer, proxy: DelayProxy) -> tuple[VaultStore, str]:
    key = f"deparrow/deadline-{secrets.token_hex(4)}"
    with VaultStore(VaultConnection(openbao.addr, token=openbao.token)) as direct:
        direct.write(key, {"K": SecretValue(secrets.token_urlsafe(300))}, None)
    return VaultStore(VaultConnection(proxy.url, token=openbao.token)), key


def _aws(moto: MotoServer, proxy: DelayProxy, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[AwsStore, str]:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    key = f"deparrow/deadline/{secrets.token_hex(4)}"
    with AwsStore("production") as direct:
        direct.write(key, {"K": SecretValue(secrets.token_urlsafe(300))}, None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return AwsStore("production"), key


def _azure(fake: FakeKeyVault, proxy: DelayProxy) -> tuple[AzureStore, str]:
    key = f"DEPARROW-DEADLINE-{secrets.token_hex(4)}"
    fake.seed(key, secrets.token_urlsafe(300))
    store = AzureStore(f"https://127.0.0.1:{proxy.port}", StaticTokenCredential(),
                       environment="staging", connection_verify=fake.ca_path)
    return store, key


@pytest.mark.parametrize("provider", ["vault", "aws", "azure"])
def test_a_trickling_server_cannot_stretch_a_call(
        provider: str, limits: None, request: pytest.FixtureRequest,
        fault_proxy: Callable[..., DelayProxy], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store: SecretStore
    if provider == "vault":
        openbao = request.getfixturevalue("openbao")
        proxy = fault_proxy(openbao.port)
        store, key = _vault(openbao, proxy)
    elif provider == "aws":
        moto = request.getfixturevalue("moto")
        proxy = fault_proxy(moto.port)
        store, key = _aws(moto, proxy, monkeypatch)
    else:
        fake = request.getfixturevalue("keyvault")
        proxy = fault_proxy(int(fake.url.rsplit(":", 1)[1]))
        store, key = _azure(fake, proxy)
    with store:
        assert store.read(key) is not None  # connected (and, for Azure, challenged)
        capsys.readouterr()
        proxy.mode = "trickle"
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            store.read(key)
        elapsed = time.monotonic() - began
    assert elapsed < BOUND + SLACK, elapsed
    assert "timed out" in str(info.value) and f"{BOUND:g}" in str(info.value)
    err = capsys.readouterr().err
    progress = [line for line in err.splitlines() if line.startswith("waiting for ")]
    assert len(progress) == 1, err
    assert proxy.url.split("//")[1] in progress[0]


def test_retries_share_the_bound(limits: None, openbao: OpenBaoServer,
                                 fault_proxy: Callable[..., DelayProxy],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Four attempts of a dropped connection and their back-off fit in one bound; the
    progress line says it is retrying."""
    proxy = fault_proxy(openbao.port)
    store, key = _vault(openbao, proxy)
    policy = RetryPolicy(attempts=50, base_delay=0.2, max_delay=0.5, timeout=BOUND)
    with VaultStore(VaultConnection(proxy.url, token=openbao.token, retry=policy)) as s:
        proxy.mode = "drop"
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            s.read(key)
        assert time.monotonic() - began < BOUND + SLACK
    store.close()
    err = capsys.readouterr().err
    assert err.count("waiting for vault at ") == 1 and "retrying (2/50)" in err


def test_throttling_backs_off_exponentially_within_the_bound() -> None:
    policy = RetryPolicy(throttle_delay=1.0)
    from deparrow_secrets.stores.retry import Throttled

    assert [policy.throttle_backoff(n, Throttled()) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert policy.throttle_backoff(3, Throttled(retry_after=7.0)) == 7.0


@pytest.mark.parametrize("name", ["DEPARROW_SECRETS_TIMEOUT", "DEPARROW_SECRETS_RETRIES"])
@pytest.mark.parametrize("raw", ["inf", "nan", "-1", "0", "ten", "1e999", "-inf"])
def test_limits_that_are_not_positive_finite_numbers_are_refused(
        monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(InputError) as info:
        RetryPolicy.from_env()
    assert f"${name}" in str(info.value) and info.value.exit_code == 2


def test_limits_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "2.5")
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "3")
    policy = RetryPolicy.from_env()
    assert policy.timeout == 2.5 and policy.attempts == 3
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2.5")
    with pytest.raises(InputError, match="DEPARROW_SECRETS_RETRIES"):
        RetryPolicy.from_env()


def test_cli_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                cli: Callable[..., Run]) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "inf")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("VAULT_TOKEN", secrets.token_urlsafe(8))
    (tmp_path / "deparrow-secrets.yaml").write_text(
        "environments:\n  staging:\n    store: {provider: vault, server: http://127.0.0.1:9}\n")
    run = cli("status", "--env", "staging", cwd=tmp_path)
    assert run.code == 2, run
    assert "DEPARROW_SECRETS_TIMEOUT" in run.err


def test_whole_value_written_through_the_deadline(keyvault: FakeKeyVault) -> None:
    """The worker thread hands results and errors back unchanged."""
    with AzureStore(keyvault.url, StaticTokenCredential(), connection_verify=keyvault.ca_path,
                    policy=RetryPolicy(timeout=5.0)) as s:
        key = f"DEPARROW-DL-{secrets.token_hex(4)}"
        val = SecretValue(secrets.token_urlsafe(16))
        v1 = s.write(key, {WHOLE: val}, None)
        snap = s.read(key)
        assert snap is not None and snap.version == v1 and snap.values[WHOLE] == val


def test_a_back_off_that_would_end_past_the_bound_is_not_started(
        keyvault: FakeKeyVault) -> None:
    """Throttled without Retry-After: 0.5, 1, 2, ... s; the third would end past 1.5 s."""
    policy = RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.02, timeout=BOUND,
                         throttle_delay=0.5)
    with AzureStore(keyvault.url, StaticTokenCredential(), connection_verify=keyvault.ca_path,
                    policy=policy) as s:
        key = f"DEPARROW-TB-{secrets.token_hex(4)}"
        s.read(key)  # challenged
        keyvault.throttle(10, retry_after=None)
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="throttled") as info:
            s.read(key)
        assert time.monotonic() - began < BOUND
        assert "gave up after 2 attempts" in str(info.value)
        keyvault.clear_faults()


def test_retry_after_is_honoured(keyvault: FakeKeyVault) -> None:
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, timeout=5.0,
                         throttle_delay=0.01)
    with AzureStore(keyvault.url, StaticTokenCredential(), connection_verify=keyvault.ca_path,
                    policy=policy) as s:
        key = f"DEPARROW-RA-{secrets.token_hex(4)}"
        s.read(key)
        keyvault.throttle(1, retry_after=0.6)
        began = time.monotonic()
        assert s.read(key) is None
        assert time.monotonic() - began >= 0.6
