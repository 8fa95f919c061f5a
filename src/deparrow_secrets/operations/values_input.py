"""Reading user-supplied values from files and stdin, never from argv.

Errors name the file and line, never the line's content.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deparrow_secrets.errors import InputError
from deparrow_secrets.secret import SecretValue

if TYPE_CHECKING:
    from deparrow_secrets.config.catalog import Catalog

MAX_VALUE_BYTES = 1024 * 1024  # a Kubernetes Secret holds at most 1 MiB
# A values file holds a few values; anything far larger is a mistake, not input.
MAX_INPUT_BYTES = 64 * MAX_VALUE_BYTES

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
        values[key] = checked_value(value, source, key, number)
    return values


def parse_values(text: str, source: str) -> dict[str, SecretValue]:
    """A JSON object of strings, or KEY=VALUE lines."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicates(source))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", file=source, line=exc.lineno) \
                from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError("expected a JSON object of string values", file=source)
        return {k: checked_value(v, source, k) for k, v in data.items()}
    return parse_env_text(text, source)


def _refuse_duplicates(source: str) -> Callable[[list[tuple[str, object]]], dict[str, object]]:
    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in items:
            if key in out:
                raise InputError(f"'{key}' is given twice", file=source,
                                 hint="keep one of them; nothing was written")
            out[key] = value
        return out
    return pairs


def checked_value(value: str, source: str, key: str | None = None,
                  line: int | None = None) -> SecretValue:
    """`value` as a SecretValue if it is text a store keeps exactly; InputError naming
    where it came from (never the value) otherwise."""
    if "\0" in value:
        raise InputError("the value contains a NUL byte, which no store keeps as given",
                         file=source, line=line, key_path=key)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON \\ud800 escape
        raise InputError("the value is not valid Unicode text", file=source, line=line,
                         key_path=key) from None
    if size > MAX_VALUE_BYTES:
        raise InputError(f"the value has {size} bytes; a Kubernetes Secret holds at most "
                         f"{MAX_VALUE_BYTES} (1 MiB)", file=source, line=line, key_path=key)
    return SecretValue(value)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text exactly, or InputError naming `source` and the offset of the bad byte."""
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"more than {MAX_INPUT_BYTES // MAX_VALUE_BYTES} MiB of input",
                         file=source, hint="values are text of at most 1 MiB each")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start} cannot be decoded); values must "
                         "be text, exactly", file=source,
                         hint="for binary material store its base64 form") from None


def read_stdin(source: str = "<stdin>") -> str:
    """All of stdin as UTF-8 text, decoded strictly (never with replacement characters)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes underneath (tests, embedding)
        return sys.stdin.read(MAX_INPUT_BYTES + 1)
    return decode_text(buffer.read(MAX_INPUT_BYTES + 1), source)


def read_text_file(path: Path, what: str = "values file") -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror})", file=str(path)) from None
    return decode_text(data, str(path))


def check_known_key(catalog: Catalog, key: str) -> None:
    """InputError unless `key` names a value of the catalog."""
    if key not in catalog.values:
        raise InputError(f"'{key}' is not in the catalog",
                         hint="known keys: " + ", ".join(catalog.values))


def check_policy(catalog: Catalog, key: str, value: SecretValue, *, force: bool = False,
                 offer_force: bool = False) -> None:
    """The catalog's policy for a value a user supplies, the same for `set` and
    `provision`: not empty, at least `minLength` characters (unless `force`)."""
    if not value:
        raise InputError(f"empty value for {key}", hint="nothing was written")
    min_length = catalog.values[key].min_length
    if len(value) < min_length and not force:
        raise InputError(f"the value for {key} has {len(value)} characters; its policy asks "
                         f"for at least {min_length}", hint="nothing was written; use a "
                         "longer value" + (", or --force" if offer_force else ""))


def read_values_file(path: Path) -> dict[str, SecretValue]:
    return parse_values(read_text_file(path), str(path))


def read_single_value(text: str, source: str = "<stdin>") -> SecretValue:
    """One value from stdin or a file: a single trailing newline is not part of it."""
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return checked_value(text, source)


def supplied_values(values_file: str | None, from_stdin: bool) -> dict[str, SecretValue]:
    """The values a user supplies to provision or rotate: a values file, stdin, or both
    (a key given in both is refused, naming neither value)."""
    supplied: dict[str, SecretValue] = {}
    if values_file:
        supplied.update(read_values_file(Path(values_file)))
    if from_stdin:
        for key, value in parse_values(read_stdin(), "<stdin>").items():
            if key in supplied:
                raise InputError(f"'{key}' is given both in {values_file} and on stdin",
                                 hint="give each value once; nothing was written")
            supplied[key] = value
    return supplied
