"""The tool's own connection to Vault / OpenBao, shared by the store and by `setup`.

Address, namespace, TLS and credentials come from the environment as the `vault` and
`bao` CLIs read them (docs/stores.md, "Vault / OpenBao"); the login (AppRole,
Kubernetes) happens at the first request; every request runs through `call`: bounded
retries under the operation's deadline (stores/retry.py), failures translated by
`errors.Translator`, the principal looked up to name who was denied. hvac is imported
only when a connection is made.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from deparrow_secrets.deps import require
from deparrow_secrets.errors import (
    AccessDeniedError,
    ConfigError,
    DeparrowError,
    InputError,
    StoreError,
)
from deparrow_secrets.providers.vault.errors import (
    LOGIN_HINT,
    PROVIDER,
    Request,
    Translator,
    is_transient,
    throttled,
)
from deparrow_secrets.providers.vault.settings import settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import hvac
    import requests

    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
TOKEN_FILE = "~/.vault-token"
# Short timeout of the best-effort token lookup that names the principal in a denial.
LOOKUP_TIMEOUT = 2.0


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


# --------------------------------------------------------------------------- logins


@dataclass(frozen=True)
class AppRoleLogin:
    role_id: str
    secret_id: SecretValue
    mount: str = "approle"
    secret_field: ClassVar[str] = "secret_id"

    def describe(self) -> str:
        return f"AppRole login at auth/{self.mount}"

    def payload(self) -> dict[str, str]:
        return {"role_id": self.role_id, "secret_id": self.secret_id.reveal()}


@dataclass(frozen=True)
class KubernetesLogin:
    role: str
    mount: str = "kubernetes"
    jwt_path: str = K8S_TOKEN_PATH
    secret_field: ClassVar[str] = "jwt"

    def describe(self) -> str:
        return f"Kubernetes login at auth/{self.mount} with role {self.role}"

    def payload(self) -> dict[str, str]:
        try:
            jwt = Path(self.jwt_path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise AccessDeniedError(
                f"cannot read the service account token {self.jwt_path} "
                f"({type(exc).__name__})", provider=PROVIDER, hint=LOGIN_HINT) from None
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


# --------------------------------------------------------------------------- connection


class VaultConnection:
    """One logged-in hvac client over one requests session, with the retry policy and
    the error translator every request of the store and of `setup` goes through."""

    def __init__(
        self,
        address: str,
        *,
        token: SecretValue | str | None = None,
        login: Login | None = None,
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
        self.namespace = namespace.strip("/") if namespace else None
        self.environment = environment
        self.retry = retry or RetryPolicy.from_env()
        self.verify = verify
        self.cert = cert
        self.token_source = token_source or ("given token" if token else
                                             login.describe() if login else "none")
        self._token = SecretValue(token) if isinstance(token, str) else token
        self._login = login
        self._login_secret: SecretValue | None = None
        self._lock = threading.Lock()
        self.session = session or requests_mod.Session()
        self.client: hvac.Client = hvac_mod.Client(
            url=self.address,
            token=self._token.reveal() if self._token else "",
            namespace=self.namespace,
            verify=verify,
            cert=cert,
            timeout=self.retry.timeout,
            session=self.session,
        )
        self.errors = Translator(environment=environment, address=self.address,
                                 namespace=self.namespace, timeout=self.retry.timeout,
                                 token_source=self.token_source, principal=self.principal,
                                 credentials=self.credentials)

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> VaultConnection:
        """The connection of environment `env` with the tool's own credentials (the
        shell's VAULT_* / BAO_* first, then the configuration)."""
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
                environment=env.name, provider=PROVIDER, hint=LOGIN_HINT)
        return cls(
            address,
            token=token,
            login=login,
            namespace=_env("VAULT_NAMESPACE", "BAO_NAMESPACE") or cfg.vault_namespace,
            environment=env.name,
            verify=verify,
            cert=cert,
            retry=RetryPolicy.from_env(),
            token_source=source,
        )

    @classmethod
    def logged_in(cls, config: Config, env: EnvironmentConfig) -> VaultConnection:
        """`from_config`, logged in now (for administrative calls: setup, posture)."""
        connection = cls.from_config(config, env)
        try:
            connection.ensure_token()
        except BaseException:
            connection.close()
            raise
        return connection

    def __repr__(self) -> str:
        ns = f", namespace={self.namespace!r}" if self.namespace else ""
        return f"VaultConnection(address={self.address!r}{ns}, environment={self.environment!r})"

    def close(self) -> None:
        self.session.close()

    @property
    def waiting_for(self) -> str:
        return f"vault at {self.address}"

    def credentials(self) -> tuple[SecretValue, ...]:
        """What this connection authenticates with: masked wherever Vault's text is shown."""
        held = [self._token, self._login_secret]
        token = self.client.adapter.token
        if token:
            held.append(SecretValue(token))
        return tuple(value for value in held if value is not None)

    def ensure_token(self) -> None:
        """Log in (AppRole, Kubernetes) once, at the first request."""
        if self.client.adapter.token or self._login is None:
            return
        with self._lock:
            if self.client.adapter.token:
                return
            login = self._login
            payload = login.payload()
            self._login_secret = SecretValue(payload[login.secret_field])
            request = Request("login", target=f"auth/{login.mount}/login", caps="update")

            def attempt() -> Any:
                from urllib.parse import quote

                return self.client.adapter.post(f"/v1/auth/{quote(login.mount)}/login",
                                                json=payload)

            failure: StoreError | None = None
            try:
                response = call_with_retry(
                    attempt, is_transient, self.retry,
                    lambda exc, n: self.errors.give_up(request, exc, n),
                    throttled=throttled, waiting_for=self.waiting_for)
                token = response["auth"]["client_token"]
            except StoreError as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - translated, never chained
                failure = self.errors.login_failed(request, login.describe(), exc)
            if failure is not None:
                failure.__context__ = None
                raise failure
            self.client.adapter.token = token

    def call(self, request: Request, fn: Callable[[], T], *,
             on_error: Callable[[Exception], Any] | None = None) -> T:
        """Run one API request with retries; translate every failure into the tool's error.

        `on_error` may turn an SDK error into a result (return a value) or into the
        tool's error (return a DeparrowError); returning None leaves it to the translator.
        """
        self.ensure_token()
        failure: DeparrowError
        try:
            return call_with_retry(fn, is_transient, self.retry,
                                   lambda exc, n: self.errors.give_up(request, exc, n),
                                   throttled=throttled, waiting_for=self.waiting_for)
        except StoreError as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - translated below, never chained
            result = on_error(exc) if on_error is not None else None
            if isinstance(result, DeparrowError):
                failure = result
            elif result is not None:
                return result
            else:
                failure = self.errors.translate(request, exc)
        failure.__context__ = None
        failure.__cause__ = None
        raise failure

    # ------------------------------------------------------------------ administrative calls

    def api(self, method: str, op: str, path: str, body: dict[str, Any] | None = None, *,
            caps: str = "read", redact: Iterable[SecretValue] = (), missing_ok: bool = False,
            on_error: Callable[[Exception], Any] | None = None) -> Any:
        """`method /v1/<path>` (with `body` as JSON) through `call`; None for a missing
        path when `missing_ok`. `redact`: credentials in `body`."""
        import hvac.exceptions as hx

        missing = object()

        def handle(exc: Exception) -> Any:
            result = on_error(exc) if on_error is not None else None
            if result is None and missing_ok and isinstance(exc, hx.InvalidPath):
                return missing
            return result

        adapter = self.client.adapter
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        result = self.call(Request(op, target=path, remote_key=path, caps=caps,
                                   redact=tuple(redact)),
                           lambda: adapter.request(method.lower(), f"/v1/{path}", **kwargs),
                           on_error=handle)
        return None if result is missing else result

    def get(self, op: str, path: str, missing_ok: bool = True) -> dict[str, Any] | None:
        result = self.api("GET", op, path, missing_ok=missing_ok)
        return result if isinstance(result, dict) else None

    def write(self, op: str, path: str, body: dict[str, Any], caps: str = "create, update",
              redact: Iterable[SecretValue] = ()) -> None:
        self.api("POST", op, path, body, caps=caps, redact=redact)

    def principal(self) -> str:
        """Display name and policies of the token, if it may look itself up; never the token."""
        try:
            info = self.client.adapter.get("/v1/auth/token/lookup-self",
                                           timeout=min(LOOKUP_TIMEOUT, self.retry.timeout))
            data = info["data"]
        except Exception:  # noqa: BLE001 - best effort
            return "the token could not look itself up: it may be invalid or expired"
        name = data.get("display_name") or "unnamed token"
        policies = ", ".join(str(p) for p in data.get("policies") or []) or "none"
        return f"token '{name}' with policies: {policies}"
