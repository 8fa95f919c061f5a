"""Real servers on loopback for the test suite: OpenBao (dev mode), moto, a fault proxy.

Plain module (no pytest imports) so it can also be used from scripts and benchmarks.
The fixtures that wrap it live in ``tests/conftest.py``; that file imports this one
as ``servers`` because pytest's default "prepend" import mode puts ``tests/`` on
``sys.path`` (there is deliberately no ``tests/__init__.py``).

Every server:

* binds 127.0.0.1 only, on a port picked by :func:`free_port`;
* writes its output to a log file in its work directory, never to the test output;
* is stopped by ``stop()`` (SIGTERM, wait, then SIGKILL), by the context manager exit,
  and as a last resort by an ``atexit`` hook; on Linux the child also gets
  ``PR_SET_PDEATHSIG`` so it dies with the Python process (or, strictly, with the
  thread that started it: start servers from the main thread).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    import hvac

LOOPBACK = "127.0.0.1"
DEFAULT_START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# urllib opener that ignores *_proxy environment variables: we only ever talk to loopback.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free (OpenBao dev mode takes P+1 for cluster)."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port
    raise RuntimeError("no pair of consecutive free ports found on 127.0.0.1")


def find_executable(name: str) -> str:
    """The console script ``name`` next to ``sys.executable`` (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name!r} not found next to {sys.executable} nor on PATH; install the test extras"
        )
    return found


def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Tiny HTTP client without proxies or third-party deps: returns (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _tail(path: Path, limit: int = 4000, start: int = 0) -> str:
    try:
        data = path.read_bytes()[start:]
    except OSError:
        return "<no log>"
    return data[-limit:].decode("utf-8", errors="replace")


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """preexec_fn making the child get SIGKILL when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def _set() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return _set


_PREEXEC = _pdeathsig_preexec()
_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for server in leftovers:
        with contextlib.suppress(Exception):
            server.kill()


# --------------------------------------------------------------------------- processes


class ManagedProcess:
    """Base class: a server subprocess on a loopback port, with readiness polling.

    Subclasses implement :meth:`_command` and :meth:`_ready`. ``start()`` retries on a
    fresh port when the server died early because its port was taken meanwhile.
    """

    name = "server"
    start_attempts = 3

    def __init__(self, workdir: Path | str | None = None, *, start_timeout: float | None = None):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp())
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = DEFAULT_START_TIMEOUT if start_timeout is None else start_timeout
        self.log_path = self.workdir / f"{self.name}.log"
        self.port = 0
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- to implement
    def _pick_port(self) -> int:
        return free_port()

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        raise NotImplementedError

    # -- lifecycle
    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started")
        began = time.monotonic()
        last_error: ServerStartError | None = None
        for _attempt in range(self.start_attempts):
            try:
                self._start_once()
            except ServerStartError as err:
                last_error = err
                if "address already in use" not in str(err).lower():
                    raise
                continue
            self.startup_seconds = time.monotonic() - began
            return self
        assert last_error is not None
        raise last_error

    def _start_once(self) -> None:
        self.port = self._pick_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        log_start = self._log.tell()
        self._log.write(f"--- starting {self.name} on {LOOPBACK}:{self.port}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            self._command(self.port),
            cwd=self.workdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_PREEXEC,  # only calls prctl(PR_SET_PDEATHSIG)
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self._proc.poll() is not None:
                    raise ServerStartError(
                        f"{self.name} exited with {self._proc.returncode} during startup "
                        f"(log {self.log_path}):\n{_tail(self.log_path, start=log_start)}"
                    )
                try:
                    if self._ready():
                        return
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"{self.name} not ready within {self.start_timeout:.0f}s "
                        f"(log {self.log_path}):\n{_tail(self.log_path, start=log_start)}"
                    )
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL now (crash simulation). Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(STOP_TIMEOUT)
        self._reap()

    def _reap(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self) -> str:
        return _tail(self.log_path, limit=1 << 20)


class OpenBaoServer(ManagedProcess):
    """``bao server -dev`` on 127.0.0.1, in-memory, unsealed, with a random root token.

    Dev mode mounts ``secret/`` as KV v2 (checked in :meth:`_ready`). With ``audit=True``
    a file audit device ``file/`` writing to ``audit_log`` is declared in a config file
    passed with ``-config``: OpenBao 2.x refuses ``sys/audit`` over the API by default,
    declarative audit devices are the supported way.

    Dev mode keeps nothing on disk: after ``kill()`` or ``stop()`` the data is gone.
    """

    name = "openbao"

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        audit: bool = True,
        token: str | None = None,
        extra_config: str = "",
        start_timeout: float | None = None,
    ):
        super().__init__(workdir, start_timeout=start_timeout)
        self.token = token or f"root-{secrets.token_urlsafe(18)}"
        self.audit_log: Path | None = self.workdir / "audit.log" if audit else None
        self.extra_config = extra_config
        self.config_path: Path | None = None

    @property
    def addr(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def cluster_port(self) -> int:
        return self.port + 1

    def _pick_port(self) -> int:
        return free_port_pair()

    def _write_config(self) -> Path | None:
        parts: list[str] = []
        if self.audit_log is not None:
            parts.append(
                'audit "file" "file" {\n'
                '  description = "test audit log"\n'
                "  options {\n"
                f"    file_path = {json.dumps(str(self.audit_log))}\n"
                "  }\n"
                "}\n"
            )
        if self.extra_config:
            parts.append(self.extra_config)
        if not parts:
            return None
        path = self.workdir / "config.hcl"
        path.write_text("\n".join(parts))
        return path

    def _command(self, port: int) -> list[str]:
        self.config_path = self._write_config()
        cmd = [
            find_executable("bao"),
            "server",
            "-dev",
            f"-dev-root-token-id={self.token}",
            f"-dev-listen-address={LOOPBACK}:{port}",
            "-dev-no-store-token",
        ]
        if self.config_path is not None:
            cmd.append(f"-config={self.config_path}")
        return cmd

    def _env(self) -> dict[str, str]:
        # BAO_*/VAULT_* from the developer's shell (BAO_CONFIG_PATH, BAO_ADDR...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        env["HOME"] = str(self.workdir)
        return env

    def _ready(self) -> bool:
        status, body = http_request("GET", f"{self.addr}/v1/sys/health", timeout=1.0)
        if status != 200 or json.loads(body).get("sealed", True):
            return False
        status, _ = self.api("GET", "sys/mounts/secret", timeout=1.0)
        return status == 200

    # -- conveniences
    def api(
        self, method: str, path: str, body: Any = None, *, timeout: float = 5.0
    ) -> tuple[int, Any]:
        """Call ``/v1/<path>`` with the root token; returns (status, parsed JSON or None)."""
        status, raw = http_request(
            method,
            f"{self.addr}/v1/{path.lstrip('/')}",
            headers={"X-Vault-Token": self.token},
            body=body,
            timeout=timeout,
        )
        return status, (json.loads(raw) if raw.strip() else None)

    def enable_kv2(self, mount: str) -> None:
        """Mount a new KV v2 engine at ``mount`` (``secret/`` already exists in dev mode)."""
        status, body = self.api(
            "POST", f"sys/mounts/{mount.strip('/')}", {"type": "kv", "options": {"version": "2"}}
        )
        if status not in (200, 204):
            raise RuntimeError(f"mounting kv v2 at {mount!r} failed: {status} {body}")

    def client(self, **kwargs: Any) -> hvac.Client:
        """An ``hvac.Client`` for this server (root token, no env proxies)."""
        import hvac
        import requests

        session = requests.Session()
        session.trust_env = False
        kwargs.setdefault("timeout", 10)
        return hvac.Client(url=self.addr, token=self.token, session=session, **kwargs)

    def audit_hash(self, value: str, device: str = "file") -> str:
        """The ``hmac-sha256:...`` form ``value`` takes in the audit log (sys/audit-hash)."""
        status, body = self.api("POST", f"sys/audit-hash/{device}", {"input": value})
        if status != 200:
            raise RuntimeError(f"audit-hash failed: {status} {body}")
        return str(body["hash"])

    def audit_entries(self) -> list[dict[str, Any]]:
        """Parsed lines of the audit log (empty if auditing is off or nothing logged)."""
        if self.audit_log is None or not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class RaftOpenBao(ManagedProcess):
    """A non-dev OpenBao on integrated (raft) storage in ``workdir``.

    Unlike the dev server it keeps its data across ``kill()``: ``start()`` again brings it
    back on the same port, sealed; ``unseal()`` makes it serve again. ``initialize()`` does
    the one-time init (one key share), unseals and mounts KV v2 at ``secret/``.
    """

    name = "openbao-raft"

    def __init__(self, workdir: Path | str | None = None, *, start_timeout: float | None = None):
        super().__init__(workdir, start_timeout=start_timeout)
        self.token = ""
        self.unseal_key = ""

    @property
    def addr(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _pick_port(self) -> int:
        return self.port or free_port_pair()  # a restart keeps its address

    def _command(self, port: int) -> list[str]:
        config = self.workdir / "bao.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{self.workdir}"\n  node_id = "n1"\n}}\n'
            f'listener "tcp" {{\n  address = "{LOOPBACK}:{port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://{LOOPBACK}:{port}"\n'
            f'cluster_addr = "http://{LOOPBACK}:{port + 1}"\n')
        return [find_executable("bao"), "server", f"-config={config}"]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        env["HOME"] = str(self.workdir)
        return env

    def _ready(self) -> bool:
        status, _ = http_request("GET", f"{self.addr}/v1/sys/seal-status", timeout=1.0)
        return status == 200

    def api(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"X-Vault-Token": self.token} if self.token else {}
        status, data = http_request(method, f"{self.addr}/v1/{path}", body=body, timeout=30,
                                    headers=headers)
        if status not in (200, 204):
            raise RuntimeError(f"OpenBao {method} {path}: HTTP {status}")
        return json.loads(data) if data else {}

    def initialize(self) -> None:
        init = self.api("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.unseal_key, self.token = init["keys_base64"][0], init["root_token"]
        self.unseal()
        self.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})

    def unseal(self, timeout: float = 30.0) -> None:
        """Unseal, then wait until the raft node is the active one."""
        self.api("PUT", "sys/unseal", {"key": self.unseal_key})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _ = http_request("GET", f"{self.addr}/v1/sys/health", timeout=2.0)
                if status == 200:
                    return
            time.sleep(0.1)
        raise ServerStartError(f"OpenBao not active after unsealing (log {self.log_path})")


class MotoServer(ManagedProcess):
    """``moto_server`` on 127.0.0.1: every AWS service, in memory, at ``endpoint``."""

    name = "moto"
    region = "us-east-1"

    def __init__(self, workdir: Path | str | None = None, *, start_timeout: float | None = None):
        super().__init__(workdir, start_timeout=start_timeout)
        # Dummy credentials: moto accepts anything. Random so no scanner sees a fixed "key".
        self.access_key_id = f"testing{secrets.token_hex(4)}"
        self.secret_access_key = f"testing{secrets.token_hex(8)}"

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _command(self, port: int) -> list[str]:
        return [find_executable("moto_server"), "-H", LOOPBACK, "-p", str(port)]

    def _ready(self) -> bool:
        status, _ = http_request("GET", f"{self.endpoint}/moto-api/", timeout=1.0)
        return status == 200

    def reset(self) -> None:
        """Forget every resource in every service (POST /moto-api/reset)."""
        status, body = http_request("POST", f"{self.endpoint}/moto-api/reset", timeout=10.0)
        if status != 200:
            raise RuntimeError(f"moto reset failed: {status} {body[:200]!r}")

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 at this server with dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` against this server, independent of the environment."""
        import boto3

        kwargs.setdefault("endpoint_url", self.endpoint)
        kwargs.setdefault("region_name", self.region)
        kwargs.setdefault("aws_access_key_id", self.access_key_id)
        kwargs.setdefault("aws_secret_access_key", self.secret_access_key)
        return boto3.client(service, **kwargs)

    def current_secrets(self) -> dict[str, dict[str, str]]:
        """Every Secrets Manager secret's AWSCURRENT JSON object, read with boto3 directly."""
        client = self.client("secretsmanager")
        out = {}
        for page in client.get_paginator("list_secrets").paginate():
            for entry in page["SecretList"]:
                value = client.get_secret_value(SecretId=entry["Name"],
                                                VersionStage="AWSCURRENT")
                out[entry["Name"]] = json.loads(value["SecretString"])
        return out


def version_stages(version: Mapping[str, Any]) -> list[str]:
    """A listed version's staging labels as AWS shapes them: the key is absent when there
    are none (moto sends an empty list)."""
    return list(version.get("VersionStages") or ())


def _aws_error(code: str, operation: str, message: str, status: int = 400) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class AwsShaped:
    """botocore hooks on one Secrets Manager client that make moto answer as AWS does
    where the two differ (what the stores' correctness depends on):

    * unlabelled versions are listed without ``VersionStages`` (moto: an empty list);
    * a secret scheduled for deletion refuses PutSecretValue and UpdateSecretVersionStage
      with InvalidRequestException (moto carries them out);
    * a stage move whose RemoveFromVersionId no longer holds the label is refused with
      ``move_refusal_code`` (AWS's code is undocumented; moto says
      InvalidParameterException);
    * ``expire(key, version)``: AWS deleted that version (it deletes unlabelled versions
      beyond 100 once they are a day old): it is no longer listed, and reading or moving
      a label to it is refused with InvalidRequestException "... because it was deleted";
    * ``stale(key, seconds)``: DescribeSecret keeps answering what it answers now for
      ``seconds`` (reads are eventually consistent on AWS; moto's never lag).

    Hooks run on the client's own calls only; ``direct`` is a plain moto client.
    """

    def __init__(self, client: Any, moto: MotoServer,
                 move_refusal_code: str = "InvalidRequestException") -> None:
        self.client = client
        self.direct = moto.client("secretsmanager")
        self.move_refusal_code = move_refusal_code
        self.expired: set[tuple[str, str]] = set()
        self._stale: dict[str, tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()
        events = client.meta.events
        tag = secrets.token_hex(4)
        events.register("after-call.secrets-manager.ListSecretVersionIds", self._listed,
                        unique_id=f"aws-shaped-list-{tag}")
        events.register("after-call.secrets-manager.DescribeSecret", self._described,
                        unique_id=f"aws-shaped-describe-{tag}")
        events.register("after-call.secrets-manager.UpdateSecretVersionStage", self._moved,
                        unique_id=f"aws-shaped-move-{tag}")
        for op in ("PutSecretValue", "UpdateSecretVersionStage", "GetSecretValue"):
            events.register(f"before-parameter-build.secrets-manager.{op}", self._refuse,
                            unique_id=f"aws-shaped-refuse-{op}-{tag}")

    def expire(self, key: str, version: str) -> None:
        with self._lock:
            self.expired.add((key, version))

    def stale(self, key: str, seconds: float) -> None:
        snapshot = self.direct.describe_secret(SecretId=key)
        with self._lock:
            self._stale[key] = (snapshot, time.monotonic() + seconds)

    def _listed(self, parsed: dict[str, Any], **_: Any) -> None:
        key = parsed.get("Name") or parsed.get("ARN")
        kept = []
        for version in parsed.get("Versions") or []:
            if (str(key), str(version.get("VersionId"))) in self.expired:
                continue
            if not version.get("VersionStages"):
                version.pop("VersionStages", None)
            kept.append(version)
        if "Versions" in parsed:
            parsed["Versions"] = kept

    def _described(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            stale = self._stale.get(str(parsed.get("Name")))
        if stale is not None and time.monotonic() < stale[1] and "Error" not in parsed:
            meta = parsed.get("ResponseMetadata")
            parsed.clear()
            parsed.update(json.loads(json.dumps(stale[0], default=str)))
            if meta is not None:
                parsed["ResponseMetadata"] = meta

    def _moved(self, parsed: dict[str, Any], **_: Any) -> None:
        error = parsed.get("Error") or {}
        if error.get("Code") == "InvalidParameterException":
            error["Code"] = self.move_refusal_code

    def _refuse(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        key = str(params.get("SecretId"))
        op = model.name
        if op != "GetSecretValue":
            try:
                deleted = self.direct.describe_secret(SecretId=key).get("DeletedDate")
            except Exception:  # noqa: BLE001 - moto answers for a missing secret itself
                deleted = None
            if deleted:
                raise _aws_error("InvalidRequestException", op,
                                 "You can't perform this operation on the secret because it "
                                 "was marked for deletion.")
        version = params.get("VersionId") or params.get("MoveToVersionId")
        if version and (key, str(version)) in self.expired:
            raise _aws_error("InvalidRequestException", op,
                             "You can't perform this operation on the secret because it "
                             "was deleted.")


# Variables that would make boto3 look elsewhere than moto (cleared by the aws_env fixture).
AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


# --------------------------------------------------------------------------- fault proxy

ProxyMode = Literal["pass", "delay", "drop", "blackhole", "trickle"]
PROXY_MODES: tuple[str, ...] = ("pass", "delay", "drop", "blackhole", "trickle")


class DelayProxy:
    """Threaded TCP proxy on 127.0.0.1 in front of ``target_host:target_port``.

    ``mode`` can be changed at any time and is looked at for every chunk a client sends,
    so it also applies to keep-alive connections that a client pool already holds:

    * ``pass``: forward both ways.
    * ``delay``: wait ``delay_seconds`` before forwarding the first chunk of each request
      (first chunk on the connection, then first chunk after each response), then forward.
    * ``drop``: new connections are closed at once; an open one is closed when its
      client sends (clients see a reset / remote-disconnected error).
    * ``blackhole``: accept and read, never forward nor answer; a connection that has
      been blackholed stays so (its request was swallowed).
    * ``trickle``: forward requests at once, but hand the answers back one byte every
      ``trickle_seconds`` (0.5 by default): no socket read ever waits long, so only a
      bound on the whole call stops a client.

    The upstream connection is opened lazily, at the first forwarded chunk; if the target
    is down the client's connection is closed (it sees a reset, not a refusal). At most
    ``max_connections`` are served at once (more are closed). ``stop()`` ends all threads.
    """

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = LOOPBACK,
        mode: ProxyMode = "pass",
        delay_seconds: float = 5.0,
        max_connections: int = 64,
        trickle_seconds: float = 0.5,
    ):
        self.trickle_seconds = trickle_seconds
        self.target_host = target_host
        self.target_port = target_port
        self.max_connections = max_connections
        self.accepted = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._mode: ProxyMode = "pass"
        self._delay = 0.0
        self.mode = mode
        self.delay_seconds = delay_seconds
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[threading.Thread, list[socket.socket]] = {}
        self.port = 0

    # -- knobs
    @property
    def mode(self) -> ProxyMode:
        return self._mode

    @mode.setter
    def mode(self, value: ProxyMode) -> None:
        if value not in PROXY_MODES:
            raise ValueError(f"mode must be one of {PROXY_MODES}, not {value!r}")
        self._mode = value

    @property
    def delay_seconds(self) -> float:
        return self._delay

    @delay_seconds.setter
    def delay_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("delay_seconds must be >= 0")
        self._delay = float(value)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def active_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- lifecycle
    def start(self) -> Self:
        if self._listener is not None:
            raise RuntimeError("proxy already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(128)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"DelayProxy-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut every connection, join all threads. Idempotent."""
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
            self._accept_thread = None
        self.close_connections()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._conns)
            if not threads or time.monotonic() > deadline:
                break
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def close_connections(self) -> None:
        """Cut the connections open now (new ones are served per the current mode)."""
        with self._lock:
            socks = [s for pair in self._conns.values() for s in pair]
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            readable, _, _ = select.select([listener], [], [], 0.1)
            if not readable:
                continue
            try:
                client, _addr = listener.accept()
            except OSError:
                continue
            self.accepted += 1
            with self._lock:
                full = len(self._conns) >= self.max_connections
            if full or self._mode == "drop" or self._stop.is_set():
                self.dropped += 1
                client.close()
                continue
            thread = threading.Thread(
                target=self._serve, args=(client,), name=f"DelayProxy-{self.port}-conn", daemon=True
            )
            with self._lock:
                self._conns[thread] = [client]
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        me = threading.current_thread()
        upstream: socket.socket | None = None
        blackholed = False
        need_delay = True
        try:
            client.settimeout(10.0)
            while not self._stop.is_set():
                watched = [client] if upstream is None else [client, upstream]
                readable, _, _ = select.select(watched, [], [], 0.1)
                if client in readable:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    mode = self._mode
                    if blackholed or mode == "blackhole":
                        blackholed = True
                        continue
                    if mode == "drop":
                        self.dropped += 1
                        return
                    if mode == "delay" and need_delay and self._stop.wait(self._delay):
                        return
                    need_delay = False
                    if upstream is None:
                        upstream = socket.create_connection(
                            (self.target_host, self.target_port), timeout=10.0
                        )
                        with self._lock:
                            self._conns[me].append(upstream)
                    upstream.sendall(chunk)
                if upstream is not None and upstream in readable:
                    chunk = upstream.recv(65536)
                    if not chunk:
                        return
                    if blackholed:
                        pass
                    elif self._mode == "trickle":
                        for i in range(len(chunk)):
                            if self._stop.wait(self.trickle_seconds):
                                return
                            client.sendall(chunk[i:i + 1])
                    else:
                        client.sendall(chunk)
                    need_delay = True
        except OSError:
            return
        finally:
            with self._lock:
                socks = self._conns.pop(me, [client])
            for sock in socks:
                sock.close()
