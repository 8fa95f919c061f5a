"""gitrepo, the one module that runs git: every call has a timeout; history needs git and
says how to proceed without it; queries degrade to "no repository"."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets import gitrepo
from deparrow_secrets.gitrepo import GitError, history_patches

Run = Any


def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A `git` that runs `script` (sh) instead; its argv is in "$*"."""
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(gitrepo, "_binary", lambda: str(fake))
    return fake


def read_all(directory: Path, timeout: float | None = None) -> bytes:
    with history_patches(directory, timeout) as stream:
        return b"".join(stream)


def test_a_history_that_outlasts_its_timeout_stops_git(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, monkeypatch,
             'case "$*" in *rev-parse*) echo true;; *) exec sleep 30;; esac\n')
    started = time.monotonic()
    with pytest.raises(GitError, match="took longer than") as caught:
        read_all(tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10
    assert caught.value.hint and "without --history" in caught.value.hint


def test_a_failing_git_log_is_an_error_naming_the_command_to_see_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, monkeypatch, 'case "$*" in *rev-parse*) echo true;; *) exit 3;; esac\n')
    with pytest.raises(GitError, match="exit code 3") as caught:
        read_all(tmp_path)
    assert caught.value.hint and f"git -C {tmp_path} log" in caught.value.hint


def test_history_without_git_or_outside_a_repository(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GitError, match="not inside a git repository") as caught:
        read_all(tmp_path)
    assert caught.value.hint
    monkeypatch.setattr(gitrepo, "_binary", lambda: None)
    with pytest.raises(GitError, match="needs git, which is not installed") as caught:
        read_all(tmp_path)
    assert caught.value.hint and "install git" in caught.value.hint


def test_a_history_read_in_full_ends_cleanly(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subject = secrets.token_hex(8)
    subprocess.run(["git", "-c", "user.email=dev@deparrow.invalid", "-c", "user.name=dev",
                    "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m",
                    subject], cwd=tmp_path, check=True)
    out = read_all(tmp_path)
    assert out.startswith(b"\x01") and subject.encode() in out


def test_a_hanging_git_is_a_fault_naming_the_fix(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a file is tracked is never guessed: export would write values into it."""
    fake_git(tmp_path, monkeypatch, "exec sleep 30\n")
    monkeypatch.setattr(gitrepo, "QUERY_TIMEOUT", 0.3)
    monkeypatch.setattr(gitrepo, "LIST_TIMEOUT", 0.3)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.env").write_text("A=1\n", encoding="utf-8")
    started = time.monotonic()
    for query in (lambda: gitrepo.refuse_tracked(tree / "a.env"),
                  lambda: gitrepo.is_ignored(tree / "a.env"),
                  lambda: gitrepo.list_files([tree]), lambda: gitrepo.ls_files(tree)):
        with pytest.raises(GitError, match="did not answer within") as caught:
            query()
        assert caught.value.hint and "git -C" in caught.value.hint
    assert time.monotonic() - started < 10


def test_without_git_there_is_no_repository(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """lint and scan walk the tree; nothing is tracked, everything is as good as ignored."""
    monkeypatch.setattr(gitrepo, "_binary", lambda: None)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for name in ("a.yaml", "sub/b.yaml"):
        (tree / name).write_text("x: 1\n", encoding="utf-8")
    assert gitrepo.list_files([tree]) == [tree / "a.yaml", tree / "sub" / "b.yaml"]
    assert gitrepo.ls_files(tree) is None and gitrepo.toplevel(tree) is None
    assert not gitrepo.is_tracked(tree / "a.yaml") and gitrepo.is_ignored(tree / "a.yaml")


def test_scan_history_outside_a_repository_says_how_to_proceed(
        tmp_path: Path, cli: Callable[..., Run]) -> None:
    assert cli("quickstart", cwd=tmp_path).code == 0
    run = cli("scan", "--history", cwd=tmp_path)
    assert run.code == 2
    assert "not inside a git repository" in run.err and "hint:" in run.err
