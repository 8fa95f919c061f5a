"""YAML loading that remembers where every key was, so errors can name file and line."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets.errors import InputError

KeyPath = tuple[str | int, ...]

_DUPLICATE = re.compile(r'found duplicate key "(.*?)" with value')


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass
class Located:
    """Plain data (dicts, lists, scalars) plus the 1-based line of every key path."""

    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, cls: type[InputError], path: KeyPath, message: str,
              hint: str | None = None) -> InputError:
        return cls(message, file=self.file, line=self.line(path),
                   key_path=format_path(path), hint=hint)


def plain_with_lines(node: Any, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            child = (*path, str(key))
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[child] = node.lc.key(key)[0] + 1
            out[str(key)] = plain_with_lines(value, child, lines)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            child = (*path, i)
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[child] = node.lc.item(i)[0] + 1
            out_list.append(plain_with_lines(value, child, lines))
        return out_list
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool | int | float) or node is None:
        return node
    return str(node)


def load_yaml(path: Path, error_cls: type[InputError] = InputError) -> Located:
    """Parse one YAML document; syntax errors and duplicate keys become `error_cls`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error_cls("file not found", file=name,
                        hint="check the path, or run from the project directory") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error_cls(f"cannot read file: {exc.__class__.__name__}", file=name) from exc
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        duplicate = _DUPLICATE.match(problem)
        if duplicate:
            # ruamel's text quotes both values; the message names the key only.
            raise error_cls(f"duplicate key '{duplicate.group(1)}'", file=name, line=line,
                            hint="a key may appear once per mapping: remove or merge the "
                            "repeated one") from None
        raise error_cls(f"invalid YAML: {problem}", file=name, line=line,
                        hint="fix the YAML syntax at that line") from None
    except YAMLError as exc:
        raise error_cls(f"invalid YAML: {exc.__class__.__name__}", file=name) from None
    lines: dict[KeyPath, int] = {(): 1}
    return Located(plain_with_lines(node, (), lines), name, lines)


class Checker:
    """Typed access to a Located document; every mistake raises one InputError."""

    def __init__(self, doc: Located, error_cls: type[InputError]) -> None:
        self.doc = doc
        self.error_cls = error_cls

    def fail(self, path: KeyPath, message: str, hint: str | None = None) -> InputError:
        return self.doc.error(self.error_cls, path, message, hint)

    def mapping(self, path: KeyPath, value: Any, allowed: list[str] | None = None,
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}",
                            hint="write `key: value` lines indented under "
                            + format_path(path) if path else "the file must be a mapping")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.fail((*path, key), f"unknown key '{key}'",
                                    hint="allowed keys here: " + ", ".join(allowed))
        for key in required:
            if value.get(key) in (None, ""):
                raise self.fail(path, f"missing required key '{key}'",
                                hint=f"add `{key}:` under {format_path(path)}")
        return value

    def string(self, path: KeyPath, value: Any, *, pattern: str | None = None,
               what: str | None = None) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"expected a string, got {_kind(value)}",
                            hint="write a single value here (quote it if in doubt)")
        text = str(value)
        if pattern is not None and not re.fullmatch(pattern, text):
            raise self.fail(path, f"'{text}' is not a valid {what or 'value'}",
                            hint=f"it must match {pattern}")
        return text

    def choice(self, path: KeyPath, value: Any, allowed: list[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            shown = f"'{value}'" if isinstance(value, str) else _kind(value)
            raise self.fail(path, f"{shown} is not allowed", hint="allowed values: "
                            + ", ".join(allowed))
        return value

    def boolean(self, path: KeyPath, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}",
                            hint="allowed values: true, false")
        return value

    def integer(self, path: KeyPath, value: Any, minimum: int = 0,
                maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, got {_kind(value)}",
                            hint="write a number without quotes")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(path, f"{value} is out of range", hint=f"use a number {bound}")
        return value

    def string_list(self, path: KeyPath, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}",
                            hint="write the items as [A, B] or as `- A` lines")
        return [self.string((*path, i), item) for i, item in enumerate(value)]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
