"""safefiles: the one way the tool writes files (issue 9, point 1)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from deparrow_secrets import safefiles
from deparrow_secrets.errors import InputError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_colliding_temporary_name_is_never_opened_through_its_link(
        tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the random part of the temporary name is guessed, O_EXCL|O_NOFOLLOW
    refuse the planted link instead of writing through it."""
    root = tmp_path / "root"
    root.mkdir()
    trap = elsewhere / "trap"
    trap.write_bytes(b"")
    monkeypatch.setattr(safefiles, "random_suffix", lambda: "guessed")
    (root / f".file.tmp{os.getpid()}.guessed").symlink_to(trap)
    with pytest.raises(InputError, match="temporary file"):
        safefiles.write_file(root, root / "file", secrets.token_bytes(16))
    assert trap.read_bytes() == b"" and not (root / "file").exists()
    # A regular file left by a crash is not reused either.
    os.unlink(root / f".file.tmp{os.getpid()}.guessed")
    (root / f".file.tmp{os.getpid()}.guessed").write_bytes(b"leftover")
    with pytest.raises(InputError, match="temporary file"):
        safefiles.write_file(root, root / "file", b"new")
    assert (root / f".file.tmp{os.getpid()}.guessed").read_bytes() == b"leftover"


def test_write_file_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    data = secrets.token_bytes(64)
    safefiles.write_file(tmp_path, tmp_path / "a" / "b" / "file", data)
    assert (tmp_path / "a/b/file").read_bytes() == data
    assert mode(tmp_path / "a/b/file") == 0o600
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["file"]
    with pytest.raises(InputError, match="outside the project"):
        safefiles.write_file(tmp_path / "a", tmp_path / "other", data)
    assert not (tmp_path / "other").exists()
    (tmp_path / "a/b/dir").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        safefiles.write_file(tmp_path, tmp_path / "a/b/dir", data)
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["dir", "file"]


def test_create_file_never_replaces(tmp_path: Path) -> None:
    first, second = secrets.token_bytes(16), secrets.token_bytes(16)
    assert safefiles.create_file(tmp_path, tmp_path / "key", first) is True
    assert safefiles.create_file(tmp_path, tmp_path / "key", second) is False
    assert (tmp_path / "key").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_private_directory_of_another_mode_is_made_0700(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o755)
    os.chmod(tmp_path / "state", 0o775)
    safefiles.write_file(tmp_path, tmp_path / "state/f", b"x", private_dir=True)
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state/f") == 0o600


def test_the_rename_is_made_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is fsynced before the rename and its directory after it, so a crash
    leaves the old file or the new one, never an empty name."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(safefiles.os, "fsync", fsync)
    safefiles.write_file(tmp_path, tmp_path / "f", b"x")
    assert synced == ["file", "dir"]
    synced.clear()
    assert safefiles.create_file(tmp_path, tmp_path / "g", b"y")
    assert synced == ["file", "dir"]
    # Regenerated output (the rendered tree) is replaced just as atomically, unsynced.
    synced.clear()
    safefiles.write_file(tmp_path, tmp_path / "f", b"z", mode=0o644, durable=False)
    assert synced == [] and (tmp_path / "f").read_bytes() == b"z"
    assert mode(tmp_path / "f") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "g"]


def test_write_tree_writes_and_deletes_nothing_outside_the_project(tmp_path: Path) -> None:
    from deparrow_secrets.render.tree import write_tree
    from deparrow_secrets.render.yamlout import GENERATED

    project, sibling = tmp_path / "project", tmp_path / "sibling"
    project.mkdir()
    sibling.mkdir()
    (sibling / "old.yaml").write_text(GENERATED + "kind: X\n", encoding="utf-8")
    with pytest.raises(InputError, match="outside the project"):
        write_tree(sibling, {"new.yaml": GENERATED}, project)
    assert sorted(p.name for p in sibling.iterdir()) == ["old.yaml"]
    assert write_tree(project / "k8s", {"a.yaml": GENERATED}, project) == ["a.yaml"]


def test_version_ids_are_checked_before_any_store_sees_them() -> None:
    from deparrow_secrets.errors import NotFoundError
    from deparrow_secrets.operations.history import check_version_id

    for ok in ("1", "42", "3f2a9c1e-0b7d-4f7e-9a43-2c1d5e6f7a8b", "0a1b2c3d4e5f" * 2):
        check_version_id(ok)
    for huge in ("9" * 19, "9" * 99):
        with pytest.raises(NotFoundError):
            check_version_id(huge)
    for bad in ("", "-1", "../x", "1 2", "²", "x" * 101):
        with pytest.raises(InputError):
            check_version_id(bad)
