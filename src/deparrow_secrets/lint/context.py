"""What the rules see: the parsed files, their documents, and the project if there is one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.config.settings import ENVIRONMENTS, EnvironmentConfig
from deparrow_secrets.config.yamlfile import KeyPath, format_path
from deparrow_secrets.findings import Finding
from deparrow_secrets.findings import rule as declared_rule
from deparrow_secrets.lint.documents import Document, SourceFile
from deparrow_secrets.project import Project

DEV = "dev"


@dataclass
class LintContext:
    project: Project | None
    files: list[SourceFile]
    documents: list[Document]
    config_file: SourceFile | None = None
    """The project's configuration file, when it is among the files read."""
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ environments

    def env_config(self, name: str | None) -> EnvironmentConfig | None:
        if self.project is None or name is None:
            return None
        return self.project.config.environments.get(name)

    def embedded_allowed(self, env: str | None) -> bool:
        """Embedded Secrets/literals are fine in dev-style overlays (a `local` store)."""
        if env is None:
            return False
        configured = self.env_config(env)
        if configured is not None:
            return not configured.uses_eso
        return env == DEV

    @property
    def env_names(self) -> set[str]:
        names = set(ENVIRONMENTS)
        if self.project is not None:
            names |= set(self.project.config.environments)
        names |= {f.env for f in self.files if f.env}
        return names

    def manifests(self, kinds: Iterable[str] | None = None,
                  group: str | None = None) -> Iterator[Document]:
        wanted = frozenset(kinds) if kinds is not None else None
        for doc in self.documents:
            if not doc.is_manifest:
                continue
            if wanted is not None and doc.kind not in wanted:
                continue
            if group is not None and doc.group != group:
                continue
            yield doc

    # ------------------------------------------------------------------ findings

    def finding(self, rule: str, doc: Document | None, path: KeyPath, message: str,
                fix: str | None = None, *, file: SourceFile | None = None,
                line: int | None = None, **properties: Any) -> Finding:
        meta = declared_rule(rule)
        source = doc.file if doc is not None else file
        assert source is not None
        if line is None and doc is not None:
            line = doc.line(path)
        return meta.finding(message, file=source.display, line=line, fix=fix or meta.fix,
                            key_path=format_path(path) if path else "", properties=properties)
