"""The embedded store: one SQLite file, every version of every object sealed with AES-GCM.

The key comes from DEPARROW_SECRETS_KEY (base64 of 32 bytes), from the file named by
DEPARROW_SECRETS_KEY_FILE, or from a key file beside the store created with mode 0600
on first use. Each version is bound to its object name and version number as
associated data, so a row moved, copied over another or altered on disk fails
authentication; each object's newest version number is recorded sealed too, so rows
deleted from the end of its history are noticed. What it cannot notice: the whole file
replaced by an older copy of itself (an older backup) reads as that older state.
Writes are one SQLite transaction each (old or new state after a crash, never a mix).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import sqlite3
import stat
import threading
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from deparrow_secrets import safefiles
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import (
    ConfigError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    Notice,
    StoreError,
)
from deparrow_secrets.providers.local.settings import DEFAULT_STORE, settings_of
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import Health, SecretStore, Snapshot, VersionInfo

KEY_ENV = "DEPARROW_SECRETS_KEY"
KEY_FILE_ENV = "DEPARROW_SECRETS_KEY_FILE"
# Format 2 also records each object's newest version, sealed, so rows deleted from the
# end of an object's history are noticed. Stores of format 1 are read as they are.
FORMAT = "deparrow-secrets-local/2"
LEGACY_FORMAT = "deparrow-secrets-local/1"
_KEY_CHECK_AAD = b"deparrow-secrets key check"
_HEAD_AAD = b"deparrow-secrets head\x00"

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


class KeyFileWarning(Notice):
    """The store's key file can be read by other users."""


def _key_text(key_file: Path) -> str:
    try:
        st = key_file.stat()
        raw = key_file.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read the store key file {key_file} ({exc.strerror})",
                             hint="make it readable by you: chmod 600 "
                             f"{shlex.quote(str(key_file))}") from None
    if st.st_mode & 0o077:
        warnings.warn(f"the store key file {key_file} can be read by other users (mode "
                      f"{stat.S_IMODE(st.st_mode):04o}); run: chmod 600 "
                      f"{shlex.quote(str(key_file))}", KeyFileWarning, stacklevel=3)
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return ""


def check_key_source() -> None:
    """$DEPARROW_SECRETS_KEY_FILE, when set, names a file: checked even where no store
    exists yet, so a mistyped path is an error and not a silently empty environment."""
    named = os.environ.get(KEY_FILE_ENV)
    if named and os.environ.get(KEY_ENV) is None and not Path(named).is_file():
        raise ConfigError(f"{KEY_FILE_ENV} names {named}, which is not a file",
                          hint=f"point {KEY_FILE_ENV} at the store's key file, or unset it")


def load_key(key_file: Path, *, create: bool = False, root: Path | None = None) -> bytes:
    """The store key: $DEPARROW_SECRETS_KEY, the file $DEPARROW_SECRETS_KEY_FILE names, or
    `key_file`. Only `create` (a new store) may make `key_file`: an existing store whose
    key is missing gets an error, never a fresh key that cannot open it."""
    raw = os.environ.get(KEY_ENV)
    source = f"${KEY_ENV}"
    if raw is None:
        named = os.environ.get(KEY_FILE_ENV)
        if named:
            check_key_source()
            key_file = Path(named)
        elif not key_file.exists() and not key_file.is_symlink():
            if not create:
                raise IntegrityError(
                    f"the key of this store is missing: {key_file} does not exist",
                    hint=f"restore {key_file} from where you keep it, or set {KEY_ENV} or "
                    f"{KEY_FILE_ENV}; a new key could not open the existing values")
            key = base64.urlsafe_b64encode(os.urandom(32)) + b"\n"
            # Two processes creating the store at once: the first key written wins.
            safefiles.create_file(root or key_file.parent, key_file, key,
                                  mode=safefiles.PRIVATE_FILE, private_dir=True)
        elif safefiles.inside(root or key_file.parent, key_file):
            # The key file beside the store is the tool's own: never read through a link.
            safefiles.check_path(root or key_file.parent, key_file)
        source = str(key_file)
        raw = _key_text(key_file)
    try:
        key = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise IntegrityError(f"the store key from {source} is not base64 of 32 bytes",
                             hint="generate one with: python -c \"import base64,os;"
                             "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\"")
    return key


def load_or_create_key(key_file: Path) -> bytes:
    return load_key(key_file, create=True)


def _sqlite_uri(path: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{urllib.parse.quote(path)}" + (f"?{query}" if query else "")


class LocalStore(SecretStore):
    provider = "local"

    def __init__(self, path: Path, key_file: Path | None = None,
                 environment: str = "dev", *, root: Path | None = None,
                 create: bool = True, read_only: bool = False) -> None:
        """Open the store at `path`, reached from `root` (default: its directory) without
        following links. Only `create` makes a new store (directory 0700, key file and
        database 0600); `read_only` opens it so that nothing on disk is created or
        changed, not even SQLite's -wal/-shm files."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.path = path
        self.environment = environment
        create = create and not read_only
        self.read_only = read_only
        self._lock = threading.RLock()
        key_file = key_file or path.with_suffix(".key")
        root = root or path.parent
        try:
            self._dir_fd = safefiles.open_dir(root, path.parent, create=create, private=True)
        except FileNotFoundError:
            raise self._err(NotFoundError, f"{path.parent} does not exist") from None
        try:
            exists = self._entry_exists(path.name)
            if not exists:
                if not create:
                    raise self._err(NotFoundError, f"{path} does not exist")
                self._aead = AESGCM(load_key(key_file, create=True, root=root))
                self._initialise(path.name)
            self._db = self._connect(path.name)
            try:
                check = self._check_store()  # what the file is, before asking for its key
                if exists:
                    self._aead = AESGCM(load_key(key_file, root=root))
                self._records_heads = self._check_key(check) == FORMAT
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            os.close(self._dir_fd)
            raise

    def _entry_exists(self, name: str) -> bool:
        try:
            st = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise InputError(f"{self.path} is a symbolic link; the store must be a file of "
                             "its own", hint="replace the link with the file it points to "
                             "(e.g. `mv`), or point `store.path` at it")
        return True

    def _fd_path(self, name: str) -> str:
        # SQLite opens by name: through the directory descriptor already checked, so a
        # directory swapped for a link since then is not followed.
        proc = f"/proc/self/fd/{self._dir_fd}"
        return f"{proc}/{name}" if os.path.isdir(proc) else str(self.path)

    def _initialise(self, name: str) -> None:
        """Build the database under a temporary name, then link it into place: another
        process sees no store or a complete one, never an empty file it would mistake."""
        fd, tmp = safefiles._temp_file(self._dir_fd, name, safefiles.PRIVATE_FILE)
        os.close(fd)
        try:
            db = sqlite3.connect(self._fd_path(tmp), isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                nonce = os.urandom(12)
                sealed = self._aead.encrypt(nonce, FORMAT.encode(), _KEY_CHECK_AAD)
                db.execute("INSERT INTO meta VALUES ('check', ?)", (nonce + sealed,))
            finally:
                db.close()
            # If another process created it first, that one is the store.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd,
                        follow_symlinks=False)
            os.fsync(self._dir_fd)
        finally:
            for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover, dir_fd=self._dir_fd)

    def _connect(self, name: str) -> sqlite3.Connection:
        where = self._fd_path(name)
        try:
            if not self.read_only:
                db = sqlite3.connect(where, timeout=10, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA synchronous=FULL")
                return db
            # Read-only: never create the -wal/-shm files. Without a -wal file no writer
            # is active, and the file is read as it is (this also reads a read-only mount).
            try:
                os.stat(name + "-wal", dir_fd=self._dir_fd)
                params = {"mode": "ro"}
            except FileNotFoundError:
                params = {"mode": "ro", "immutable": "1"}
            try:
                db = sqlite3.connect(_sqlite_uri(where, **params), uri=True, timeout=10,
                                     isolation_level=None, check_same_thread=False)
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.OperationalError:  # e.g. a -wal on a read-only mount
                db = sqlite3.connect(_sqlite_uri(where, mode="ro", immutable="1"), uri=True,
                                     isolation_level=None, check_same_thread=False)
            return db
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None

    def _unreadable(self, exc: Exception) -> StoreError:
        return self._err(IntegrityError, f"{self.path} is not a readable store file ({exc})",
                         hint="restore it from a backup or point `store.path` elsewhere")

    def _check_store(self) -> bytes:
        """The file must be a store; anything else is said, not fixed. Returns its key
        check."""
        try:
            size = os.stat(self.path.name, dir_fd=self._dir_fd).st_size
            if size == 0:
                raise self._err(IntegrityError, f"{self.path} is empty (0 bytes), not a store",
                                hint="restore it from a backup; delete it only if it never "
                                "held values (provision would then create new ones)")
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "versions"} <= tables:
                raise self._err(IntegrityError, f"{self.path} is an SQLite file but not a "
                                "deparrow-secrets store", hint="point `store.path` at the "
                                "store, or move this file away")
            row = self._db.execute("SELECT value FROM meta WHERE name='check'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None
        if row is None:
            raise self._err(IntegrityError, f"{self.path} has no key check: it is not a "
                            "complete store", hint="restore it from a backup")
        return bytes(row[0])

    def _check_key(self, blob: bytes) -> str:
        """The store's format, once its key check opens with this key."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(blob[:12], blob[12:], _KEY_CHECK_AAD).decode(
                "ascii", "replace")
        except InvalidTag:
            raise self._err(IntegrityError, f"wrong key for the store {self.path}",
                            hint=f"use the key this store was created with (${KEY_ENV}, "
                            f"${KEY_FILE_ENV} or {self.path.with_suffix('.key')})") from None

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig, create: bool = True,
                    read_only: bool = False) -> LocalStore:
        path = config.root / (settings_of(env).path or DEFAULT_STORE)
        # Inside the project every component is checked from its root; a store the
        # configuration puts elsewhere is taken from its own directory as given.
        root = config.root if safefiles.inside(config.root, path) else path.parent
        return cls(path, environment=env.name, root=root, create=create,
                   read_only=read_only)

    def _err(self, cls: type[StoreError], message: str, key: str | None = None,
             hint: str | None = None) -> StoreError:
        return cls(message, environment=self.environment, provider=self.provider,
                   remote_key=key, hint=hint)

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

    def _head(self, key: str) -> int | None:
        """The newest version of `key` as recorded when it was written (format 2)."""
        from cryptography.exceptions import InvalidTag

        row = self._db.execute("SELECT value FROM meta WHERE name=?",
                               (f"head:{key}",)).fetchone()
        if row is None:
            return None
        blob = bytes(row[0])
        try:
            return int(self._aead.decrypt(blob[:12], blob[12:], _HEAD_AAD + key.encode()))
        except (InvalidTag, ValueError):
            raise self._err(IntegrityError, "its newest-version record failed "
                            "authentication: the store file was tampered with", key,
                            hint="restore the store file from a backup") from None

    def _check_head(self, key: str, newest: int | None) -> None:
        if not self._records_heads:
            return
        head = self._head(key)
        if head != newest:
            raise self._err(IntegrityError, f"version {head} was written last but the newest "
                            f"version in the file is {newest}: versions were removed from "
                            "the store file", key, hint="restore the store file from a backup")

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: a writer committing between a read's queries (the newest
        row, then its sealed newest-version record) must not look like removed rows."""
        if self._db.in_transaction:
            yield
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        with self._snapshot():
            return self._read(key, version)

    def _read(self, key: str, version: str | None) -> Snapshot | None:
        if version is None:
            row = self._db.execute(
                "SELECT version, nonce, sealed FROM versions WHERE object=? "
                "ORDER BY version DESC LIMIT 1", (key,)).fetchone()
            self._check_head(key, row[0] if row else None)
            if row is None:
                return None
        else:
            if not (version.isascii() and version.isdigit() and len(version) <= 18):
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
        if self.read_only:
            raise self._err(StoreError, "the store was opened read-only", key)
        plain = json.dumps({k: v.reveal() for k, v in values.items()}, sort_keys=True).encode()
        with self._lock:
            try:
                return self._write_locked(key, plain, expected_version)
            except sqlite3.OperationalError as exc:
                if "readonly" not in str(exc):
                    raise
                raise self._err(StoreError, f"{self.path} is read-only: nothing was written",
                                key, hint="values can be read from it; to write, make the "
                                "file and its directory writable (chmod u+w)") from None

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
            upgrade = not self._records_heads
            if upgrade:  # a format 1 store: record every object's newest version first
                for obj, newest in db.execute("SELECT object, MAX(version) FROM versions "
                                              "GROUP BY object").fetchall():
                    self._put_head(obj, newest)
                nonce = os.urandom(12)
                check = nonce + self._aead.encrypt(nonce, FORMAT.encode(), _KEY_CHECK_AAD)
                db.execute("UPDATE meta SET value=? WHERE name='check'", (check,))
            self._put_head(key, new)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if upgrade:
            self._records_heads = True
        return str(new)

    def _put_head(self, key: str, version: int) -> None:
        nonce = os.urandom(12)
        head = nonce + self._aead.encrypt(nonce, str(version).encode(), _HEAD_AAD + key.encode())
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"head:{key}", head))

    def list_objects(self, prefix: str = "") -> list[str]:
        rows = self._db.execute("SELECT DISTINCT object FROM versions UNION SELECT "
                                "substr(name, 6) FROM meta WHERE name LIKE 'head:%' "
                                "ORDER BY 1")
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def history(self, key: str) -> list[VersionInfo]:
        with self._snapshot():
            rows = self._db.execute("SELECT version, created FROM versions WHERE object=? "
                                    "ORDER BY version", (key,)).fetchall()
            self._check_head(key, rows[-1][0] if rows else None)
        return [VersionInfo(str(v), datetime.fromisoformat(created), i == len(rows) - 1)
                for i, (v, created) in enumerate(rows)]

    def health(self) -> Health:
        count = self._db.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
        return Health(True, f"{self.path}: {count} versions, key verified")

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)


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

    def list_objects(self, prefix: str = "") -> list[str]:
        return []

    def history(self, key: str) -> list[VersionInfo]:
        return []

    def health(self) -> Health:
        return Health(False, f"{self.path} does not exist yet (provision creates it)")
