"""Which files to read: git's view of the working tree when inside a repository.

Inside a repository, directories are listed with `git ls-files -co --exclude-standard`
(tracked plus untracked files that are not ignored), so `.gitignore` is honoured the
way git itself honours it. Outside one, the tree is walked (skipping `.git`). Files
named explicitly are taken as given, even inside an excluded directory. Symlinks, and
excluded directories (the embedded store, exported env files) found while listing a
directory, are skipped. Only paths go to git's argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from deparrow_secrets.errors import DeparrowError


def _git_ls_files(cwd: Path, pathspecs: Sequence[str]) -> list[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
             "--deduplicate", "--", *pathspecs],
            cwd=cwd, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _inside_repo(path: Path) -> bool:
    git = shutil.which("git")
    if git is None:
        return False
    try:
        done = subprocess.run([git, "rev-parse", "--is-inside-work-tree"], cwd=path,
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def _walk(directory: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _excluded(path: Path, excluded: Sequence[Path]) -> bool:
    return any(path == d or path.is_relative_to(d) for d in excluded)


def list_files(paths: Sequence[Path], excluded: Sequence[Path] = (),
               suffixes: Iterable[str] | None = None,
               names: Iterable[str] = ()) -> list[Path]:
    """Absolute paths of the regular files under `paths`, sorted and without duplicates.

    `suffixes`/`names` filter files found in directories (a file named explicitly is
    always kept). Paths that do not exist raise DeparrowError (exit 2).
    """
    wanted_suffixes = tuple(s.lower() for s in suffixes) if suffixes is not None else None
    wanted_names = frozenset(names)
    excluded = [Path(os.path.abspath(d)) for d in excluded]
    out: dict[Path, None] = {}

    def keep(path: Path, explicit: bool, skip: Sequence[Path] = ()) -> None:
        if (not explicit and _excluded(path, skip)) or path.is_symlink() \
                or not path.is_file():
            return
        if not explicit and wanted_suffixes is not None and not (
            path.name.lower().endswith(wanted_suffixes) or path.name in wanted_names
        ):
            return
        out[path] = None

    for given in paths:
        path = Path(os.path.abspath(given))
        if not path.exists():
            raise DeparrowError(f"{given}: no such file or directory")
        if path.is_file():
            # Named explicitly (as the pre-commit hook names a force-added export file):
            # read, whatever a walk of the tree would skip.
            keep(path, explicit=True)
            continue
        # A directory named explicitly is read even if it is (inside) an excluded one.
        skip = [d for d in excluded if d != path and not path.is_relative_to(d)]
        listed = _git_ls_files(path, ["."]) if _inside_repo(path) else None
        if listed is None:
            for found in _walk(path):
                keep(found, explicit=False, skip=skip)
        else:
            for rel in listed:
                keep(path / rel, explicit=False, skip=skip)
    return sorted(out)


def display_path(path: Path, cwd: Path | None = None) -> str:
    """`path` relative to the working directory when inside it, else absolute."""
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)
