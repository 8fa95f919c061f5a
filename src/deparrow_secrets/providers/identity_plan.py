"""What `policy` and `setup` return: pieces of an identity setup, and a setup report.

A plan is a list of pieces, each with a format (`json`, `hcl`, `yaml`, `shell`, or
`guide` for prose plus commands); the output formats the CLI offers for a provider
follow from the pieces it has. The helpers the providers build their pieces with
(quoted shell lines, heredocs) are here; a whole plan as `policy` prints it is
`policy/output.py`, so that tests and other callers get the exact same artefacts.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from deparrow_secrets.errors import InputError
from deparrow_secrets.record import field_names

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import EnvironmentConfig

_View = TypeVar("_View")

OUTPUTS = ("text", "json", "hcl", "yaml", "shell")
PLACEHOLDER_NOTE = "values in <ANGLE_BRACKETS> are placeholders: replace them before use"


@dataclass(frozen=True)
class Piece:
    key: str  # JSON key (camelCase)
    title: str  # heading in text output
    format: str  # json | hcl | yaml | shell | guide
    data: Any  # JSON-able: a document, HCL text, a list of manifests, command lines...
    notes: tuple[str, ...] = ()


@dataclass
class Plan:
    environment: str
    provider: str
    pieces: list[Piece] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def piece(self, key: str) -> Piece:
        for p in self.pieces:
            if p.key == key:
                return p
        raise KeyError(key)

    @property
    def outputs(self) -> list[str]:
        formats = {p.format for p in self.pieces}
        return [o for o in OUTPUTS if o in ("text", "json") or o in formats]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"environment": self.environment, "provider": self.provider}
        for p in self.pieces:
            out[p.key] = p.data
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class Change:
    item: str  # what was looked at, e.g. "policy deparrow-secrets-policy"
    action: str  # created, updated, enabled, attached, unchanged, skipped, printed, would ...
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.action not in ("unchanged", "skipped", "printed") and not \
            self.action.startswith("would ")


@dataclass
class SetupReport:
    environment: str
    provider: str
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # printed, not run (Azure)

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    def add(self, item: str, action: str, detail: str = "") -> None:
        if self.dry_run and action in ("created", "updated", "attached", "enabled"):
            action = "would " + {"created": "create", "updated": "update",
                                 "attached": "attach", "enabled": "enable"}[action]
        self.changes.append(Change(item, action, detail))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "environment": self.environment, "provider": self.provider, "dryRun": self.dry_run,
            "changed": self.changed,
            "changes": [{"item": c.item, "action": c.action, "detail": c.detail}
                        for c in self.changes],
            "warnings": list(self.warnings)}
        if self.commands:
            out["commands"] = list(self.commands)
        return out

    def summary(self) -> str:
        """The closing line of `setup`'s text output."""
        if self.commands and not self.changed:
            what = "commands printed, nothing applied"
        elif self.dry_run:
            planned = sum(1 for c in self.changes if c.action.startswith("would "))
            what = f"{planned} change(s) planned, nothing applied (dry run)"
        else:
            changed = sum(1 for c in self.changes if c.changed)
            what = f"{changed} change(s)" if changed else "nothing changed"
        return f"{self.environment} ({self.provider}): {what}"


# --------------------------------------------------------------------------- rendering


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def shell_line(*argv: str, continuation: bool = True) -> str:
    """One command, arguments quoted for POSIX shells; long ones split over lines.

    An argument that starts with `"$` (a variable or command substitution written
    here, in double quotes) is kept as it is.
    """
    def q(arg: str) -> str:
        return arg if arg.startswith('"$') else shlex.quote(arg)

    words = [q(a) for a in argv]
    if not continuation or len(" ".join(words)) <= 100:
        return " ".join(words)
    # the command words on the first line, then one option (with its value) or one
    # key=value argument per line
    def starts_group(word: str) -> bool:
        return word.startswith("-") or "=" in word

    lines: list[str] = [words[0]]
    i = 1
    while i < len(words) and not starts_group(words[i]):
        lines[0] += " " + words[i]
        i += 1
    while i < len(words):
        part = words[i]
        if part.startswith("-") and i + 1 < len(words) and not starts_group(words[i + 1]):
            part += " " + words[i + 1]
            i += 1
        lines.append("  " + part)
        i += 1
    return " \\\n".join(lines)


def heredoc(command: str, body: str, marker: str = "EOF") -> str:
    """`command <<'EOF'` with `body` (quoted marker: no expansion inside)."""
    return f"{command} <<'{marker}'\n{body.rstrip()}\n{marker}"


def shell_script(lines: Iterable[str]) -> str:
    return "\n".join(lines).rstrip() + "\n"


class Options:
    """Everything `policy` and `setup` take besides the configuration: `dry_run`, and
    the values of the identity options the providers declare
    (`Provider.identity_options`), by their `attr`.

    Options knows none of those options: each provider reads its own (`text`, `flag`,
    or `read` into a typed record), so a provider from another distribution gets its
    options through as the built-in ones do. Files (CA certificate, token reviewer JWT)
    are paths: their content never comes from argv and the JWT is never printed.
    """

    __slots__ = ("_values", "dry_run")

    def __init__(self, *, dry_run: bool = False, **values: str | bool | None) -> None:
        self.dry_run = dry_run
        self._values = {attr: value for attr, value in values.items()
                        if value is not None and value is not False}

    def text(self, attr: str) -> str | None:
        """The value given for option `attr`, or None."""
        value = self._values.get(attr)
        if isinstance(value, bool):
            raise TypeError(f"option {attr} is a flag: read it with flag()")
        return value

    def flag(self, attr: str) -> bool:
        return self._values.get(attr) is True

    def given(self) -> list[str]:
        """The options given a value (flags that are set), by attr."""
        return list(self._values)

    def read(self, view: type[_View]) -> _View:
        """These options as `view`: a record of the options one provider takes, by attr,
        each with its default (None, or False for a flag), and `dry_run`. Options of
        other providers are left out (`policy` refuses them before a provider reads)."""
        names = field_names(view)
        return view(**{attr: value for attr, value in self._values.items() if attr in names},
                    **({"dry_run": self.dry_run} if "dry_run" in names else {}))


def printed_audit_setup(env: EnvironmentConfig, *, file_path: str | None,
                        socket_address: str | None, dry_run: bool, item: str, detail: str,
                        commands: list[str]) -> SetupReport:
    """`setup --audit` where nothing can be enabled from here: the commands, printed."""
    if file_path or socket_address:
        raise InputError(f"--audit-file and --audit-socket are for vault, not "
                         f"{env.provider}", hint=f"deparrow-secrets setup --env {env.name} "
                         "--audit")
    report = SetupReport(env.name, env.provider, dry_run=dry_run)
    report.add(item, "printed", detail)
    report.commands += commands
    return report
