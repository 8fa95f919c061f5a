"""The change ledger: who changed what in which environment, when, and how it ended.

Operations that write to a store record into it with one call, `record(...)`, or with
the `Change` context manager, which records the outcome (ok, or failed with the error
class and exit code) when its block ends. Values never enter a record: each remote
object's content before and after is represented by an HMAC keyed with the project's
ledger key (`chain.LedgerKey.data_hash`). A record that cannot be written is a warning
on stderr, never an error: the store write it describes has already happened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from deparrow_secrets.errors import DeparrowError, notice
from deparrow_secrets.secret import SecretValue

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import EnvironmentConfig
    from deparrow_secrets.ledger.chain import LedgerFiles, LedgerKey
    from deparrow_secrets.project import Project

__all__ = ["Change", "ObjectChange", "files", "outcome_of", "record"]

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


@dataclass
class ObjectChange:
    """One remote object a command wrote: its versions and contents before and after.

    The contents are only hashed (keyed) into the record, never stored.
    """

    remote_key: str
    version_before: str | None
    version_after: str | None
    values_before: Mapping[str, SecretValue] | None = field(default=None, repr=False)
    values_after: Mapping[str, SecretValue] | None = field(default=None, repr=False)
    keys: Sequence[str] = ()


def files(project: Project) -> LedgerFiles:
    # Imported when used: a command that records nothing loads none of it, and an import
    # that fails (a venv no longer readable after a privilege drop) is caught by record().
    from deparrow_secrets.ledger.chain import LedgerFiles

    return LedgerFiles(project.config.root, project.config.state_dir)


def outcome_of(exc: BaseException | None) -> dict[str, Any]:
    """ok, or failed with the error's class and the exit code the CLI gives it (never
    its message)."""
    if exc is None:
        return {"status": "ok"}
    if isinstance(exc, DeparrowError):
        code = exc.exit_code
    elif isinstance(exc, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    else:
        code = EXIT_INTERNAL
    return {"status": "failed", "error": type(exc).__name__, "exitCode": code}


def _os_user() -> str:
    """The login name as getpass.getuser() finds it, without importing getpass."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def record(project: Project, env: EnvironmentConfig, command: str, *,
           keys: Sequence[str], objects: Sequence[ObjectChange] = (),
           outcome: Mapping[str, Any] | None = None, facts: Mapping[str, Any] | None = None,
           principal: str | None = None, started: str | None = None) -> dict[str, Any] | None:
    """Append one record; the stored record, or None (with a warning) when it could not
    be written. `facts` is free-form JSON (rotate: ESO sync times, workloads rolled)."""
    state_dir = project.config.state_dir
    try:
        ledger = files(project)
        if not ledger.exists():
            _ignore_state_dir(project, ledger)
        key = ledger.key_for_writing()
        content: dict[str, Any] = {
            "time": _now(), "command": command, "env": env.name, "provider": env.provider,
            "user": _os_user(), "uid": os.geteuid(), "host": os.uname().nodename,
            "keys": sorted(set(keys)),
            "objects": [_object_entry(key, env.name, o) for o in objects],
            "outcome": dict(outcome or {"status": "ok"}),
        }
        if started is not None:
            content["started"] = started
        if principal:
            content["principal"] = principal
        if facts:
            content["facts"] = dict(facts)
        return ledger.append(content, key)
    except DeparrowError as exc:
        _warn(command, env.name, exc.message, exc.hint)
    except OSError as exc:
        _warn(command, env.name, f"{exc.strerror or type(exc).__name__}"
              + (f": {exc.filename}" if exc.filename else ""),
              f"make {state_dir} a directory you can write")
    except Exception as exc:  # noqa: BLE001 - the store write stands; say so, then go on
        _warn(command, env.name, f"internal error {type(exc).__name__}",
              "report it; the change itself is in the store")
    return None


def _warn(command: str, env: str, reason: str, hint: str | None) -> None:
    notice(f"{command} in {env}: the change ledger could not record this run: {reason}"
           + (f" (fix: {hint})" if hint else "")
           + "; the store holds whatever the command reported")


def _object_entry(key: LedgerKey, env: str, change: ObjectChange) -> dict[str, Any]:
    context = f"{env}\x00{change.remote_key}"
    return {
        "remoteKey": change.remote_key,
        "before": change.version_before,
        "after": change.version_after,
        "hashBefore": key.data_hash(context, change.values_before)
        if change.values_before else None,
        "hashAfter": key.data_hash(context, change.values_after)
        if change.values_after else None,
        "keys": sorted(set(change.keys)),
    }


def _ignore_state_dir(project: Project, ledger: LedgerFiles) -> None:
    """The ledger key lives beside the ledger: keep the directory out of git, as the
    embedded store does, before the first file is made in it."""
    from deparrow_secrets import gitrepo, safefiles

    if safefiles.inside(project.config.root, ledger.state_dir):
        gitrepo.ensure_ignored(ledger.ledger, "/.deparrow-secrets/",
                                project.config.root / ".gitignore")


class Change:
    """Collects what one command wrote and records it when the block ends.

        with Change(project, env, "set", keys=[key]) as change:
            version = store.write(...)
            change.wrote(remote_key, snap, version, values)

    A run that ends without an exception is recorded (a provision that found every
    value present too). A failure is recorded, with its class and exit code, when it
    comes after `attempting` (a store write was tried, so the store may have changed);
    a failure before that (bad input, nothing to roll back, a store that could not be
    read) changed nothing and is not. The exception propagates unchanged.
    """

    def __init__(self, project: Project, env: EnvironmentConfig, command: str,
                 keys: Sequence[str] = ()) -> None:
        self.project = project
        self.env = env
        self.command = command
        self.keys: list[str] = list(keys)
        self.objects: dict[str, ObjectChange] = {}
        self.facts: dict[str, Any] = {}
        self.principal: str | None = None
        self.attempted = False
        self.started = _now()

    def attempting(self, remote_key: str, version_before: str | None,
                   values_before: Mapping[str, SecretValue] | None,
                   keys: Sequence[str] = ()) -> None:
        """Called just before a store write: a run that fails from here on is recorded
        (with this object's outcome unknown); one that fails before changed nothing."""
        self.attempted = True
        self.objects[remote_key] = ObjectChange(remote_key, version_before, None,
                                                values_before, None, list(keys) or self.keys)

    def wrote(self, remote_key: str, version_before: str | None,
              values_before: Mapping[str, SecretValue] | None, version_after: str,
              values_after: Mapping[str, SecretValue], keys: Sequence[str] = ()) -> None:
        self.objects[remote_key] = ObjectChange(remote_key, version_before, version_after,
                                                values_before, values_after,
                                                list(keys) or self.keys)

    def fact(self, name: str, value: Any) -> None:
        self.facts[name] = value

    def __enter__(self) -> Change:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and not self.attempted:
            return  # bad input, nothing to do, a store that could not be read: no change
        record(self.project, self.env, self.command, keys=self.keys,
               objects=list(self.objects.values()), outcome=outcome_of(exc),
               facts=self.facts, principal=self.principal, started=self.started)
