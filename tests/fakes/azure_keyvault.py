"""HTTPS fake of the Azure Key Vault *secrets* data-plane REST API.

There is no Key Vault emulator, so this module serves the subset of the REST surface that
``azure.keyvault.secrets.SecretClient`` uses, closely enough that the real SDK works against it
unchanged (challenge auth, paging via ``nextLink``, soft delete, recover/delete pollers, the
Key Vault error JSON). The server is stdlib only (``http.server.ThreadingHTTPServer`` with TLS
from ``ssl``); ``trustme`` issues a throw-away CA and a server certificate for ``127.0.0.1``.
The ``azure`` packages are imported lazily, only by :class:`StaticTokenCredential` and
:meth:`FakeKeyVault.make_client`.

Usage::

    from fakes.azure_keyvault import FakeKeyVault   # or: from azure_keyvault import FakeKeyVault

    with FakeKeyVault() as fake:
        client = fake.make_client()          # a real azure.keyvault.secrets.SecretClient
        client.set_secret("db-password", "s3cret")
        fake.throttle(2)                     # next two authenticated calls answer 429
        assert client.get_secret("db-password").value == "s3cret"
        print(fake.requests)                 # [RecordedRequest(method, path, status, ...), ...]

Building a client by hand (what :meth:`FakeKeyVault.make_client` does)::

    SecretClient(
        fake.url,                            # https://127.0.0.1:<port>
        StaticTokenCredential(),             # any get_token()/get_token_info() credential works
        verify_challenge_resource=False,     # challenge says vault.azure.net, host is 127.0.0.1
        connection_verify=fake.ca_path,      # trust the trustme CA (PEM file)
        retry_backoff_factor=0.0,            # see "Retries" below
        use_env_settings=False,              # ignore HTTPS_PROXY / REQUESTS_CA_BUNDLE etc.
    )

Retries: azure-core's ``RetryPolicy`` retries 408/429/500/502/503/504 (and anything that carries
``Retry-After``) with exponential backoff ``retry_backoff_factor * 2 ** (n - 1)`` seconds,
default factor 0.8, i.e. the second retry already sleeps 1.6 s. A ``Retry-After`` header wins
over the backoff, but ``Retry-After: 0`` parses as "no delay requested" and falls back to the
backoff. Keep tests fast with ``retry_backoff_factor=0`` (the ``make_client`` default); bound
the number of retries with ``retry_total`` (default 10) / ``retry_status`` (default 3), or turn
retries off with ``retry_total=0``. POST/PATCH are only retried when ``Retry-After`` is present.

Delete/recover pollers: ``begin_delete_secret`` / ``begin_recover_deleted_secret`` return
pollers whose ``wait()`` polls GET /deletedsecrets/{name} resp. GET /secrets/{name}/ every
``_polling_interval`` seconds (default 2, passed as a kwarg to the ``begin_*`` call) until it
stops answering 404. The fake completes both operations immediately unless
:meth:`FakeKeyVault.operation_lag` asks it to answer 404 to the first N polls.

Behaviour that mirrors Key Vault:

* the first request of a client without ``Authorization`` gets 401 + ``WWW-Authenticate``
  challenge naming ``https://login.microsoftonline.com/<tenant_id>`` and the resource
  ``https://vault.azure.net``; any bearer token is then accepted (or exactly ``token=...``);
* names must match ``^[0-9a-zA-Z-]{1,127}$`` (else 400 BadParameter) and are case-insensitive;
* every PUT creates a new version (32 lowercase hex chars); ids are
  ``https://127.0.0.1:<port>/secrets/<name>/<version>``;
* GET of a disabled version answers 403 ``Operation get is not allowed on a disabled secret.``;
  ``nbf``/``exp`` are stored and echoed but, as in Key Vault, not enforced;
* DELETE is a soft delete (recovery level ``Recoverable+Purgeable``, 90 days by default); the
  name cannot be reused until it is recovered or purged (409 Conflict /
  ``ObjectIsDeletedButRecoverable``); with ``purge_protection=True`` purge answers 403;
* lists are paged with ``maxresults`` (1..25, default ``page_size``) and ``nextLink`` carrying a
  ``$skiptoken``; secrets and deleted secrets are listed by lower-cased name, versions in
  creation order, or with ``version_order="id"`` sorted by version id as the real service
  does (its order is undocumented; observed to be by id, i.e. unrelated to time);
* ``attributes.created`` / ``updated`` are whole seconds, as in Key Vault, so versions written
  within one second tie;
* backup/restore round-trip through an opaque (but not encrypted) blob;
* limits: at most 15 tags per version (a 16th is 400 BadParameter), values up to 25 KB, and
  only the ``api-version`` values the service knows (the SDK's default among them);
* certificate-backed secrets (:meth:`FakeKeyVault.seed_certificate`) are listed with
  ``managed: true`` and a ``kid``, as Key Vault lists the secret of every certificate;
* with ``short_pages=True``, pages hold fewer items than ``maxresults`` and the first page is
  empty but carries a ``nextLink`` (clients must follow links, not count items);
* :meth:`FakeKeyVault.read_lag`: new versions show in reads and listings only after a delay
  (Key Vault documents no read-your-writes guarantee);
* :meth:`FakeKeyVault.recovering_writes`: writes right after a recovery answer 409
  ``ObjectIsBeingRecovered`` for a while;
* ``throttle(n, retry_after=None)`` answers 429 without ``Retry-After`` (Key Vault's may
  carry none); ``throttle(n, after="PUT")`` throttles what follows the next write;
* ``challenge_resource`` is the resource the challenge names (Key Vault's by default).

Test controls (thread safe, for tests running in the same process): :meth:`FakeKeyVault.deny`,
:meth:`~FakeKeyVault.throttle`, :meth:`~FakeKeyVault.fail`, :meth:`~FakeKeyVault.delay`,
:meth:`~FakeKeyVault.delay_next`,
:meth:`~FakeKeyVault.operation_lag`, the request log :attr:`~FakeKeyVault.requests`, and
:meth:`~FakeKeyVault.seed` / :meth:`~FakeKeyVault.secret_names` to arrange or inspect state
without HTTP. Faults (throttle/fail) and deny only hit *authenticated* requests, so the
challenge round trip of a fresh client is never consumed by them.

Entra ID (optional, :meth:`FakeKeyVault.enable_entra`): the fake also serves the OIDC discovery
and client-credentials token endpoints of one app registration, plus a CONNECT proxy for MSAL's
instance discovery at ``login.microsoftonline.com``, so an unchanged ``DefaultAzureCredential``
authenticates against it with the variables of :meth:`EntraApp.env`; the vault then accepts only
tokens it issued. Tokens are opaque strings, not JWTs.

Error messages follow the real service where known; the texts for invalid ``maxresults``,
missing request properties, corrupt backups and restore conflicts are approximations.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fakes.tls_server import QuietHandler, RequestLog, ServingThread, TestCA, TLSHTTPServer

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
    from azure.keyvault.secrets import SecretClient

__all__ = [
    "EntraApp",
    "FakeKeyVault",
    "RecordedRequest",
    "StaticTokenCredential",
    "KEY_VAULT_RESOURCE",
    "KEY_VAULT_SCOPE",
]

KEY_VAULT_RESOURCE = "https://vault.azure.net"
KEY_VAULT_SCOPE = KEY_VAULT_RESOURCE + "/.default"
ENTRA_HOST = "login.microsoftonline.com"
_ENTRA_INSTANCE_PATH = "/common/discovery/instance"
_ENTRA_OIDC = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_ENTRA_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
VERSION_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_PAGE_SIZE = 25
MAX_TAGS = 15  # per secret version, as the service enforces
MAX_VALUE_BYTES = 25 * 1024  # "secret value size: 25 KB"
# api-versions of the secrets data plane the service accepts (the SDK sends its default).
API_VERSIONS = frozenset({"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6",
                          "2025-07-01", "2026-04-01"})
SERVICE_VERSION = "1.9.2627.1"
BACKUP_MAGIC = "FakeKeyVaultSecretBackupV1"
NETWORK_INFO = "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;"

Json = dict[str, Any]


class RecordedRequest(NamedTuple):
    """One request seen by the fake (bodies are never recorded)."""

    method: str
    path: str  # URL path without the query string, e.g. "/secrets/db-password/"
    status: int  # status code the fake answered with
    authorized: bool  # whether a bearer token was presented
    query: str  # raw query string, e.g. "api-version=2026-04-01&maxresults=3"


class StaticTokenCredential:
    """A credential that hands out one fixed bearer token and records what it was asked for.

    Implements both ``get_token`` (TokenCredential) and ``get_token_info`` (SupportsTokenInfo);
    the Key Vault challenge policy prefers the latter.
    """

    def __init__(self, token: str = "fake-key-vault-token", *, expires_in: int = 3600) -> None:
        self.token = token
        self.expires_in = expires_in
        #: (scopes, tenant_id) of every token request, in order.
        self.token_requests: list[tuple[tuple[str, ...], str | None]] = []
        self._lock = threading.Lock()

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        from azure.core.credentials import AccessToken

        with self._lock:
            self.token_requests.append((scopes, tenant_id))
        return AccessToken(self.token, int(time.time()) + self.expires_in)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        from azure.core.credentials import AccessTokenInfo

        tenant_id = (options or {}).get("tenant_id")
        with self._lock:
            self.token_requests.append((scopes, tenant_id))
        return AccessTokenInfo(self.token, int(time.time()) + self.expires_in)

    def close(self) -> None:
        pass

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class _Version:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    visible_at: float = 0.0  # time.monotonic() from which reads and listings see it
    managed: bool = False  # backs a certificate (Key Vault creates these itself)


@dataclass
class _Secret:
    name: str  # spelling used when the secret was first created
    versions: list[_Version] = field(default_factory=list)  # creation order, latest last

    @property
    def latest(self) -> _Version:
        return self.versions[-1]

    def visible(self) -> list[_Version]:
        """The versions reads and listings see now (all but those still lagging)."""
        now = time.monotonic()
        return [v for v in self.versions if v.visible_at <= now]

    def find(self, version: str) -> _Version | None:
        seen = self.visible()
        if not version:
            return seen[-1] if seen else None
        return next((v for v in seen if v.version == version), None)


@dataclass
class _Deleted:
    secret: _Secret
    deleted_date: int
    scheduled_purge_date: int


@dataclass
class _Fault:
    status: int
    code: str
    message: str
    retry_after: float | None
    after: str | None = None  # armed once a request of this method has been served


class _KVError(Exception):
    """Raised inside request handling; rendered as the Key Vault error JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}

    def body(self) -> Json:
        error: Json = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


# access-policy permission verb and RBAC data action for each operation
_OPERATIONS: dict[str, tuple[str, str]] = {
    "get": ("get", "secrets/getSecret/action"),
    "list": ("list", "secrets/readMetadata/action"),
    "set": ("set", "secrets/setSecret/action"),
    "update": ("set", "secrets/update/action"),
    "delete": ("delete", "secrets/delete"),
    "getdeleted": ("get", "deletedSecrets/read"),
    "listdeleted": ("list", "deletedSecrets/read"),
    "recover": ("recover", "deletedSecrets/recover/action"),
    "purge": ("purge", "deletedSecrets/delete"),
    "backup": ("backup", "secrets/backup/action"),
    "restore": ("restore", "secrets/restore/action"),
}


def _now() -> int:
    return int(time.time())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _not_found(name: str, version: str = "") -> _KVError:
    ident = f"{name}/{version}" if version else name
    return _KVError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {ident} was not found in this key vault. If you recently "
        "deleted this secret you may be able to recover it using the correct recovery command. "
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _deleted_not_found() -> _KVError:
    return _KVError(404, "SecretNotFound", "Deleted Secret not found")


def _bad(message: str) -> _KVError:
    return _KVError(400, "BadParameter", message)


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise _bad(f"The request URI contains an invalid name: {name}")
    return name


class _TLSServer(TLSHTTPServer):
    """The shared HTTPS server (``tls_server.py``) on a free port, serving this fake."""

    def __init__(self, fake: FakeKeyVault, context: ssl.SSLContext) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler, context, socket_timeout=30)


class _Handler(QuietHandler):
    server: _TLSServer
    timeout = 30

    def _dispatch(self) -> None:
        body = self.read_body()
        status, headers, payload = self.server.fake._handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        self.send_body(status, headers, payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _dispatch


@dataclass(frozen=True)
class EntraApp:
    """An app registration (service principal) the fake's Entra ID endpoints accept.

    :meth:`env` gives the variables under which an unchanged ``DefaultAzureCredential``
    (its EnvironmentCredential -> ClientSecretCredential -> MSAL) gets its tokens from the
    fake: ``AZURE_AUTHORITY_HOST`` names the fake; MSAL's instance discovery, which always
    asks ``https://login.microsoftonline.com/common/discovery/instance`` about an authority
    host it does not know, reaches the fake through ``HTTPS_PROXY`` (a CONNECT proxy that
    tunnels only that host to the fake, whose certificate also names it); loopback stays
    direct through ``NO_PROXY``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    tenant_id: str
    authority_host: str
    proxy_url: str
    ca_path: str

    def env(self) -> dict[str, str]:
        return {
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }


class _TunnelProxy:
    """HTTP CONNECT proxy on 127.0.0.1 that tunnels ``hosts`` (port 443) to the fake's port.

    Anything else gets 403: no request leaves the machine. TLS stays end to end between
    the client and the fake.
    """

    def __init__(self, target_port: int, hosts: frozenset[str]) -> None:
        self.target_port = target_port
        self.hosts = hosts
        self.tunnels: list[str] = []  # "host:port" of every CONNECT, in order
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="FakeEntraProxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            target = line[1] if len(line) == 3 and line[0] == "CONNECT" else ""
            host, _, port = target.rpartition(":")
            with self._lock:
                self.tunnels.append(target)
            if host.lower() not in self.hosts or port != "443":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            with self._lock:
                self._open.update((conn, upstream))
            back = threading.Thread(target=self._pump, args=(upstream, conn), daemon=True)
            back.start()
            self._pump(conn, upstream)
            back.join(30)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
                if upstream is not None:
                    self._open.discard(upstream)
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stopping.set()
        self._sock.close()
        with self._lock:
            conns = list(self._open)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)


class FakeKeyVault:
    """In-process HTTPS fake of the Key Vault secrets API; see the module docstring.

    :param tenant_id: tenant named in the auth challenge (random UUID by default).
    :param vault_name: name used in access-denied messages.
    :param token: if set, only this bearer token is accepted (others get 401 + challenge).
    :param page_size: page size of list operations when the client sends no ``maxresults``.
    :param retention_days: soft-delete retention (7..90); < 90 gives ``CustomizedRecoverable``.
    :param purge_protection: purge answers 403 and recovery levels lose ``+Purgeable``.
    :param version_order: ``"created"`` lists versions in creation order; ``"id"`` sorts them
        by version id like the real service, so clients cannot rely on listing order.
    :param short_pages: pages hold fewer items than ``maxresults`` (at most 2) and the first
        page of a listing is empty but has a ``nextLink``, as the service may answer.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        vault_name: str = "fake-vault",
        token: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        retention_days: int = 90,
        purge_protection: bool = False,
        region: str = "westeurope",
        version_order: str = "created",
        short_pages: bool = False,
    ) -> None:
        if version_order not in ("created", "id"):
            raise ValueError("version_order must be 'created' or 'id'")
        self.version_order = version_order
        self.short_pages = short_pages
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if not 7 <= retention_days <= 90:
            raise ValueError("retention_days must be between 7 and 90")
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.vault_name = vault_name
        self.token = token
        #: the resource the 401 challenge names (the real service: Key Vault's own)
        self.challenge_resource = KEY_VAULT_RESOURCE
        self.page_size = page_size
        self.retention_days = retention_days
        self.purge_protection = purge_protection
        self.region = region
        #: identity reported in access-denied messages
        self.principal_id = str(uuid.uuid4())
        self.app_id = str(uuid.uuid4())

        self._lock = threading.RLock()
        self._secrets: dict[str, _Secret] = {}
        self._deleted: dict[str, _Deleted] = {}
        # name (lower) -> ("deleting" | "recovering", remaining 404 polls)
        self._pending: dict[str, list[Any]] = {}
        self._faults: deque[_Fault] = deque()
        self._deny: bool = False
        self._deny_permissions: frozenset[str] | None = None
        self._deny_rbac = False
        self._delay = 0.0
        self._delay_next: list[list[Any]] = []  # [method or None, seconds, remaining]
        self._entra: EntraApp | None = None
        self._proxy: _TunnelProxy | None = None
        #: access tokens issued by the fake's Entra ID token endpoint
        self.issued_tokens: list[str] = []
        self._operation_lag = 0
        self._read_lag = 0.0
        self._recovering_writes = 0
        self._settling: dict[str, int] = {}  # name (lower) -> writes still refused (409)
        self._log: RequestLog[RecordedRequest] = RequestLog()

        self._tls: TestCA | None = None
        self._serving: ServingThread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKeyVault:
        """Issue certificates, bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._serving is not None:
            return self
        self._tls = TestCA("127.0.0.1", "localhost", ENTRA_HOST, prefix="fake-keyvault-")
        self._serving = ServingThread(_TLSServer(self, self._tls.context), "FakeKeyVault")
        return self

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and remove the CA directory."""
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.stop()
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()
        tls, self._tls = self._tls, None
        if tls is not None:
            tls.remove()

    def __enter__(self) -> FakeKeyVault:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Vault URL, ``https://127.0.0.1:<port>`` (no trailing slash)."""
        if self._serving is None:
            raise RuntimeError("FakeKeyVault is not started")
        return f"https://127.0.0.1:{self._serving.port}"

    @property
    def ca_path(self) -> str:
        """Path of the PEM file of the CA that signed the server certificate."""
        if self._tls is None:
            raise RuntimeError("FakeKeyVault is not started")
        return str(self._tls.ca_path)

    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments that make a ``SecretClient`` talk to this fake."""
        kwargs: dict[str, Any] = {
            "verify_challenge_resource": False,
            "connection_verify": self.ca_path,
            "retry_backoff_factor": 0.0,
            "use_env_settings": False,
        }
        kwargs.update(overrides)
        return kwargs

    def make_client(self, credential: Any = None, **kwargs: Any) -> SecretClient:
        """A real ``SecretClient`` for this fake; ``kwargs`` override :meth:`client_kwargs`."""
        from azure.keyvault.secrets import SecretClient

        return SecretClient(
            self.url, credential or StaticTokenCredential(), **self.client_kwargs(**kwargs)
        )

    # ------------------------------------------------------------------ test controls

    def enable_entra(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> EntraApp:
        """Serve Entra ID's OIDC discovery and token endpoints for one app registration.

        From then on the vault accepts only bearer tokens this fake issued (401
        ``AKV10032`` otherwise), so a passing call proves the whole token flow ran.
        Served (unauthenticated, like Entra ID): ``GET /common/discovery/instance``,
        ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
        ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with ``client_secret``
        for the scope ``https://vault.azure.net/.default``). Unlike Entra ID, instance
        discovery vouches for any authority host; there are no certificates, federated
        credentials, refresh tokens or JWTs (tokens are opaque strings).
        """
        with self._lock:
            if self._entra is None:
                port = self._serving.port if self._serving is not None else 0
                self._proxy = _TunnelProxy(port, frozenset({ENTRA_HOST}))
                self._entra = EntraApp(
                    client_id=client_id or str(uuid.uuid4()),
                    client_secret=client_secret or _b64url(uuid.uuid4().bytes * 2),
                    tenant_id=self.tenant_id,
                    authority_host=self.url,
                    proxy_url=self._proxy.url,
                    ca_path=self.ca_path,
                )
            return self._entra

    @property
    def proxy_tunnels(self) -> list[str]:
        """Targets of every CONNECT the Entra proxy was asked for (empty if none)."""
        return list(self._proxy.tunnels) if self._proxy else []

    def deny(
        self,
        enabled: bool = True,
        *,
        permissions: Iterable[str] | None = None,
        rbac: bool = False,
    ) -> None:
        """Answer authenticated requests 403 Forbidden, like a vault without access for us.

        :param permissions: deny only these access-policy permissions (``get``, ``list``,
            ``set``, ``delete``, ``recover``, ``purge``, ``backup``, ``restore``); all if None.
        :param rbac: use the RBAC message (``ForbiddenByRbac``) instead of the access-policy one
            (``AccessDenied``).
        """
        with self._lock:
            self._deny = enabled
            self._deny_permissions = None if permissions is None else frozenset(permissions)
            self._deny_rbac = rbac

    def throttle(self, n: int, *, retry_after: float | None = 0,
                 after: str | None = None) -> None:
        """Answer the next ``n`` authenticated requests 429 with ``Retry-After`` (none if
        ``retry_after`` is None: Key Vault's 429 may carry none). With ``after`` (a method),
        the 429s start once the next request of that method has been served: a write is
        applied, then its confirmation is throttled."""
        message = (
            "Request was not processed because too many requests were received. Reason: "
            "A secret operation was throttled. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125286"
        )
        with self._lock:
            for _ in range(n):
                self._faults.append(_Fault(429, "Throttled", message, retry_after, after))

    def fail(self, n: int, status: int = 503, *, retry_after: float | None = None) -> None:
        """Answer the next ``n`` authenticated requests with ``status`` and an error body."""
        codes = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable"}
        code = codes.get(status, HTTPStatus(status).phrase.replace(" ", ""))
        message = f"Injected failure: {HTTPStatus(status).phrase}."
        with self._lock:
            for _ in range(n):
                self._faults.append(_Fault(status, code, message, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def delay(self, seconds: float) -> None:
        """Sleep this long before answering every request (0 disables)."""
        with self._lock:
            self._delay = max(0.0, seconds)

    def delay_next(self, seconds: float, *, method: str | None = None, count: int = 1) -> None:
        """Sleep ``seconds`` before handling the next ``count`` authenticated requests (of
        ``method``), on top of :meth:`delay`.

        The request is still carried out after the sleep, like a slow service whose client
        gave up waiting: a timed-out PUT still creates its version.
        """
        with self._lock:
            self._delay_next.append([method, max(0.0, seconds), count])

    def operation_lag(self, polls: int) -> None:
        """Delete/recover started from now on complete only after ``polls`` 404 poll GETs.

        While a delete is pending, GET /deletedsecrets/{name} answers 404 and PUT/recover/purge
        of the name answer 409 ``ObjectIsBeingDeleted``; while a recovery is pending,
        GET /secrets/{name}/... answers 404. Each such 404 poll counts down.
        """
        with self._lock:
            self._operation_lag = max(0, polls)

    def read_lag(self, seconds: float) -> None:
        """Versions written from now on are seen by reads and listings only ``seconds``
        after they were created (Key Vault documents no read-your-writes guarantee): GET
        without a version answers the newest *visible* version, listings omit the others,
        and a GET of such a version by id answers 404."""
        with self._lock:
            self._read_lag = max(0.0, seconds)

    def recovering_writes(self, n: int) -> None:
        """After a recovery completes, the next ``n`` writes (PUT, PATCH) of the name still
        answer 409 ``ObjectIsBeingRecovered``, as Key Vault can for a while after
        ``recover`` has returned."""
        with self._lock:
            self._recovering_writes = max(0, n)

    def seed_certificate(self, name: str) -> str:
        """A certificate-backed secret (``managed: true``, a ``kid``), as Key Vault creates
        one for every certificate; returns its version."""
        with self._lock:
            _check_name(name)
            v = self._add_version(name, _b64url(uuid.uuid4().bytes * 8),
                                  "application/x-pkcs12", None, True, None, None)
            v.managed = True
            v.visible_at = 0.0
            return v.version

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of the request log (oldest first)."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """Number of logged requests matching ``method`` and/or exact ``path``."""
        return self._log.count(
            lambda r: (method is None or r.method == method) and (path is None or r.path == path)
        )

    def reset(self) -> None:
        """Forget all secrets, faults, deny/delay settings and the request log."""
        with self._lock:
            self._secrets.clear()
            self._deleted.clear()
            self._pending.clear()
            self._faults.clear()
            self._deny = False
            self._deny_permissions = None
            self._delay = 0.0
            self._delay_next.clear()
            self._operation_lag = 0
            self._read_lag = 0.0
            self._recovering_writes = 0
            self._settling.clear()
            self._log.clear()

    def seed(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> str:
        """Add a new version of ``name`` without HTTP; returns the version id."""
        with self._lock:
            _check_name(name)
            version = self._add_version(name, value, content_type, tags, enabled, None, None)
            version.visible_at = 0.0
            return version.version

    def secret_names(self) -> list[str]:
        """Names of active (not deleted) secrets, sorted case-insensitively."""
        with self._lock:
            return [self._secrets[k].name for k in sorted(self._secrets)]

    def deleted_secret_names(self) -> list[str]:
        with self._lock:
            return [self._deleted[k].secret.name for k in sorted(self._deleted)]

    # ------------------------------------------------------------------ HTTP handling

    def _handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        path = split.path
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = auth.partition(" ")
        authorized = scheme.lower() == "bearer" and bool(token.strip())
        with self._lock:
            delay = self._delay
            for pending in self._delay_next if authorized else ():
                if pending[0] in (None, method):
                    delay += pending[1]
                    pending[2] -= 1
                    if pending[2] <= 0:
                        self._delay_next.remove(pending)
                    break
        if delay:
            time.sleep(delay)
        extra: dict[str, str] = {}
        if self._entra is not None and (
            path == _ENTRA_INSTANCE_PATH or _ENTRA_OIDC.match(path) or _ENTRA_TOKEN.match(path)
        ):
            return self._handle_entra(method, split, headers, body)
        try:
            token_ok = self.token is None or token.strip() == self.token
            if self._entra is not None:
                with self._lock:
                    token_ok = token_ok and token.strip() in self.issued_tokens
            if not authorized or not token_ok:
                extra["WWW-Authenticate"] = (
                    f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                    f'resource="{self.challenge_resource}"'
                )
                message = (
                    "AKV10000: Request is missing a Bearer or PoP token."
                    if not authorized
                    else "AKV10032: Invalid issuer or token."
                )
                raise _KVError(401, "Unauthorized", message)
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            with self._lock:
                status, payload = self._route(method, path, query, body)
        except _KVError as err:
            status, payload = err.status, err.body()
            extra.update(err.headers)
        except Exception:  # pragma: no cover - bug in the fake; surface it loudly
            traceback.print_exc(file=sys.stderr)
            status = 500
            payload = {"error": {"code": "InternalError", "message": traceback.format_exc()}}
        self._log.append(RecordedRequest(method, path, status, authorized, split.query))
        out_headers = {
            "Cache-Control": "no-cache",
            "x-ms-keyvault-region": self.region,
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-network-info": NETWORK_INFO,
            "x-ms-request-id": str(uuid.uuid4()),
            **extra,
        }
        data = b""
        if payload is not None:
            out_headers["Content-Type"] = "application/json; charset=utf-8"
            data = json.dumps(payload).encode()
        return status, out_headers, data

    def _handle_entra(
        self, method: str, split: Any, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Entra ID's discovery and token endpoints (see :meth:`enable_entra`)."""
        app = self._entra
        assert app is not None
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        host = next((v for k, v in headers.items() if k.lower() == "host"), "")
        base = f"https://{host or urlsplit(self.url).netloc}"
        status, payload = 200, {}
        oidc, tok = _ENTRA_OIDC.match(path), _ENTRA_TOKEN.match(path)

        def aad_error(code: int, error: str, description: str) -> tuple[int, Json]:
            return code, {"error": error, "error_description": description,
                          "error_codes": [int(re.match(r"AADSTS(\d+)", description).group(1))],
                          "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}

        if path == _ENTRA_INSTANCE_PATH and method == "GET":
            endpoint = urlsplit(query.get("authorization_endpoint", ""))
            tenant = endpoint.path.split("/")[1] if endpoint.path.count("/") >= 2 else ""
            # MSAL names the authority host without its port: loopback means this fake.
            local = endpoint.hostname in ("127.0.0.1", "localhost")
            authority = self.url if local else f"{endpoint.scheme}://{endpoint.netloc}"
            payload = {
                "tenant_discovery_endpoint":
                    f"{authority}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": endpoint.hostname,
                              "preferred_cache": endpoint.hostname,
                              "aliases": [endpoint.hostname]}],
            }
        elif oidc and method == "GET":
            tenant = oidc.group(1)
            if tenant not in (app.tenant_id, "organizations", "common"):
                status, payload = aad_error(
                    400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
            else:
                root = f"{base}/{app.tenant_id}"
                payload = {
                    "token_endpoint": f"{root}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "jwks_uri": f"{base}/{app.tenant_id}/discovery/v2.0/keys",
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["code", "id_token", "code id_token",
                                                 "id_token token"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "issuer": f"{root}/v2.0",
                    "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                    "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                    "tenant_region_scope": "EU",
                    "cloud_instance_name": "microsoftonline.com",
                }
        elif tok and method == "POST":
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            if tok.group(1) != app.tenant_id:
                status, payload = aad_error(
                    400, "invalid_tenant", f"AADSTS90002: Tenant '{tok.group(1)}' not found.")
            elif form.get("grant_type") != "client_credentials":
                status, payload = aad_error(
                    400, "unsupported_grant_type",
                    "AADSTS70003: The app requested an unsupported grant type.")
            elif form.get("client_id") != app.client_id:
                status, payload = aad_error(
                    400, "unauthorized_client",
                    f"AADSTS700016: Application with identifier '{form.get('client_id')}' was "
                    f"not found in the directory '{app.tenant_id}'.")
            elif form.get("client_secret") != app.client_secret:
                status, payload = aad_error(
                    401, "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                    "sent in the request is the client secret value, not the client secret "
                    f"ID, for a secret added to app '{app.client_id}'.")
            elif KEY_VAULT_SCOPE not in form.get("scope", "").split():
                status, payload = aad_error(
                    400, "invalid_scope",
                    "AADSTS70011: The provided value for the input parameter 'scope' is not "
                    "valid.")
            else:
                access_token = "fake-entra-" + uuid.uuid4().hex
                with self._lock:
                    self.issued_tokens.append(access_token)
                payload = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": access_token}
        else:
            status, payload = aad_error(
                405, "invalid_request", f"AADSTS90056: {method} is not supported here.")
        self._log.append(RecordedRequest(method, path, status, False, split.query))
        data = json.dumps(payload).encode()
        return status, {"Content-Type": "application/json; charset=utf-8",
                        "Cache-Control": "no-store, no-cache"}, data

    def _route(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Json | None]:
        """Dispatch an authenticated request; called with the lock held."""
        raw = path.split("/")[1:]
        parts = [unquote(p) for p in raw]
        latest_slash = len(parts) == 3 and parts[0] == "secrets" and parts[2] == ""
        while len(parts) > 1 and parts[-1] == "" and not latest_slash:
            parts.pop()
        head = parts[0] if parts else ""
        handler: Any = None
        args: tuple[Any, ...] = ()
        op = ""
        if head == "secrets":
            if len(parts) == 1 and method == "GET":
                handler, op = self._list_secrets, "list"
            elif len(parts) == 2 and parts[1] == "restore" and method == "POST":
                handler, op = self._restore, "restore"
            elif len(parts) == 2 and method == "PUT":
                handler, op, args = self._set, "set", (parts[1],)
            elif len(parts) == 2 and method == "DELETE":
                handler, op, args = self._delete, "delete", (parts[1],)
            elif len(parts) == 3 and parts[2] == "versions" and method == "GET":
                handler, op, args = self._list_versions, "list", (parts[1],)
            elif len(parts) == 3 and parts[2] == "backup" and method == "POST":
                handler, op, args = self._backup, "backup", (parts[1],)
            elif len(parts) in (2, 3) and method == "GET":
                handler, op = self._get, "get"
                args = (parts[1], parts[2] if len(parts) == 3 else "")
            elif len(parts) in (2, 3) and method == "PATCH":
                handler, op = self._update, "update"
                args = (parts[1], parts[2] if len(parts) == 3 else "")
        elif head == "deletedsecrets":
            if len(parts) == 1 and method == "GET":
                handler, op = self._list_deleted, "listdeleted"
            elif len(parts) == 2 and method == "GET":
                handler, op, args = self._get_deleted, "getdeleted", (parts[1],)
            elif len(parts) == 2 and method == "DELETE":
                handler, op, args = self._purge, "purge", (parts[1],)
            elif len(parts) == 3 and parts[2] == "recover" and method == "POST":
                handler, op, args = self._recover, "recover", (parts[1],)
        if handler is None:
            raise _KVError(
                501, "NotImplemented", f"The fake Key Vault does not implement {method} {path}."
            )

        if self._faults and self._faults[0].after is None:
            fault = self._faults.popleft()
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            raise _KVError(fault.status, fault.code, fault.message, headers=headers)
        for fault in self._faults:
            if fault.after == method:
                fault.after = None  # this request goes through; the faults follow it
        self._check_access(op, args[0] if args else None)
        if "api-version" not in query:
            raise _bad("The 'api-version' query parameter is missing.")
        if query["api-version"] not in API_VERSIONS:
            raise _bad(f"The specified version ({query['api-version']}) is not recognized. "
                       "Consider using the latest supported version (2025-07-01).")
        if op in ("set", "update") and args:
            settling = self._settling.get(args[0].lower(), 0)
            if settling:
                self._settling[args[0].lower()] = settling - 1
                raise _KVError(409, "Conflict", f"Secret {args[0]} is currently being "
                               "recovered.", "ObjectIsBeingRecovered")
        if args:
            _check_name(args[0])
        if op in ("set", "update", "restore"):
            try:
                payload = json.loads(body or b"{}")
            except ValueError as exc:
                raise _bad(f"The request body is not valid JSON: {exc}") from None
            if not isinstance(payload, dict):
                raise _bad("The request body must be a JSON object.")
            args = (*args, payload)
        if op in ("list", "listdeleted"):
            args = (*args, query)
        return handler(*args)

    def _check_access(self, op: str, name: str | None) -> None:
        permission, action = _OPERATIONS[op]
        if not self._deny:
            return
        if self._deny_permissions is not None and permission not in self._deny_permissions:
            return
        caller = (
            f"appid={self.app_id};oid={self.principal_id};"
            f"iss=https://sts.windows.net/{self.tenant_id}/"
        )
        vault = f"{self.vault_name};location={self.region}"
        if self._deny_rbac:
            resource = (
                f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/fake-rg/"
                f"providers/microsoft.keyvault/vaults/{self.vault_name}"
                + (f"/secrets/{name.lower()}" if name else "")
            )
            message = (
                "Caller is not authorized to perform action on resource.\r\n"
                "If role assignments, deny assignments or role definitions were changed recently, "
                "please observe propagation time.\r\n"
                f"Caller: {caller}\r\n"
                f"Action: 'Microsoft.KeyVault/vaults/{action}'\r\n"
                f"Resource: '{resource}'\r\n"
                "Assignment: (not found)\r\n"
                "DenyAssignmentId: null\r\n"
                "DecisionReason: null \r\n"
                f"Vault: {vault}\r\n"
            )
            raise _KVError(403, "Forbidden", message, "ForbiddenByRbac")
        message = (
            f"The user, group or application '{caller}' does not have secrets {permission} "
            f"permission on key vault '{vault}'. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125287"
        )
        raise _KVError(403, "Forbidden", message, "AccessDenied")

    # ------------------------------------------------------------------ state helpers

    @property
    def _recovery_level(self) -> str:
        level = "Recoverable" if self.retention_days == 90 else "CustomizedRecoverable"
        return level if self.purge_protection else level + "+Purgeable"

    def _attributes(self, v: _Version) -> Json:
        attrs: Json = {"enabled": v.enabled}
        if v.nbf is not None:
            attrs["nbf"] = v.nbf
        if v.exp is not None:
            attrs["exp"] = v.exp
        attrs.update(
            created=v.created,
            updated=v.updated,
            recoveryLevel=self._recovery_level,
            recoverableDays=self.retention_days,
        )
        return attrs

    def _secret_id(self, name: str, version: str | None = None) -> str:
        base = f"{self.url}/secrets/{name}"
        return f"{base}/{version}" if version else base

    def _bundle(self, secret: _Secret, v: _Version, *, value: bool) -> Json:
        out: Json = {}
        if value:
            out["value"] = v.value
        if v.content_type is not None:
            out["contentType"] = v.content_type
        out["id"] = self._secret_id(secret.name, v.version)
        out["attributes"] = self._attributes(v)
        if v.tags is not None:
            out["tags"] = dict(v.tags)
        if v.managed:
            out["managed"] = True
            out["kid"] = f"{self.url}/keys/{secret.name}/{v.version}"
        return out

    def _item(self, secret: _Secret, v: _Version, *, with_version: bool) -> Json:
        out: Json = {"id": self._secret_id(secret.name, v.version if with_version else None)}
        out["attributes"] = self._attributes(v)
        if v.tags is not None:
            out["tags"] = dict(v.tags)
        if v.content_type is not None:
            out["contentType"] = v.content_type
        if v.managed:
            out["managed"] = True
        return out

    def _deleted_fields(self, deleted: _Deleted) -> Json:
        return {
            "recoveryId": f"{self.url}/deletedsecrets/{deleted.secret.name}",
            "deletedDate": deleted.deleted_date,
            "scheduledPurgeDate": deleted.scheduled_purge_date,
        }

    def _add_version(
        self,
        name: str,
        value: str,
        content_type: str | None,
        tags: dict[str, str] | None,
        enabled: bool,
        nbf: int | None,
        exp: int | None,
    ) -> _Version:
        key = name.lower()
        self._raise_if_deleted(name)
        secret = self._secrets.setdefault(key, _Secret(name))
        now = _now()
        version = _Version(uuid.uuid4().hex, value, content_type, tags, enabled, nbf, exp, now, now,
                           time.monotonic() + self._read_lag)
        secret.versions.append(version)
        return version

    def _raise_if_deleted(self, name: str) -> None:
        key = name.lower()
        pending = self._pending.get(key)
        if pending and pending[0] == "deleting":
            raise _KVError(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted.",
                "ObjectIsBeingDeleted",
            )
        if key in self._deleted:
            raise _KVError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )

    def _poll_pending(self, name: str, kind: str) -> bool:
        """True (and count down) while an operation of ``kind`` on ``name`` is pending."""
        key = name.lower()
        pending = self._pending.get(key)
        if not pending or pending[0] != kind:
            return False
        pending[1] -= 1
        if pending[1] <= 0:
            del self._pending[key]
        return True

    def _is_pending(self, key: str, kind: str) -> bool:
        pending = self._pending.get(key)
        return bool(pending and pending[0] == kind)

    def _start_pending(self, name: str, kind: str) -> None:
        if self._operation_lag:
            self._pending[name.lower()] = [kind, self._operation_lag]
        else:
            self._pending.pop(name.lower(), None)

    @staticmethod
    def _parse_attributes(payload: Json) -> Json:
        attrs = payload.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise _bad("The property 'attributes' must be an object.")
        for key in ("nbf", "exp"):
            if attrs.get(key) is not None and not isinstance(attrs[key], int):
                raise _bad(f"The property 'attributes.{key}' must be a Unix time in seconds.")
        if attrs.get("enabled") is not None and not isinstance(attrs["enabled"], bool):
            raise _bad("The property 'attributes.enabled' must be a boolean.")
        return attrs

    @staticmethod
    def _parse_tags(payload: Json) -> dict[str, str] | None:
        tags = payload.get("tags")
        if tags is None:
            return None
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise _bad("The property 'tags' must be an object of string values.")
        if len(tags) > MAX_TAGS:
            raise _bad(f"The number of tags ({len(tags)}) exceeds the maximum of {MAX_TAGS}.")
        return dict(tags)

    def _page(self, items: list[Json], query: dict[str, str], path: str) -> Json:
        maxresults_raw = query.get("maxresults")
        size = self.page_size
        if maxresults_raw is not None:
            try:
                size = int(maxresults_raw)
            except ValueError:
                size = 0
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise _bad(
                    f"The value for maxresults parameter should be between 1 and {MAX_PAGE_SIZE}."
                )
        offset = 0
        skiptoken = query.get("$skiptoken")
        if skiptoken:
            try:
                offset = int(json.loads(_unb64url(skiptoken))["offset"])
            except (ValueError, KeyError, TypeError):
                raise _bad("The $skiptoken query parameter is invalid.") from None
        take = size
        if self.short_pages:
            take = 0 if offset == 0 and not skiptoken else min(size, 2)
        page = items[offset : offset + take]
        next_offset = offset + take
        next_link = None
        if next_offset < len(items):
            token = _b64url(json.dumps({"offset": next_offset}).encode())
            next_link = (
                f"{self.url}{path}?api-version={quote(query['api-version'])}&$skiptoken={token}"
            )
            if maxresults_raw is not None:
                next_link += f"&maxresults={size}"
        return {"value": page, "nextLink": next_link}

    # ------------------------------------------------------------------ operations

    def _set(self, name: str, payload: Json) -> tuple[int, Json]:
        value = payload.get("value")
        if not isinstance(value, str):
            raise _bad("The request body property 'value' is required and must be a string.")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise _bad(f"The secret value exceeds the maximum size of {MAX_VALUE_BYTES} bytes.")
        content_type = payload.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise _bad("The property 'contentType' must be a string.")
        attrs = self._parse_attributes(payload)
        enabled = attrs.get("enabled")
        version = self._add_version(
            name,
            value,
            content_type,
            self._parse_tags(payload),
            True if enabled is None else enabled,
            attrs.get("nbf"),
            attrs.get("exp"),
        )
        return 200, self._bundle(self._secrets[name.lower()], version, value=True)

    def _lookup(self, name: str, version: str) -> tuple[_Secret, _Version]:
        secret = self._secrets.get(name.lower())
        if secret is None:
            raise _not_found(name, version)
        found = secret.find(version)
        if found is None:
            raise _not_found(name, version)
        return secret, found

    def _get(self, name: str, version: str) -> tuple[int, Json]:
        if self._poll_pending(name, "recovering"):
            raise _not_found(name, version)
        secret, found = self._lookup(name, version)
        if not found.enabled:
            raise _KVError(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            )
        return 200, self._bundle(secret, found, value=True)

    def _update(self, name: str, version: str, payload: Json) -> tuple[int, Json]:
        secret, found = self._lookup(name, version)
        attrs = self._parse_attributes(payload)
        tags = self._parse_tags(payload)
        content_type = payload.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise _bad("The property 'contentType' must be a string.")
        if attrs.get("enabled") is not None:
            found.enabled = attrs["enabled"]
        for key in ("nbf", "exp"):
            if key in attrs:
                setattr(found, key, attrs[key])
        if tags is not None:
            found.tags = tags
        if content_type is not None:
            found.content_type = content_type
        found.updated = _now()
        return 200, self._bundle(secret, found, value=False)

    def _list_secrets(self, query: dict[str, str]) -> tuple[int, Json]:
        items = [
            self._item(self._secrets[key], self._secrets[key].visible()[-1], with_version=False)
            for key in sorted(self._secrets)
            if not self._is_pending(key, "recovering") and self._secrets[key].visible()
        ]
        return 200, self._page(items, query, "/secrets")

    def _list_versions(self, name: str, query: dict[str, str]) -> tuple[int, Json]:
        secret = self._secrets.get(name.lower())
        versions = secret.visible() if secret else []
        if self.version_order == "id":
            versions = sorted(versions, key=lambda v: v.version)
        items = [self._item(secret, v, with_version=True) for v in versions] if secret else []
        return 200, self._page(items, query, f"/secrets/{quote(name)}/versions")

    def _delete(self, name: str) -> tuple[int, Json]:
        key = name.lower()
        secret = self._secrets.pop(key, None)
        if secret is None:
            raise _not_found(name)
        now = _now()
        deleted = _Deleted(secret, now, now + self.retention_days * 86400)
        self._deleted[key] = deleted
        self._start_pending(name, "deleting")
        bundle = self._bundle(secret, secret.latest, value=False)
        return 200, {**self._deleted_fields(deleted), **bundle}

    def _deleted_or_404(self, name: str) -> _Deleted:
        deleted = self._deleted.get(name.lower())
        if deleted is None:
            raise _deleted_not_found()
        return deleted

    def _get_deleted(self, name: str) -> tuple[int, Json]:
        if self._poll_pending(name, "deleting"):
            raise _deleted_not_found()
        deleted = self._deleted_or_404(name)
        bundle = self._bundle(deleted.secret, deleted.secret.latest, value=False)
        return 200, {**self._deleted_fields(deleted), **bundle}

    def _list_deleted(self, query: dict[str, str]) -> tuple[int, Json]:
        items = []
        for key in sorted(self._deleted):
            if self._is_pending(key, "deleting"):
                continue
            deleted = self._deleted[key]
            item = self._item(deleted.secret, deleted.secret.latest, with_version=False)
            items.append({**self._deleted_fields(deleted), **item})
        return 200, self._page(items, query, "/deletedsecrets")

    def _recover(self, name: str) -> tuple[int, Json]:
        key = name.lower()
        self._raise_if_deleting(name)
        deleted = self._deleted_or_404(name)
        del self._deleted[key]
        self._secrets[key] = deleted.secret
        self._start_pending(name, "recovering")
        if self._recovering_writes:
            self._settling[key] = self._recovering_writes
        return 200, self._bundle(deleted.secret, deleted.secret.latest, value=False)

    def _purge(self, name: str) -> tuple[int, None]:
        self._raise_if_deleting(name)
        self._deleted_or_404(name)
        if self.purge_protection:
            raise _KVError(
                403,
                "Forbidden",
                'Operation "purge" is not allowed because purge protection is enabled for this '
                "vault. Key Vault service will automatically purge it after the retention period "
                "has passed.",
            )
        del self._deleted[name.lower()]
        return 204, None

    def _raise_if_deleting(self, name: str) -> None:
        if self._is_pending(name.lower(), "deleting"):
            raise _KVError(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted.",
                "ObjectIsBeingDeleted",
            )

    def _backup(self, name: str) -> tuple[int, Json]:
        secret = self._secrets.get(name.lower())
        if secret is None:
            raise _not_found(name)
        blob = {
            "magic": BACKUP_MAGIC,
            "name": secret.name,
            "versions": [vars(v) for v in secret.versions],
        }
        return 200, {"value": _b64url(json.dumps(blob).encode())}

    def _restore(self, payload: Json) -> tuple[int, Json]:
        try:
            blob = json.loads(_unb64url(payload["value"]))
            if blob["magic"] != BACKUP_MAGIC:
                raise ValueError("bad magic")
            secret = _Secret(blob["name"], [_Version(**v) for v in blob["versions"]])
        except (KeyError, TypeError, ValueError):
            raise _bad("Backup blob is corrupt or was not produced by this vault.") from None
        key = secret.name.lower()
        self._raise_if_deleted(secret.name)
        if key in self._secrets:
            raise _KVError(409, "Conflict", f"Secret {secret.name} already exists.")
        self._secrets[key] = secret
        return 200, self._bundle(secret, secret.latest, value=False)
