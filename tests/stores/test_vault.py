"""The Vault / OpenBao store against a real OpenBao dev server: conformance, layout,
credentials, namespaces, faults (crash, delay, blackhole, 5xx, sealed), access denied,
secrecy of error messages and of the audit log."""

from __future__ import annotations

import json
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import (
    AccessDeniedError,
    ConflictError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
    StoreUnavailableError,
)
from deparrow_secrets.providers import open_store
from deparrow_secrets.providers.vault import connection as vault_mod
from deparrow_secrets.providers.vault.settings import VaultSettings
from deparrow_secrets.providers.vault.store import VaultStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.testing import StoreConformance
from fakes.tokenreview import API_AUDIENCES, TokenReviewServer
from servers import DelayProxy, OpenBaoServer

IN_CLUSTER = "https://vault.vault.svc.cluster.local:8200"  # what ESO uses; unreachable here


def value() -> SecretValue:
    return SecretValue(secrets.token_urlsafe(24))


def group(n: int = 3) -> dict[str, SecretValue]:
    return {f"KEY_{i}": value() for i in range(n)}


def unique(label: str) -> str:
    return f"deparrow/test-{label}-{secrets.token_hex(4)}"


def exception_text(exc: BaseException) -> str:
    return str(exc) + repr(exc) + "".join(traceback.format_exception(exc))


def assert_secret_free(exc: BaseException, *values: SecretValue | str) -> None:
    text = exception_text(exc)
    for v in values:
        raw = v.reveal() if isinstance(v, SecretValue) else v
        assert raw not in text


def make_config(
    tmp_path: Path, env: str = "staging", **store: Any
) -> tuple[Config, EnvironmentConfig]:
    store.setdefault("server", IN_CLUSTER)
    environment = EnvironmentConfig(env, VaultSettings(**store))
    return Config(root=tmp_path, file=None, environments={env: environment}), environment


def connect(tmp_path: Path, env: str = "staging", **store: Any) -> VaultStore:
    config, environment = make_config(tmp_path, env, **store)
    opened = open_store(config, config.environment(environment.name))
    assert isinstance(opened, VaultStore)
    return opened


@pytest.fixture
def fast_faults(vault_env: pytest.MonkeyPatch) -> None:
    vault_env.setenv("DEPARROW_SECRETS_RETRIES", "2")
    vault_env.setenv("DEPARROW_SECRETS_TIMEOUT", "1")


def count_requests(store: VaultStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record 'METHOD path' of every HTTP request the store sends from now on."""
    sent: list[str] = []
    original = store._session.send

    def send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        sent.append(f"{request.method} {requests.utils.urlparse(request.url).path}")
        return original(request, **kwargs)

    monkeypatch.setattr(store._session, "send", send)
    return sent


# --------------------------------------------------------------------------- conformance


class TestVaultConformance(StoreConformance):
    @pytest.fixture
    def store(self, bao_env: OpenBaoServer, tmp_path: Path) -> Iterator[VaultStore]:
        with connect(tmp_path) as s:
            yield s

    @pytest.fixture
    def second_store(self, bao_env: OpenBaoServer, tmp_path: Path) -> Iterator[VaultStore]:
        with connect(tmp_path) as s:
            yield s


# --------------------------------------------------------------------------- layout


def test_layout_is_one_kv2_secret_with_one_property_per_key(
    vault_env: pytest.MonkeyPatch, openbao_fresh: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao_fresh.addr)
    vault_env.setenv("VAULT_TOKEN", openbao_fresh.token)
    values = {"DEPARROW_JWT_SECRET": value(), "POSTGRES_PASSWORD": value(),
              "REDIS_PASSWORD": value()}
    with connect(tmp_path, "production") as store:
        assert store.write("deparrow/production", values, None) == "1"
    raw = openbao_fresh.client().secrets.kv.v2.read_secret_version(
        path="deparrow/production", mount_point="secret", raise_on_deleted_version=True)
    assert raw["data"]["data"] == {k: v.reveal() for k, v in values.items()}
    assert raw["data"]["metadata"]["version"] == 1


def test_non_string_properties_read_as_json_text(bao_env: OpenBaoServer, tmp_path: Path) -> None:
    key = unique("json")
    bao_env.client().secrets.kv.v2.create_or_update_secret(
        path=key, secret={"PORT": 5432, "ON": True, "MAP": {"a": "b"}, "S": "x"},
        mount_point="secret")
    with connect(tmp_path) as store:
        snap = store.read(key)
    assert snap is not None
    assert {k: v.reveal() for k, v in snap.values.items()} == {
        "PORT": "5432", "ON": "true", "MAP": '{"a":"b"}', "S": "x"}


# --------------------------------------------------------------------------- configuration


def test_config_server_is_used_without_vault_addr(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("VAULT_TOKEN", openbao.token)
    with connect(tmp_path, server=openbao.addr) as store:
        assert store.address == openbao.addr
        key = unique("server")
        version = store.write(key, group(), None)
        assert store.history(key)[-1].version == version


def test_vault_addr_overrides_config_and_repr_hides_token(
    bao_env: OpenBaoServer, tmp_path: Path
) -> None:
    with connect(tmp_path, mount="secret") as store:
        assert store.address == bao_env.addr
        text = repr(store) + str(store)
        assert bao_env.addr in text and "'secret'" in text
        assert bao_env.token not in text
        assert store.health().ok


def test_missing_address_is_a_config_error(vault_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from deparrow_secrets.errors import ConfigError

    vault_env.setenv("VAULT_TOKEN", secrets.token_hex(8))
    with pytest.raises(ConfigError, match="VAULT_ADDR"):
        connect(tmp_path, server=None)


def test_missing_cacert_file_is_a_config_error(bao_env: OpenBaoServer, tmp_path: Path,
                                               vault_env: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.errors import ConfigError

    vault_env.setenv("VAULT_CACERT", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="VAULT_CACERT"):
        connect(tmp_path)


def test_bao_variables_work_and_vault_variables_win(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("BAO_ADDR", openbao.addr)
    vault_env.setenv("BAO_TOKEN", openbao.token)
    with connect(tmp_path) as store:
        assert store.address == openbao.addr
        key = unique("bao")
        store.write(key, group(), None)
    vault_env.setenv("BAO_TOKEN", secrets.token_urlsafe(12))  # wrong, but VAULT_TOKEN wins
    vault_env.setenv("VAULT_TOKEN", openbao.token)
    with connect(tmp_path) as store:
        assert store.read(key) is not None


def test_token_file_of_vault_login(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao.addr)
    token_file = Path(tmp_path / "home" / ".vault-token")
    token_file.write_text(openbao.token + "\n")
    with connect(tmp_path) as store:
        key = unique("tokenfile")
        assert store.write(key, group(), None) == "1"


def test_no_credentials_says_how_to_log_in(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao.addr)
    with pytest.raises(AccessDeniedError) as info:
        connect(tmp_path)
    assert "VAULT_TOKEN" in str(info.value) and "bao login" in str(info.value)
    assert info.value.exit_code == 4


def test_approle_login(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path
) -> None:
    root = openbao.client()
    tag = secrets.token_hex(4)
    mount, policy, role = f"approle-{tag}", f"approle-{tag}", "deparrow-ci"
    prefix = f"deparrow/approle-{tag}"
    root.sys.enable_auth_method("approle", path=mount)
    root.sys.create_or_update_policy(policy, f"""
        path "secret/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}
        path "secret/metadata/{prefix}/*" {{ capabilities = ["read", "list"] }}
    """)
    root.auth.approle.create_or_update_approle(role, token_policies=[policy],
                                               mount_point=mount)
    role_id = root.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role, mount_point=mount)["data"]["secret_id"]
    vault_env.setenv("VAULT_ADDR", openbao.addr)
    vault_env.setenv("VAULT_ROLE_ID", role_id)
    vault_env.setenv("VAULT_SECRET_ID", secret_id)
    vault_env.setenv("VAULT_APPROLE_MOUNT", mount)
    key = f"{prefix}/app"
    values = group()
    with connect(tmp_path) as store:
        store.write(key, values, None)
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == values
        health = store.health()
        assert health.ok and policy in health.detail
        with pytest.raises(AccessDeniedError, match="access denied to secret/data/deparrow/"):
            store.read(unique("outside"))

    wrong = secrets.token_hex(16)
    vault_env.setenv("VAULT_SECRET_ID", wrong)
    with connect(tmp_path) as store, pytest.raises(AccessDeniedError, match="AppRole") as info:
        store.read(key)
    assert_secret_free(info.value, wrong, secret_id, *values.values())


def test_kubernetes_auth_in_a_pod(
    vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer, tmp_path: Path,
    tokenreview: TokenReviewServer,
) -> None:
    service_account = "deparrow-external-secrets-sa"
    root = openbao.client()
    tag = secrets.token_hex(4)
    mount, policy, role = f"k8s-{tag}", f"k8s-{tag}", f"deparrow-{tag}"
    prefix = f"deparrow/k8s-{tag}"
    root.sys.enable_auth_method("kubernetes", path=mount)
    root.write_data(f"auth/{mount}/config", data={
        "kubernetes_host": tokenreview.url,
        "kubernetes_ca_cert": tokenreview.ca_file.read_text(encoding="utf-8"),
        "disable_local_ca_jwt": True,
        "token_reviewer_jwt": tokenreview.issue("vault", "vault-reviewer", [API_AUDIENCES[0]])})
    root.sys.create_or_update_policy(
        policy, f'path "secret/data/{prefix}/*" {{ capabilities = ["create", "read"] }}')
    root.write_data(f"auth/{mount}/role/{role}", data={
        "bound_service_account_names": [service_account],
        "bound_service_account_namespaces": ["deparrow"], "token_policies": [policy]})
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(tokenreview.issue("deparrow", service_account, [API_AUDIENCES[0]]))
    vault_env.setattr(vault_mod, "K8S_TOKEN_PATH", str(jwt_file))
    vault_env.setenv("VAULT_ADDR", openbao.addr)
    values = group()
    with connect(tmp_path, role=role, auth_mount=mount) as store:
        assert store.write(f"{prefix}/app", values, None) == "1"
        snap = store.read(f"{prefix}/app")
        assert snap is not None and dict(snap.values) == values
    with connect(tmp_path, role="no-such-role", auth_mount=mount) as store, \
            pytest.raises(AccessDeniedError, match="Kubernetes login"):
        store.read(f"{prefix}/app")


# --------------------------------------------------------------------------- namespaces


def test_store_in_a_vault_namespace(
    bao_env: OpenBaoServer, vault_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OpenBao 2.x has namespaces: data lands in the namespace's own KV mount."""
    ns = f"team{secrets.token_hex(3)}"
    status, body = bao_env.api("POST", f"sys/namespaces/{ns}", {})
    assert status in (200, 204), body
    in_ns = bao_env.client(namespace=ns)
    in_ns.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    key = "deparrow/staging"
    values = group()
    with connect(tmp_path, vault_namespace=ns) as store:
        assert store.namespace == ns
        assert store.write(key, values, None) == "1"
        assert store.health().ok
    raw = in_ns.secrets.kv.v2.read_secret_version(path=key, mount_point="secret",
                                                  raise_on_deleted_version=True)
    assert raw["data"]["data"] == {k: v.reveal() for k, v in values.items()}
    with pytest.raises(hvac.exceptions.InvalidPath):  # not in the root namespace
        bao_env.client().secrets.kv.v2.read_secret_version(
            path=key, mount_point="secret", raise_on_deleted_version=True)
    # VAULT_NAMESPACE overrides the configuration for the tool.
    vault_env.setenv("VAULT_NAMESPACE", ns)
    with connect(tmp_path, vault_namespace="elsewhere") as store:
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == values


# --------------------------------------------------------------------------- versions


def test_deleted_and_destroyed_versions(bao_env: OpenBaoServer, tmp_path: Path) -> None:
    key = unique("deleted")
    kv = bao_env.client().secrets.kv.v2
    with connect(tmp_path) as store:
        v1 = store.write(key, group(), None)
        v2 = store.write(key, group(), v1)
        third = group()
        v3 = store.write(key, third, v2)
        kv.destroy_secret_versions(key, versions=[int(v1)], mount_point="secret")
        kv.delete_secret_versions(key, versions=[int(v3)], mount_point="secret")
        labels = {h.version: h.labels for h in store.history(key)}
        assert labels == {v1: ("destroyed",), v2: (), v3: ("deleted",)}
        with pytest.raises(NotFoundError, match="destroyed"):
            store.read(key, v1)
        with pytest.raises(NotFoundError, match="deleted"):
            store.read(key, v3)
        # The current version is soft-deleted: "deleted", not "missing" (provision would
        # mint a new value for every key), with the undelete command, as for Key Vault.
        with pytest.raises(SoftDeletedError) as info:
            store.read(key)
        assert info.value.exit_code == 6 and "deleted" in str(info.value)
        assert f"bao kv undelete -mount=secret -versions={v3} {key}" in str(info.value)
        with pytest.raises(SoftDeletedError):
            store.write(key, third, None)
        assert store.recover(key) == v3
        current = store.read(key)
        assert current is not None and current.version == v3 and dict(current.values) == third
        # Destroyed: the values are gone for good; the object is empty at that version.
        kv.destroy_secret_versions(key, versions=[int(v3)], mount_point="secret")
        current = store.read(key)
        assert current is not None and current.version == v3 and dict(current.values) == {}
        v4 = store.write(key, third, current.version)
        assert v4 == "4"
        with pytest.raises(NotFoundError, match="not soft-deleted"):
            store.recover(key)


def test_rollback_is_a_new_version_with_old_content(bao_env: OpenBaoServer,
                                                    tmp_path: Path) -> None:
    key = unique("rollback")
    first, second = group(), group()
    with connect(tmp_path) as store:
        v1 = store.write(key, first, None)
        store.write(key, second, v1)
        assert store.rollback(key) == "3"
        assert [h.current for h in store.history(key)] == [False, False, True]
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == first


def test_kv_version_1_mount_is_refused(bao_env: OpenBaoServer, tmp_path: Path) -> None:
    mount = f"kv1-{secrets.token_hex(4)}"
    bao_env.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    with connect(tmp_path, mount=mount) as store, pytest.raises(StoreError, match="KV version 2"):
        store.write("deparrow/staging", group(), None)
    assert bao_env.api("LIST", f"{mount}/")[0] == 404  # nothing was written


def test_kv_version_1_mount_fails_reads_instead_of_reporting_missing(
        bao_env: OpenBaoServer, tmp_path: Path) -> None:
    mount = f"kv1-{secrets.token_hex(4)}"
    bao_env.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    with connect(tmp_path, mount=mount) as store, pytest.raises(StoreError, match="KV version 2"):
        store.read("deparrow/staging")


def test_skip_verify_false_or_0_keeps_tls_verification(vault_env: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    vault_env.setenv("VAULT_TOKEN", secrets.token_urlsafe(8))
    for off in ("false", "0", "FALSE", "no"):
        vault_env.setenv("VAULT_SKIP_VERIFY", off)
        with connect(tmp_path) as store:
            assert store._verify is True
            assert store._client.adapter._kwargs.get("verify") is True
    vault_env.setenv("VAULT_SKIP_VERIFY", "true")
    with connect(tmp_path) as store:
        assert store._verify is False


def test_missing_mount_is_named(bao_env: OpenBaoServer, tmp_path: Path) -> None:
    with connect(tmp_path, mount="no-such-mount") as store:
        with pytest.raises(StoreError, match="no secrets engine is mounted at no-such-mount/"):
            store.write("deparrow/staging", group(), None)
        with pytest.raises(StoreError, match="no secrets engine is mounted"):
            store.read("deparrow/staging")
        assert not store.health().ok


# --------------------------------------------------------------------------- API calls


def test_one_request_per_read_and_per_write(
    bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = unique("calls")
    with connect(tmp_path) as store:
        sent = count_requests(store, monkeypatch)
        v1 = store.write(key, group(9), None)  # first write of a store: + one mount check
        assert sent == ["GET /v1/sys/internal/ui/mounts/secret", f"POST /v1/secret/data/{key}"]
        sent.clear()
        store.write(key, group(9), v1)
        assert sent == [f"POST /v1/secret/data/{key}"]
        sent.clear()
        store.read(key)
        assert sent == [f"GET /v1/secret/data/{key}"]
        sent.clear()
        store.read_value(key, "KEY_3")
        store.history(key)
        assert sent == [f"GET /v1/secret/data/{key}", f"GET /v1/secret/metadata/{key}"]


def test_list_descends_only_into_the_prefix_folder(
    bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = unique("list")
    names = [f"{base}/app", f"{base}/apple/x", f"{base}/apple/y/z", f"{base}/other/w",
             f"{base}/b"]
    with connect(tmp_path) as store:
        for name in names:
            store.write(name, group(1), None)
        sent = count_requests(store, monkeypatch)
        assert store.list_objects(f"{base}/app") == sorted(names[:3])
        assert sorted(sent) == sorted([f"LIST /v1/secret/metadata/{base}",
                                       f"LIST /v1/secret/metadata/{base}/apple",
                                       f"LIST /v1/secret/metadata/{base}/apple/y"])
        assert store.list_objects(f"{base}/") == sorted(names)
        assert store.list_objects(f"{base}/nothing") == []
        assert store.list_objects(unique("nowhere") + "/") == []
        assert set(names) <= set(store.list_objects("deparrow/"))


# --------------------------------------------------------------------------- faults


def test_killed_server_is_unavailable_quickly_and_names_the_object(
    vault_env: pytest.MonkeyPatch, openbao_fresh: OpenBaoServer, tmp_path: Path,
    fast_faults: None,
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao_fresh.addr)
    vault_env.setenv("VAULT_TOKEN", openbao_fresh.token)
    values = group()
    with connect(tmp_path, "production") as store:
        store.write("deparrow/production", values, None)
        openbao_fresh.kill()
        for op in (lambda: store.read("deparrow/production"),
                   lambda: store.write("deparrow/production", values, "1"),
                   lambda: store.history("deparrow/production")):
            began = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                op()
            assert time.monotonic() - began < 10
            message = str(info.value)
            assert "environment production" in message and "provider vault" in message
            assert "remote key secret/deparrow/production" in message
            assert f"VAULT_ADDR={openbao_fresh.addr}" in message
            assert "after 2 attempt(s)" in message
            assert info.value.exit_code == 3
            assert_secret_free(info.value, openbao_fresh.token, *values.values())
        health = store.health()
        assert not health.ok and "could not connect" in health.detail


@pytest.mark.parametrize("mode", ["delay", "blackhole", "drop"])
def test_proxy_faults_then_convergence(
    mode: str, bao_env: OpenBaoServer, vault_env: pytest.MonkeyPatch, tmp_path: Path,
    fast_faults: None, fault_proxy: Callable[..., DelayProxy],
) -> None:
    proxy = fault_proxy(bao_env.port, delay_seconds=5.0)
    vault_env.setenv("VAULT_ADDR", proxy.url)
    key = unique(f"proxy-{mode}")
    values = group()
    with connect(tmp_path) as store:
        existing = unique("proxy-existing")
        store.write(existing, group(), None)  # also does the once-per-store mount check
        proxy.mode = mode
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            store.write(key, values, None)
        elapsed = time.monotonic() - began
        assert elapsed < 2.5, "DEPARROW_SECRETS_TIMEOUT bounds the whole call, retries too"
        if mode != "drop":
            assert "timed out" in str(info.value)
            assert elapsed >= 0.9, "it waits out its time bound"
        assert f"remote key secret/{key}" in str(info.value)
        assert_secret_free(info.value, bao_env.token, *values.values())
        with pytest.raises(StoreUnavailableError):
            store.read(existing)

        proxy.mode = "pass"
        # The same call converges: a delayed attempt that landed meanwhile is recognised
        # as ours (same content, next version); otherwise this write lands now.
        assert store.write(key, values, None) == "1"
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == values
        assert store.read(existing) is not None


def _fake_response(request: requests.PreparedRequest, status: int, errors: list[str]
                   ) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"errors": errors}).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = request.url or ""
    response.request = request
    return response


@pytest.mark.parametrize("fault", ["reset", "502", "500", "429", "503-standby"])
def test_transient_failures_are_retried(
    fault: str, bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "4")
    key = unique(f"flaky-{fault}")
    values = group()
    with connect(tmp_path) as store:
        store.write(key, values, None)
        original = store._session.send
        calls: list[str] = []

        def flaky(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            calls.append(request.method or "")
            if len(calls) <= 2:
                if fault == "reset":
                    raise requests.ConnectionError("connection reset by peer")
                status = int(fault[:3])
                return _fake_response(request, status, ["upstream trouble"])
            return original(request, **kwargs)

        monkeypatch.setattr(store._session, "send", flaky)
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == values
        assert calls == ["GET"] * 3


def test_client_errors_are_not_retried(
    bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = unique("notretried")
    with connect(tmp_path) as store:
        calls: list[str] = []

        def bad_request(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            calls.append(request.method or "")
            return _fake_response(request, 400, ["unsupported request shape"])

        monkeypatch.setattr(store._session, "send", bad_request)
        with pytest.raises(StoreError, match="HTTP 400: unsupported request shape") as info:
            store.read(key)
        assert calls == ["GET"]
        assert not isinstance(info.value, (StoreUnavailableError, AccessDeniedError))


def test_lost_response_of_a_landed_write_is_not_a_conflict(
    bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write reaches Vault but the answer is lost; the retry hits its own CAS."""
    key = unique("lost")
    with connect(tmp_path) as store:
        v1 = store.write(key, group(), None)
        original = store._session.send
        lost: list[int] = []

        def lose_first_answer(request: requests.PreparedRequest, **kwargs: Any
                              ) -> requests.Response:
            response = original(request, **kwargs)
            if request.method == "POST" and not lost:
                lost.append(response.status_code)
                raise requests.ConnectionError("connection reset after sending")
            return response

        monkeypatch.setattr(store._session, "send", lose_first_answer)
        values = group()
        assert store.write(key, values, v1) == "2"
        assert lost == [200]
        assert [h.version for h in store.history(key)] == ["1", "2"]
        # A real concurrent change is still a conflict.
        with pytest.raises(ConflictError):
            store.write(key, group(), v1)


def test_sealed_server_gets_a_specific_hint(
    vault_env: pytest.MonkeyPatch, openbao_fresh: OpenBaoServer, tmp_path: Path,
    fast_faults: None,
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao_fresh.addr)
    vault_env.setenv("VAULT_TOKEN", openbao_fresh.token)
    with connect(tmp_path) as store:
        store.write("deparrow/staging", group(), None)
        openbao_fresh.client().sys.seal()
        with pytest.raises(StoreUnavailableError, match="sealed") as info:
            store.read("deparrow/staging")
        assert "operator unseal" in str(info.value)
        health = store.health()
        assert not health.ok and "sealed" in health.detail


# --------------------------------------------------------------------------- access


def test_policy_for_another_path_is_access_denied(
    bao_env: OpenBaoServer, vault_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = bao_env.client()
    tag = secrets.token_hex(4)
    policy = f"other-only-{tag}"
    root.sys.create_or_update_policy(
        policy, f'path "secret/data/other-{tag}/*" {{ capabilities = ["read"] }}')
    limited = root.auth.token.create(policies=[policy], display_name=f"ci-{tag}",
                                     ttl="10m")["auth"]["client_token"]
    key = unique("denied")
    values = group()
    with connect(tmp_path) as store:
        store.write(key, values, None)
    vault_env.setenv("VAULT_TOKEN", limited)
    with connect(tmp_path) as store:
        for op in (lambda: store.read(key), lambda: store.write(key, group(), "1"),
                   lambda: store.history(key), lambda: store.list_objects(key)):
            with pytest.raises(AccessDeniedError) as info:
                op()
            message = str(info.value)
            assert "access denied to secret/" in message
            assert f"token 'token-ci-{tag}'" in message and policy in message
            assert info.value.exit_code == 4
            assert_secret_free(info.value, limited, bao_env.token, *values.values())
        with pytest.raises(AccessDeniedError, match=f"access denied to secret/data/{key}"):
            store.read(key)
        health = store.health()
        assert health.ok, health.detail  # reachable and authenticated; no secret read


def test_bad_token_is_access_denied_not_missing(
    bao_env: OpenBaoServer, vault_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = secrets.token_urlsafe(18)
    vault_env.setenv("VAULT_TOKEN", bad)
    key = unique("badtoken")
    with connect(tmp_path) as store:
        with pytest.raises(AccessDeniedError) as info:
            store.read(key)
        assert "access denied to secret/data/" in str(info.value)
        assert "invalid or expired" in str(info.value)
        assert "$VAULT_TOKEN" in str(info.value)
        assert_secret_free(info.value, bad)
        with pytest.raises(AccessDeniedError):
            store.write(key, group(), None)
        health = store.health()
        assert not health.ok and "refused" in health.detail and bad not in health.detail


def test_health_reads_no_secret(bao_env: OpenBaoServer, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(tmp_path) as store:
        sent = count_requests(store, monkeypatch)
        health = store.health()
        assert health.ok and "unsealed" in health.detail and "KV v2" in health.detail
        assert bao_env.token not in health.detail
    assert not any("/data/" in s or "/metadata/" in s for s in sent), sent


# --------------------------------------------------------------------------- audit


def test_audit_log_holds_no_plaintext(
    vault_env: pytest.MonkeyPatch, openbao_fresh: OpenBaoServer, tmp_path: Path
) -> None:
    vault_env.setenv("VAULT_ADDR", openbao_fresh.addr)
    vault_env.setenv("VAULT_TOKEN", openbao_fresh.token)
    values = group()
    with connect(tmp_path) as store:
        v1 = store.write("deparrow/staging", values, None)
        store.write("deparrow/staging", group(), v1)
        store.read("deparrow/staging")
    entries = openbao_fresh.audit_entries()
    paths = [e.get("request", {}).get("path") for e in entries]
    assert paths.count("secret/data/deparrow/staging") >= 3  # the log is not empty
    assert openbao_fresh.audit_log is not None
    text = openbao_fresh.audit_log.read_text()
    assert "hmac-sha256:" in text
    for v in values.values():
        assert v.reveal() not in text
    assert openbao_fresh.token not in text


def test_object_too_large_for_the_listener_names_the_setting(bao_env: OpenBaoServer,
                                                              tmp_path: Path) -> None:
    """OpenBao's default listener refuses more than 1,000 JSON strings in a request."""
    values = {f"KEY_{i}": SecretValue(secrets.token_hex(4)) for i in range(600)}
    with connect(tmp_path) as s, pytest.raises(StoreError) as caught:
        s.write(f"deparrow/big-{secrets.token_hex(4)}", values, None)
    assert "max_request_json_strings" in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError)  # not retried as transient


# --------------------------------------------------------------------------- Vault's own text


@pytest.mark.parametrize("echo_form", ["json-escaped", "wrapped"])
def test_vault_text_echoing_written_values_is_not_shown(
    echo_form: str, bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vault may echo a request in its error; a value it escaped (quote, backslash,
    non-ASCII) or wrapped no longer matches the value, so a request that carried values
    shows none of Vault's text."""
    head, tail = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    raw = f'{head}"\\\u00e9{tail}' if echo_form == "json-escaped" else head + tail
    values = {"K": SecretValue(raw)}
    key = unique("echo")
    with connect(tmp_path) as store:
        store.write(unique("echo-mount-check"), group(1), None)

        def echo(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            body = request.body.decode() if isinstance(request.body, bytes) else ""
            if echo_form == "wrapped":
                body = body.replace(head, head + "\n")
            return _fake_response(request, 400, [f"cannot use this body: {body}"])

        monkeypatch.setattr(store._session, "send", echo)
        with pytest.raises(StoreError) as info:
            store.write(key, values, None)
    message = str(info.value)
    assert "HTTP 400" in message and "not shown" in message
    assert_secret_free(info.value, head, tail, json.dumps(raw)[1:-1])


def test_vault_text_never_carries_the_token_or_control_characters(
    bao_env: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(tmp_path) as store:
        def echo(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            sent = request.headers.get("X-Vault-Token", "")
            return _fake_response(request, 400, [f"token {sent} \x1b[2J is not usable here"])

        monkeypatch.setattr(store._session, "send", echo)
        with pytest.raises(StoreError) as info:
            store.read(unique("token-echo"))
    message = str(info.value)
    assert "HTTP 400: token <redacted>" in message and "is not usable here" in message
    assert "\x1b" not in exception_text(info.value)
    assert_secret_free(info.value, bao_env.token)
