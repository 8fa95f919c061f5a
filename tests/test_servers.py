"""The test infrastructure itself: real OpenBao, moto and the fault proxy on loopback."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import hvac
import hvac.exceptions
import pytest
import requests

from servers import (
    LOOPBACK,
    DelayProxy,
    MotoServer,
    OpenBaoServer,
    ServerStartError,
    free_port,
    free_port_pair,
    port_is_free,
)


def _value() -> str:
    return secrets.token_urlsafe(24)


def _path(prefix: str = "infra") -> str:
    return f"{prefix}/{secrets.token_hex(6)}"


def _no_env_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); count it as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# --------------------------------------------------------------------------- helpers


def test_free_port_is_loopback_and_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert port_is_free(port)
    pair = free_port_pair()
    assert port_is_free(pair) and port_is_free(pair + 1)


# --------------------------------------------------------------------------- OpenBao


def test_openbao_listens_on_loopback_only(openbao: OpenBaoServer) -> None:
    assert openbao.addr == f"http://{LOOPBACK}:{openbao.port}"
    assert openbao.is_running()
    assert not port_is_free(openbao.port)
    assert not port_is_free(openbao.cluster_port)
    # Nothing from the server ends up in the test output: it is in the log file.
    assert "OpenBao server configuration" in openbao.log_text()


def test_openbao_dev_mode_mounts_secret_as_kv2(openbao: OpenBaoServer) -> None:
    status, body = openbao.api("GET", "sys/mounts/secret")
    assert status == 200
    assert body["type"] == "kv"
    assert body["options"]["version"] == "2"


def test_openbao_kv2_cas_and_versions(openbao: OpenBaoServer) -> None:
    client = openbao.client()
    assert client.is_authenticated()
    kv = client.secrets.kv.v2
    path = _path()
    first, second = _value(), _value()

    created = kv.create_or_update_secret(path=path, secret={"v": first}, cas=0)
    assert created["data"]["version"] == 1
    updated = kv.create_or_update_secret(path=path, secret={"v": second}, cas=1)
    assert updated["data"]["version"] == 2

    # A writer holding the stale version loses: check-and-set refuses.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        kv.create_or_update_secret(path=path, secret={"v": _value()}, cas=1)
    # cas=0 means "only if it does not exist".
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret(path=path, secret={"v": _value()}, cas=0)

    latest = kv.read_secret_version(path=path, raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"v": second}
    assert latest["data"]["metadata"]["version"] == 2
    old = kv.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"v": first}
    meta = kv.read_secret_metadata(path=path)
    assert meta["data"]["current_version"] == 2
    assert sorted(meta["data"]["versions"]) == ["1", "2"]


def test_openbao_enable_kv2_helper(openbao: OpenBaoServer) -> None:
    mount = f"kv-{secrets.token_hex(4)}"
    openbao.enable_kv2(mount)
    kv = openbao.client().secrets.kv.v2
    value = _value()
    kv.create_or_update_secret(path="a", secret={"v": value}, mount_point=mount, cas=0)
    read = kv.read_secret_version(path="a", mount_point=mount, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"v": value}


def test_openbao_audit_log_records_requests_without_plaintext(openbao: OpenBaoServer) -> None:
    assert openbao.audit_log is not None
    status, body = openbao.api("GET", "sys/audit")
    assert status == 200
    assert body["data"]["file/"]["type"] == "file"

    path, value = _path("audited"), _value()
    kv = openbao.client().secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"v": value})
    read = kv.read_secret_version(path=path, raise_on_deleted_version=True)
    assert read["data"]["data"]["v"] == value

    entries = openbao.audit_entries()
    ours = [e for e in entries if e.get("request", {}).get("path") == f"secret/data/{path}"]
    kinds = {(e["type"], e["request"]["operation"]) for e in ours}
    # A first write to a KV v2 path is audited as "create", later ones as "update".
    assert kinds == {
        ("request", "create"),
        ("response", "create"),
        ("request", "read"),
        ("response", "read"),
    }
    raw = openbao.audit_log.read_text()
    assert value not in raw, "audit log must HMAC secret values"
    assert openbao.token not in raw, "audit log must HMAC the client token"
    hashed = openbao.audit_hash(value)
    assert hashed.startswith("hmac-sha256:")
    by_kind = {(e["type"], e["request"]["operation"]): e for e in ours}
    assert by_kind[("request", "create")]["request"]["data"]["data"]["v"] == hashed
    assert by_kind[("response", "read")]["response"]["data"]["data"]["v"] == hashed


def test_openbao_kill_makes_hvac_fail_to_connect(openbao_fresh: OpenBaoServer) -> None:
    client = openbao_fresh.client(timeout=2)
    path = _path()
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": _value()})
    pid = openbao_fresh.pid

    openbao_fresh.kill()

    assert not openbao_fresh.is_running()
    assert not _pid_alive(pid)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)


def test_openbao_context_manager_cleans_up() -> None:
    with OpenBaoServer(audit=False) as server:
        pid, workdir, port = server.pid, server.workdir, server.port
        assert server.audit_log is None
        assert server.api("GET", "sys/health")[0] == 200
    assert not _pid_alive(pid)
    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection((LOOPBACK, port)):
        pass


def test_openbao_start_failure_reports_log_and_leaves_nothing(tmp_path: Path) -> None:
    server = OpenBaoServer(
        tmp_path, audit=False, extra_config="listener {{{ broken", start_timeout=5
    )
    with pytest.raises(ServerStartError, match="exited with"):
        server.start()
    assert not server.is_running()
    assert "openbao.log" in str(server.log_path)


def test_openbao_retries_when_its_port_is_taken(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind((LOOPBACK, free_port_pair()))
    taken.listen()
    picks = [taken.getsockname()[1]]

    class Unlucky(OpenBaoServer):
        def _pick_port(self) -> int:
            return picks.pop() if picks else super()._pick_port()

    try:
        with Unlucky(tmp_path, audit=False) as server:
            assert server.port != taken.getsockname()[1]
            assert server.api("GET", "sys/health")[0] == 200
            assert "address already in use" in server.log_text()
    finally:
        taken.close()


# --------------------------------------------------------------------------- moto


def test_moto_secretsmanager_stages_and_request_tokens(aws_env: MotoServer) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == aws_env.endpoint
    assert os.environ["AWS_REGION"] == os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    sm = boto3.client("secretsmanager")  # configured by the environment only
    name = _path("app")
    v1, v2, v3 = _value(), _value(), _value()
    t1, t2, t3 = (str(uuid.uuid4()) for _ in range(3))

    created = sm.create_secret(Name=name, SecretString=v1, ClientRequestToken=t1)
    assert created["VersionId"] == t1
    put2 = sm.put_secret_value(SecretId=name, SecretString=v2, ClientRequestToken=t2)
    put3 = sm.put_secret_value(SecretId=name, SecretString=v3, ClientRequestToken=t3)
    assert (put2["VersionId"], put3["VersionId"]) == (t2, t3)

    current = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (current["SecretString"], current["VersionId"]) == (v3, t3)
    assert (previous["SecretString"], previous["VersionId"]) == (v2, t2)
    assert sm.get_secret_value(SecretId=name, VersionId=t1)["SecretString"] == v1

    # Same token + same value is an idempotent retry; same token + other value is refused.
    again = sm.put_secret_value(SecretId=name, SecretString=v3, ClientRequestToken=t3)
    assert again["VersionId"] == t3
    with pytest.raises(sm.exceptions.ResourceExistsException):
        sm.put_secret_value(SecretId=name, SecretString=_value(), ClientRequestToken=t3)


def test_moto_iam_create_policy(aws_env: MotoServer) -> None:
    iam = boto3.client("iam")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ],
    }
    name = f"policy-{secrets.token_hex(4)}"
    policy = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]
    assert policy["Arn"].endswith(f":policy/{name}")
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    assert version["PolicyVersion"]["Document"]["Statement"][0]["Effect"] == "Allow"


def test_moto_reset_forgets_everything(moto: MotoServer) -> None:
    sm = moto.client("secretsmanager")
    sm.create_secret(Name=_path("gone"), SecretString=_value())
    assert sm.list_secrets()["SecretList"]
    moto.reset()
    assert sm.list_secrets()["SecretList"] == []


# --------------------------------------------------------------------------- fault proxy


def test_proxy_pass_delay_drop_blackhole(
    openbao: OpenBaoServer, fault_proxy: Callable[..., DelayProxy]
) -> None:
    proxy = fault_proxy(openbao.port, delay_seconds=2.0)
    health = f"{proxy.url}/v1/sys/health"
    session = _no_env_session()

    assert session.get(health, timeout=5).status_code == 200

    proxy.mode = "delay"
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(health, timeout=0.5)
    assert time.monotonic() - started < 1.5

    proxy.mode = "pass"
    assert session.get(health, timeout=5).status_code == 200

    proxy.delay_seconds = 0.3
    proxy.mode = "delay"
    started = time.monotonic()
    assert session.get(health, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3

    proxy.mode = "drop"
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(health, timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        _no_env_session().get(health, timeout=5)

    proxy.mode = "blackhole"
    with pytest.raises(requests.exceptions.ReadTimeout):
        _no_env_session().get(health, timeout=0.5)

    proxy.mode = "pass"
    assert _no_env_session().get(health, timeout=5).status_code == 200
    assert proxy.accepted >= 4


def test_proxy_mode_applies_to_pooled_keepalive_connection(
    openbao: OpenBaoServer, fault_proxy: Callable[..., DelayProxy]
) -> None:
    proxy = fault_proxy(openbao.port, delay_seconds=3.0)
    client = hvac.Client(url=proxy.url, token=openbao.token, session=_no_env_session(), timeout=0.5)
    assert client.sys.read_health_status(method="GET")["initialized"] is True
    assert proxy.active_connections == 1  # the client keeps its connection open

    proxy.mode = "delay"
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.sys.read_health_status(method="GET")


def test_proxy_rejects_bad_mode_and_stops_promptly(
    openbao: OpenBaoServer, fault_proxy: Callable[..., DelayProxy]
) -> None:
    proxy = fault_proxy(openbao.port)
    with pytest.raises(ValueError):
        proxy.mode = "slow"  # type: ignore[assignment]

    proxy.mode = "delay"
    proxy.delay_seconds = 60
    with pytest.raises(requests.exceptions.ReadTimeout):
        _no_env_session().get(f"{proxy.url}/v1/sys/health", timeout=0.3)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    assert proxy.active_connections == 0
    assert port_is_free(proxy.port)
