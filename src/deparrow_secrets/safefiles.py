"""Writing files without being steered by links, whatever the umask.

Every file the tool writes goes through here. A path is reached from a trusted root
(the project root) one component at a time with O_NOFOLLOW, holding a descriptor of
each directory, so a symlinked directory or file planted in the project (a committed
`overlays/dev/secrets` link, a `.NAME.tmpPID` link) is refused, never followed.
Files are written to a temporary name created with O_EXCL|O_NOFOLLOW, fsynced, and
renamed into place; the directory is fsynced after. Modes are set with fchmod, so
umask 000 still gives 0700 private directories and 0600 private files.

`write_file(..., durable=False)` skips both fsyncs, for output the tool regenerates
from the configuration (the rendered tree, as git's checkout writes a work tree): the
rename still leaves each file old or new to every reader, and after a power loss
`render --check` finds what the disk lost and `render` writes it again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from deparrow_secrets.errors import InputError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PUBLIC_DIR = 0o755
PUBLIC_FILE = 0o644
_TMP_ATTEMPTS = 8
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def random_suffix() -> str:
    """Eight hex digits for a temporary name (os.urandom: `secrets` costs start-up)."""
    return os.urandom(4).hex()


def _abs(path: Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def relative_parts(root: Path, path: Path) -> tuple[str, ...]:
    """The components of `path` below `root` (lexically); InputError when outside it."""
    root, path = _abs(root), _abs(path)
    if path != root and not path.is_relative_to(root):
        raise InputError(f"{path} is outside the project {root}",
                         hint="keep every path the tool writes inside the project directory")
    return path.relative_to(root).parts


def inside(root: Path, path: Path) -> bool:
    root, path = _abs(root), _abs(path)
    return path == root or path.is_relative_to(root)


def _link_error(shown: Path) -> InputError:
    return InputError(f"{shown} is a symbolic link; the tool does not read or write "
                      "secrets through links", file=None,
                      hint=f"replace it with a real directory or file (e.g. `rm {shown}`), "
                      "then run the command again")


def _open_child(parent_fd: int, name: str, shown: Path) -> int:
    """A descriptor of directory `name` in `parent_fd`, never through a link."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except (NotADirectoryError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise exc from None
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(shown) from None
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{shown} is not a directory",
                             hint="move that file out of the way, then run the command "
                             "again") from None
        raise


def open_dir(root: Path, directory: Path, *, create: bool, private: bool = False) -> int:
    """A descriptor of `directory`, reached from `root` without following any link.

    With `create`, missing directories are made (0755, or 0700 for a `private` last
    component). With `create` (a writing command) a `private` directory that exists must
    belong to this user, and is made 0700. FileNotFoundError when
    a component is missing and `create` is false. The caller closes the descriptor.
    """
    parts = relative_parts(root, directory)
    root = _abs(root)
    if create:
        root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR if private and not parts
                   else PUBLIC_DIR)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = root
    try:
        for i, name in enumerate(parts):
            shown = shown / name
            last = i == len(parts) - 1
            mode = PRIVATE_DIR if private and last else PUBLIC_DIR
            try:
                child = _open_child(fd, name, shown)
            except FileNotFoundError:
                if not create:
                    raise
                made = True
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    made = False
                child = _open_child(fd, name, shown)
                if made:
                    os.fchmod(child, mode)  # the umask may have taken bits away or not
            os.close(fd)
            fd = child
        if private:
            _check_private_dir(fd, shown, repair=create)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_private_dir(fd: int, shown: Path, repair: bool) -> None:
    if not repair:
        return  # reading another user's store (a read-only copy, a mount) changes nothing
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise InputError(f"{shown} belongs to another user (uid {st.st_uid})",
                         hint="use a directory of your own for the tool's state and "
                         "exported files")
    if st.st_mode & 0o077:
        os.fchmod(fd, PRIVATE_DIR)


def check_path(root: Path, path: Path) -> None:
    """Refuse `path` if any existing component below `root` is a symbolic link.

    Creates nothing; stops at the first component that does not exist.
    """
    parts = relative_parts(root, path)
    if not parts:
        return
    try:
        fd = open_dir(root, _abs(path).parent, create=False)
    except FileNotFoundError:
        return
    try:
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(fd)
    if stat.S_ISLNK(st.st_mode):
        raise _link_error(_abs(path))


def _temp_file(dir_fd: int, name: str, mode: int) -> tuple[int, str]:
    for _ in range(_TMP_ATTEMPTS):
        tmp = f".{name}.tmp{os.getpid()}.{random_suffix()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        os.fchmod(fd, mode)  # the mode itself, whatever the umask took away
        return fd, tmp
    raise InputError(f"cannot create a temporary file for {name}: every name tried exists",
                     hint="remove the leftover .NAME.tmp* entries from that directory")


def _write_temp(dir_fd: int, name: str, data: bytes, mode: int, durable: bool = True) -> str:
    fd, tmp = _temp_file(dir_fd, name, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return tmp


def write_file(root: Path, path: Path, data: bytes, *, mode: int = PRIVATE_FILE,
               private_dir: bool = False, durable: bool = True) -> None:
    """Replace `path` (below `root`) atomically with `data`, the file `mode` from birth.

    A link at `path` itself is replaced by the file, never written through. Without
    `durable`, nothing is fsynced (see the module text for what may use that).
    """
    path = _abs(path)
    dir_fd = open_dir(root, path.parent, create=True, private=private_dir)
    try:
        tmp = _write_temp(dir_fd, path.name, data, mode, durable)
        try:
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            os.unlink(tmp, dir_fd=dir_fd)
            if isinstance(exc, IsADirectoryError | NotADirectoryError) or \
                    os.path.isdir(path):
                raise InputError(f"{path} is a directory, where the tool writes a file",
                                 hint="move that directory away, then run the command "
                                 "again") from None
            raise
        if durable:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_file(root: Path, path: Path, data: bytes, *, mode: int = PRIVATE_FILE,
                private_dir: bool = False) -> bool:
    """Create `path` with `data` unless it exists (complete or absent, never partial).

    Returns False when something already exists at `path`.
    """
    path = _abs(path)
    dir_fd = open_dir(root, path.parent, create=True, private=private_dir)
    try:
        tmp = _write_temp(dir_fd, path.name, data, mode)
        try:
            os.link(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd,
                    follow_symlinks=False)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp, dir_fd=dir_fd)
        os.fsync(dir_fd)
        return True
    finally:
        os.close(dir_fd)


def read_bytes(root: Path, path: Path, limit: int | None = None) -> bytes:
    """The content of regular file `path`, reached without following links.

    FileNotFoundError when it does not exist; IsADirectoryError for a directory.
    """
    path = _abs(path)
    dir_fd = open_dir(root, path.parent, create=False)
    try:
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise _link_error(path) from None
            raise
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(mode):
            raise InputError(f"{path} is not a regular file")
        return fh.read() if limit is None else fh.read(limit)


def remove_file(root: Path, path: Path) -> None:
    """Delete file `path` below `root` (a link there is removed, not followed)."""
    path = _abs(path)
    dir_fd = open_dir(root, path.parent, create=False)
    try:
        os.unlink(path.name, dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_append(root: Path, path: Path, *, mode: int = PRIVATE_FILE,
                private_dir: bool = False) -> tuple[int, bool]:
    """A read-write O_APPEND descriptor of regular file `path`, created with `mode` when
    absent (whatever the umask), never reached or opened through a link.

    Returns (descriptor, created). For logs that grow a line at a time: each write
    lands at the end, after every earlier one. The caller closes the descriptor.
    """
    path = _abs(path)
    dir_fd = open_dir(root, path.parent, create=True, private=private_dir)
    flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path.name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            try:
                fd = os.open(path.name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise _link_error(path) from None
                raise
            created = False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path} is not a regular file",
                                 hint="move it out of the way, then run the command again")
            if created:
                os.fchmod(fd, mode)
                os.fsync(dir_fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, created
    finally:
        os.close(dir_fd)
