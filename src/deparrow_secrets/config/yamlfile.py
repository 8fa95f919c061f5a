"""YAML loading that remembers where every key was, so errors can name file and line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deparrow_secrets.errors import InputError

KeyPath = tuple[str | int, ...]

def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class Located:
    """Plain data (dicts, lists, scalars) plus the 1-based line of every key path.

    A document read by the fast parser (`load_yaml`) carries its text instead of its
    lines: they are computed by the round-trip parser the first time one is asked for,
    which is when there is an error to report.
    """

    def __init__(self, data: Any, file: str, lines: dict[KeyPath, int] | None = None,
                 *, text: str | None = None) -> None:
        self.data = data
        self.file = file
        self._lines = lines if lines is not None or text is not None else {}
        self._text = text

    @property
    def lines(self) -> dict[KeyPath, int]:
        if self._lines is None:
            self._lines = _lines_of(self._text or "")
        return self._lines

    def line(self, path: KeyPath) -> int | None:
        lines = self.lines
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
        return lines.get(())

    def error(self, cls: type[InputError], path: KeyPath, message: str,
              hint: str | None = None) -> InputError:
        return cls(message, file=self.file, line=self.line(path),
                   key_path=format_path(path), hint=hint)


def plain_with_lines(node: Any, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    import contextlib

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


MAX_YAML_BYTES = 1024 * 1024
"""Size limit of the configuration and the catalog (lint has its own, larger one)."""
MAX_YAML_DEPTH = 100
"""Nesting limit: Kubernetes objects stay far below; ruamel's composer recurses per level."""
MAX_ALIAS_NODES = 100_000
"""How many nodes alias expansion may add (an alias bomb adds billions)."""

# Patterns of the slow path, as text: `re` compiles (and caches) them on first use, not
# at import, which every command pays for.
_QUOTED = r"'[^'\n]*'|\"[^\"\n]*\""


class YamlProblem(Exception):
    """Why a YAML text is refused: position and kind only, never the text itself.

    A plain class, as Located: every command imports this module, and a dataclass costs
    about half a millisecond of start-up (its methods are compiled at import)."""

    def __init__(self, kind: str, line: int | None = None, limit: bool = False) -> None:
        super().__init__(kind)
        self.kind = kind
        self.line = line
        self.limit = limit
        """Refused for a bound (size, depth, aliases), not for its syntax."""

    def __str__(self) -> str:
        return self.kind


def read_bounded(path: Path, limit: int) -> str:
    """The UTF-8 text of `path`, refused (YamlProblem) when over `limit` bytes or not UTF-8.

    At most `limit + 1` bytes are read, so an oversize file costs no time.
    """
    with path.open("rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise YamlProblem(f"file is larger than the {limit // 1024} KiB limit", limit=True)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlProblem("not UTF-8 text (a byte that is not UTF-8)", line) from None


def _problem_from(exc: Exception) -> YamlProblem:
    """A parser error as position and kind: ruamel's text quotes source lines, aliases,
    anchors and values, none of which may reach a message about a file that can hold
    secrets."""
    from ruamel.yaml.error import MarkedYAMLError

    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "invalid syntax").strip().splitlines()
        text = " ".join(re.sub(_QUOTED, "", problem[0] if problem else "").split())
        if text.startswith("found duplicate key"):
            text = "duplicate key"
        return YamlProblem(text.rstrip(" :,") or "invalid syntax", line)
    if isinstance(exc, RecursionError):
        return YamlProblem("nesting too deep", limit=True)
    return YamlProblem(f"cannot parse ({type(exc).__name__})")


def check_bounds(text: str, max_depth: int = MAX_YAML_DEPTH,
                 max_alias_nodes: int = MAX_ALIAS_NODES) -> None:
    """Refuse (YamlProblem) nesting deeper than `max_depth` and alias expansion that adds
    more than `max_alias_nodes` nodes, from the event stream (the parser does not
    recurse and expands nothing), before anything is built from the text."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        ScalarEvent,
    )

    flow = _flow_depth(text, max_depth) if "[" in text or "{" in text else 0
    aliased = re.search(_ALIAS, text, re.MULTILINE) is not None
    if not aliased and _block_depth_bound(text) + flow < max_depth:
        return  # no alias, and too shallow to break the bound: no event pass needed
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, nodes so far] of each open collection
    expanded = 0
    try:
        for event in YAML(typ="rt").parse(text):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, DocumentStartEvent):
                sizes.clear()
                continue
            if isinstance(event, CollectionStartEvent):
                stack.append([event.anchor, 1])
                if len(stack) > max_depth:
                    raise YamlProblem(f"nested deeper than {max_depth} levels", line, limit=True)
                continue
            if isinstance(event, CollectionEndEvent):
                anchor, size = stack.pop()
            elif isinstance(event, ScalarEvent):
                anchor, size = event.anchor, 1
            elif isinstance(event, AliasEvent):
                anchor, size = None, sizes.get(event.anchor, 0)
                if event.anchor not in sizes:
                    if any(open_anchor == event.anchor for open_anchor, _ in stack):
                        raise YamlProblem("alias inside the node it refers to", line, limit=True)
                    raise YamlProblem("undefined alias", line)
                expanded += size
                if expanded > max_alias_nodes:
                    raise YamlProblem(f"aliases expand to more than {max_alias_nodes} "
                                      "nodes", line, limit=True)
            else:
                continue
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
    except YamlProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - ruamel's errors, reduced to position and kind
        raise _problem_from(exc) from None


_BRACKET = r"[\[\]{}]"
# An alias starts a node: at the start of a line, or after a space or a flow indicator.
# `secret/data/*` or `arn:...:*` are not aliases; a `*` in a comment or a quoted string
# may match, which only costs the event pass.
_ALIAS = r"(?:^|[\s\[{,])\*"


def _flow_depth(text: str, max_depth: int) -> int:
    """The deepest flow nesting (`[[[...`), counted from the brackets alone and refused
    beyond `max_depth`: ruamel's scanner is quadratic in open flow collections, so 5,000
    of them would take seconds to reach the event check. Brackets inside quoted strings
    count too: a false alarm needs more than `max_depth` unbalanced ones."""
    depth = deepest = 0
    for match in re.finditer(_BRACKET, text):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                raise YamlProblem(f"nested deeper than {max_depth} levels", line, limit=True)
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    return deepest


def _block_depth_bound(text: str) -> int:
    """An upper bound of block nesting: a nested block mapping is indented further, and
    a sequence with a mapping in it takes two more columns or a `- ` (`? `) indicator on
    the same line (`- - - x`), so no level comes for free."""
    deepest = 0
    for line in text.splitlines():
        body = line.lstrip(" ")
        indicators = body.count("- ") + body.count("? ") + body.endswith(("-", "?"))
        deepest = max(deepest, len(line) - len(body) + 2 * indicators)
    return deepest + 3


def parse_documents(text: str) -> Iterator[Any]:
    """ruamel round-trip nodes of every document of `text`, bounded (`check_bounds`);
    any parser error or warning becomes a YamlProblem that quotes nothing."""
    from ruamel.yaml import YAML

    check_bounds(text)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    with warnings.catch_warnings():
        # ReusedAnchorWarning and friends print source lines (values) to stderr.
        warnings.simplefilter("ignore")
        try:
            yield from yaml.load_all(text)
        except Exception as exc:  # noqa: BLE001 - reduced to position and kind
            raise _problem_from(exc) from None


def load_yaml(path: Path, error_cls: type[InputError] = InputError,
              limit: int = MAX_YAML_BYTES) -> Located:
    """Parse one YAML document; syntax errors, duplicate keys and hostile input (oversize,
    alias bomb, deep nesting) become `error_cls`."""
    name = str(path)
    try:
        text = read_bounded(path, limit)
    except FileNotFoundError as exc:
        raise error_cls("file not found", file=name,
                        hint="check the path, or run from the project directory") from exc
    except OSError as exc:
        raise error_cls(f"cannot read file: {exc.__class__.__name__}", file=name) from None
    except YamlProblem as problem:
        raise error_cls(f"cannot read file: {problem.kind}", file=name, line=problem.line,
                        hint="this file must be UTF-8 YAML of a sensible size") from None
    data = fast_load(text)
    if data is not DECLINED:
        return Located(data, name, text=text)
    try:
        docs = list(parse_documents(text))
    except YamlProblem as problem:
        if problem.kind == "duplicate key":
            duplicate = _duplicate_key(text, problem.line)
            raise error_cls(f"duplicate key '{duplicate}'" if duplicate else "duplicate key",
                            file=name, line=problem.line,
                            hint="a key may appear once per mapping: remove or merge the "
                            "repeated one") from None
        hint = ("the tool refuses YAML this large, deep or alias-expanding: write the data "
                "out plainly" if problem.limit else "fix the YAML syntax at that line")
        raise error_cls(f"invalid YAML: {problem.kind}", file=name, line=problem.line,
                        hint=hint) from None
    if len(docs) > 1:
        raise error_cls("more than one YAML document", file=name,
                        hint="this file holds one document: remove the `---` separators")
    node = docs[0] if docs else None
    lines: dict[KeyPath, int] = {(): 1}
    return Located(plain_with_lines(node, (), lines), name, lines)


def _lines_of(text: str) -> dict[KeyPath, int]:
    """The line of every key path of `text` (one document), from the round-trip parser."""
    lines: dict[KeyPath, int] = {(): 1}
    try:
        docs = list(parse_documents(text))
    except YamlProblem:  # the fast parser accepted it, so this does not happen
        return lines
    plain_with_lines(docs[0] if docs else None, (), lines)
    return lines


# --------------------------------------------------------------------------- fast path
# ruamel's round-trip loader is pure Python and costs more than the rest of `render`
# together. Configuration and catalog files use a small part of YAML: block mappings and
# sequences, one-line flow collections, plain and one-line quoted scalars. `fast_load`
# reads exactly that part and declines (DECLINED) anything else, which then goes through
# ruamel as before: so every error, bound and YAML 1.2 rule of the round-trip loader
# stays, and for what it accepts the fast parser must return what `plain_with_lines` makes
# of ruamel's nodes (tests/render/test_yaml_fast.py compares the two).

DECLINED: Any = object()
"""What `fast_load` returns for text it leaves to the round-trip loader."""
FAST_MAX_DEPTH = 50
"""Deeper nesting is left to ruamel and `check_bounds` (the limit is MAX_YAML_DEPTH)."""


class _Declined(Exception):
    pass


_FAST_PATTERNS: dict[str, re.Pattern[str]] = {}


def _fast_pattern(name: str) -> re.Pattern[str]:
    """Compiled on first use: a module import costs start-up of every command."""
    pattern = _FAST_PATTERNS.get(name)
    if pattern is None:
        pattern = _FAST_PATTERNS[name] = re.compile(_FAST_SOURCES[name], re.X)
    return pattern


_FAST_SOURCES = {
    # A plain key that YAML 1.2 resolves to a string, then `:` and a space or the end.
    "key": r"([A-Za-z_][A-Za-z0-9_./-]*):(?:\ +|$)",
    "int": r"-?[1-9][0-9]{0,17}",  # ruamel reads 0 and -0 as ScalarInt
    # ruamel's YAML 1.2 implicit float, int, timestamp, merge and value resolvers: a plain
    # scalar matching one of them is not a plain string or a plain decimal, and is left to
    # ruamel (ScalarFloat, OctalInt, dates and such).
    "implicit": r"""
        [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN)
        |[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
         (?:[Tt]|[\ \t]+)[0-9][0-9]?
         :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
         (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
        |<<|=""",
}
# YAML 1.2 core schema words (`yes`, `on`, `y` are strings in 1.2).
_FAST_WORDS: dict[str, Any] = {"~": None, "null": None, "Null": None, "NULL": None,
                               "true": True, "True": True, "TRUE": True,
                               "false": False, "False": False, "FALSE": False}
_IMPLICIT_CHARACTERS = frozenset("0123456789_.+-eEoObBxXabcdefABCDEFinfINFaNtTZ: <=")
"""Every character the "implicit" pattern can match (`1h` has none: no regex needed)."""
# Characters that cannot start a plain scalar (YAML indicators).
_NOT_PLAIN_START = "-?:,[]{}#&*!|>'\"%@`"


def fast_load(text: str) -> Any:
    """The data of `text` if it is in the small subset of YAML the fast parser reads,
    exactly as the round-trip path would return it; DECLINED otherwise."""
    if not all(_fast_readable(ch) for ch in set(text)):
        return DECLINED
    lines: list[tuple[int, str]] = []  # (indent, content) of lines that are not blank
    for raw in text.split("\n"):
        content = raw.lstrip(" ")
        if content and not content.startswith("#"):
            lines.append((len(raw) - len(content), content))
    if not lines:
        return None
    try:
        value, end = _FastParser(lines).block(0, 0)
    except (_Declined, RecursionError):
        return DECLINED
    # A line left over is indented where no node ends (a plain scalar continued on the
    # next line, a bad indentation, `-` alone): ruamel reads it or reports it.
    return value if end == len(lines) else DECLINED


def _fast_readable(ch: str) -> bool:
    """Printable, not a tab, CR, BOM or NEL/LS/PS (line breaks to YAML 1.1 readers).
    Compared, not matched: compiling a regex of these ranges costs ~5 ms."""
    return (" " <= ch <= "~" or ch == "\n"
            or "\xa0" <= ch <= "\ud7ff" and ch not in "\u2028\u2029"
            or "\ue000" <= ch <= "\ufffd" and ch != "\ufeff" or ch >= "\U00010000")


class _FastParser:
    def __init__(self, lines: list[tuple[int, str]]) -> None:
        self.lines = lines

    def block(self, i: int, depth: int) -> tuple[Any, int]:
        """The block node starting at line `i`."""
        if depth > FAST_MAX_DEPTH:
            raise _Declined
        indent, content = self.lines[i]
        if content.startswith("- "):
            return self.sequence(i, indent, depth)
        return self.mapping(i, indent, depth)

    def mapping(self, i: int, indent: int, depth: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        lines, key_pattern = self.lines, _fast_pattern("key")
        while i < len(lines) and lines[i][0] == indent:
            match = key_pattern.match(lines[i][1])
            if match is None:
                raise _Declined
            key = match.group(1)
            if key in out or key in _FAST_WORDS:
                raise _Declined  # a duplicate (ruamel's error) or a non-string key
            rest = lines[i][1][match.end():]
            i += 1
            if rest and not rest.startswith("#"):
                out[key] = _inline(rest)
            elif i < len(lines) and lines[i][0] > indent:
                out[key], i = self.block(i, depth + 1)
            elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                out[key], i = self.sequence(i, indent, depth + 1)  # `key:` then `- item`
            else:
                out[key] = None
        return out, i

    def sequence(self, i: int, indent: int, depth: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        lines, key_pattern = self.lines, _fast_pattern("key")
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            rest = lines[i][1][2:]
            item = rest.lstrip(" ")
            if not item or item.startswith(("#", "- ")) or item == "-":
                raise _Declined  # an item on the next lines, or `- - x`
            if key_pattern.match(item):
                # `- key: value`: a mapping whose keys line up with this first one
                lines[i] = (indent + 2 + len(rest) - len(item), item)
                value, i = self.mapping(i, lines[i][0], depth + 1)
                out.append(value)
                continue
            out.append(_inline(item))
            i += 1
        return out, i


def _inline(rest: str) -> Any:
    """A value written after `key: ` or `- `, up to the end of its line."""
    if rest[0] in "[{":
        value, end = _flow(rest)
    elif rest[0] in "'\"":
        value, end = _quoted(rest, 0)
    else:
        cut = rest.find(" #")
        text = (rest if cut < 0 else rest[:cut]).rstrip(" ")
        return _plain(text, flow=False)
    tail = rest[end:]
    if tail and not (tail.startswith(" ") and tail.lstrip(" ")[:1] in ("", "#")):
        raise _Declined
    return value


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A one-line quoted scalar at `start`: its value and the index after it."""
    quote = text[start]
    if quote == '"':
        end = text.find('"', start + 1)
        if end < 0 or "\\" in text[start + 1:end]:
            raise _Declined  # escapes, or more than one line
        return text[start + 1:end], end + 1
    parts = []
    pos = start + 1
    while True:
        end = text.find("'", pos)
        if end < 0:
            raise _Declined
        parts.append(text[pos:end])
        if text[end + 1:end + 2] != "'":
            return "'".join(parts), end + 1
        pos = end + 2


def _plain(text: str, flow: bool) -> Any:
    if not text:
        raise _Declined
    first = text[0]
    if first in _NOT_PLAIN_START and not (first == "-" and text[1:2].isalnum()):
        raise _Declined
    if ": " in text or text.endswith(":") or (flow and "#" in text):
        raise _Declined  # a mapping, or a comment inside a flow collection
    if text in _FAST_WORDS:
        return _FAST_WORDS[text]
    if first in "-+.0123456789<=":
        if _fast_pattern("int").fullmatch(text):
            return int(text)
        if set(text) <= _IMPLICIT_CHARACTERS and _fast_pattern("implicit").fullmatch(text):
            raise _Declined
    return text


def _flow(text: str) -> tuple[Any, int]:
    """A one-line flow mapping or sequence of scalars at the start of `text` (nothing
    nested): its value and the index after the closing bracket."""
    mapping = text[0] == "{"
    closer = "}" if mapping else "]"
    out_map: dict[str, Any] = {}
    out_list: list[Any] = []
    pos = _skip_spaces(text, 1)
    if text[pos:pos + 1] == closer:
        return (out_map if mapping else out_list), pos + 1
    while True:
        if mapping:
            key, pos = _flow_scalar(text, pos, key=True)
            if not isinstance(key, str) or text[pos:pos + 2] != ": " or key in out_map:
                raise _Declined
            out_map[key], pos = _flow_scalar(text, _skip_spaces(text, pos + 2), key=False)
        else:
            item, pos = _flow_scalar(text, pos, key=False)
            out_list.append(item)
        pos = _skip_spaces(text, pos)
        separator = text[pos:pos + 1]
        if separator == closer:
            return (out_map if mapping else out_list), pos + 1
        if separator != ",":
            raise _Declined
        pos = _skip_spaces(text, pos + 1)  # a trailing comma leaves an empty scalar


def _flow_scalar(text: str, pos: int, key: bool) -> tuple[Any, int]:
    if text[pos:pos + 1] in ("'", '"'):
        return _quoted(text, pos)
    end = pos
    while end < len(text) and text[end] not in ",[]{}:":
        end += 1
    if key and text[end:end + 1] == ":":
        word = text[pos:end]
        if _fast_pattern("key").fullmatch(word + ":") is None or word in _FAST_WORDS:
            raise _Declined
        return word, end
    return _plain(text[pos:end].rstrip(" "), flow=True), end


def _skip_spaces(text: str, pos: int) -> int:
    while text[pos:pos + 1] == " ":
        pos += 1
    return pos


def _duplicate_key(text: str, line: int | None) -> str | None:
    """The key written at `line` (a configuration or catalog key, never a value)."""
    if line is None:
        return None
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None
    match = re.match(r"\s*(?:-\s+)?([A-Za-z0-9_.-]+)\s*:", lines[line - 1])
    return match.group(1) if match else None


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
