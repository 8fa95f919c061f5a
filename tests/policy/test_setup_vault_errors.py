"""`setup` and `setup --audit` on Vault go through the store's connection and error
translator: the store's retries, time bound, principal and hints, and none of Vault's
raw text (its body, the token, control characters) in what they print."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from policy_configs import VAULT_CLIENT_TOKEN_CONFIG

from deparrow_secrets.errors import AccessDeniedError, StoreError, StoreUnavailableError
from deparrow_secrets.policy import run_setup
from deparrow_secrets.providers.identity_plan import Options
from deparrow_secrets.providers.vault.identity import setup_audit
from servers import DelayProxy, OpenBaoServer

UNREACHABLE = "https://kubernetes.example.invalid:6443"


Answer = Callable[[str, str, bytes, Mapping[str, str]], tuple[int, dict[str, Any]]]
"""(method, path, body, headers) -> (status, JSON answer) of the stand-in."""


def errors_only(status: int, errors: Callable[[Mapping[str, str]], list[str]]) -> Answer:
    """Every request answered with `status` and Vault's error shape."""
    return lambda method, path, body, headers: (status, {"errors": errors(headers)})


class StandIn:
    """A loopback HTTP server answering as `answer` says; records "METHOD path"."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def reply(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = answer(self.command, self.path, body, self.headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = reply  # noqa: N815 - http.server API

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[[Answer], StandIn]]:
    made: list[StandIn] = []

    def make(answer: Answer) -> StandIn:
        made.append(StandIn(answer))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def vault_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Point the tool at `addr` with `token` (nothing else of VAULT_* / BAO_*), with
    two attempts and a 1 s bound per operation."""

    def point(addr: str, token: str) -> None:
        for name in list(os.environ):
            if name.startswith(("VAULT_", "BAO_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("VAULT_ADDR", addr)
        monkeypatch.setenv("VAULT_TOKEN", token)
        monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
        monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "127.0.0.1,localhost")

    return point


@pytest.fixture
def outside(write_config, load):  # type: ignore[no-untyped-def]
    """Vault outside the cluster, tokenReview client-token."""
    return load(write_config(VAULT_CLIENT_TOKEN_CONFIG))


def options(ca_file: Path) -> Options:
    return Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))


def test_setup_denied_names_the_token_and_its_policies_not_vaults_body(  # type: ignore[no-untyped-def]
        bao, outside, ca_file, monkeypatch, write_config, run_cli) -> None:
    tag = secrets.token_hex(4)
    weak = bao.client().auth.token.create(policies=["default"], display_name=f"weak-{tag}",
                                          ttl="5m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", weak)
    env = outside.environment("production")
    for attempt in (lambda: run_setup(outside, env, options(ca_file)),
                    lambda: run_setup(outside, env, Options(
                        kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file),
                        dry_run=True)),
                    lambda: setup_audit(outside, env)):
        with pytest.raises(AccessDeniedError) as info:
            attempt()
        text = str(info.value)
        assert f"token 'token-weak-{tag}' with policies: default" in text
        assert "access denied to sys/" in text and "credentials came from $VAULT_TOKEN" in text
        assert "permission denied" not in text.lower() and weak not in text
        assert info.value.exit_code == 4
    result = run_cli("--config", str(write_config(VAULT_CLIENT_TOKEN_CONFIG)), "setup",
                     "--env", "production", "--kubernetes-host", UNREACHABLE,
                     "--kubernetes-ca-cert", str(ca_file))
    assert result.code == 4, result.err
    assert f"token-weak-{tag}" in result.err and "permission denied" not in result.err.lower()
    assert weak not in result.out + result.err and "Traceback" not in result.err


def test_setup_against_a_vault_that_does_not_answer_is_bounded_and_says_so(  # type: ignore[no-untyped-def]
        openbao: OpenBaoServer, outside, ca_file, vault_at,
        fault_proxy: Callable[..., DelayProxy]) -> None:
    proxy = fault_proxy(openbao.port, mode="blackhole")
    vault_at(proxy.url, openbao.token)
    env = outside.environment("production")
    for attempt in (lambda: run_setup(outside, env, options(ca_file)),
                    lambda: setup_audit(outside, env)):
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            attempt()
        assert time.monotonic() - began < 5
        text = str(info.value)
        assert "timed out" in text and "DEPARROW_SECRETS_TIMEOUT" in text
        assert f"VAULT_ADDR={proxy.url}" in text and info.value.exit_code == 3
        assert openbao.token not in text


def test_setup_against_a_sealed_vault_retries_then_says_unseal(  # type: ignore[no-untyped-def]
        outside, ca_file, vault_at, stand_in) -> None:
    sealed = stand_in(errors_only(503, lambda headers: ["Vault is sealed"]))
    vault_at(sealed.addr, secrets.token_urlsafe(18))
    with pytest.raises(StoreUnavailableError) as info:
        run_setup(outside, outside.environment("production"), options(ca_file))
    assert "sealed" in str(info.value) and "operator unseal" in str(info.value)
    assert sealed.requests == ["GET /v1/sys/auth"] * 2  # DEPARROW_SECRETS_RETRIES=2


def test_setup_never_prints_the_token_or_control_characters_vault_sends(  # type: ignore[no-untyped-def]
        outside, ca_file, vault_at, stand_in, write_config, run_cli) -> None:
    def echo(headers: Mapping[str, str]) -> list[str]:
        return [f"token {headers.get('X-Vault-Token')} \x1b[2J is not usable here"]

    server = stand_in(errors_only(400, echo))
    token = secrets.token_urlsafe(18)
    vault_at(server.addr, token)
    env = outside.environment("production")
    for attempt in (lambda: run_setup(outside, env, options(ca_file)),
                    lambda: setup_audit(outside, env)):
        with pytest.raises(StoreError) as info:
            attempt()
        text = str(info.value)
        assert "HTTP 400: token <redacted>" in text and "is not usable here" in text
        assert token not in text and "\x1b" not in text
    result = run_cli("--config", str(write_config(VAULT_CLIENT_TOKEN_CONFIG)), "setup",
                     "--env", "production", "--kubernetes-host", UNREACHABLE,
                     "--kubernetes-ca-cert", str(ca_file))
    assert result.code == 3, result.err
    assert "<redacted>" in result.err
    assert token not in result.out + result.err and "\x1b" not in result.out + result.err


def test_setup_never_prints_the_reviewer_jwt_vault_echoes(  # type: ignore[no-untyped-def]
        ca_file, tmp_path, vault_at, stand_in, write_config, load) -> None:
    """The reviewer JWT is in the body of the config write: Vault's echo of it is masked."""
    from policy_configs import VAULT_REVIEWER_CONFIG

    def vault(method: str, path: str, body: bytes, headers: Mapping[str, str]
              ) -> tuple[int, dict[str, Any]]:
        if path == "/v1/sys/auth":
            return 200, {"data": {}}
        if path == "/v1/auth/kubernetes/config" and method == "POST":
            sent = json.loads(body).get("token_reviewer_jwt")
            return 400, {"errors": [f"token_reviewer_jwt {sent} is not usable"]}
        return 204, {}

    server = stand_in(vault)
    vault_at(server.addr, secrets.token_urlsafe(18))
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXZpZXdlciJ9." + secrets.token_urlsafe(24)
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text(jwt + "\n")
    config = load(write_config(VAULT_REVIEWER_CONFIG))
    with pytest.raises(StoreError) as info:
        run_setup(config, config.environment("production"), Options(
            kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file),
            token_reviewer_jwt_file=str(jwt_file)))
    assert "POST /v1/auth/kubernetes/config" in server.requests
    assert "write auth config failed: HTTP 400" in str(info.value)
    assert "<redacted>" in str(info.value) and jwt not in str(info.value)
