"""Vault's answers as the tool's errors: the one translator of hvac and requests
exceptions into StoreError subclasses, shared by the store and by `setup`.

A message is the tool's own summary (what was asked, the HTTP status, who asked, a
hint). Vault's own error strings appear only where the tool has no summary of its own,
on one printable line, shortened, with every credential of the connection masked, and
never for a request whose body carried secret values: Vault may echo a request, and
a value it has quoted or escaped is no longer recognisable. hvac is imported on use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from deparrow_secrets.errors import AccessDeniedError, StoreError, StoreUnavailableError
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.retry import CallTimeout, Throttled

PROVIDER = "vault"
LOGIN_HINT = ("set VAULT_TOKEN, or run `bao login` / `vault login` (which writes "
              "~/.vault-token), or set VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole")
NO_ROUTE = "no handler for route"
WITHHELD = "Vault's own message is not shown: the request carried secret values"
TEXT_LIMIT = 200
# A credential is masked by exact match only when quoting or escaping cannot change how
# Vault would echo it, and when it is long enough not to match ordinary words.
_VERBATIM = re.compile(r"[A-Za-z0-9._~+/=:-]{8,}")

STATUS = {"InvalidRequest": 400, "Unauthorized": 401, "Forbidden": 403, "InvalidPath": 404,
          "RateLimitExceeded": 429, "InternalServerError": 500, "VaultNotInitialized": 501,
          "BadGateway": 502, "VaultDown": 503}


def is_transient(exc: BaseException) -> bool:
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a wrong CA does not fix itself
    if isinstance(exc, (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return True
    return isinstance(exc, (hx.VaultDown, hx.InternalServerError, hx.BadGateway,
                            hx.RateLimitExceeded))


def throttled(exc: BaseException) -> Throttled | None:
    import hvac.exceptions as hx

    return Throttled() if isinstance(exc, hx.RateLimitExceeded) else None


def vault_text(exc: BaseException) -> str:
    """Vault's error strings as it sent them: for recognising an answer, never output."""
    errors: Any = getattr(exc, "errors", None)
    if isinstance(errors, str):
        errors = [errors]
    if not isinstance(errors, list | tuple):
        return ""
    return "; ".join(str(e) for e in errors if e)


def shown_text(exc: BaseException, redact: Iterable[SecretValue] = (),
               carries_values: bool = False) -> str:
    """Vault's error strings as a message may carry them ("" when none may be shown,
    `WITHHELD` when the request carried secrets that could not be masked)."""
    text = vault_text(exc)
    if not text:
        return ""
    secrets = [revealed for value in redact if (revealed := value.reveal())]
    if carries_values or any(not _VERBATIM.fullmatch(s) for s in secrets):
        return WITHHELD
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.replace("*", " ").split())
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return text[:TEXT_LIMIT]


def status_of(exc: BaseException) -> int | None:
    return STATUS.get(type(exc).__name__)


@dataclass(frozen=True)
class Request:
    """One API request, as its error messages name it."""

    op: str
    """What the tool was doing: "read", "write policy"."""
    target: str | None = None
    """The API path asked, without /v1/ (what an access denial names)."""
    remote_key: str | None = None
    """What the message's prefix names (the store's object, or the API path)."""
    caps: str = "read"
    """The capabilities the request needs (what a denial's hint asks for)."""
    redact: tuple[SecretValue, ...] = ()
    """Credentials in the request body, masked wherever Vault's text is shown."""
    carries_values: bool = False
    """The body holds secret values: none of Vault's own text is shown."""


class Translator:
    """StoreErrors of one connection: its environment, address, namespace, the source
    of its credentials, and the principal it asks as (looked up only for a denial)."""

    def __init__(self, *, environment: str, address: str, namespace: str | None,
                 timeout: float, token_source: str, principal: Callable[[], str],
                 credentials: Callable[[], tuple[SecretValue, ...]]) -> None:
        self.environment = environment
        self.address = address
        self.timeout = timeout
        self.namespace = namespace
        self.token_source = token_source
        self._principal = principal
        self._credentials = credentials

    def error(self, cls: type[StoreError], message: str, remote_key: str | None = None,
              hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=PROVIDER,
                   remote_key=remote_key, hint=hint)

    def _shown(self, exc: BaseException, request: Request) -> str:
        return shown_text(exc, (*self._credentials(), *request.redact), request.carries_values)

    def give_up(self, request: Request, exc: BaseException, attempts: int) -> StoreError:
        """The retries ran out (or the deadline passed) on a transient failure."""
        import hvac.exceptions as hx
        import requests

        hint = f"check VAULT_ADDR={self.address} is reachable and unsealed"
        if isinstance(exc, CallTimeout):
            reason = f"no complete answer within {exc.seconds:g}s (timed out)"
            hint += "; raise DEPARROW_SECRETS_TIMEOUT if it is only slow"
        elif isinstance(exc, requests.Timeout):
            reason = f"timed out (limit {self.timeout:g}s per operation)"
            hint += "; raise DEPARROW_SECRETS_TIMEOUT if it is only slow"
        elif isinstance(exc, requests.ConnectionError):
            reason = "could not connect (connection refused, reset or closed)"
        elif isinstance(exc, hx.VaultDown) and "sealed" in vault_text(exc).lower():
            reason = "the server is sealed (HTTP 503)"
            hint = (f"unseal the server at {self.address} (`bao operator unseal` / "
                    "`vault operator unseal`), then retry")
        elif isinstance(exc, hx.RateLimitExceeded):
            reason = "rate limited (HTTP 429)"
            hint = "wait and retry, or raise DEPARROW_SECRETS_RETRIES"
        elif isinstance(exc, hx.VaultError):
            reason = f"server error (HTTP {status_of(exc) or '5xx'})"
            text = self._shown(exc, request)
            if text:
                reason += f": {text}"
        else:
            reason = type(exc).__name__
        return self.error(StoreUnavailableError, f"{request.op} failed after {attempts} "
                          f"attempt(s): {reason}", request.remote_key, hint)

    def translate(self, request: Request, exc: Exception) -> StoreError:
        """A failure that is not retried (or not any more) as the tool's error."""
        import hvac.exceptions as hx
        import requests

        if isinstance(exc, (hx.Forbidden, hx.Unauthorized)):
            return self.denied(request)
        if isinstance(exc, requests.exceptions.SSLError):
            return self.error(StoreUnavailableError, f"{request.op} failed: TLS "
                              f"verification of {self.address} failed", request.remote_key,
                              "set VAULT_CACERT to the CA bundle that signed the server "
                              "certificate (VAULT_SKIP_VERIFY=true only for testing)")
        raw = vault_text(exc).lower()
        if isinstance(exc, hx.VaultNotInitialized):
            return self.error(StoreUnavailableError, f"{request.op} failed: the server is "
                              "not initialized", request.remote_key,
                              "initialize it: `bao operator init`")
        if isinstance(exc, hx.InvalidRequest) and "high complexity" in raw:
            return self.error(StoreError, f"{request.op} failed: the server refuses a "
                              "request with this many properties in one object (HTTP 400)",
                              request.remote_key, "raise `max_request_json_strings` (and "
                              "`max_request_json_memory`) on the server's listener; each "
                              "key counts twice")
        if isinstance(exc, hx.VaultError):
            text = self._shown(exc, request)
            return self.error(StoreError, f"{request.op} failed: HTTP "
                              f"{status_of(exc) or 'unexpected status'}"
                              + (f": {text}" if text else ""), request.remote_key)
        if isinstance(exc, requests.RequestException):
            return self.error(StoreUnavailableError,
                              f"{request.op} failed: {type(exc).__name__}", request.remote_key,
                              f"check VAULT_ADDR={self.address}")
        return self.error(StoreError, f"{request.op} failed: {type(exc).__name__}",
                          request.remote_key)

    def denied(self, request: Request, note: str = "") -> AccessDeniedError:
        """Access denied to the request's target, naming the principal (never the token)
        and the capabilities its policies must grant."""
        target = request.target or "the requested path"
        message = f"access denied to {target}"
        if self.namespace:
            message += f" in namespace {self.namespace}"
        message += f" ({self._principal()})" + (f" ({note})" if note else "")
        hint = (f"the token's policies must grant [{request.caps}] on {target} (credentials "
                f"came from {self.token_source}); to use other credentials: {LOGIN_HINT}")
        return AccessDeniedError(message, environment=self.environment, provider=PROVIDER,
                                 remote_key=request.remote_key, hint=hint)

    def login_failed(self, request: Request, description: str, exc: Exception) -> StoreError:
        """A login (AppRole, Kubernetes) refused: access denied, with how to log in."""
        import hvac.exceptions as hx
        import requests

        if isinstance(exc, requests.RequestException):
            return self.translate(request, exc)
        status = status_of(exc) if isinstance(exc, hx.VaultError) else None
        detail = f"HTTP {status}" if status else type(exc).__name__
        text = self._shown(exc, request)
        if text:
            detail += f": {text}"
        return self.error(AccessDeniedError, f"access denied: {description} failed "
                          f"({detail})", hint=LOGIN_HINT)
