"""Keeping exported values out of git: refuse tracked paths, make sure paths are ignored.

Only paths go to git's argv, never values.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from deparrow_secrets.errors import InputError


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run([git, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def repo_root(path: Path) -> Path | None:
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    done = _git(probe, "rev-parse", "--show-toplevel")
    if done is None or done.returncode != 0:
        return None
    return Path(done.stdout.strip())


def is_tracked(path: Path) -> bool:
    root = repo_root(path)
    if root is None:
        return False
    done = _git(root, "ls-files", "--error-unmatch", "--", str(path.resolve()))
    return done is not None and done.returncode == 0


def is_ignored(path: Path) -> bool:
    root = repo_root(path)
    if root is None:
        return True
    done = _git(root, "check-ignore", "-q", "--no-index", "--", str(path.resolve()))
    return done is not None and done.returncode == 0


def refuse_tracked(path: Path) -> None:
    if is_tracked(path):
        raise InputError("refusing to write secret values into a file tracked by git",
                         file=str(path),
                         hint=f"run `git rm --cached {path}` and commit, then try again")


def ensure_ignored(path: Path, pattern: str, gitignore: Path) -> bool:
    """Add `pattern` to `gitignore` unless git already ignores `path`; True if added."""
    if is_ignored(path):
        return False
    from deparrow_secrets import safefiles

    try:
        existing = safefiles.read_bytes(gitignore.parent, gitignore).decode(
            "utf-8", "surrogateescape")
    except FileNotFoundError:
        existing = ""
    if pattern in existing.splitlines():
        return False
    sep = "" if not existing or existing.endswith("\n") else "\n"
    safefiles.write_file(gitignore.parent, gitignore,
                         (existing + sep + pattern + "\n").encode("utf-8", "surrogateescape"),
                         mode=safefiles.PUBLIC_FILE)
    return True
