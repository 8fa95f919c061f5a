"""The one translator of azure-core exceptions into the project's errors, with hints.

What is transient (retried within the time bound) and what is throttling is decided here
too. A message never quotes the service's text beyond the principal (`appid=...;oid=...`)
and the missing permission it names: the service's messages can quote requests. azure-core
is imported only when an exception is being looked at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deparrow_secrets.errors import (
    AccessDeniedError,
    IntegrityError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
    StoreUnavailableError,
)
from deparrow_secrets.providers.azure.settings import URL_ENV, vault_name
from deparrow_secrets.stores.retry import CallTimeout, RetryPolicy, Throttled

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RECOVERING = "ObjectIsBeingRecovered"  # 409 on writes while a recovery finishes
SECRET_DISABLED = "SecretDisabled"


class SecretSoftDeletedError(SoftDeletedError):
    """The secret name is soft-deleted: it must be recovered (or purged) before reuse."""


def error_code(exc: Any) -> str:
    """The innermost Key Vault error code (e.g. SecretDisabled, ObjectIsDeletedButRecoverable)."""
    error = getattr(exc, "error", None)
    if error is None:
        return ""
    inner = getattr(error, "innererror", None) or {}
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code or getattr(error, "code", "") or "")


def _service_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "message", "") or "")


def principal(message: str) -> str:
    """`appid=...;oid=...` from a Key Vault 403 message, nothing else of it."""
    appid = re.search(r"\bappid=([0-9A-Za-z-]{1,64})", message)
    oid = re.search(r"\boid=([0-9A-Za-z-]{1,64})", message)
    return ";".join(p for p in (appid and f"appid={appid.group(1)}",
                                oid and f"oid={oid.group(1)}") if p)


def missing_permission(message: str) -> str:
    perm = re.search(r"does not have secrets ([a-z]{1,20}) permission", message)
    if perm:
        return f"secrets {perm.group(1)} permission"
    action = re.search(r"Action: '(Microsoft\.KeyVault/vaults/[A-Za-z/]{1,80})'", message)
    return f"RBAC action {action.group(1)}" if action else ""


def _is_tls_failure(exc: BaseException) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSLCertVerificationError" in text


def _is_soft_deleted(code: str, message: str) -> bool:
    return code in ("ObjectIsDeletedButRecoverable", "ObjectIsBeingDeleted") or (
        "deleted but recoverable" in message or "being deleted" in message)


def is_secret_disabled(exc: BaseException) -> bool:
    """A 403 because the version asked for is disabled (Key Vault refuses to read it)."""
    from azure.core.exceptions import HttpResponseError

    return (isinstance(exc, HttpResponseError) and exc.status_code == 403
            and error_code(exc) == SECRET_DISABLED)


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt within the time bound: connection faults (not TLS), 408,
    429, 5xx, and 409 ObjectIsBeingRecovered (writes right after a recovery)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return not _is_tls_failure(exc)
    if isinstance(exc, ClientAuthenticationError):
        return False
    if isinstance(exc, HttpResponseError) and exc.status_code == 409:
        return error_code(exc) == RECOVERING
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUS


def throttled(exc: BaseException) -> Throttled | None:
    """A 429, with the Retry-After it carries if any (Key Vault's may carry none)."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(exc, HttpResponseError) or exc.status_code != 429:
        return None
    headers = getattr(exc.response, "headers", None) or {}
    raw = headers.get("Retry-After")
    try:
        return Throttled(float(raw)) if raw else Throttled()
    except ValueError:
        return Throttled()


@dataclass(frozen=True)
class KeyVaultErrors:
    """Errors about one vault, as seen by one environment's store."""

    vault_url: str
    environment: str
    policy: RetryPolicy
    provider: str = "azure"

    @property
    def vault_name(self) -> str:
        return vault_name(self.vault_url)

    def error(self, cls: type[StoreError], message: str, key: str | None = None,
              hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

    def where(self, key: str | None) -> str:
        return f"Key Vault {self.vault_url}" + (f", secret {key}" if key else "")

    def give_up(self, key: str | None) -> Callable[[BaseException, int], BaseException]:
        """What the retry loop raises when a transient fault outlasts the attempts or time."""
        def give_up(exc: BaseException, attempts: int) -> BaseException:
            from azure.core.exceptions import HttpResponseError, ServiceResponseTimeoutError

            status = exc.status_code if isinstance(exc, HttpResponseError) else None
            if status == 429:
                reason = "throttled (429 Too Many Requests)"
                hint = ("Key Vault limits requests per vault; wait a minute and retry, and "
                        "check what else is calling this vault")
            else:
                if status is not None:
                    reason = f"answered {status} {error_code(exc)}".rstrip()
                elif isinstance(exc, CallTimeout):
                    reason = f"sent no complete answer within {exc.seconds:g} s (timed out)"
                elif isinstance(exc, ServiceResponseTimeoutError) or "timed out" in str(exc):
                    reason = f"timed out after {self.policy.timeout:g} s"
                else:
                    reason = "could not be reached (connection failed)"
                hint = (f"check the vault URL (${URL_ENV} or vaultUrl), that this machine can "
                        "reach it (network, firewall, private endpoint, proxy, "
                        "REQUESTS_CA_BUNDLE for TLS) and the Azure status page; "
                        "DEPARROW_SECRETS_TIMEOUT and DEPARROW_SECRETS_RETRIES raise the limits")
            return self.error(StoreUnavailableError,
                              f"{self.where(key)} {reason}; gave up after {attempts} attempts",
                              key, hint)

        return give_up

    def translate(self, exc: BaseException, key: str | None, doing: str) -> StoreError:
        """One of our errors for an SDK exception; never quotes a request or a value."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        if isinstance(exc, ClientAuthenticationError):
            answered = f" ({exc.status_code})" if exc.status_code else ""
            return self.error(
                AccessDeniedError,
                f"access denied: authentication to {self.where(key)} failed{answered}: the "
                "credential was refused or could not get a token", key,
                hint="sign in with `az login` (and `az account set` to the vault's "
                "subscription), or for a service principal / workload identity check "
                "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or "
                "AZURE_FEDERATED_TOKEN_FILE")
        if _is_tls_failure(exc):
            return self.error(
                StoreUnavailableError,
                f"{self.where(key)}: the server's TLS certificate is not trusted", key,
                hint="if the vault sits behind a TLS-inspecting proxy or is an emulator, point "
                "REQUESTS_CA_BUNDLE at the CA certificate (PEM); never disable verification")
        if isinstance(exc, ValueError) and "challenge" in str(exc).lower():
            return self.error(
                AccessDeniedError,
                f"access denied: {self.where(key)} sent an authentication challenge for "
                "another domain; no token was sent", key,
                hint=f"check the vault URL (${URL_ENV} or vaultUrl)")
        if not isinstance(exc, HttpResponseError):
            return self.error(StoreError, f"{self.where(key)}: {doing} failed "
                              f"({type(exc).__name__})", key)
        status = exc.status_code
        code = error_code(exc)
        message = _service_message(exc)
        if status == 403 and (code == SECRET_DISABLED or "disabled secret" in message):
            return self.error(
                IntegrityError, f"{self.where(key)}: this version is disabled and cannot "
                "be read (ESO cannot read it either)", key,
                hint="enable it (az keyvault secret set-attributes --enabled true --id ...) "
                "or write a new version")
        if status == 403:
            who = principal(message)
            missing = missing_permission(message)
            return self.error(
                AccessDeniedError,
                f"access denied to {doing} on {self.where(key)}"
                + (f" for principal {who}" if who else "")
                + (f" (missing {missing})" if missing else ""), key,
                hint="grant the principal the 'Key Vault Secrets Officer' role on the vault "
                "(RBAC vaults) or secret permissions get, list, set, recover in its access "
                "policy; role assignments take a few minutes to apply")
        if status == 409 and _is_soft_deleted(code, message):
            return self.soft_deleted(key)
        if status == 404:
            return self.error(NotFoundError, f"{self.where(key)}: not found", key)
        return self.error(StoreError, f"{self.where(key)}: {doing} failed: Key Vault "
                          f"answered {status} {code}".rstrip(), key)

    def soft_deleted(self, key: str | None) -> StoreError:
        return self.error(
            SecretSoftDeletedError,
            f"secret {key} is soft-deleted in {self.vault_url}: its name cannot be reused "
            "until it is recovered (nothing was written, nothing was purged)", key,
            hint=f"az keyvault secret recover --vault-name {self.vault_name} --name {key}, "
            "or rerun `provision` with --recover-deleted; purging instead destroys "
            "its history")
