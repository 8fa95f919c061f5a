"""HashiCorp Vault / OpenBao: KV v2 at the configured mount, one property per key.

Objects are KV paths (`deparrow/production`), versions KV v2 versions, and every write
checks-and-sets (`options.cas`). This module is the check-and-set logic only: the
connection (address, TLS, credentials, retries, deadline) is `connection.py`, the
translation of Vault's answers `errors.py`. How the store behaves, and why, is in
docs/stores.md ("Vault / OpenBao").
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from deparrow_secrets.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    SoftDeletedError,
    StoreError,
)
from deparrow_secrets.providers.vault.connection import VaultConnection
from deparrow_secrets.providers.vault.errors import (
    LOGIN_HINT,
    NO_ROUTE,
    Request,
    is_transient,
    vault_text,
)
from deparrow_secrets.providers.vault.settings import settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import RetryPolicy, bounded

if TYPE_CHECKING:
    import hvac
    import requests

    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

DEFAULT_MOUNT = "secret"
CAS_MISMATCH = "check-and-set parameter did not match the current version"


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


@dataclass(frozen=True)
class _Deleted:
    """Metadata of a deleted or destroyed version (Vault answers 404 with it)."""

    meta: dict[str, Any]


# --------------------------------------------------------------------------- the store


class VaultStore(SecretStore):
    provider = "vault"

    def __init__(self, connection: VaultConnection, mount: str = DEFAULT_MOUNT) -> None:
        """The store of KV v2 mount `mount` over `connection` (`from_config` opens both
        as the configuration says)."""
        self.connection = connection
        self.environment = connection.environment
        self.mount = mount.strip("/") or DEFAULT_MOUNT
        self.policy = connection.retry  # what `bounded` operations take their deadline from
        self._mount_checked = False

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> VaultStore:
        return cls(VaultConnection.from_config(config, env), settings_of(env).mount)

    # What the rest of the tool (and its tests) read of the connection.
    @property
    def address(self) -> str:
        return self.connection.address

    @property
    def namespace(self) -> str | None:
        return self.connection.namespace

    @property
    def retry(self) -> RetryPolicy:
        return self.connection.retry

    @property
    def _session(self) -> requests.Session:
        return self.connection.session

    @property
    def _client(self) -> hvac.Client:
        return self.connection.client

    @property
    def _verify(self) -> bool | str:
        return self.connection.verify

    def __repr__(self) -> str:
        ns = f", namespace={self.namespace!r}" if self.namespace else ""
        return (f"VaultStore(address={self.address!r}, mount={self.mount!r}{ns}, "
                f"environment={self.environment!r})")

    def close(self) -> None:
        self.connection.close()

    # ------------------------------------------------------------------ plumbing

    def _remote(self, path: str | None) -> str | None:
        return f"{self.mount}/{path}" if path else f"{self.mount}/"

    def _err(self, cls: type[StoreError], message: str, path: str | None = None,
             hint: str | None = None) -> StoreError:
        return self.connection.errors.error(cls, message, self._remote(path), hint)

    def _url(self, kind: str, path: str = "") -> str:
        base = f"/v1/{quote(self.mount, safe='/')}/{kind}"
        return f"{base}/{quote(path, safe='/')}" if path else base

    def admin_client(self) -> hvac.Client:
        """The logged-in hvac client (for tests that set a real account up)."""
        self.connection.ensure_token()
        return self.connection.client

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
        """One request on `path` of the mount through the connection. `on_error` may turn
        an SDK error into a result or a StoreError (None: the translator's message);
        `redact`: secret values in the request (Vault's own text is then never shown)."""
        import hvac.exceptions as hx

        def handle(exc: Exception) -> Any:
            result = on_error(exc) if on_error is not None else None
            if result is None and isinstance(exc, hx.InvalidPath) and \
                    NO_ROUTE in vault_text(exc):
                return self._no_mount(path)
            return result

        values = tuple(redact)
        request = Request(op, target=self._url(url_kind, path or "")[len("/v1/"):],
                          remote_key=self._remote(path), caps=caps, redact=values,
                          carries_values=bool(values))
        return self.connection.call(request, fn, on_error=handle)

    def _no_mount(self, path: str | None) -> StoreError:
        return self._err(StoreError, f"no secrets engine is mounted at {self.mount}/"
                         + (f" in namespace {self.namespace}" if self.namespace else ""),
                         path, f"enable KV v2 there (`bao secrets enable -path={self.mount} "
                         "kv-v2`) or set `mount:` in the configuration")

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
            if not isinstance(exc, hx.InvalidPath) or NO_ROUTE in \
                    vault_text(exc):
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
            if isinstance(exc, hx.InvalidRequest) and CAS_MISMATCH in vault_text(exc):
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
            if isinstance(exc, hx.InvalidPath) and NO_ROUTE not in \
                    vault_text(exc):
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
            if isinstance(exc, hx.InvalidPath) and NO_ROUTE not in \
                    vault_text(exc):
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
                timeout=self.retry.timeout, verify=self._verify,
                cert=self.connection.cert)
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
            return Health(False, f"{server}: the token from {self.connection.token_source} was "
                          f"refused (invalid or expired). {LOGIN_HINT}")
        data = who.get("data") or {}
        ttl = data.get("ttl")
        expiry = "never expires" if not ttl else f"expires in {int(ttl) // 60} min"
        policies = ", ".join(data.get("policies") or []) or "none"
        token = f"token '{data.get('display_name', '?')}' ({policies}; {expiry})"

        def on_error(exc: Exception) -> Any:
            return exc if isinstance(exc, hx.VaultError) and not is_transient(exc) else None

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
