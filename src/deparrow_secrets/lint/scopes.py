"""What is deployed together, for rules that relate objects to each other
(target-not-consumed, azure-tenant-twice): what one top-level kustomization builds
(its resources, bases and components, followed down), with the name prefix and suffix
kustomize gives each document; a file no kustomization includes is its own scope.
Separate example files (ESO's documentation) are never judged together."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import KUSTOMIZATION_FILES, Document, SourceFile


@dataclass
class Scope:
    """Documents deployed together; `prefix`/`suffix`: what kustomize adds to the
    names of the document this scope was looked up for (outer ones wrap inner ones)."""

    docs: list[Document]
    prefix: str = ""
    suffix: str = ""


@dataclass
class Scopes:
    _builds: list[list[tuple[Document, str, str]]] = field(default_factory=list)
    _included: set[Path] = field(default_factory=set)
    _files: dict[int, list[Document]] = field(default_factory=dict)

    def of(self, doc: Document) -> list[Scope]:
        """Every scope `doc` is deployed in (one per top-level build that has it)."""
        found = []
        for build in self._builds:
            for member, prefix, suffix in build:
                if member is doc:
                    found.append(Scope([d for d, _, _ in build], prefix, suffix))
                    break
        if not found and doc.file.path not in self._included:
            found.append(Scope(self._files.get(id(doc.file), [doc])))
        return found


def _kustomization_of(ctx: LintContext, directory: Path) -> SourceFile | None:
    for name in KUSTOMIZATION_FILES:
        for source in ctx.files:
            if source.path == directory / name:
                return source
    return None


def _entries(doc: Document) -> list[str]:
    out: list[str] = []
    for key in ("resources", "bases", "components"):
        items = doc.get((key,))
        if isinstance(items, list):
            out += [i for i in items if isinstance(i, str) and "://" not in i]
    return out


def deployment_scopes(ctx: LintContext) -> Scopes:
    by_file: dict[Path, list[Document]] = {}
    for doc in ctx.documents:
        by_file.setdefault(doc.file.path, []).append(doc)
    kustomizations = {s.path: d for s in ctx.files if s.path.name in KUSTOMIZATION_FILES
                      for d in by_file.get(s.path, [])[:1] if d.is_kustomization}
    scopes = Scopes()
    for docs in by_file.values():
        scopes._files[id(docs[0].file)] = docs

    def files_of(path: Path, seen: frozenset[Path]) -> list[tuple[Path, str, str]]:
        doc = kustomizations.get(path)
        if doc is None or path in seen:
            return []
        prefix = doc.get(("namePrefix",)) if isinstance(doc.get(("namePrefix",)), str) else ""
        suffix = doc.get(("nameSuffix",)) if isinstance(doc.get(("nameSuffix",)), str) else ""
        out: list[tuple[Path, str, str]] = []
        for entry in _entries(doc):
            target = Path(os.path.normpath(path.parent / entry))
            inner = _kustomization_of(ctx, target)
            if inner is not None:
                scopes._included.add(inner.path)
                out += [(f, prefix + p, s + suffix)
                        for f, p, s in files_of(inner.path, seen | {path})]
            elif target in by_file or any(f.path == target for f in ctx.files):
                scopes._included.add(target)
                out.append((target, prefix, suffix))
        return out

    trees = {path: files_of(path, frozenset()) for path in kustomizations}
    for path, files in trees.items():
        if path in scopes._included:
            continue
        scopes._builds.append([(d, prefix, suffix) for file, prefix, suffix in files
                               for d in by_file.get(file, [])])
    return scopes
