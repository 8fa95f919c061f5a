"""The files lint reads: YAML (multi-document, with the line of every key path), JSON
policy documents, Vault HCL policies and env files; plus inline ignore comments.

YAML and JSON are parsed with ruamel's round-trip loader through the same conversion
the configuration loader uses (`config.yamlfile`), so every key path has a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets.config.yamlfile import (
    KeyPath,
    Located,
    YamlProblem,
    parse_documents,
    plain_with_lines,
    read_bounded,
)
from deparrow_secrets.findings import ERROR, Rule, declare

RULES = declare(
    Rule("yaml-invalid", ERROR, "A YAML (or JSON) file that cannot be parsed.",
         "Fix the syntax at the reported line."),
    Rule("file-unreadable", ERROR,
         "A file lint was asked to check and cannot read: not UTF-8, over the size limit, "
         "or not readable.",
         "Make it UTF-8 text of a sensible size (or exclude it from the paths linted)."),
)

YAML_SUFFIXES = (".yaml", ".yml")
LINT_SUFFIXES = (*YAML_SUFFIXES, ".json", ".hcl", ".env")
LINT_NAMES = (".env",)
WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                            "Job", "CronJob", "ReplicationController"})
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})

_IGNORE = re.compile(r"#\s*deparrow-secrets:\s*ignore\[([^\]]*)\]")
_MAX_LINT_BYTES = 5 * 1024 * 1024


def ignore_comments(text: str) -> dict[int, frozenset[str]]:
    """Line (1-based) -> rule ids of `# deparrow-secrets: ignore[rule-a, rule-b]`."""
    out: dict[int, frozenset[str]] = {}
    if "deparrow-secrets:" not in text:
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        match = _IGNORE.search(line)
        if match:
            out[number] = frozenset(r.strip() for r in match.group(1).split(",") if r.strip())
    return out


def environment_of(path: Path) -> str | None:
    """`overlays/<env>/...` -> env; None for base and other files."""
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "overlays":
            return parts[i + 1]
    return None


@dataclass
class SourceFile:
    path: Path
    display: str
    text: str
    env: str | None
    reported: bool
    ignores: dict[int, frozenset[str]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        name = self.path.name.lower()
        if name.endswith(YAML_SUFFIXES) or self.path.name == "Kustomization":
            return "yaml"
        if name.endswith(".json"):
            return "json"
        if name.endswith(".hcl"):
            return "hcl"
        if name.endswith(".env") or name == ".env" or name.startswith(".env."):
            return "env"
        return "other"

    def ignored(self, rule: str, line: int | None) -> bool:
        for number in (line, (line or 0) - 1) if line else (1,):
            rules = self.ignores.get(number)
            if rules and (rule in rules or "*" in rules or "all" in rules):
                return True
        return False


@dataclass
class Document:
    """One object of a file: a YAML document, an item of a `v1 List`, or a JSON file."""

    file: SourceFile
    index: int
    located: Located
    base: KeyPath = ()

    @property
    def data(self) -> Any:
        data = self.located.data
        for part in self.base:
            data = data[part]
        return data

    def line(self, path: KeyPath = ()) -> int | None:
        return self.located.line((*self.base, *path))

    @property
    def api_version(self) -> str:
        value = self.data.get("apiVersion") if isinstance(self.data, Mapping) else None
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        value = self.data.get("kind") if isinstance(self.data, Mapping) else None
        return value if isinstance(value, str) else ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        meta = self.data.get("metadata") if isinstance(self.data, Mapping) else None
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return name if isinstance(name, str) else ""

    @property
    def is_manifest(self) -> bool:
        return bool(self.api_version and self.kind)

    @property
    def is_kustomization(self) -> bool:
        if self.kind in ("Kustomization", "Component"):
            return True
        return (not self.is_manifest and self.file.path.name in KUSTOMIZATION_FILES
                and isinstance(self.data, Mapping))

    def get(self, path: KeyPath) -> Any:
        node = self.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return None
            elif not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def describe(self) -> str:
        return f"{self.kind} {self.name}".strip() if self.kind else "document"


@dataclass
class ParseError:
    file: SourceFile
    line: int | None
    message: str
    limit: bool = False


@dataclass(frozen=True)
class Unreadable:
    """A file lint was asked to read and could not: a finding, not silence."""

    path: Path
    display: str
    reported: bool
    line: int | None
    reason: str


def read_source(path: Path, display: str,
                reported: bool) -> SourceFile | Unreadable | None:
    """The file as text; Unreadable when lint cannot read it; None for a JSON file that
    is neither a policy nor a manifest (a lock file, say), which is not lint's business
    even when it is large."""
    try:
        text = read_bounded(path, _MAX_LINT_BYTES)
    except YamlProblem as problem:
        if path.name.lower().endswith(".json") and not _interesting_head(path):
            return None
        return Unreadable(path, display, reported, problem.line, problem.kind)
    except OSError as exc:
        return Unreadable(path, display, reported, None,
                          f"cannot be read ({exc.strerror or type(exc).__name__})")
    return SourceFile(path, display, text, environment_of(path), reported, ignore_comments(text))


def _interesting_head(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return True
    return b'"Statement"' in head or b'"apiVersion"' in head


def _root_line(node: Any) -> int:
    try:
        return int(node.lc.line) + 1
    except (AttributeError, TypeError):
        return 1


def _interesting_json(text: str) -> bool:
    """Only IAM policy documents and Kubernetes objects matter among JSON files."""
    return '"Statement"' in text or '"apiVersion"' in text


def _parse_json(source: SourceFile) -> list[Document]:
    """Fallback for JSON that YAML rejects (tabs): no line numbers beyond the first."""
    import json

    try:
        data = json.loads(source.text)
    except ValueError:
        return []
    return list(_split_list(source, 0, Located(data, source.display, {(): 1})))


def parse_structured(source: SourceFile) -> tuple[list[Document], ParseError | None]:
    """YAML (all documents) or JSON; a syntax error ends the file (earlier docs kept).

    JSON is read by the YAML loader too (for line numbers); JSON files that are neither
    policies nor Kubernetes objects are skipped, and their syntax errors are not ours.
    """
    if source.kind == "json":
        if not _interesting_json(source.text):
            return [], None
        docs, error = _parse_yaml(source)
        if error is None or error.limit:
            return docs, error
        return _parse_json(source), None
    return _parse_yaml(source)


def _parse_yaml(source: SourceFile) -> tuple[list[Document], ParseError | None]:
    """Every document, bounded in size, depth and alias expansion; a parser error is
    reduced to position and kind (`config.yamlfile.parse_documents`), since the file may
    hold a Secret and ruamel's texts quote source lines."""
    docs: list[Document] = []
    try:
        for index, node in enumerate(parse_documents(source.text)):
            if node is None:
                continue
            lines: dict[KeyPath, int] = {(): _root_line(node)}
            located = Located(plain_with_lines(node, (), lines), source.display, lines)
            docs.extend(_split_list(source, index, located))
    except YamlProblem as problem:
        if ("{{" in source.text or "{%" in source.text) and not problem.limit:
            return docs, None  # a template (Helm, Jinja): not YAML until rendered
        return docs, ParseError(source, problem.line, problem.kind, problem.limit)
    except RecursionError:
        return docs, ParseError(source, None, "nesting too deep", True)
    return docs, None


def _split_list(source: SourceFile, index: int, located: Located) -> Iterator[Document]:
    data = located.data
    if (isinstance(data, Mapping) and data.get("apiVersion") == "v1"
            and data.get("kind") == "List" and isinstance(data.get("items"), list)):
        for i, item in enumerate(data["items"]):
            if isinstance(item, Mapping):
                yield Document(source, index, located, ("items", i))
        return
    yield Document(source, index, located)


def walk_strings(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every string scalar (and every mapping key path) under `node`."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk_strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node
