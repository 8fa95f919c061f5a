"""The embedded store: conformance, encryption at rest, wrong key, tampering, crash safety."""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deparrow_secrets.errors import IntegrityError
from deparrow_secrets.providers.local.store import KEY_ENV, LocalStore
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.testing import StoreConformance


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    return tmp_path / "store.db"


class TestLocalConformance(StoreConformance):
    @pytest.fixture
    def store(self, store_path: Path):
        with LocalStore(store_path) as s:
            yield s

    @pytest.fixture
    def second_store(self, store_path: Path):
        with LocalStore(store_path) as s:
            yield s


def test_values_are_encrypted_at_rest(store_path: Path) -> None:
    plain = secrets.token_urlsafe(32)
    with LocalStore(store_path) as s:
        s.write("deparrow/dev", {"K": SecretValue(plain)}, None)
    for f in store_path.parent.iterdir():
        assert plain.encode() not in f.read_bytes(), f


def test_key_file_is_private(store_path: Path) -> None:
    LocalStore(store_path).close()
    key_file = store_path.with_suffix(".key")
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_wrong_key_is_refused(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalStore(store_path) as s:
        s.write("deparrow/dev", {"K": SecretValue(secrets.token_hex(8))}, None)
    monkeypatch.setenv(KEY_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    with pytest.raises(IntegrityError, match="wrong key"):
        LocalStore(store_path)


def test_malformed_key_is_refused(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(IntegrityError, match="not base64 of 32 bytes"):
        LocalStore(store_path)


def test_tampered_row_is_detected(store_path: Path) -> None:
    with LocalStore(store_path) as s:
        s.write("deparrow/dev", {"K": SecretValue(secrets.token_hex(8))}, None)
    db = sqlite3.connect(store_path)
    sealed = bytearray(db.execute("SELECT sealed FROM versions").fetchone()[0])
    sealed[0] ^= 0x01
    db.execute("UPDATE versions SET sealed=?", (bytes(sealed),))
    db.commit()
    db.close()
    with LocalStore(store_path) as s, pytest.raises(IntegrityError, match="tampered"):
        s.read("deparrow/dev")


def test_row_moved_to_other_object_is_detected(store_path: Path) -> None:
    with LocalStore(store_path) as s:
        s.write("deparrow/dev", {"K": SecretValue(secrets.token_hex(8))}, None)
    db = sqlite3.connect(store_path)
    db.execute("UPDATE versions SET object='deparrow/production'")
    db.commit()
    db.close()
    with LocalStore(store_path) as s, pytest.raises(IntegrityError):
        s.read("deparrow/production")


def test_not_a_database_is_clear(store_path: Path) -> None:
    store_path.write_bytes(os.urandom(4096))
    with pytest.raises(IntegrityError, match="not a readable store file"):
        LocalStore(store_path)


@pytest.mark.slow  # lets three writer processes run before it kills them: 1 s
def test_killed_mid_write_leaves_old_or_new(store_path: Path, tmp_path: Path) -> None:
    """A writer process SIGKILLed at random moments never leaves a mixed object."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {**os.environ, KEY_ENV: key}
    writer = tmp_path / "writer.py"
    writer.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from deparrow_secrets.secret import SecretValue
        from deparrow_secrets.providers.local.store import LocalStore
        s = LocalStore(Path({str(store_path)!r}))
        snap = s.read("obj")
        version = snap.version if snap else None
        n = 0
        print("ready", flush=True)
        while True:
            n += 1
            group = {{f"K{{i}}": SecretValue(f"gen{{n}}") for i in range(50)}}
            version = s.write("obj", group, version)
    """))
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    for delay in (0.05, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, str(writer)], env=env, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.environ[KEY_ENV] = key
        try:
            with LocalStore(store_path) as s:
                snap = s.read("obj")
        finally:
            del os.environ[KEY_ENV]
        assert snap is not None
        generations = {v.reveal() for v in snap.values.values()}
        assert len(generations) == 1, "an object mixes two writes"
        assert len(snap.values) == 50


def test_a_read_racing_a_writer_sees_one_snapshot(store_path: Path) -> None:
    """Another process commits between a read's two queries (the newest row, then the
    sealed newest-version record): the read must see one state, not report tampering."""
    with LocalStore(store_path) as writer, LocalStore(store_path) as reader:
        first = writer.write("obj", {"A": SecretValue(secrets.token_urlsafe(8))}, None)
        real_head = reader._head
        raced: list[str] = []

        def head_after_a_commit(key: str) -> int | None:
            if not raced:
                raced.append(writer.write("obj", {"A": SecretValue(secrets.token_urlsafe(8))},
                                          first))
            return real_head(key)

        reader._head = head_after_a_commit  # type: ignore[method-assign]
        snap = reader.read("obj")
        assert raced and snap is not None and snap.version == first
        assert [v.version for v in reader.history("obj")] == [first, raced[0]]
