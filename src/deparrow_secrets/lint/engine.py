"""Run the lint rules over files: collect, parse, check, filter ignores, sort."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.findings import Finding, display_path
from deparrow_secrets.findings import rule as declared_rule
from deparrow_secrets.gitrepo import list_files
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import (
    KUSTOMIZATION_FILES,
    LINT_NAMES,
    LINT_SUFFIXES,
    SourceFile,
    Unreadable,
    parse_structured,
    read_source,
)
from deparrow_secrets.project import Project

DEFAULT_MANIFESTS = "deparrow/k8s"
STATE_DIR = ".deparrow-secrets"


@dataclass
class LintResult:
    findings: list[Finding]
    files: list[str]
    """Files checked (reported on), as displayed."""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        from deparrow_secrets.findings.output import render_json

        return render_json("lint", self.findings, self.files, {"notes": self.notes})

    def to_sarif(self) -> str:
        from deparrow_secrets.findings.output import render_sarif
        from deparrow_secrets.lint.rules import LINT_RULES

        return render_sarif(self.findings, LINT_RULES)

    def report_lines(self) -> list[tuple[str, bool]]:
        """(line, to stderr) of the text output."""
        from deparrow_secrets.findings.output import render_text

        if self.findings or self.files:
            out = [(render_text(self.findings, len(self.files)), False)]
        else:
            out = [("nothing to lint: no PATH given and no deparrow/k8s tree here", False)]
        return out + [(f"note: {note}", True) for note in self.notes]


def _list(paths: Sequence[Path], excluded: Sequence[Path]) -> list[Path]:
    return list_files(paths, excluded, suffixes=LINT_SUFFIXES,
                      names=(*LINT_NAMES, *KUSTOMIZATION_FILES))


def collect(paths: Sequence[Path], project: Project | None,
            cwd: Path) -> tuple[list[Path], list[Path], Path | None]:
    """(files to report on, files read for context only, configuration file)."""
    root = project.config.root if project else cwd
    manifests = project.config.manifests_dir if project else cwd / DEFAULT_MANIFESTS
    manifests = Path(os.path.abspath(manifests))
    excluded = [root / STATE_DIR]
    config_file = None
    if project is not None and project.config.file is not None:
        config_file = Path(os.path.abspath(project.config.file))
    if paths:
        reported = _list(paths, excluded)
    else:
        reported = _list([manifests], excluded) if manifests.is_dir() else []
        if config_file is not None and config_file.is_file():
            reported.append(config_file)
    context: list[Path] = []
    if manifests.is_dir() and any(p.is_relative_to(manifests) for p in reported):
        # Rules that look at a whole environment (catalog keys, consumers, shared stores)
        # see the whole tree even when only some of its files are linted.
        chosen = set(reported)
        context = [p for p in _list([manifests], excluded) if p not in chosen]
    return reported, context, config_file


def lint(paths: Sequence[Path], project: Project | None, ignore: Iterable[str] = (),
         cwd: Path | None = None) -> LintResult:
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    reported, context, config_file = collect(paths, project, cwd)
    files: list[SourceFile] = []
    unreadable: list[Unreadable] = []
    for path, is_reported in [(p, True) for p in reported] + [(p, False) for p in context]:
        source = read_source(path, display_path(path, cwd), is_reported)
        if isinstance(source, Unreadable):
            unreadable.append(source)
        elif source is not None:
            files.append(source)
    ctx = LintContext(project, files, [])
    unreadable_rule = declared_rule("file-unreadable")
    findings: list[Finding] = [
        unreadable_rule.finding(f"cannot lint this file: {u.reason}", file=u.display,
                                line=u.line)
        for u in unreadable if u.reported]
    for source in files:
        if config_file is not None and source.path == config_file:
            ctx.config_file = source
        if source.kind not in ("yaml", "json"):
            continue
        docs, error = parse_structured(source)
        ctx.documents.extend(docs)
        if error is not None and (source.kind == "yaml" or error.limit):
            findings.append(ctx.finding("yaml-invalid", None, (), f"cannot parse: {error.message}",
                                        file=source, line=error.line))
    from deparrow_secrets.lint.rules import CHECKS

    for check in CHECKS:
        findings.extend(check(ctx))
    by_display = {f.display: f for f in files}
    ignored = set(ignore)
    kept: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        if finding.rule in ignored:
            continue
        if finding.rule != "file-unreadable":
            shown = by_display.get(finding.file)
            if shown is None or not shown.reported or shown.ignored(finding.rule,
                                                                    finding.line):
                continue
        kept.setdefault((finding.rule, finding.file, finding.line, finding.key_path,
                         finding.message), finding)
    return LintResult(sorted(kept.values(), key=Finding.sort_key),
                      [f.display for f in files if f.reported]
                      + [u.display for u in unreadable if u.reported], ctx.notes)
