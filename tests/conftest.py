"""Shared fixtures.

Real servers on loopback (OpenBao, moto, a fault proxy) come from ``tests/servers.py``,
the fakes (Kubernetes API, TokenReview, Key Vault) from ``tests/fakes/``; the Vault
environment (``vault_env``, ``bao_env``) and the in-process CLI runner (``cli``) are
here. ``tests/servers.py`` is imported as ``servers``: pytest's default "prepend" import
mode puts ``tests/`` on ``sys.path`` because there is no ``tests/__init__.py`` (keep it
that way, and do not switch to ``--import-mode=importlib``).

Add new fixtures below, grouped by topic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import Run, invoke
from markers import uses_a_server
from servers import AWS_ENV_TO_CLEAR, DelayProxy, MotoServer, OpenBaoServer, ProxyMode

if TYPE_CHECKING:  # the fakes are imported by the fixtures that start them
    from fakes.kube_apiserver import FakeKubeApiServer
    from fakes.tokenreview import TokenReviewServer

# --------------------------------------------------------------------------- markers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if uses_a_server(item):  # the fast loop: `-m "not server and not slow"`
            item.add_marker(pytest.mark.server)


# --------------------------------------------------------------------------- child processes


@pytest.fixture(scope="session", autouse=True)
def child_processes_load_cached_bytecode(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Python processes the tests start (the installed CLI, moto's server) load modules
    from cached bytecode, as after `pip install`, even where the machine sets
    PYTHONDONTWRITEBYTECODE; the cache is a temporary directory, never the tree."""
    saved = {name: os.environ.get(name)
             for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --------------------------------------------------------------------------- OpenBao


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """One OpenBao dev server for the whole run, with a file audit device.

    Shared: use unique paths (``secrets.token_hex``) and never kill it; for crash
    tests use ``openbao_fresh``.
    """
    with OpenBaoServer(tmp_path_factory.mktemp("openbao"), audit=True) as server:
        yield server


@pytest.fixture
def openbao_fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """A new OpenBao dev server for this test only (may be killed)."""
    with OpenBaoServer(tmp_path_factory.mktemp("openbao-fresh"), audit=True) as server:
        yield server


@pytest.fixture
def vault_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The Vault store's environment with nothing of the developer's: no VAULT_*, BAO_* or
    DEPARROW_SECRETS_* variables, an empty HOME (``tmp_path / "home"``, no
    ``~/.vault-token``), loopback outside any HTTP proxy, no pod ServiceAccount token.
    Returns the monkeypatch, to set what the test wants; ``bao_env`` adds an OpenBao."""
    from deparrow_secrets.providers.vault import connection as vault_connection

    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_", "DEPARROW_SECRETS_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    _loopback_without_proxy(monkeypatch)
    monkeypatch.setattr(vault_connection, "K8S_TOKEN_PATH", str(tmp_path / "no-such-sa-token"))
    return monkeypatch


@pytest.fixture
def bao_env(vault_env: pytest.MonkeyPatch, openbao: OpenBaoServer) -> OpenBaoServer:
    """``vault_env`` pointing the tool at the shared OpenBao: VAULT_ADDR and VAULT_TOKEN
    (root). Use unique paths there, as with ``openbao``."""
    vault_env.setenv("VAULT_ADDR", openbao.addr)
    vault_env.setenv("VAULT_TOKEN", openbao.token)
    return openbao


def _loopback_without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep 127.0.0.1 out of any HTTP proxy of the developer's shell."""
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        monkeypatch.setenv(name, ",".join(filter(None, [current, "127.0.0.1", "localhost"])))


# --------------------------------------------------------------------------- AWS (moto)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the whole run. Prefer ``aws_env``, which resets its state."""
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def aws_env(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MotoServer]:
    """Point boto3 (via environment variables) at the moto server; state reset around the test.

    Sets AWS_ENDPOINT_URL, dummy AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    AWS_REGION=AWS_DEFAULT_REGION=us-east-1, hides profiles/config files/service-specific
    endpoint overrides of the developer's shell, and keeps loopback out of any HTTP proxy.
    """
    moto.reset()
    for name in list(os.environ):
        if name in AWS_ENV_TO_CLEAR or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    missing = tmp_path_factory.getbasetemp() / "no-such-aws-file"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    _loopback_without_proxy(monkeypatch)
    yield moto
    moto.reset()


# --------------------------------------------------------------------------- Kubernetes


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    """A started fake API server (``fakes/kube_apiserver.py``, fresh per test) with the
    namespaces deparrow and external-secrets, the ESO CRDs, and a kubeconfig at
    ``kube_api.kubeconfig_path`` (context ``fake``, namespace ``deparrow``)."""
    from fakes.kube_objects import started_cluster

    with started_cluster(tmp_path / "kube", "deparrow") as api:
        yield api


# --------------------------------------------------------------------------- TokenReview


@pytest.fixture
def tokenreview() -> Iterator[TokenReviewServer]:
    """The Kubernetes TokenReview API's stand-in on loopback (``fakes/tokenreview.py``):
    Vault's ``kubernetes_host`` is ``.url``, its CA ``.ca_file``; ``.issue(...)`` makes the
    tokens it recognises."""
    from fakes.tokenreview import TokenReviewServer

    with TokenReviewServer() as server:
        yield server


# --------------------------------------------------------------------------- fault proxy


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., DelayProxy]]:
    """Factory: ``fault_proxy(target_port, mode="pass", delay_seconds=5.0) -> DelayProxy``.

    Every proxy made is stopped at teardown.
    """
    made: list[DelayProxy] = []

    def make(target_port: int, mode: ProxyMode = "pass", delay_seconds: float = 5.0) -> DelayProxy:
        proxy = DelayProxy(target_port, mode=mode, delay_seconds=delay_seconds).start()
        made.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in made:
            proxy.stop()


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """cli(*args, cwd=DIR, stdin="") -> Run: `deparrow-secrets ARGS` in this process (stdin
    text, or bytes for a raw one). The one in-process runner of the tests; `helpers.run_cli`
    runs the installed command as a real process."""

    def run(*args: str, cwd: Path | None = None, stdin: str | bytes = "") -> Run:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return invoke(capsys, args, stdin)

    return run
