"""Azure Key Vault: one Key Vault secret per catalog key, through azure-keyvault-secrets.

Layout: every remote object is one Key Vault secret whose name the layout module derives
from the catalog key (`DEPARROW_JWT_SECRET` -> `DEPARROW-JWT-SECRET`); its only property
is `WHOLE`. Names outside `[0-9a-zA-Z-]{1,127}` are refused before any call.

Connection: `AzureStore.from_config` takes the vault URL from `$AZURE_KEYVAULT_URL` (for
the tool only; it overrides `vaultUrl`, which stays what ESO uses in the cluster) and the
credential from `DefaultAzureCredential()` (environment service principal, workload
identity, managed identity, `az login`, ...). TLS trust follows azure-core: the standard
`REQUESTS_CA_BUNDLE` is honoured; `connection_verify=` passes a CA file or False.
The SDK's own retries are turned off (`retry_total=0`): transient faults (429, 408, 5xx,
409 ObjectIsBeingRecovered, connection errors) are retried by `call_with_retry` within
the operation's time bound (429 after its Retry-After, else 1, 2, 4, 8, 16 s), then
reported as one StoreUnavailableError. 403 is AccessDeniedError
naming the principal (`appid=...;oid=...`, nothing else of the service message); 401 after
the challenge, or a credential that cannot get a token, is AccessDeniedError with an
`az login` / workload identity hint. The challenge's resource is checked against the
vault's domain (the SDK's check, off only for the fake's loopback address) and tokens are
requested for Key Vault's resource only. SDK exceptions are never chained (`from None`):
their text can quote requests.

Versions are Key Vault's (32 hex digits). `read(key)` is `get_secret(name)`: the latest
version, which is what ESO reads (if that version is disabled, Key Vault refuses to read
it and so do we, with IntegrityError). `history` orders versions by `created_on` (1 s
resolution in Key Vault), breaking ties with the chain tags below and the service's own
"latest" pointer; the listing order of the service is not used (it is sorted by version
id, not by time).

Check-and-set. Key Vault has no conditional write (no ETag/If-Match on secrets), so
`write` runs an optimistic protocol: tags chain every version to the one it replaced
(`deparrow-previous`) and name its write (`deparrow-write`); after its PUT a writer waits
until its own version shows in reads (Key Vault documents no read-your-writes guarantee;
the tolerated lag is READ_LAG_TOLERANCE seconds within the call's time bound, beyond it
UncertainWriteError), then decides from the listing whether it came first after the
version it read; a winner tags itself `deparrow-committed`, a loser whose value became
current writes the winner's value back (`deparrow-restores`). At most one writer of a
race returns a version, and its value is current when the racers are done. The protocol,
its proof sketch, costs and remaining windows are in docs/stores.md.

Soft delete: writing a name that is soft-deleted fails in Key Vault (409
ObjectIsDeletedButRecoverable); we raise SecretSoftDeletedError (a SoftDeletedError: the
store is in a state that needs a decision) with the `az keyvault secret recover` hint,
and never purge or recreate silently. `recover(key)` recovers it (bounded wait; writes
answered 409 ObjectIsBeingRecovered right after it are retried); `deleted()` names the
soft-deleted secrets; `list()` does not include them.

Tests run the real SDK against `tests/fakes/azure_keyvault.py`, an in-process HTTPS fake
of the Key Vault secrets REST API as strict as the service where the store depends on it
(read lag, 429 without Retry-After, ObjectIsBeingRecovered, tag and size limits, short
pages, certificate-backed secrets); docs/stores.md says what it does not model.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

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
    UncertainWriteError,
)
from deparrow_secrets.providers.azure.settings import SECRET_NAME, settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE, Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import (
    CallTimeout,
    RetryPolicy,
    Throttled,
    bounded,
    call_with_retry,
    remaining,
)

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

URL_ENV = "AZURE_KEYVAULT_URL"
TAG_PREVIOUS = "deparrow-previous"
TAG_WRITE = "deparrow-write"
TAG_RESTORES = "deparrow-restores"
TAG_COMMITTED = "deparrow-committed"
NO_PREVIOUS = "none"
VERSION = re.compile(r"[0-9a-f]{32}")
# Key Vault data-plane DNS suffixes of the public and sovereign clouds.
_VAULT_DOMAINS = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
                  ".vault.microsoftazure.de", ".managedhsm.azure.net")
# The test fake's own addresses: only there may the SDK skip checking that the challenge
# names the vault's domain (a name such as `localhost` can be answered by anything).
_LOOPBACK = ("127.0.0.1", "::1", "[::1]")
# Resources a Key Vault challenge may name; a token is never requested for anything else.
_KEY_VAULT_RESOURCES = frozenset(d.lstrip(".") for d in _VAULT_DOMAINS)
MAX_VALUE_BYTES = 25 * 1024  # Key Vault's limit on a secret value
READ_LAG_TOLERANCE = 5.0
"""Seconds a write waits for its own new version to show in reads (see the docstring)."""
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_TAGS = 15  # Key Vault limit per secret version
_RECOVERING = "ObjectIsBeingRecovered"

_LABEL_LOSER = "conflict-loser"
_LABEL_RESTORE = "restore"
_LABEL_DISABLED = "disabled"


class SecretSoftDeletedError(SoftDeletedError):
    """The secret name is soft-deleted: it must be recovered (or purged) before reuse."""


class _KeyVaultTokensOnly:
    """The credential as the SDK sees it: it hands out tokens for Key Vault's own resource
    only, so a server that challenges for another audience (Azure Resource Manager, Graph,
    ...) gets no token, whatever its address."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    @staticmethod
    def _check(scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            resource = (urlsplit(scope).hostname or "").lower()
            if resource not in _KEY_VAULT_RESOURCES:
                raise ValueError("the challenge names another domain than Key Vault's")

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self._check(scopes)
        return self._credential.get_token(*scopes, **kwargs)

    def close(self) -> None:
        """The store closes the credential it owns itself."""


class _KeyVaultTokenInfoOnly(_KeyVaultTokensOnly):
    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        self._check(scopes)
        return self._credential.get_token_info(*scopes, options=options)


def _default_credential() -> Any:
    """The tool's credential: DefaultAzureCredential (tests monkeypatch this function)."""
    identity = require("azure.identity", "azure")
    return identity.DefaultAzureCredential()


@dataclass(frozen=True)
class _Version:
    """Metadata of one version as listed (never its value)."""

    id: str
    created: int  # unix seconds, Key Vault's resolution
    created_on: datetime | None
    enabled: bool
    tags: Mapping[str, str]

    @property
    def previous(self) -> str | None:
        return self.tags.get(TAG_PREVIOUS)

    @property
    def write(self) -> str | None:
        return self.tags.get(TAG_WRITE)

    @property
    def restores(self) -> str | None:
        return self.tags.get(TAG_RESTORES)

    @property
    def committed(self) -> bool:
        return self.tags.get(TAG_COMMITTED) == "true"


def _version_of(props: Any) -> _Version:
    created_on = props.created_on
    return _Version(
        id=str(props.version), created=int(created_on.timestamp()) if created_on else 0,
        created_on=created_on, enabled=props.enabled is not False, tags=dict(props.tags or {}))


def _foreign_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags someone else put on a version (kept on the next one), within Key Vault's limit."""
    kept = [(k, v) for k, v in tags.items() if not k.startswith("deparrow-")]
    return dict(kept[: _MAX_TAGS - 4])


def _competes(v: _Version, token: str) -> bool:
    """Whether `v` is a candidate to be the first write after the version `token`."""
    return v.write is None or (v.previous == token and v.restores is None)


def _descends(vid: str | None, mine: set[str], listed: Mapping[str, _Version],
              nodes: set[str]) -> bool:
    """Whether `vid` is one of `mine` or a write chained (by previous tags) from one."""
    seen: set[str] = set()
    while vid and vid not in seen:
        if vid in mine:
            return True
        if vid not in nodes or vid not in listed or listed[vid].restores:
            return False
        seen.add(vid)
        vid = listed[vid].previous
    return False


def _round_winner(token: str, listed: Mapping[str, _Version], order: _Order,
                  nodes: set[str], mine: set[str]) -> str | None:
    """The first write after version `token` among `nodes`, if it can be told; not ours."""
    candidates = {k for k in nodes if _competes(listed[k], token)}
    if not candidates:
        return None
    committed = [k for k in candidates if listed[k].committed]
    if len(committed) == 1:
        found: str | None = committed[0]
    else:
        named = {listed[k].restores for k in nodes} & candidates
        found = named.pop() if len(named) == 1 else order.first(candidates)
    return None if found is None or found in mine else found


class _Order:
    """What can be proven about the creation order of some versions.

    a < b is proven by: a later created second; b's chain tags naming a (previous or
    restores); or b being the latest the service reported after a was listed.
    """

    def __init__(self, nodes: Iterable[_Version],
                 facts: Iterable[tuple[str, set[str]]] = ()) -> None:
        """`facts`: (latest, listed): `latest` was reported latest after `listed` was listed."""
        self.nodes = {v.id: v for v in nodes}
        succ: dict[str, set[str]] = {k: set() for k in self.nodes}
        for a in self.nodes.values():
            for b in self.nodes.values():
                if a.id != b.id and (a.created < b.created or a.id in (b.previous, b.restores)):
                    succ[a.id].add(b.id)
        for latest, listed in facts:
            if latest in succ:
                for earlier in listed & succ.keys():
                    if earlier != latest:
                        succ[earlier].add(latest)
        self._after: dict[str, set[str]] = {}
        for start in self.nodes:
            seen: set[str] = set()
            stack = list(succ[start])
            while stack:
                n = stack.pop()
                if n not in seen:
                    seen.add(n)
                    stack.extend(succ[n])
            self._after[start] = seen

    def before(self, a: str, b: str) -> bool:
        return a != b and b in self._after.get(a, set())

    def first(self, ids: Iterable[str]) -> str | None:
        """The one of `ids` proven to precede all the others, if any."""
        ids = list(ids)
        for a in ids:
            if all(self.before(a, b) for b in ids if b != a):
                return a
        return None


def _history_order(versions: list[_Version], latest: str | None) -> list[_Version]:
    """Oldest first: created second, then chain tags, then version id; `latest` last."""
    import heapq

    by_id = {v.id: v for v in versions}
    parents: dict[str, set[str]] = {v.id: set() for v in versions}
    for v in versions:
        for p in (v.previous, v.restores):
            if p in by_id and p != v.id:
                parents[v.id].add(p)
    if latest in by_id:
        parents[latest] |= {v.id for v in versions if v.id != latest}
    children: dict[str, set[str]] = {v.id: set() for v in versions}
    for child, ps in parents.items():
        for p in ps:
            children[p].add(child)
    waiting = {k: len(ps) for k, ps in parents.items()}
    heap = [(by_id[k].created, k) for k, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    out: list[_Version] = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(by_id[k])
        for c in children[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (by_id[c].created, c))
    if len(out) < len(versions):  # a tag cycle (hand-edited tags): fall back to time order
        done = {v.id for v in out}
        out += sorted((v for v in versions if v.id not in done), key=lambda v: (v.created, v.id))
    return out


class AzureStore(SecretStore):
    provider = "azure"
    single_value = True

    def __init__(
        self,
        vault_url: str,
        credential: Any,
        environment: str = "production",
        *,
        policy: RetryPolicy | None = None,
        connection_verify: str | bool | None = None,
        polling_interval: float = 1.0,
        recover_timeout: float = 60.0,
        read_lag_tolerance: float = READ_LAG_TOLERANCE,
        owns_credential: bool = False,
        **client_kwargs: Any,
    ) -> None:
        secrets_mod = require("azure.keyvault.secrets", "azure")
        self.vault_url = vault_url.rstrip("/")
        self.environment = environment
        self.policy = policy or RetryPolicy.from_env()
        self._polling_interval = polling_interval
        self._recover_timeout = recover_timeout
        self._read_lag_tolerance = read_lag_tolerance
        self._credential = credential
        self._owns_credential = owns_credential
        host = (urlsplit(self.vault_url).hostname or "").lower()
        kwargs: dict[str, Any] = {
            # Our retry loop decides; the SDK must not multiply it.
            "retry_total": 0,
            "connection_timeout": self.policy.timeout,
            "read_timeout": self.policy.timeout,
            # The challenge names vault.azure.net: only a loopback emulator or test fake
            # may skip checking it against the vault's own domain.
            "verify_challenge_resource": host not in _LOOPBACK,
        }
        if connection_verify is not None:
            kwargs["connection_verify"] = connection_verify
        kwargs.update(client_kwargs)
        guarded = (_KeyVaultTokenInfoOnly if hasattr(credential, "get_token_info")
                   else _KeyVaultTokensOnly)(credential)
        self._client = secrets_mod.SecretClient(self.vault_url, guarded, **kwargs)

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> AzureStore:
        url = os.environ.get(URL_ENV) or settings_of(env).vault_url
        if not url:
            raise ConfigError(f"environment {env.name}: the azure store needs a vault URL",
                              key_path=f"environments.{env.name}.store.vaultUrl",
                              hint=f"set vaultUrl in the configuration, or ${URL_ENV}")
        if not url.startswith("https://"):
            where = f"${URL_ENV}" if os.environ.get(URL_ENV) else \
                f"environments.{env.name}.store.vaultUrl"
            raise ConfigError(f"{where}: the Key Vault URL must start with https:// "
                              f"(got {url!r})", hint="Key Vault is only served over HTTPS")
        return cls(url, _default_credential(), environment=env.name, owns_credential=True)

    def __repr__(self) -> str:
        return f"AzureStore(vault_url={self.vault_url!r}, environment={self.environment!r})"

    # ------------------------------------------------------------------ errors

    @property
    def vault_name(self) -> str:
        host = urlsplit(self.vault_url).hostname or self.vault_url
        return host.split(".")[0] if any(host.endswith(d) for d in _VAULT_DOMAINS) else host

    def _err(self, cls: type[StoreError], message: str, key: str | None = None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
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
            # Writes right after a recovery: Key Vault still finishing it.
            return _error_code(exc) == _RECOVERING
        return isinstance(exc, HttpResponseError) and exc.status_code in _TRANSIENT_STATUS

    def _where(self, key: str | None) -> str:
        return f"Key Vault {self.vault_url}" + (f", secret {key}" if key else "")

    def _give_up(self, key: str | None) -> Callable[[BaseException, int], BaseException]:
        def give_up(exc: BaseException, attempts: int) -> BaseException:
            from azure.core.exceptions import HttpResponseError, ServiceResponseTimeoutError

            status = exc.status_code if isinstance(exc, HttpResponseError) else None
            if status == 429:
                reason = "throttled (429 Too Many Requests)"
                hint = ("Key Vault limits requests per vault; wait a minute and retry, and "
                        "check what else is calling this vault")
            else:
                if status is not None:
                    reason = f"answered {status} {_error_code(exc)}".rstrip()
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
            return self._err(StoreUnavailableError,
                             f"{self._where(key)} {reason}; gave up after {attempts} attempts",
                             key, hint)

        return give_up

    def _translate(self, exc: BaseException, key: str | None, doing: str) -> StoreError:
        """One of our errors for an SDK exception; never quotes a request or a value."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        if isinstance(exc, ClientAuthenticationError):
            answered = f" ({exc.status_code})" if exc.status_code else ""
            return self._err(
                AccessDeniedError,
                f"access denied: authentication to {self._where(key)} failed{answered}: the "
                "credential was refused or could not get a token", key,
                hint="sign in with `az login` (and `az account set` to the vault's "
                "subscription), or for a service principal / workload identity check "
                "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or "
                "AZURE_FEDERATED_TOKEN_FILE")
        if _is_tls_failure(exc):
            return self._err(
                StoreUnavailableError,
                f"{self._where(key)}: the server's TLS certificate is not trusted", key,
                hint="if the vault sits behind a TLS-inspecting proxy or is an emulator, point "
                "REQUESTS_CA_BUNDLE at the CA certificate (PEM); never disable verification")
        if isinstance(exc, ValueError) and "challenge" in str(exc).lower():
            return self._err(
                AccessDeniedError,
                f"access denied: {self._where(key)} sent an authentication challenge for "
                "another domain; no token was sent", key,
                hint=f"check the vault URL (${URL_ENV} or vaultUrl)")
        if not isinstance(exc, HttpResponseError):
            return self._err(StoreError, f"{self._where(key)}: {doing} failed "
                             f"({type(exc).__name__})", key)
        status = exc.status_code
        code = _error_code(exc)
        message = _service_message(exc)
        if status == 403 and (code == "SecretDisabled" or "disabled secret" in message):
            return self._err(
                IntegrityError, f"{self._where(key)}: this version is disabled and cannot "
                "be read (ESO cannot read it either)", key,
                hint="enable it (az keyvault secret set-attributes --enabled true --id ...) "
                "or write a new version")
        if status == 403:
            who = _principal(message)
            missing = _missing_permission(message)
            return self._err(
                AccessDeniedError,
                f"access denied to {doing} on {self._where(key)}"
                + (f" for principal {who}" if who else "")
                + (f" (missing {missing})" if missing else ""), key,
                hint="grant the principal the 'Key Vault Secrets Officer' role on the vault "
                "(RBAC vaults) or secret permissions get, list, set, recover in its access "
                "policy; role assignments take a few minutes to apply")
        if status == 409 and _is_soft_deleted(code, message):
            return self._soft_deleted(key)
        if status == 404:
            return self._err(NotFoundError, f"{self._where(key)}: not found", key)
        return self._err(StoreError, f"{self._where(key)}: {doing} failed: Key Vault "
                         f"answered {status} {code}".rstrip(), key)

    def _soft_deleted(self, key: str | None) -> StoreError:
        return self._err(
            SecretSoftDeletedError,
            f"secret {key} is soft-deleted in {self.vault_url}: its name cannot be reused "
            "until it is recovered (nothing was written, nothing was purged)", key,
            hint=f"az keyvault secret recover --vault-name {self.vault_name} --name {key}, "
            "or rerun `provision` with --recover-deleted; purging instead destroys "
            "its history")

    @staticmethod
    def _throttled(exc: BaseException) -> Throttled | None:
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

    def _call(self, fn: Callable[[], T], key: str | None, doing: str) -> T:
        try:
            return call_with_retry(fn, self._is_transient, self.policy, self._give_up(key),
                                   throttled=self._throttled,
                                   waiting_for=f"Key Vault at {self.vault_url}")
        except StoreError:
            raise
        except Exception as exc:
            from azure.core.exceptions import AzureError

            if isinstance(exc, (AzureError, ValueError)):
                raise self._translate(exc, key, doing) from None
            raise

    def _check_name(self, key: str) -> str:
        if not isinstance(key, str) or not SECRET_NAME.fullmatch(key):
            raise InputError(
                f"[environment {self.environment}, provider azure] {key!r} is not a Key Vault "
                "secret name (1-127 characters of 0-9, a-z, A-Z and -)",
                hint="the layout maps catalog keys to names with underscores as dashes")
        return key

    # ------------------------------------------------------------------ low-level calls

    def _get(self, key: str, version: str | None = None) -> Any | None:
        """get_secret, or None on 404."""
        from azure.core.exceptions import ResourceNotFoundError

        def call() -> Any | None:
            try:
                return self._client.get_secret(key, version)
            except ResourceNotFoundError:
                return None

        return self._call(call, key, "read")

    def _latest_id(self, key: str) -> tuple[str | None, Any | None]:
        """Id and properties of the latest version (None if the secret does not exist).

        A disabled latest version still counts as the latest (Key Vault refuses to read
        it): its id is then found from the listing.
        """
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        def call() -> tuple[str | None, Any | None]:
            try:
                secret = self._client.get_secret(key)
            except ResourceNotFoundError:
                return None, None
            except HttpResponseError as exc:
                if exc.status_code == 403 and _error_code(exc) == "SecretDisabled":
                    return "", None
                raise
            return str(secret.properties.version), secret.properties

        return self._call(call, key, "read")

    def _versions(self, key: str) -> dict[str, _Version]:
        from azure.core.exceptions import ResourceNotFoundError

        def call() -> dict[str, _Version]:
            try:
                return {v.id: v for v in map(_version_of,
                                             self._client.list_properties_of_secret_versions(
                                                 key, max_page_size=25))}
            except ResourceNotFoundError:
                return {}

        return self._call(call, key, "list versions")

    def _put(self, key: str, value: str, tags: dict[str, str],
             content_type: str | None) -> _Version:
        def call() -> _Version:
            secret = self._client.set_secret(key, value, tags=tags, content_type=content_type)
            return _version_of(secret.properties)

        return self._call(call, key, "write")

    # ------------------------------------------------------------------ interface

    @bounded
    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        self._check_name(key)
        if version is not None and not VERSION.fullmatch(version.lower()):
            raise self._err(NotFoundError, f"version {version} does not exist (Key Vault "
                            "versions are 32 hex digits)", key)
        secret = self._get(key, version.lower() if version else None)
        if secret is None:
            if version is not None:
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            return None
        return Snapshot(key, str(secret.properties.version),
                        {WHOLE: SecretValue(secret.value or "")})

    @bounded
    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        if set(values) != {WHOLE} or not isinstance(values[WHOLE], SecretValue):
            raise ValueError("a Key Vault secret is one value: write exactly "
                             "{WHOLE: SecretValue(...)}")
        self._check_name(key)
        value = values[WHOLE]
        size = len(value.reveal().encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise InputError(f"[environment {self.environment}, provider azure] {key}: the "
                             f"value is {size:,} bytes; a Key Vault secret holds at most "
                             f"{MAX_VALUE_BYTES:,} bytes (nothing was sent)",
                             hint="store a smaller value (or a reference to where it lives)")
        expected = expected_version.lower() if expected_version else None
        base, base_props, before = self._check_expected(key, expected)
        write_id = secrets.token_hex(8)
        tags = {**_foreign_tags((base_props.tags or {}) if base_props else {}),
                TAG_PREVIOUS: base or NO_PREVIOUS, TAG_WRITE: write_id}
        content_type = base_props.content_type if base_props else None
        try:
            ours = self._put(key, value.reveal(), tags, content_type)
            return self._settle(key, base, before, ours, write_id, value, content_type)
        except StoreUnavailableError as exc:
            # The PUT was sent: its version may be current although we could not confirm
            # (or even see) it. Say so, and how to look, instead of a plain failure.
            raise self._err(StoreUnavailableError, exc.message.split("] ", 1)[-1]
                            + "; the new value was sent and may have been applied", key,
                            hint=self._verify_hint(key)) from None

    def _verify_hint(self, key: str) -> str:
        return (f"check what is current before writing again: `deparrow-secrets history KEY "
                f"--env {self.environment}` (KEY is the catalog key of {key}), or `az "
                f"keyvault secret list-versions --vault-name {self.vault_name} --name {key}`")

    def _look(self, key: str, version: str, older: set[str]
              ) -> tuple[dict[str, _Version], str | None, Any | None]:
        """The versions and the latest once `version` (just written) shows in both.

        Key Vault documents no read-your-writes consistency. A version written after
        another becomes visible after it, so once our own version is listed, every version
        created before it is too, and the race can be judged as if reads did not lag.
        Waits up to the read-lag tolerance (never past the call's time bound), then says
        that the outcome cannot be known.
        """
        waited = 0.0
        pause = 0.05
        limit = min(self._read_lag_tolerance, remaining(self.policy) - 0.2)
        while True:
            listed = self._versions(key)
            latest, props = self._latest_id(key)
            if version in listed and latest and latest not in older:
                return listed, latest, props
            if waited + pause > limit:
                raise self._err(
                    UncertainWriteError,
                    f"the write may have raced another writer: its new version {version} "
                    f"did not show in Key Vault's reads within {max(waited, 0.0):.1f} s "
                    "(reads can lag behind writes), so it could not be checked against "
                    "other writers", key, hint=self._verify_hint(key))
            time.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.5)

    def _check_expected(self, key: str, expected: str | None
                        ) -> tuple[str | None, Any | None, dict[str, _Version]]:
        """Step 1: (latest id, its properties, all versions up to it), or ConflictError."""
        for _ in range(3):
            # Creating: nothing existed when get_secret said 404, so nothing needs listing.
            listed = self._versions(key) if expected is not None else {}
            latest, props = self._latest_id(key)
            if latest == "" and expected is None:
                raise self._err(ConflictError, "already exists (its latest version is "
                                "disabled); expected to create it", key,
                                hint="read it again and retry")
            if latest == "":  # latest version disabled: take the listing's view of it
                order = _history_order(list(listed.values()), None)
                latest = order[-1].id if order else None
            if latest is None:
                if expected is not None:
                    raise self._err(ConflictError, f"changed since it was read: it no longer "
                                    f"exists (expected version {expected})", key,
                                    hint="read it again and retry")
                return None, None, {}
            if expected is None:
                raise self._err(ConflictError, f"already exists (version {latest}); "
                                "expected to create it", key, hint="read it again and retry")
            if latest not in listed:
                continue  # written between the listing and the get: look again
            restores = listed[latest].restores
            write = listed[latest].write
            if write and expected in listed and listed[expected].write == write:
                restores = expected  # a repeat of the same PUT (retried after a timeout)
            if expected not in (latest, restores):
                raise self._err(ConflictError, f"changed since it was read (now version "
                                f"{latest}, expected {expected})", key,
                                hint="read it again and retry")
            return latest, props, listed
        raise self._err(ConflictError, "is being written by someone else right now", key,
                        hint="read it again and retry")

    def _settle(self, key: str, base: str | None, before: dict[str, _Version],
                ours: _Version, write_id: str, value: SecretValue,
                content_type: str | None) -> str:
        """Steps 3-4: did our PUT come first after `base`? Commit, or restore the winner."""
        token = base or NO_PREVIOUS
        facts: list[tuple[str, set[str]]] = []
        older = set(before) | ({base} if base else set())
        for _ in range(2):  # an undecided race gets one more look for what others published
            listed, latest, latest_props = self._look(key, ours.id, older)
            if latest and latest_props is not None:  # newer than the listing: tags count too
                listed.setdefault(latest, _version_of(latest_props))
            if latest:
                facts.append((latest, set(listed) - {latest}))
            mine = {k for k, v in listed.items() if v.write == write_id} | {ours.id}
            nodes = {k for k in listed if k not in before and k != base}  # created after base
            order = _Order((listed[k] for k in nodes), facts)
            verdict = self._won(listed, order, nodes, mine, token)
            if verdict is not None:
                break
        if verdict:
            self._commit(key, ours, listed, mine, token, value, content_type)
            return ours.id
        restored = ""
        if latest in mine:  # our losing value is what readers get now
            restored = self._restore_winner(key, token, base, listed, order, nodes, mine, latest)
        raise self._err(ConflictError,
                        "changed while writing: another writer's version came first, or it "
                        "could not be proven that this one did"
                        + (f"; version {restored} now holds the value that stands"
                           if restored else ""), key,
                        hint="read it again and retry; `history` shows the versions")

    @staticmethod
    def _won(listed: dict[str, _Version], order: _Order, nodes: set[str], mine: set[str],
             token: str) -> bool | None:
        """True: ours came first; False: another did; None: cannot be told."""
        rivals = {k for k in nodes - mine if _competes(listed[k], token)}
        for k in nodes - mine:  # what other writers of this race proved and published
            v = listed[k]
            if v.restores and _descends(v.restores, mine, listed, nodes):
                return True
            if v.restores in rivals or (k in rivals and v.committed):
                return False
        if any(all(order.before(x, m) for m in mine) for x in rivals):
            return False
        if all(any(order.before(m, x) for m in mine) for x in rivals):
            return True
        return None

    def _commit(self, key: str, ours: _Version, listed: dict[str, _Version], mine: set[str],
                token: str, value: SecretValue, content_type: str | None) -> None:
        """Publish the win (tag `deparrow-committed`) and re-assert our value if a loser of
        this race (or a stale restore) became the latest after our check.

        Best effort: the write has already won; a failure here is not reported as one.
        """
        try:
            self._call(lambda: self._client.update_secret_properties(
                key, ours.id, tags={**ours.tags, TAG_COMMITTED: "true"}), key, "tag")
            latest, props = self._latest_id(key)
            if not latest or latest in mine or props is None:
                return
            tags = props.tags or {}
            if not tags.get(TAG_WRITE):
                return  # someone outside this protocol wrote after us: theirs stands
            if tags.get(TAG_RESTORES):
                if _descends(tags[TAG_RESTORES], mine, listed, set(listed)):
                    return
            elif tags.get(TAG_PREVIOUS) != token and (
                    _descends(tags.get(TAG_PREVIOUS), mine, listed, set(listed))
                    or tags.get(TAG_PREVIOUS) not in listed):
                return  # a later write that read ours (or one we cannot place)
            again = self._put(key, value.reveal(), {**_foreign_tags(ours.tags),
                                                    TAG_PREVIOUS: latest, TAG_RESTORES: ours.id,
                                                    TAG_WRITE: secrets.token_hex(8)},
                              content_type)
            self._look(key, again.id, set())
        except StoreError:
            pass

    def _restore_winner(self, key: str, token: str, base: str | None,
                        listed: dict[str, _Version], order: _Order, nodes: set[str],
                        mine: set[str], latest: str) -> str:
        """Write the winner's value as the newest version, or else the base's value.

        With no provable winner the race is void: the base value is written back, then
        the versions are looked at once more, and a winner that has committed meanwhile
        gets its value written back (it does the converse: commit, then look).
        """
        t = _round_winner(token, listed, order, nodes, mine)
        if t is None:
            if base is None:
                return ""
            restored = self._rewrite(key, base, latest)  # returns once it shows in reads
            listed = self._versions(key)
            committed = [k for k, v in listed.items() if k not in mine and v.committed
                         and _competes(v, token)]
            if len(committed) == 1:
                restored = self._rewrite(key, committed[0], restored)
            return restored
        while True:  # writes that read the winner and won their own race come after it
            later = {k for k in nodes if k != t and not order.before(k, t)}
            nxt = _round_winner(t, listed, order, later, mine)
            if nxt is None:
                break
            t = nxt
        return self._rewrite(key, t, latest)

    def _rewrite(self, key: str, source: str, latest: str) -> str:
        """Write version `source`'s value again as the newest version (a restore)."""
        old = self._get(key, source)
        if old is None:
            return ""
        tags = {**_foreign_tags(old.properties.tags or {}), TAG_PREVIOUS: latest,
                TAG_RESTORES: source, TAG_WRITE: secrets.token_hex(8)}
        restored = self._put(key, old.value or "", tags, old.properties.content_type).id
        self._look(key, restored, set())  # readers see the value that stands once we return
        return restored

    @bounded
    def list_objects(self, prefix: str = "") -> list[str]:
        def call() -> list[str]:
            return [str(p.name) for p in self._client.list_properties_of_secrets()
                    if not p.managed]  # certificate-backed secrets are not ours

        names = self._call(call, None, "list secrets")
        return sorted(n for n in names if n.startswith(prefix))

    @bounded
    def history(self, key: str) -> list[VersionInfo]:
        self._check_name(key)
        listed = self._versions(key)
        if not listed:
            return []
        try:
            latest, _ = self._latest_id(key)
        except AccessDeniedError:  # list permission without get: order is still known
            latest = None
        if latest and latest not in listed:
            latest = None
        ordered = _history_order(list(listed.values()), latest or None)
        current = latest if latest else (ordered[-1].id if latest is None else None)
        losers = {v.previous for v in listed.values() if v.restores}
        out = []
        for v in ordered:
            labels = []
            if not v.enabled:
                labels.append(_LABEL_DISABLED)
            if v.restores:
                labels.append(f"{_LABEL_RESTORE}:{v.restores}")
            if v.id in losers:
                labels.append(_LABEL_LOSER)
            out.append(VersionInfo(v.id, v.created_on, v.id == current, tuple(labels)))
        return out

    @bounded
    def previous_version(self, key: str) -> str:
        """The newest version before the current one with different content.

        Skips restores of the current version, losers of a write race and disabled
        versions, so a rollback never brings back a value that lost a race.
        """
        hist = self.history(key)
        idx = next((i for i, v in enumerate(hist) if v.current), len(hist) - 1)

        def effective(v: VersionInfo) -> str:
            for label in v.labels:
                if label.startswith(f"{_LABEL_RESTORE}:"):
                    return label.split(":", 1)[1]
            return v.version

        if idx >= 0 and hist:
            current = effective(hist[idx])
            for v in reversed(hist[:idx]):
                if (effective(v) != current and _LABEL_LOSER not in v.labels
                        and _LABEL_DISABLED not in v.labels):
                    return v.version
        raise self._err(NotFoundError, "no previous version to roll back to", key)

    @bounded
    def health(self) -> Health:
        def call() -> int:
            pages = self._client.list_properties_of_secrets(max_page_size=1).by_page()
            return len(list(next(pages, [])))

        try:
            self._call(call, None, "list secrets")
        except StoreError as exc:
            return Health(False, str(exc))
        return Health(True, f"{self.vault_url}: reachable, authenticated, secrets listable")

    # ------------------------------------------------------------------ soft delete

    @bounded
    def deleted(self) -> list[str]:
        """Names of soft-deleted secrets (they block reuse of the name until recovered)."""
        def call() -> list[str]:
            return [str(d.name) for d in self._client.list_deleted_secrets()]

        return sorted(self._call(call, None, "list deleted secrets"))

    def recover(self, key: str) -> str:
        """Recover soft-deleted secret `key` (all its versions); returns the current version."""
        self._check_name(key)
        from azure.core.exceptions import ResourceNotFoundError

        def start() -> Any:
            try:
                return self._client.begin_recover_deleted_secret(
                    key, _polling_interval=self._polling_interval)
            except ResourceNotFoundError:
                return None

        poller = self._call(start, key, "recover")
        if poller is None:
            raise self._err(NotFoundError, f"no soft-deleted secret named {key} in "
                            f"{self.vault_url}", key, hint="`deleted()` lists them")
        try:
            poller.wait(timeout=self._recover_timeout)
        except Exception as exc:
            from azure.core.exceptions import AzureError

            if isinstance(exc, AzureError):
                raise self._translate(exc, key, "recover") from None
            raise
        if not poller.done():
            raise self._err(StoreUnavailableError,
                            f"recovery of {key} started but did not finish within "
                            f"{self._recover_timeout:g} s", key,
                            hint="Key Vault recovers asynchronously; retry in a minute")
        return str(poller.result().version)

    def close(self) -> None:
        self._client.close()
        if self._owns_credential and hasattr(self._credential, "close"):
            self._credential.close()


# ---------------------------------------------------------------------- service messages


def _error_code(exc: Any) -> str:
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


def _principal(message: str) -> str:
    """`appid=...;oid=...` from a Key Vault 403 message, nothing else of it."""
    appid = re.search(r"\bappid=([0-9A-Za-z-]{1,64})", message)
    oid = re.search(r"\boid=([0-9A-Za-z-]{1,64})", message)
    return ";".join(p for p in (appid and f"appid={appid.group(1)}",
                                oid and f"oid={oid.group(1)}") if p)


def _missing_permission(message: str) -> str:
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
