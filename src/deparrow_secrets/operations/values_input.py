"""Reading user-supplied values from files and stdin, never from argv.

Errors name the file and line, never the line's content.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deparrow_secrets.errors import InputError
from deparrow_secrets.secret import SecretValue

_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)=(.*)")


def parse_env_text(text: str, source: str) -> dict[str, SecretValue]:
    """KEY=VALUE lines (`export` prefix, blank lines and # comments allowed)."""
    values: dict[str, SecretValue] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if not match:
            raise InputError("expected KEY=VALUE", file=source, line=number,
                             hint="one KEY=VALUE per line; # starts a comment")
        key, value = match.group(1), match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key in values:
            raise InputError(f"'{key}' is given twice", file=source, line=number)
        values[key] = SecretValue(value)
    return values


def parse_values(text: str, source: str) -> dict[str, SecretValue]:
    """A JSON object of strings, or KEY=VALUE lines."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", file=source, line=exc.lineno) \
                from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError("expected a JSON object of string values", file=source)
        return {k: SecretValue(v) for k, v in data.items()}
    return parse_env_text(text, source)


def read_values_file(path: Path) -> dict[str, SecretValue]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read values file ({exc.strerror})", file=str(path)) from None
    return parse_values(text, str(path))


def read_single_value(text: str) -> SecretValue:
    """One value from stdin or a file: a single trailing newline is not part of it."""
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return SecretValue(text)
