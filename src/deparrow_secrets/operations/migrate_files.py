"""The embedded material `migrate --from files` reads and, once the store serves the
values, removes: plain Secret manifests (`data`, `stringData`) and a kustomization's
`secretGenerator` (literals, env files, files), following `resources:` from an overlay
to its base.

Every file is read without following links and parsed with the bounded loader. Edits
are ruamel round-trips (comments and order kept) written atomically through safefiles.
Messages name files, lines and keys, never a value or a line of text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets import safefiles
from deparrow_secrets.config.yamlfile import MAX_YAML_BYTES, YamlProblem, check_bounds
from deparrow_secrets.errors import InputError
from deparrow_secrets.secret import SecretValue

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_FILES = 500


@dataclass
class FileValue:
    value: SecretValue = field(repr=False)
    file: Path
    line: int | None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)


@dataclass
class EmbeddedSecret:
    """One Secret as the files define it: key -> value with where each was written."""

    name: str
    values: dict[str, FileValue] = field(default_factory=dict, repr=False)
    manifests: list[Path] = field(default_factory=list)  # files with a Secret document
    generators: list[Path] = field(default_factory=list)  # kustomizations generating it
    env_files: list[Path] = field(default_factory=list)  # files the generator reads

    @property
    def keys(self) -> list[str]:
        return sorted(self.values)


@dataclass
class FileSources:
    root: Path
    secrets: dict[str, EmbeddedSecret] = field(default_factory=dict)
    kustomizations: list[Path] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)
    # manifest path -> kustomizations listing it in `resources:`
    referenced_by: dict[Path, list[Path]] = field(default_factory=dict)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read_text(root: Path, path: Path) -> str:
    shown = _display(root, path)
    if not safefiles.inside(root, path):
        raise InputError(f"{shown} is outside the project {root}",
                         hint="migrate reads and edits files inside the project only")
    try:
        raw = safefiles.read_bytes(root, path, MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise InputError("file not found", file=shown,
                         hint="name a kustomization, its directory or a Secret manifest") \
            from None
    except IsADirectoryError:
        raise InputError("is a directory", file=shown) from None
    if len(raw) > MAX_YAML_BYTES:
        raise InputError(f"larger than the {MAX_YAML_BYTES // 1024} KiB limit", file=shown)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", file=shown,
                         line=raw.count(b"\n", 0, exc.start) + 1) from None


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _documents(root: Path, path: Path, text: str) -> list[Any]:
    """Round-trip documents of `text`, bounded; errors name file and line only."""
    from deparrow_secrets.config.yamlfile import parse_documents

    try:
        return list(parse_documents(text))
    except YamlProblem as problem:
        raise InputError(f"invalid YAML: {problem.kind}", file=_display(root, path),
                         line=problem.line, hint="fix the YAML at that line") from None


def _line(node: Any, key: Any) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def _item_line(node: Any, index: int) -> int | None:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def is_secret_doc(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "Secret" and \
        doc.get("apiVersion") == "v1"


def env_file_entries(text: str) -> list[tuple[int, str, str]]:
    from deparrow_secrets.lint.rules.embedded import env_file_entries as entries

    return list(entries(text))


class _Collector:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = FileSources(root)
        self.seen: set[Path] = set()

    def shown(self, path: Path) -> str:
        return _display(self.root, path)

    def add(self, name: str, key: str, value: str, file: Path, line: int | None) -> None:
        secret = self.out.secrets.setdefault(name, EmbeddedSecret(name))
        before = secret.values.get(key)
        if before is not None and before.value.reveal() != value:
            raise InputError(
                f"Secret {name} key {key} is defined twice with different values: "
                f"{self.shown(before.file)}:{before.line} and {self.shown(file)}:{line}",
                hint="keep the value that is deployed and remove the other, then rerun")
        if before is None:
            secret.values[key] = FileValue(SecretValue(value), file, line)

    def visit(self, path: Path) -> None:
        path = Path(os.path.abspath(path))
        if path in self.seen:
            return
        if len(self.seen) >= MAX_FILES:
            raise InputError(f"more than {MAX_FILES} files reached from the paths given",
                             hint="name the kustomizations or manifests to migrate")
        self.seen.add(path)
        if path.is_dir() and not path.is_symlink():
            for name in KUSTOMIZATION_NAMES:
                if (path / name).is_file():
                    self.kustomization(path / name)
                    return
            for child in sorted(path.iterdir()):
                if child.suffix in (".yaml", ".yml") and child.is_file() \
                        and not child.is_symlink():
                    self.visit(child)
            return
        if path.name in KUSTOMIZATION_NAMES:
            self.kustomization(path)
        else:
            self.manifest(path)

    def manifest(self, path: Path) -> None:
        docs = _documents(self.root, path, _read_text(self.root, path))
        found = False
        for doc in docs:
            if not is_secret_doc(doc):
                continue
            found = True
            name = str((doc.get("metadata") or {}).get("name") or "")
            if not name:
                raise InputError("a Secret without metadata.name", file=self.shown(path),
                                 line=_line(doc, "kind"))
            secret = self.out.secrets.setdefault(name, EmbeddedSecret(name))
            if path not in secret.manifests:
                secret.manifests.append(path)
            data = doc.get("data") or {}
            string_data = doc.get("stringData") or {}
            for key, raw in data.items():
                if key in string_data:
                    continue  # the API server lets stringData win
                try:
                    value = base64.b64decode(str(raw or ""), validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    raise InputError(f"Secret {name}: data.{key} is not base64 of UTF-8 text",
                                     file=self.shown(path), line=_line(data, key),
                                     hint="`data` holds base64; put plain text in "
                                          "`stringData`") from None
                self.add(name, str(key), value, path, _line(data, key))
            for key, raw in string_data.items():
                self.add(name, str(key), "" if raw is None else str(raw), path,
                         _line(string_data, key))
        if found and path not in self.out.manifests:
            self.out.manifests.append(path)

    def kustomization(self, path: Path) -> None:
        docs = _documents(self.root, path, _read_text(self.root, path))
        doc = docs[0] if docs else None
        if not isinstance(doc, dict):
            return
        self.out.kustomizations.append(path)
        base = path.parent
        generators = doc.get("secretGenerator") or []
        for i, gen in enumerate(generators if isinstance(generators, list) else []):
            if not isinstance(gen, dict) or not gen.get("name"):
                raise InputError("secretGenerator entry without a name",
                                 file=self.shown(path), line=_item_line(generators, i))
            name = str(gen["name"])
            secret = self.out.secrets.setdefault(name, EmbeddedSecret(name))
            secret.generators.append(path)
            literals = gen.get("literals") or []
            for j, literal in enumerate(literals):
                key, sep, value = str(literal).partition("=")
                if not sep:
                    raise InputError(f"secretGenerator {name}: literal {j + 1} has no `=`",
                                     file=self.shown(path), line=_item_line(literals, j))
                self.add(name, key.strip(), value, path, _item_line(literals, j))
            for j, env_name in enumerate(gen.get("envs") or []):
                env_path = base / str(env_name)
                secret.env_files.append(env_path)
                text = _read_text(self.root, env_path)
                for number, key, value in env_file_entries(text):
                    self.add(name, key, value, env_path, number)
                del j
            for j, spec in enumerate(gen.get("files") or []):
                key, sep, rel = str(spec).partition("=")
                rel = rel if sep else key
                key = key if sep else Path(rel).name
                file_path = base / rel.strip()
                secret.env_files.append(file_path)
                self.add(name, key.strip(), _read_text(self.root, file_path), file_path, None)
                del j
        for res in doc.get("resources") or []:
            target = base / str(res)
            if "://" in str(res):
                continue  # remote bases are not this project's files
            if target.is_dir():
                self.visit(target)
            elif target.suffix in (".yaml", ".yml"):
                self.out.referenced_by.setdefault(Path(os.path.abspath(target)), []).append(
                    path)
                self.visit(target)


def collect(root: Path, paths: list[Path]) -> FileSources:
    """The Secrets the files at `paths` embed (kustomizations followed to their bases)."""
    collector = _Collector(root)
    for path in paths:
        collector.visit(path if path.is_absolute() else root / path)
    return collector.out


# --------------------------------------------------------------------------- removal


@dataclass
class FileEdit:
    file: str
    action: str  # edited | deleted
    what: list[str] = field(default_factory=list)  # e.g. "Secret deparrow-secrets"


_NESTED_KEY = re.compile(r"^[A-Za-z0-9_.\"'/-]+\s*:(?:\s|$)")


def _mapping_indent(text: str) -> int:
    """The indentation of a mapping nested in a mapping, as the file writes it (2 if
    none is found): a key line right below a line that ends a key with `:`."""
    lines = text.splitlines()
    for above, line in zip(lines, lines[1:], strict=False):
        head = above.rstrip()
        if not head.endswith(":") or head.lstrip().startswith(("#", "-")):
            continue
        body = line.lstrip(" ")
        step = (len(line) - len(body)) - (len(above) - len(above.lstrip(" ")))
        if step > 0 and _NESTED_KEY.match(body):
            return step
    return 2


def _dump(docs: list[Any], text: str) -> str:
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = _yaml()
    try:
        # (column of a sequence item's content, column of its dash) relative to the parent
        _, sequence, offset = load_yaml_guess_indent(text)
    except Exception:  # noqa: BLE001 - a guess only: fall back to ruamel's defaults
        sequence, offset = None, None
    mapping = _mapping_indent(text)
    if sequence and offset is not None:
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    else:
        yaml.indent(mapping=mapping, sequence=mapping, offset=0)
    buf = io.StringIO()
    if text.lstrip().startswith("---") or len(docs) > 1:
        yaml.explicit_start = text.lstrip().startswith("---")
    yaml.dump_all(docs, buf)
    return buf.getvalue()


def _load_rt(root: Path, path: Path) -> tuple[str, list[Any]]:
    text = _read_text(root, path)
    try:
        check_bounds(text)
    except YamlProblem as problem:
        raise InputError(f"invalid YAML: {problem.kind}", file=_display(root, path),
                         line=problem.line) from None
    return text, list(_yaml().load_all(text))


def plan_removal(sources: FileSources, names: set[str]) -> list[FileEdit]:
    """What `remove_embedded` will do, without doing it."""
    root = sources.root
    edits: list[FileEdit] = []
    emptied: set[Path] = set()
    for path in sources.manifests:
        text, docs = _load_rt(root, path)
        gone = [d for d in docs if is_secret_doc(d)
                and str((d.get("metadata") or {}).get("name")) in names]
        if not gone:
            continue
        left = [d for d in docs if d is not None and d not in gone]
        what = [f"Secret {d['metadata']['name']}" for d in gone]
        if left:
            edits.append(FileEdit(_display(root, path), "edited", what))
        else:
            emptied.add(path)
            edits.append(FileEdit(_display(root, path), "deleted", what))
    for path in sources.kustomizations:
        text, docs = _load_rt(root, path)
        doc = docs[0] if docs else None
        if not isinstance(doc, dict):
            continue
        what = [f"secretGenerator {g.get('name')}" for g in doc.get("secretGenerator") or []
                if isinstance(g, dict) and str(g.get("name")) in names]
        what += [f"resources: {r}" for r in doc.get("resources") or []
                 if Path(os.path.abspath(path.parent / str(r))) in emptied]
        if what:
            edits.append(FileEdit(_display(root, path), "edited", what))
    for secret in sources.secrets.values():
        if secret.name in names:
            for env_file in secret.env_files:
                shown = _display(root, env_file)
                if not any(e.file == shown for e in edits):
                    edits.append(FileEdit(shown, "deleted",
                                          [f"values of secretGenerator {secret.name}"]))
    return edits


def remove_embedded(sources: FileSources, names: set[str]) -> list[FileEdit]:
    """Remove the Secrets `names` from the files: their manifest documents (a file left
    without documents is deleted and dropped from the `resources:` that list it), their
    secretGenerator entries and the env files only those entries read.

    Every new content is computed before the first write, so a file that cannot be
    edited stops the removal with nothing changed.
    """
    root = sources.root
    writes: dict[Path, bytes] = {}
    deletes: list[Path] = []
    edits = plan_removal(sources, names)
    for path in sources.manifests:
        text, docs = _load_rt(root, path)
        left = [d for d in docs if d is not None and not (
            is_secret_doc(d) and str((d.get("metadata") or {}).get("name")) in names)]
        if len(left) == len([d for d in docs if d is not None]):
            continue
        if left:
            writes[path] = _dump(left, text).encode("utf-8")
        else:
            deletes.append(path)
    for path in sources.kustomizations:
        text, docs = _load_rt(root, path)
        doc = docs[0] if docs else None
        if not isinstance(doc, dict):
            continue
        changed = False
        generators = doc.get("secretGenerator")
        if isinstance(generators, list):
            for i in reversed(range(len(generators))):
                gen = generators[i]
                if isinstance(gen, dict) and str(gen.get("name")) in names:
                    del generators[i]
                    changed = True
            if not generators:
                del doc["secretGenerator"]
        resources = doc.get("resources")
        if isinstance(resources, list):
            for i in reversed(range(len(resources))):
                if Path(os.path.abspath(path.parent / str(resources[i]))) in deletes:
                    del resources[i]
                    changed = True
        if changed:
            writes[path] = _dump(docs, text).encode("utf-8")
    used_elsewhere = {p for s in sources.secrets.values() if s.name not in names
                      for p in s.env_files}
    for secret in sources.secrets.values():
        if secret.name in names:
            deletes += [p for p in secret.env_files
                        if p not in used_elsewhere and p not in deletes]
    for path in writes:  # no link anywhere on the way, before the first change
        safefiles.check_path(root, path)
    for path, data in writes.items():
        mode = path.stat().st_mode & 0o777
        safefiles.write_file(root, path, data, mode=mode)
    for path in deletes:
        with contextlib.suppress(FileNotFoundError):
            safefiles.remove_file(root, path)
    return edits
