"""Every git command the tool runs, and git's view of the working tree.

One place runs git: each call has a timeout, and only paths and options go to git's
argv, never a value (history is searched in git's output, not with `-S`/`-G`). Without
git installed there is no repository to keep secrets out of: the queries
(`is_tracked`, `is_ignored`, `toplevel`, `ls_files`) answer "no repository" and files
are listed by walking the tree. A git that does not answer in time raises GitError
naming the fix, and so does the history stream whenever it cannot be read.

`list_files`: inside a repository, directories are listed with `git ls-files -co
--exclude-standard` (tracked plus untracked files that are not ignored), so
`.gitignore` is honoured the way git itself honours it. Outside one, the tree is walked
(skipping `.git`). Files named explicitly are taken as given, even inside an excluded
directory. Symlinks, and excluded directories (the embedded store, exported env files)
found while listing a directory, are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from deparrow_secrets.errors import DeparrowError, InputError

QUERY_TIMEOUT = 20.0
"""Seconds for a question about one path (rev-parse, ls-files of a path, check-ignore)."""
LIST_TIMEOUT = 120.0
"""Seconds for listing a whole tree."""
HISTORY_TIMEOUT = 1800.0
"""Seconds for reading the whole history (`git log --all -p`) of a large repository."""
READ_BLOCK = 16 * 1024 * 1024


class GitError(DeparrowError):
    """git was needed and could not answer; the hint says what to do."""


def _binary() -> str | None:
    return shutil.which("git")


def _run(cwd: Path, *args: str, timeout: float | None = None
         ) -> subprocess.CompletedProcess[bytes] | None:
    """git's completed process, or None when git is missing or cannot start.

    A git that does not answer within `timeout` (QUERY_TIMEOUT unless given) is a fault,
    not "no repository": whether a file is tracked must not be guessed.
    """
    git = _binary()
    if git is None:
        return None
    limit = QUERY_TIMEOUT if timeout is None else timeout
    try:
        return subprocess.run([git, *args], cwd=cwd, capture_output=True, check=False,
                              timeout=limit)
    except OSError:
        return None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not answer within {limit:.0f} s in {cwd}",
                       hint=f"check the repository with `git -C {cwd} status` (a stale "
                            "index.lock, a hung network filesystem), then try again"
                       ) from None


def _existing_dir(path: Path) -> Path:
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    return probe


def toplevel(path: Path) -> Path | None:
    """The root of the work tree holding `path` (which need not exist yet), if any."""
    done = _run(_existing_dir(path), "rev-parse", "--show-toplevel")
    if done is None or done.returncode != 0:
        return None
    return Path(done.stdout.decode("utf-8", "surrogateescape").strip())


def inside_work_tree(directory: Path) -> bool:
    done = _run(directory, "rev-parse", "--is-inside-work-tree")
    return done is not None and done.returncode == 0 and done.stdout.strip() == b"true"


def ls_files(directory: Path, pathspecs: Sequence[str] = (".",)) -> list[str] | None:
    """Tracked and untracked, not ignored, files under `directory` (relative to it);
    None without git or outside a work tree."""
    done = _run(directory, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                "--deduplicate", "--", *pathspecs, timeout=LIST_TIMEOUT)
    if done is None or done.returncode != 0:
        return None
    return [p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def is_tracked(path: Path) -> bool:
    root = toplevel(path)
    if root is None:
        return False
    done = _run(root, "ls-files", "--error-unmatch", "--", str(path.resolve()))
    return done is not None and done.returncode == 0


def is_ignored(path: Path) -> bool:
    """True outside a repository: there is nothing to keep the path out of."""
    root = toplevel(path)
    if root is None:
        return True
    done = _run(root, "check-ignore", "-q", "--no-index", "--", str(path.resolve()))
    return done is not None and done.returncode == 0


def refuse_tracked(path: Path) -> None:
    """Refuse to write secret values into a file git tracks."""
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


# --------------------------------------------------------------------------- history

HISTORY_FORMAT = "--format=%x01%H%x02%B%x03"
"""Each commit starts with \\x01<sha>\\x02<message>\\x03, then its patch."""


@contextmanager
def history_patches(directory: Path, timeout: float | None = None
                    ) -> Iterator[Iterator[bytes]]:
    """The output of `git log --all -p -U0` (every ref, each commit's added and removed
    lines and its message, in HISTORY_FORMAT) as blocks of bytes.

    Raises GitError when git is missing, `directory` is not in a work tree, git fails,
    or the whole log takes longer than `timeout` seconds (HISTORY_TIMEOUT unless given;
    git is stopped then).
    """
    timeout = HISTORY_TIMEOUT if timeout is None else timeout
    git = _binary()
    if git is None:
        raise GitError("--history needs git, which is not installed",
                       hint="install git, or scan without --history")
    if not inside_work_tree(directory):
        raise GitError(f"--history: {directory} is not inside a git repository",
                       hint="run scan from inside the repository (or without --history)")
    proc = subprocess.Popen(
        [git, "-c", "core.quotepath=off", "log", "--all", "-p", "-U0", "--no-color",
         "--no-ext-diff", "--no-textconv", "--no-renames", HISTORY_FORMAT],
        cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    finished = False

    def blocks() -> Iterator[bytes]:
        nonlocal finished
        assert proc.stdout is not None
        while chunk := proc.stdout.read(READ_BLOCK):
            yield chunk
        finished = True

    try:
        yield blocks()
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
        if not finished:
            proc.kill()  # the caller stopped early (or failed): git need not go on
        code = proc.wait()
    if expired.is_set():
        raise GitError(f"git log of {directory} took longer than {timeout:.0f} s",
                       hint="scan the working tree without --history, or scan the history "
                            "of a shallower clone")
    if finished and code != 0:
        raise GitError(f"git log failed in {directory} (exit code {code})",
                       hint=f"run `git -C {directory} log --all --oneline` to see git's error")


# --------------------------------------------------------------------------- files


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
        listed = ls_files(path) if inside_work_tree(path) else None
        if listed is None:
            for found in _walk(path):
                keep(found, explicit=False, skip=skip)
        else:
            for rel in listed:
                keep(path / rel, explicit=False, skip=skip)
    return sorted(out)
