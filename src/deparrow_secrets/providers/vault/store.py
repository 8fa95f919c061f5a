"""HashiCorp Vault / OpenBao: KV v2 at the configured mount, one property per key.

Objects are KV paths (`deparrow/production`); versions are KV v2 versions. Every write
sends `options.cas` (0 when the object must not exist), so a concurrent writer gets a
ConflictError. A read is one GET of `<mount>/data/<path>`, a write one POST of the whole
object; history is one GET of `<mount>/metadata/<path>`; list walks LIST
`<mount>/metadata/<folder>` from the folder of the prefix down. The first write of a
store also checks once that the mount is KV v2 (a KV v1 mount would silently store
the request body under `data/<path>`), and so does the first read that finds nothing (a
KV v1 mount answers 404 to every `data/` path: that is an error, not "every value
missing"). A soft-deleted current version is SoftDeletedError with the undelete command,
never an empty object that provision would fill with new values; `recover` undeletes it.

Connection, as the `vault` and `bao` CLIs do it, for the tool's own user:
- address: VAULT_ADDR, else BAO_ADDR, else `store.server` from the configuration;
- namespace: VAULT_NAMESPACE, else BAO_NAMESPACE, else `store.namespace`;
- TLS: VAULT_CACERT / VAULT_CAPATH (or BAO_*), VAULT_CLIENT_CERT + VAULT_CLIENT_KEY,
  VAULT_SKIP_VERIFY;
- credentials, first found wins: VAULT_TOKEN (else BAO_TOKEN); the token file
  `~/.vault-token` that `vault login` and `bao login` write; AppRole with VAULT_ROLE_ID
  and VAULT_SECRET_ID (mount VAULT_APPROLE_MOUNT, default `approle`); Kubernetes auth
  with the pod's service account token (role and authMount from the configuration).
VAULT_* wins over BAO_* when both are set.

hvac is imported only when a VaultStore is created.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from deparrow_secrets.deps import require
from deparrow_secrets.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
    StoreUnavailableError,
)
from deparrow_secrets.providers.vault.settings import settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import (
    CallTimeout,
    RetryPolicy,
    Throttled,
    bounded,
    call_with_retry,
)

if TYPE_CHECKING:
    import hvac
    import requests

    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
TOKEN_FILE = "~/.vault-token"
DEFAULT_MOUNT = "secret"
CAS_MISMATCH = "check-and-set parameter did not match the current version"
LOGIN_HINT = ("set VAULT_TOKEN, or run `bao login` / `vault login` (which writes "
              "~/.vault-token), or set VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole")
# Short timeout of the best-effort token lookup that names the principal in a denial.
LOOKUP_TIMEOUT = 2.0

_STATUS = {"InvalidRequest": 400, "Unauthorized": 401, "Forbidden": 403, "InvalidPath": 404,
           "RateLimitExceeded": 429, "InternalServerError": 500, "VaultNotInitialized": 501,
           "BadGateway": 502, "VaultDown": 503}


def _env(*names: str) -> str | None:
    """The first of `names` set to a non-empty value (VAULT_X before BAO_X)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _truthy(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    lowered = raw.strip().lower()
    if lowered in ("1", "t", "true", "yes", "y", "on"):
        return True
    if lowered in ("", "0", "f", "false", "no", "n", "off"):
        return False
    raise InputError(f"${name} must be true or false, got {raw!r}")


def _parse_time(raw: object) -> datetime | None:
    """Vault's RFC 3339 times carry nanoseconds; Python keeps microseconds."""
    if not isinstance(raw, str) or not raw:
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", raw)
    if not m:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")
    except ValueError:
        return None


def _as_text(value: object) -> str:
    """A KV v2 property as ESO puts it into a Kubernetes Secret: strings as they are,
    anything else (numbers, booleans, maps) as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"'{key}' is not a valid Vault KV path",
                         hint="use segments separated by single slashes, such as "
                         "deparrow/production (no leading or trailing slash)")
    return key


# --------------------------------------------------------------------------- logins


@dataclass(frozen=True)
class AppRoleLogin:
    role_id: str
    secret_id: SecretValue
    mount: str = "approle"

    def describe(self) -> str:
        return f"AppRole login at auth/{self.mount}"

    def payload(self) -> dict[str, str]:
        return {"role_id": self.role_id, "secret_id": self.secret_id.reveal()}


@dataclass(frozen=True)
class KubernetesLogin:
    role: str
    mount: str = "kubernetes"
    jwt_path: str = K8S_TOKEN_PATH

    def describe(self) -> str:
        return f"Kubernetes login at auth/{self.mount} with role {self.role}"

    def payload(self) -> dict[str, str]:
        try:
            jwt = Path(self.jwt_path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise AccessDeniedError(
                f"cannot read the service account token {self.jwt_path} "
                f"({type(exc).__name__})", provider="vault", hint=LOGIN_HINT) from None
        return {"role": self.role, "jwt": jwt}


Login = AppRoleLogin | KubernetesLogin


def credentials_from_env(
    role: str = "deparrow-secrets", auth_mount: str = "kubernetes"
) -> tuple[SecretValue | None, Login | None, str]:
    """(token, login, description of the source) for the CLI user, in the documented order.

    Nothing is sent anywhere here; logins happen at the first request.
    """
    token = os.environ.get("VAULT_TOKEN")
    if token and token.strip():
        return SecretValue(token.strip()), None, "$VAULT_TOKEN"
    token = os.environ.get("BAO_TOKEN")
    if token and token.strip():
        return SecretValue(token.strip()), None, "$BAO_TOKEN"
    token_file = Path(TOKEN_FILE).expanduser()
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        token = ""
    if token:
        return SecretValue(token), None, str(token_file)
    role_id, secret_id = _env("VAULT_ROLE_ID"), _env("VAULT_SECRET_ID")
    if role_id and secret_id:
        login: Login = AppRoleLogin(role_id, SecretValue(secret_id),
                                    _env("VAULT_APPROLE_MOUNT") or "approle")
        return None, login, login.describe()
    if Path(K8S_TOKEN_PATH).is_file():
        login = KubernetesLogin(role, auth_mount, K8S_TOKEN_PATH)
        return None, login, login.describe()
    return None, None, "none"


def _is_transient(exc: BaseException) -> bool:
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a wrong CA does not fix itself
    if isinstance(exc, (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return True
    return isinstance(exc, (hx.VaultDown, hx.InternalServerError, hx.BadGateway,
                            hx.RateLimitExceeded))


def _throttled(exc: BaseException) -> Throttled | None:
    import hvac.exceptions as hx

    return Throttled() if isinstance(exc, hx.RateLimitExceeded) else None


def _errors_text(exc: Any, redact: Iterable[SecretValue] = ()) -> str:
    """Vault's own error strings, short, with anything we sent masked (never a body)."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, str):
        errors = [errors]
    text = "; ".join(str(e) for e in errors or [] if e)
    text = " ".join(text.replace("*", " ").split())
    for value in redact:
        revealed = value.reveal()
        if revealed:
            text = text.replace(revealed, "<redacted>")
    return text[:200]


@dataclass(frozen=True)
class _Deleted:
    """Metadata of a deleted or destroyed version (Vault answers 404 with it)."""

    meta: dict[str, Any]


# --------------------------------------------------------------------------- the store


class VaultStore(SecretStore):
    provider = "vault"

    def __init__(
        self,
        address: str,
        *,
        token: SecretValue | str | None = None,
        login: Login | None = None,
        mount: str = DEFAULT_MOUNT,
        namespace: str | None = None,
        environment: str = "vault",
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        retry: RetryPolicy | None = None,
        token_source: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        hvac_mod = require("hvac", "vault")
        requests_mod = require("requests", "vault")
        if not re.match(r"https?://[^\s/]+", address or ""):
            raise ConfigError(f"Vault address {address!r} is not an http(s) URL",
                              hint="set VAULT_ADDR (or `store.server`) to e.g. "
                              "https://vault.example.com:8200")
        self.address = address.rstrip("/")
        self.mount = mount.strip("/") or DEFAULT_MOUNT
        self.namespace = namespace.strip("/") if namespace else None
        self.environment = environment
        self.retry = retry or RetryPolicy.from_env()
        self.policy = self.retry  # what `bounded` operations take their deadline from
        self._token = SecretValue(token) if isinstance(token, str) else token
        self._login = login
        self._token_source = token_source or ("given token" if token else
                                              login.describe() if login else "none")
        self._lock = threading.Lock()
        self._mount_checked = False
        self._verify = verify
        self._cert = cert
        self._session = session or requests_mod.Session()
        self._client: hvac.Client = hvac_mod.Client(
            url=self.address,
            token=self._token.reveal() if self._token else "",
            namespace=self.namespace,
            verify=verify,
            cert=cert,
            timeout=self.retry.timeout,
            session=self._session,
        )

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> VaultStore:
        cfg = settings_of(env)
        address = _env("VAULT_ADDR", "BAO_ADDR") or cfg.server
        if not address:
            raise ConfigError(
                "no Vault address: `server` is not set and VAULT_ADDR is empty",
                file=str(config.file) if config.file else None,
                key_path=f"environments.{env.name}.store.server",
                hint="set `server:` in the configuration or export VAULT_ADDR")
        verify: bool | str = True
        if _truthy(_env("VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"), "VAULT_SKIP_VERIFY"):
            verify = False
        else:
            for names in (("VAULT_CACERT", "BAO_CACERT"), ("VAULT_CAPATH", "BAO_CAPATH")):
                ca = _env(*names)
                if ca:
                    if not Path(ca).exists():
                        raise ConfigError(f"${names[0]} names {ca}, which does not exist",
                                          hint="point it at the PEM bundle of the Vault CA")
                    verify = ca
                    break
        cert = None
        client_cert = _env("VAULT_CLIENT_CERT", "BAO_CLIENT_CERT")
        client_key = _env("VAULT_CLIENT_KEY", "BAO_CLIENT_KEY")
        if client_cert and client_key:
            cert = (client_cert, client_key)
        token, login, source = credentials_from_env(cfg.role, cfg.auth_mount)
        if token is None and login is None:
            raise AccessDeniedError(
                "no Vault credentials found (no VAULT_TOKEN, no ~/.vault-token, no AppRole "
                "variables, not in a Kubernetes pod)",
                environment=env.name, provider=cls.provider, hint=LOGIN_HINT)
        return cls(
            address,
            token=token,
            login=login,
            mount=cfg.mount,
            namespace=_env("VAULT_NAMESPACE", "BAO_NAMESPACE") or cfg.vault_namespace,
            environment=env.name,
            verify=verify,
            cert=cert,
            retry=RetryPolicy.from_env(),
            token_source=source,
        )

    def __repr__(self) -> str:
        ns = f", namespace={self.namespace!r}" if self.namespace else ""
        return (f"VaultStore(address={self.address!r}, mount={self.mount!r}{ns}, "
                f"environment={self.environment!r})")

    def close(self) -> None:
        self._session.close()

    @property
    def _waiting_for(self) -> str:
        return f"vault at {self.address}"

    # ------------------------------------------------------------------ plumbing

    def _remote(self, path: str | None) -> str | None:
        return f"{self.mount}/{path}" if path else f"{self.mount}/"

    def _err(self, cls: type[StoreError], message: str, path: str | None = None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=self._remote(path), hint=hint)

    def _url(self, kind: str, path: str = "") -> str:
        base = f"/v1/{quote(self.mount, safe='/')}/{kind}"
        return f"{base}/{quote(path, safe='/')}" if path else base

    def admin_client(self) -> hvac.Client:
        """The logged-in hvac client, for the tool's administrative calls (setup)."""
        self._ensure_token()
        return self._client

    def _ensure_token(self) -> None:
        """Log in (AppRole, Kubernetes) once, at the first request."""
        if self._client.adapter.token or self._login is None:
            return
        with self._lock:
            if self._client.adapter.token:
                return
            login = self._login
            payload = login.payload()

            def attempt() -> Any:
                return self._client.adapter.post(f"/v1/auth/{quote(login.mount)}/login",
                                                 json=payload)

            failure: StoreError | None = None
            try:
                response = call_with_retry(attempt, _is_transient, self.retry,
                                           lambda exc, n: self._give_up("login", None, exc, n),
                                           throttled=_throttled, waiting_for=self._waiting_for)
                token = response["auth"]["client_token"]
            except StoreError as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - translated, never chained
                failure = self._login_failed(login, exc)
            if failure is not None:
                failure.__context__ = None
                raise failure
            self._client.adapter.token = token

    def _login_failed(self, login: Login, exc: Exception) -> StoreError:
        import hvac.exceptions as hx
        import requests

        if isinstance(exc, requests.RequestException):
            return self._translate("login", None, exc, "update", "auth", ())
        text = _errors_text(exc)
        status = _STATUS.get(type(exc).__name__) if isinstance(exc, hx.VaultError) else None
        detail = f"HTTP {status}" if status else type(exc).__name__
        if text:
            detail += f": {text}"
        return self._err(AccessDeniedError, f"access denied: {login.describe()} failed "
                         f"({detail})", hint=LOGIN_HINT)

    def _call(
        self,
        op: str,
        path: str | None,
        fn: Callable[[], T],
        *,
        on_error: Callable[[Exception], Any] | None = None,
        caps: str = "read",
        url_kind: str = "data",
        redact: Iterable[SecretValue] = (),
    ) -> T:
        """Run one API request with retries; translate every failure into a StoreError.

        `on_error` may turn an SDK error into a result (return a value) or a StoreError
        (return it); returning None leaves it to the generic translation.
        """
        self._ensure_token()
        failure: StoreError
        try:
            return call_with_retry(fn, _is_transient, self.retry,
                                   lambda exc, n: self._give_up(op, path, exc, n),
                                   throttled=_throttled, waiting_for=self._waiting_for)
        except StoreError as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - translated below, never chained
            result = on_error(exc) if on_error is not None else None
            if isinstance(result, StoreError):
                failure = result
            elif result is not None:
                return result
            else:
                failure = self._translate(op, path, exc, caps, url_kind, redact)
        failure.__context__ = None
        failure.__cause__ = None
        raise failure

    def _give_up(self, op: str, path: str | None, exc: BaseException, attempts: int) -> StoreError:
        import hvac.exceptions as hx
        import requests

        hint = f"check VAULT_ADDR={self.address} is reachable and unsealed"
        if isinstance(exc, CallTimeout):
            reason = f"no complete answer within {exc.seconds:g}s (timed out)"
            hint += "; raise DEPARROW_SECRETS_TIMEOUT if it is only slow"
        elif isinstance(exc, requests.Timeout):
            reason = f"timed out (limit {self.retry.timeout:g}s per operation)"
            hint += "; raise DEPARROW_SECRETS_TIMEOUT if it is only slow"
        elif isinstance(exc, requests.ConnectionError):
            reason = "could not connect (connection refused, reset or closed)"
        elif isinstance(exc, hx.VaultDown) and "sealed" in _errors_text(exc).lower():
            reason = "the server is sealed (HTTP 503)"
            hint = (f"unseal the server at {self.address} (`bao operator unseal` / "
                    "`vault operator unseal`), then retry")
        elif isinstance(exc, hx.RateLimitExceeded):
            reason = "rate limited (HTTP 429)"
            hint = "wait and retry, or raise DEPARROW_SECRETS_RETRIES"
        elif isinstance(exc, hx.VaultError):
            reason = f"server error (HTTP {_STATUS.get(type(exc).__name__, '5xx')})"
            text = _errors_text(exc)
            if text:
                reason += f": {text}"
        else:
            reason = type(exc).__name__
        return self._err(StoreUnavailableError,
                         f"{op} failed after {attempts} attempt(s): {reason}", path, hint)

    def _translate(self, op: str, path: str | None, exc: Exception, caps: str,
                   url_kind: str, redact: Iterable[SecretValue]) -> StoreError:
        import hvac.exceptions as hx
        import requests

        if isinstance(exc, (hx.Forbidden, hx.Unauthorized)):
            return self._denied(path, caps, url_kind)
        if isinstance(exc, requests.exceptions.SSLError):
            return self._err(StoreUnavailableError,
                             f"{op} failed: TLS verification of {self.address} failed", path,
                             "set VAULT_CACERT to the CA bundle that signed the server "
                             "certificate (VAULT_SKIP_VERIFY=true only for testing)")
        text = _errors_text(exc, redact)
        if isinstance(exc, hx.InvalidPath) and "no handler for route" in text:
            return self._no_mount(path)
        if isinstance(exc, hx.VaultNotInitialized):
            return self._err(StoreUnavailableError, f"{op} failed: the server is not "
                             "initialized", path, "initialize it: `bao operator init`")
        if isinstance(exc, hx.InvalidRequest) and "high complexity" in text:
            return self._err(StoreError, f"{op} failed: the server refuses a request with "
                             "this many properties in one object (HTTP 400)", path,
                             "raise `max_request_json_strings` (and `max_request_json_memory`) "
                             "on the server's listener; each key counts twice")
        if isinstance(exc, hx.VaultError):
            status = _STATUS.get(type(exc).__name__, "unexpected status")
            return self._err(StoreError, f"{op} failed: HTTP {status}"
                             + (f": {text}" if text else ""), path)
        if isinstance(exc, requests.RequestException):
            return self._err(StoreUnavailableError,
                             f"{op} failed: {type(exc).__name__}", path,
                             f"check VAULT_ADDR={self.address}")
        return self._err(StoreError, f"{op} failed: {type(exc).__name__}", path)

    def _no_mount(self, path: str | None) -> StoreError:
        return self._err(StoreError, f"no secrets engine is mounted at {self.mount}/"
                         + (f" in namespace {self.namespace}" if self.namespace else ""),
                         path, f"enable KV v2 there (`bao secrets enable -path={self.mount} "
                         "kv-v2`) or set `mount:` in the configuration")

    def _denied(self, path: str | None, caps: str, url_kind: str) -> StoreError:
        target = self._url(url_kind, path or "")[len("/v1/"):]
        who = self._principal()
        message = f"access denied to {target}"
        if self.namespace:
            message += f" in namespace {self.namespace}"
        message += f" ({who})"
        hint = (f"the token's policies must grant [{caps}] on {target} (credentials came "
                f"from {self._token_source}); to use other credentials: {LOGIN_HINT}")
        return self._err(AccessDeniedError, message, path, hint)

    def _principal(self) -> str:
        """Display name and policies of the token, if it may look itself up; never the token."""
        try:
            info = self._client.adapter.get("/v1/auth/token/lookup-self",
                                            timeout=min(LOOKUP_TIMEOUT, self.retry.timeout))
            data = info["data"]
        except Exception:  # noqa: BLE001 - best effort
            return "the token could not look itself up: it may be invalid or expired"
        name = data.get("display_name") or "unnamed token"
        policies = ", ".join(str(p) for p in data.get("policies") or []) or "none"
        return f"token '{name}' with policies: {policies}"

    def _check_mount(self, path: str) -> None:
        """Once per store: refuse to write into a KV v1 mount (it would not version)."""
        if self._mount_checked:
            return
        import hvac.exceptions as hx

        def on_error(exc: Exception) -> Any:
            if isinstance(exc, hx.Forbidden):
                return {}  # the preflight is not allowed: the write will tell
            if isinstance(exc, (hx.InvalidPath, hx.InvalidRequest)):
                return self._no_mount(path)
            return None

        info = self._call("check mount", path, lambda: self._client.adapter.get(
            f"/v1/sys/internal/ui/mounts/{quote(self.mount, safe='/')}"), on_error=on_error)
        data = (info.get("data") or {}) if isinstance(info, dict) else {}
        if data:
            version = str((data.get("options") or {}).get("version") or "1")
            if data.get("type") not in ("kv", "generic") or version != "2":
                raise self._err(StoreError, f"the mount {self.mount}/ is not KV version 2 "
                                f"(type {data.get('type')}, version {version})", path,
                                f"use a KV v2 mount, or upgrade: `bao kv enable-versioning "
                                f"{self.mount}/`")
            # Mount paths are relative to the namespace.
            mounted = str(data.get("path") or "").strip("/")
            if mounted and mounted != self.mount:
                raise self._err(StoreError, f"{self.mount}/ is not a mount point: it lies "
                                f"inside the mount {mounted}/", path,
                                f"set `mount: {mounted}` and put the rest into `path:`")
        self._mount_checked = True

    # ------------------------------------------------------------------ operations

    @bounded
    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        import hvac.exceptions as hx

        _check_key(key)
        params: dict[str, str] = {}
        if version is not None:
            if not version.isdigit() or int(version) < 1:
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            params["version"] = str(int(version))
        missing = object()

        def on_error(exc: Exception) -> Any:
            if not isinstance(exc, hx.InvalidPath) or "no handler for route" in \
                    _errors_text(exc):
                return None
            meta = ((exc.json or {}).get("data") or {}).get("metadata") \
                if isinstance(exc.json, dict) else None
            if isinstance(meta, dict) and meta.get("version"):
                return _Deleted(meta)  # a deleted or destroyed version: metadata only
            if version is not None:
                return self._err(NotFoundError, f"version {version} does not exist", key)
            return missing

        body = self._call("read", key, lambda: self._client.adapter.get(
            self._url("data", key), params=params), on_error=on_error)
        if body is missing:
            # A KV v1 mount answers 404 to every data/ path: say so once, instead of
            # reporting every value missing.
            self._check_mount(key)
            return None
        if isinstance(body, _Deleted):
            state = "destroyed" if body.meta.get("destroyed") else "deleted"
            if version is not None:
                raise self._err(NotFoundError, f"version {version} was {state}", key,
                                hint="name another version (see the history)")
            if state == "deleted":
                raise self._soft_deleted(key, str(body.meta["version"]))
            # Destroyed: the values are gone for good; the object exists, empty, and the
            # next write must check-and-set against this version.
            return Snapshot(key, str(body.meta["version"]), {})
        try:
            data = body["data"]["data"] or {}
            got = str(body["data"]["metadata"]["version"])
        except (KeyError, TypeError):
            raise self._err(IntegrityError, "the response is not a KV v2 secret", key,
                            hint=f"check that {self.mount}/ is a KV v2 mount") from None
        if not isinstance(data, dict):
            raise self._err(IntegrityError, "the secret is not a map of properties", key)
        return Snapshot(key, got, {k: SecretValue(_as_text(v)) for k, v in data.items()})

    def _soft_deleted(self, key: str, version: str) -> StoreError:
        mount = self.mount
        return self._err(
            SoftDeletedError,
            f"the current version ({version}) is deleted: its values are kept but cannot be "
            "read until it is undeleted (nothing was written)", key,
            hint=f"undelete it: `bao kv undelete -mount={mount} -versions={version} {key}` "
            "(or `vault kv undelete ...`), then rerun; writing new values instead would "
            "replace every value that readers use")

    @bounded
    def recover(self, key: str) -> str:
        """Undelete the soft-deleted current version of `key`; returns that version."""
        _check_key(key)
        meta = self._call("recover", key, lambda: self._client.adapter.get(
            self._url("metadata", key)), url_kind="metadata")
        data = (meta or {}).get("data") or {}
        current = str(data.get("current_version") or "")
        info = (data.get("versions") or {}).get(current) or {}
        if not current or info.get("destroyed") or not info.get("deletion_time"):
            raise self._err(NotFoundError, "the current version is not soft-deleted", key)
        self._call("recover", key, lambda: self._client.adapter.post(
            self._url("undelete", key), json={"versions": [int(current)]}),
            caps="update", url_kind="undelete")
        return current

    @bounded
    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        import hvac.exceptions as hx

        _check_key(key)
        if expected_version is None:
            cas = 0
        elif expected_version.isdigit() and int(expected_version) > 0:
            cas = int(expected_version)
        else:
            raise self._err(ConflictError, f"expected version {expected_version!r} is not a "
                            "version of this object", key, hint="read it again and retry")
        self._check_mount(key)
        body = {"options": {"cas": cas},
                "data": {k: v.reveal() for k, v in values.items()}}
        conflict = object()

        def on_error(exc: Exception) -> Any:
            if isinstance(exc, hx.InvalidRequest) and CAS_MISMATCH in _errors_text(exc):
                return conflict
            return None

        result = self._call("write", key, lambda: self._client.adapter.post(
            self._url("data", key), json=body), on_error=on_error,
            caps="create, update" if cas else "create", redact=values.values())
        if result is conflict:
            # A retried request whose first attempt did land (the response was lost)
            # conflicts with itself: the object then holds exactly what we sent.
            current = self.read(key)
            if current is not None and current.version == str(cas + 1) \
                    and dict(current.values) == dict(values):
                return current.version
            now = current.version if current is not None else "none"
            raise self._err(ConflictError,
                            f"changed since it was read (now version {now}, expected "
                            f"{expected_version or 'none'})", key,
                            hint="read it again and retry")
        try:
            return str(result["data"]["version"])
        except (KeyError, TypeError):
            raise self._err(IntegrityError, "the write response carries no version", key,
                            hint=f"check that {self.mount}/ is a KV v2 mount") from None

    @bounded
    def list_objects(self, prefix: str = "") -> list[str]:
        import hvac.exceptions as hx

        prefix = prefix.lstrip("/")
        folder, _, partial = prefix.rpartition("/")
        found: list[str] = []
        pending = [(folder, partial)]

        def on_error(exc: Exception) -> Any:
            if isinstance(exc, hx.InvalidPath) and "no handler for route" not in \
                    _errors_text(exc):
                return {"data": {"keys": []}}
            return None

        while pending:
            folder, partial = pending.pop()
            body = self._call("list", folder or None, functools.partial(
                self._client.adapter.list, self._url("metadata", folder)),
                on_error=on_error, caps="list", url_kind="metadata")
            keys = ((body or {}).get("data") or {}).get("keys") or []
            for name in keys:
                if not isinstance(name, str) or not name.startswith(partial):
                    continue
                full = f"{folder}/{name}" if folder else name
                if name.endswith("/"):
                    pending.append((full.rstrip("/"), ""))
                else:
                    found.append(full)
        return sorted(found)

    @bounded
    def history(self, key: str) -> list[VersionInfo]:
        import hvac.exceptions as hx

        _check_key(key)
        missing = object()

        def on_error(exc: Exception) -> Any:
            if isinstance(exc, hx.InvalidPath) and "no handler for route" not in \
                    _errors_text(exc):
                return missing
            return None

        body = self._call("history", key, lambda: self._client.adapter.get(
            self._url("metadata", key)), on_error=on_error, url_kind="metadata")
        if body is missing:
            return []
        data = body.get("data") or {}
        current = str(data.get("current_version") or "")
        now = datetime.now(UTC)
        out: list[VersionInfo] = []
        for number, info in sorted((data.get("versions") or {}).items(),
                                   key=lambda item: int(item[0])):
            info = info or {}
            labels: list[str] = []
            deleted_at = _parse_time(info.get("deletion_time"))
            if info.get("destroyed"):
                labels.append("destroyed")
            elif deleted_at is not None:
                labels.append("deleted" if deleted_at <= now else "expires")
            out.append(VersionInfo(str(number), _parse_time(info.get("created_time")),
                                   str(number) == current, tuple(labels)))
        return out

    @bounded
    def health(self) -> Health:
        import hvac.exceptions as hx

        # sys/health is unauthenticated and refused inside a namespace: ask the root.
        def status() -> Any:
            response = self._session.get(
                f"{self.address}/v1/sys/health",
                params={"standbyok": "true", "perfstandbyok": "true", "sealedcode": "200",
                        "uninitcode": "200"},
                timeout=self.retry.timeout, verify=self._verify, cert=self._cert)
            if response.status_code >= 500:
                from hvac.utils import raise_for_error

                raise_for_error("get", "sys/health", response.status_code, "health")
            return response.json()

        try:
            info = self._call("health", None, status)
        except StoreError as exc:
            return Health(False, str(exc))
        if not isinstance(info, dict):
            return Health(False, f"{self.address}: sys/health did not answer JSON")
        server = f"{self.address} (version {info.get('version', '?')})"
        if not info.get("initialized", False):
            return Health(False, f"{server} is not initialized")
        if info.get("sealed", True):
            return Health(False, f"{server} is sealed: unseal it (`bao operator unseal`)")
        def refused(exc: Exception) -> Any:
            return exc if isinstance(exc, (hx.Forbidden, hx.Unauthorized)) else None

        try:
            who = self._call("token lookup", None, lambda: self._client.adapter.get(
                "/v1/auth/token/lookup-self"), on_error=refused)
        except StoreError as exc:
            return Health(False, str(exc))
        if isinstance(who, hx.VaultError):
            return Health(False, f"{server}: the token from {self._token_source} was "
                          f"refused (invalid or expired). {LOGIN_HINT}")
        data = who.get("data") or {}
        ttl = data.get("ttl")
        expiry = "never expires" if not ttl else f"expires in {int(ttl) // 60} min"
        policies = ", ".join(data.get("policies") or []) or "none"
        token = f"token '{data.get('display_name', '?')}' ({policies}; {expiry})"

        def on_error(exc: Exception) -> Any:
            return exc if isinstance(exc, hx.VaultError) and not _is_transient(exc) else None

        try:
            mount = self._call("check mount", None, lambda: self._client.adapter.get(
                f"/v1/sys/internal/ui/mounts/{quote(self.mount, safe='/')}"), on_error=on_error)
        except StoreError as exc:
            return Health(False, f"{server}, {token}: {exc}")
        if isinstance(mount, hx.VaultError):
            reason = ("is not mounted, or the token has no access to it"
                      if isinstance(mount, hx.Forbidden) else "is not mounted")
            return Health(False, f"{server}, {token}: {self.mount}/ {reason}")
        options = (mount.get("data") or {}).get("options") or {}
        if str(options.get("version") or "1") != "2":
            return Health(False, f"{server}, {token}: mount {self.mount}/ is not KV v2")
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return Health(True, f"{server} unsealed, {token}, KV v2 at {self.mount}/{where}")
