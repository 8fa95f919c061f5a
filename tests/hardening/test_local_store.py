"""The embedded store's state is said, never repaired by accident (issue 9, point 11)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deparrow_secrets.errors import IntegrityError
from deparrow_secrets.providers.local.store import KEY_ENV, KEY_FILE_ENV, LocalStore
from deparrow_secrets.secret import SecretValue


def state(root: Path) -> Path:
    return root / ".deparrow-secrets"


def files(root: Path) -> dict[str, str]:
    """Every path under `root` with its content's hash and mode: any change shows."""
    return {p.relative_to(root).as_posix():
            (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            + f" {p.stat().st_mode:o}"
            for p in sorted(root.rglob("*")) if ".git/" not in p.as_posix()}


READ_ONLY = [["status"], ["status", "-o", "json"], ["verify", "--env", "dev"],
             ["get", "REDIS_PASSWORD"], ["history", "REDIS_PASSWORD"],
             ["provision", "--env", "dev", "--dry-run"], ["scan"]]


def test_read_only_commands_create_nothing_in_a_store(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = files(project)
    assert sorted(p.name for p in state(project).iterdir()) == [
        "ledger.head", "ledger.jsonl", "ledger.key", "store.db", "store.key"]
    for args in [*READ_ONLY, ["audit"], ["audit", "--verify"]]:
        cli(*args)
    assert files(project) == before  # no -wal/-shm, no mode or content change


def test_status_does_not_turn_a_foreign_sqlite_file_into_a_store(project: Path, cli) -> None:
    state(project).mkdir(mode=0o700)
    db = sqlite3.connect(state(project) / "store.db")
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES (?)", (secrets.token_hex(8),))
    db.commit()
    db.close()
    before = files(project)
    for args in (["status"], ["provision", "--env", "dev"], ["get", "REDIS_PASSWORD"]):
        run = cli(*args)
        assert run.code == 6, run.text
        assert "is an SQLite file but not a deparrow-secrets store" in run.err
    assert files(project) == before


def test_a_zero_byte_store_is_not_reinitialised(project: Path, cli) -> None:
    state(project).mkdir(mode=0o700)
    (state(project) / "store.db").write_bytes(b"")
    (state(project) / "store.key").write_bytes(
        base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    os.chmod(state(project) / "store.key", 0o600)
    before = files(project)
    for args in (["status"], ["verify", "--env", "dev"], ["provision", "--env", "dev"]):
        run = cli(*args)
        assert run.code == 6, run.text
        assert "is empty (0 bytes), not a store" in run.err
    assert files(project) == before


def test_no_new_key_is_made_for_an_existing_store(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    (state(project) / "store.key").unlink()
    before = files(project)
    for args in (["status"], ["provision", "--env", "dev"], ["set", "REDIS_PASSWORD"]):
        run = cli(*args, stdin=secrets.token_urlsafe(32))
        assert run.code == 6, run.text
        assert "the key of this store is missing" in run.err
        assert "wrong key" not in run.err
    assert files(project) == before


def test_a_key_file_others_can_read_gets_the_chmod_to_run(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    key_file = state(project) / "store.key"
    os.chmod(key_file, 0o644)
    run = cli("status")
    assert run.code == 0, run.text
    assert f"warning: the store key file {key_file} can be read by other users" in run.err
    assert f"chmod 600 {key_file}" in run.err
    assert oct(key_file.stat().st_mode & 0o777) == "0o644"  # said, not changed
    os.chmod(key_file, 0o600)
    assert "warning" not in cli("status").err


def test_a_missing_key_file_named_by_the_variable_is_an_error(
        project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli) -> None:
    missing = tmp_path / "nowhere" / "store.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(missing))
    for args in (["provision", "--env", "dev"], ["status"]):
        run = cli(*args)
        assert run.code == 2, run.text
        assert f"{KEY_FILE_ENV} names {missing}, which is not a file" in run.err
    assert not missing.exists() and not missing.parent.exists()
    assert not (state(project) / "store.db").exists()


def test_a_row_copied_over_the_current_version_is_tampering(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "store.db"
    old, new = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    with LocalStore(path) as store:
        store.write("deparrow/dev", {"K": SecretValue(old)}, None)
        store.write("deparrow/dev", {"K": SecretValue(new)}, "1")
    db = sqlite3.connect(path)
    nonce, sealed = db.execute("SELECT nonce, sealed FROM versions WHERE version=1").fetchone()
    db.execute("UPDATE versions SET nonce=?, sealed=? WHERE version=2", (nonce, sealed))
    db.commit()
    db.close()
    with LocalStore(path) as store:
        with pytest.raises(IntegrityError, match="version 2 failed authentication"):
            store.read("deparrow/dev")
        assert store.read("deparrow/dev", "1").values["K"].reveal() == old


def test_deleting_the_newest_rows_is_detected(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "store.db"
    with LocalStore(path) as store:
        store.write("deparrow/dev", {"K": SecretValue(secrets.token_urlsafe(16))}, None)
        store.write("deparrow/dev", {"K": SecretValue(secrets.token_urlsafe(16))}, "1")
        store.write("other", {"K": SecretValue(secrets.token_urlsafe(16))}, None)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM versions WHERE object='deparrow/dev' AND version=2")
    db.execute("DELETE FROM versions WHERE object='other'")
    db.commit()
    db.close()
    with LocalStore(path, create=False, read_only=True) as store:
        for key in ("deparrow/dev", "other"):
            with pytest.raises(IntegrityError, match="versions were removed"):
                store.read(key)
            with pytest.raises(IntegrityError, match="versions were removed"):
                store.history(key)
        assert "other" in store.list_objects()


def test_the_head_record_cannot_be_moved_between_objects(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "store.db"
    with LocalStore(path) as store:
        for key in ("a", "b"):
            store.write(key, {"K": SecretValue(secrets.token_urlsafe(16))}, None)
    db = sqlite3.connect(path)
    head_a = db.execute("SELECT value FROM meta WHERE name='head:a'").fetchone()[0]
    db.execute("UPDATE meta SET value=? WHERE name='head:b'", (head_a,))
    db.commit()
    db.close()
    with LocalStore(path) as store, pytest.raises(IntegrityError, match="tampered"):
        store.read("b")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's own temporary root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="deparrow-ro-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        for sub, _dirs, _files in os.walk(path):
            os.chmod(sub, 0o755)  # made read-only by the test; removable again
        shutil.rmtree(path)


@pytest.mark.skipif(not hasattr(os, "seteuid"), reason="needs POSIX users")
def test_a_read_only_store_is_readable_not_corrupt(shared_dir: Path) -> None:
    """The store as another user sees it: file and directory not writable (as on a
    read-only mount). Read commands work; nothing calls it corrupt."""
    project = shared_dir / "project"
    project.mkdir(mode=0o755)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    value = secrets.token_urlsafe(24)
    os.chmod(project, 0o755)
    (project / ".deparrow-secrets").mkdir(mode=0o755)
    os.chmod(project / ".deparrow-secrets", 0o755)
    os.environ[KEY_ENV] = key
    try:
        with LocalStore(project / ".deparrow-secrets" / "store.db") as store:
            store.write("deparrow/dev", {"REDIS_PASSWORD": SecretValue(value)}, None)
    finally:
        del os.environ[KEY_ENV]
    os.chmod(project / ".deparrow-secrets" / "store.db", 0o444)
    os.chmod(project / ".deparrow-secrets", 0o555)
    reader = textwrap.dedent("""
        import os, sys
        from deparrow_secrets.cli import main
        def run(*args):
            try:
                main(list(args))
            except SystemExit as exc:
                print(f"exit {exc.code}", flush=True)
        if os.geteuid() == 0:
            run("status")  # load every module while /root is still readable
            run("get", "REDIS_PASSWORD")
            os.seteuid(65534)  # then drop to a user that cannot write the store
        print("=== dropped ===", flush=True)
        run("status")
        run("get", "REDIS_PASSWORD", "--reveal")
        run("set", "REDIS_PASSWORD")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPARROW_SECRETS_")}
    env[KEY_ENV] = key
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run([sys.executable, "-c", reader], cwd=project, env=env,
                          input=secrets.token_urlsafe(32), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout.split("=== dropped ===\n", 1)[1]
    status, get, set_, _ = out.split("exit ")
    assert "REDIS_PASSWORD" in status and value not in status
    assert get.startswith("0\n") and value in get
    assert set_.startswith("0\n") and not _.startswith(("0", "70")), out
    assert "corrupt" not in done.stderr and "not a readable store" not in done.stderr
    assert sorted(os.listdir(project / ".deparrow-secrets")) == ["store.db", "store.key"] \
        or sorted(os.listdir(project / ".deparrow-secrets")) == ["store.db"]


def test_a_huge_version_number_is_not_found(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.errors import NotFoundError

    monkeypatch.delenv(KEY_ENV, raising=False)
    with LocalStore(tmp_path / "store.db") as store:
        store.write("deparrow/dev", {"K": SecretValue(secrets.token_urlsafe(16))}, None)
        for version in ("9" * 19, "9" * 40, "²", "1.0", "-1"):
            with pytest.raises(NotFoundError):
                store.read("deparrow/dev", version)


def test_a_linked_store_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.errors import InputError

    monkeypatch.delenv(KEY_ENV, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "store.db").symlink_to(elsewhere / "store.db")
    for read_only in (False, True):
        with pytest.raises(InputError, match="symbolic link"):
            LocalStore(state_dir / "store.db", read_only=read_only)
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in state_dir.iterdir()) == ["store.db"]


def test_a_format_1_store_is_read_as_it_is_and_upgraded_by_its_next_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.providers.local import store as local

    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "store.db"
    monkeypatch.setattr(local, "FORMAT", local.LEGACY_FORMAT)
    with LocalStore(path) as store:  # made as an earlier version of the tool made it
        store._records_heads = False
        store.write("a", {"K": SecretValue(secrets.token_urlsafe(16))}, None)
        store.write("a", {"K": SecretValue(secrets.token_urlsafe(16))}, "1")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE name LIKE 'head:%'")
    db.commit()
    db.close()
    monkeypatch.undo()
    monkeypatch.delenv(KEY_ENV, raising=False)
    before = path.read_bytes()
    with LocalStore(path, read_only=True) as store:
        assert store.read("a") is not None and store.read("a").version == "2"
    assert path.read_bytes() == before  # reading does not upgrade
    with LocalStore(path) as store:
        store.write("b", {"K": SecretValue(secrets.token_urlsafe(16))}, None)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM versions WHERE object='a' AND version=2")
    db.commit()
    db.close()
    with LocalStore(path) as store, pytest.raises(IntegrityError, match="versions were removed"):
        store.read("a")
