"""The embedded store: one SQLite file, every version of every object sealed with AES-GCM.

The key comes from DEPARROW_SECRETS_KEY (base64 of 32 bytes), from the file named by
DEPARROW_SECRETS_KEY_FILE, or from a key file beside the store created with mode 0600
on first use. Each version is bound to its object name and version number as
associated data, so a row moved or altered on disk fails authentication.
Writes are one SQLite transaction each (old or new state after a crash, never a mix).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import ConflictError, IntegrityError, NotFoundError, StoreError
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo

KEY_ENV = "DEPARROW_SECRETS_KEY"
KEY_FILE_ENV = "DEPARROW_SECRETS_KEY_FILE"
DEFAULT_STORE = ".deparrow-secrets/store.db"
FORMAT = "deparrow-secrets-local/1"
_KEY_CHECK_AAD = b"deparrow-secrets key check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    object TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (object, version)
);
"""


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the first byte on; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_key(key_file: Path) -> bytes:
    raw = os.environ.get(KEY_ENV)
    source = f"${KEY_ENV}"
    if raw is None:
        key_file = Path(os.environ.get(KEY_FILE_ENV) or key_file)
        source = str(key_file)
        if not key_file.exists():
            if os.environ.get(KEY_FILE_ENV):
                raise IntegrityError(f"key file {key_file} does not exist",
                                     hint=f"fix {KEY_FILE_ENV} or unset it")
            _write_private(key_file, base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
        raw = key_file.read_text(encoding="ascii").strip()
    try:
        key = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise IntegrityError(f"the store key from {source} is not base64 of 32 bytes",
                             hint="generate one with: python -c \"import base64,os;"
                             "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\"")
    return key


class LocalStore(SecretStore):
    provider = "local"

    def __init__(self, path: Path, key_file: Path | None = None,
                 environment: str = "dev") -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.path = path
        self.environment = environment
        self._aead = AESGCM(load_or_create_key(key_file or path.with_suffix(".key")))
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by threads: transactions must not interleave on it.
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_key()
        except sqlite3.DatabaseError as exc:
            raise IntegrityError(f"{path} is not a readable store file ({exc})",
                                 environment=environment, provider=self.provider,
                                 hint="restore it from a backup or point `store.path` "
                                 "elsewhere") from None

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> LocalStore:
        path = config.root / (env.store.path or DEFAULT_STORE)
        return cls(path, environment=env.name)

    def _err(self, cls: type[StoreError], message: str, key: str | None = None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

    def _check_key(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name='check'").fetchone()
        if row is None:
            nonce = os.urandom(12)
            sealed = self._aead.encrypt(nonce, FORMAT.encode(), _KEY_CHECK_AAD)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('check', ?)", (nonce + sealed,))
            return
        from cryptography.exceptions import InvalidTag

        blob = bytes(row[0])
        try:
            self._aead.decrypt(blob[:12], blob[12:], _KEY_CHECK_AAD)
        except InvalidTag:
            raise self._err(IntegrityError, f"wrong key for the store {self.path}",
                            hint=f"use the key this store was created with (${KEY_ENV}, "
                            f"${KEY_FILE_ENV} or {self.path.with_suffix('.key')})") from None

    def _aad(self, key: str, version: int) -> bytes:
        return f"{key}\x00{version}".encode()

    def _open(self, key: str, version: int, nonce: bytes, sealed: bytes) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(bytes(nonce), bytes(sealed), self._aad(key, version))
            data = json.loads(plain)
        except (InvalidTag, ValueError):
            raise self._err(IntegrityError, f"version {version} failed authentication: the "
                            "store file was tampered with or is corrupt", key,
                            hint="restore the store file from a backup") from None
        if not isinstance(data, dict):
            raise self._err(IntegrityError, f"version {version} has unexpected content", key)
        return data

    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        if version is None:
            row = self._db.execute(
                "SELECT version, nonce, sealed FROM versions WHERE object=? "
                "ORDER BY version DESC LIMIT 1", (key,)).fetchone()
            if row is None:
                return None
        else:
            if not version.isdigit():
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            row = self._db.execute(
                "SELECT version, nonce, sealed FROM versions WHERE object=? AND version=?",
                (key, int(version))).fetchone()
            if row is None:
                raise self._err(NotFoundError, f"version {version} does not exist", key)
        data = self._open(key, row[0], row[1], row[2])
        return Snapshot(key, str(row[0]),
                        {k: SecretValue(v) for k, v in data.items() if isinstance(v, str)})

    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        plain = json.dumps({k: v.reveal() for k, v in values.items()}, sort_keys=True).encode()
        with self._lock:
            return self._write_locked(key, plain, expected_version)

    def _write_locked(self, key: str, plain: bytes, expected_version: str | None) -> str:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT MAX(version) FROM versions WHERE object=?", (key,)).fetchone()
            current = row[0]
            if (None if current is None else str(current)) != expected_version:
                raise self._err(ConflictError,
                                f"changed since it was read (now version {current}, "
                                f"expected {expected_version or 'none'})", key,
                                hint="read it again and retry")
            new = (current or 0) + 1
            nonce = os.urandom(12)
            sealed = self._aead.encrypt(nonce, plain, self._aad(key, new))
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?)",
                       (key, new, datetime.now(UTC).isoformat(), nonce, sealed))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return str(new)

    def list(self, prefix: str = "") -> list[str]:
        rows = self._db.execute("SELECT DISTINCT object FROM versions ORDER BY object")
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def history(self, key: str) -> list[VersionInfo]:
        rows = self._db.execute("SELECT version, created FROM versions WHERE object=? "
                                "ORDER BY version", (key,)).fetchall()
        return [VersionInfo(str(v), datetime.fromisoformat(created), i == len(rows) - 1)
                for i, (v, created) in enumerate(rows)]

    def health(self) -> Health:
        count = self._db.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
        return Health(True, f"{self.path}: {count} versions, key verified")

    def close(self) -> None:
        self._db.close()


class AbsentLocalStore(SecretStore):
    """An embedded store file that does not exist yet, read without creating it."""

    provider = "local"

    def __init__(self, environment: str, path: Path) -> None:
        self.environment = environment
        self.path = path

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> AbsentLocalStore:
        raise NotImplementedError("opened through Project.open_store only")

    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        if version is not None:
            raise NotFoundError(f"version {version} does not exist", environment=self.environment,
                                provider=self.provider, remote_key=key)
        return None

    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        raise StoreError("the store was opened read-only", environment=self.environment,
                         provider=self.provider, remote_key=key)

    def list(self, prefix: str = "") -> list[str]:
        return []

    def history(self, key: str) -> list[VersionInfo]:
        return []

    def health(self) -> Health:
        return Health(False, f"{self.path} does not exist yet (provision creates it)")
