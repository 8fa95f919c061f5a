"""scan: known values of an environment in the working tree (and git history), plus
generic detection by detect-secrets; findings name file, line and key, never a value."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.findings import ERROR, WARNING, Finding, Rule, declare, display_path
from deparrow_secrets.findings import rule as declared_rule
from deparrow_secrets.gitrepo import list_files
from deparrow_secrets.project import Project
from deparrow_secrets.render.tree import overlay_dir
from deparrow_secrets.scan.search import (
    DEFAULT_MAX_FILE_BYTES,
    SearchStats,
    excerpt,
    line_number,
    search_files,
)
from deparrow_secrets.scan.values import Needle, needles
from deparrow_secrets.secret import SecretValue

SCAN_RULES = declare(
    Rule("known-value", ERROR,
         "A secret value of the environment (or its base64 form) found in a file of the "
         "working tree.",
         "Remove it from the file (reference the Kubernetes Secret or the store instead); "
         "if the file was ever committed, pushed or shared, rotate the value.",
         tool="scan"),
    Rule("known-value-in-history", ERROR,
         "A secret value of the environment (or its base64 form) found in a commit of the "
         "git history (added lines or the commit message).",
         "Rotate the value now: every clone keeps the history. Then rewrite history "
         "(git filter-repo --replace-text) if the old value must not remain.",
         tool="scan"),
    Rule("generic-secret", WARNING,
         "A string that detect-secrets' plugins recognise as a secret (known token formats, "
         "high-entropy strings, keyword assignments).",
         "If it is a secret, move it to the store and rotate it; if it is not, mark the line "
         "with `# pragma: allowlist secret`.",
         tool="scan"),
)


@dataclass
class ScanResult:
    findings: list[Finding]
    stats: SearchStats
    values: int
    """How many values were searched for."""
    notes: list[str] = field(default_factory=list)
    environment: str = ""
    history: bool = False
    generic: bool = False

    def to_json(self) -> str:
        from deparrow_secrets.findings.output import render_json

        return render_json("scan", self.findings, self.stats.files, {
            "environment": self.environment, "valuesSearched": self.values,
            "bytesSearched": self.stats.bytes, "history": self.history,
            "generic": self.generic, "notes": self.notes})

    def to_sarif(self) -> str:
        from deparrow_secrets.findings.output import render_sarif

        return render_sarif(self.findings, SCAN_RULES)

    def report_lines(self) -> list[tuple[str, bool]]:
        """(line, to stderr) of the text output."""
        from deparrow_secrets.findings.output import render_text

        return [(render_text(self.findings, self.stats.files), False)] + [
            (f"note: {note}", True) for note in self.notes]


def excluded_dirs(project: Project | None, cwd: Path) -> list[Path]:
    """Where values are supposed to be: the embedded store and dev's exported env files."""
    if project is None:
        return [cwd / ".deparrow-secrets"]
    config = project.config
    out = [config.state_dir]
    for env in config.environments.values():
        if not env.uses_eso:
            out.append(config.manifests_dir / overlay_dir(env) / "secrets")
    return out


def _finding(rule: str, file: str, line: int | None, needle: Needle, env: str, text: str,
             commit: str | None = None) -> Finding:
    meta = declared_rule(rule)
    where = f"commit {commit[:12]}" if commit else "the working tree"
    form = " (base64-encoded)" if needle.encoding == "base64" else ""
    keys = " and ".join(needle.keys)
    rotate = f" Rotate {keys} in {env}." if commit else ""
    return meta.finding(
        f"the {env} value of {keys}{form} is in {where}", file=file, line=line,
        fix=meta.fix + rotate, commit=commit,
        properties={"keys": list(needle.keys), "environment": env,
                    "encoding": needle.encoding, "excerpt": text})


def scan(values: Mapping[str, SecretValue], env_name: str, paths: Sequence[Path],
         project: Project | None = None, *, history: bool = False, generic: bool = False,
         cwd: Path | None = None,
         max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ScanResult:
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    found = needles(values)
    files = list_files(list(paths) or [cwd], excluded_dirs(project, cwd))
    stats = SearchStats()
    findings: list[Finding] = []
    hit_lines: set[tuple[str, int]] = set()
    for hits in search_files(files, found, stats, max_file_bytes):
        shown = display_path(hits.path, cwd)
        reported: set[tuple[int, str]] = set()
        for match in hits.matches:
            line = line_number(hits.data, match.start)
            if (line, match.needle.label) in reported:
                continue
            reported.add((line, match.needle.label))
            hit_lines.add((shown, line))
            findings.append(_finding("known-value", shown, line, match.needle, env_name,
                                     excerpt(hits.data, hits.matches, match.start)))
    notes = []
    if history:
        from deparrow_secrets.scan.history import search_history

        for hit in search_history(cwd, found):
            for needle in hit.needles:
                findings.append(_finding("known-value-in-history", hit.file, hit.line, needle,
                                         env_name, hit.excerpt, hit.commit))
    if generic:
        from deparrow_secrets.scan.generic import detect

        meta = declared_rule("generic-secret")
        # The configuration holds no values by design; its store settings (`secretStore:`)
        # are what detect-secrets' keyword plugin flags.
        config_file = project.config.file if project else None
        for ghit in detect(files):
            shown = display_path(ghit.path, cwd)
            if (shown, ghit.line) in hit_lines:
                continue  # already reported with its key name
            if ghit.type == "Secret Keyword" and config_file is not None \
                    and ghit.path.resolve() == config_file.resolve():
                continue
            findings.append(meta.finding(f"{ghit.type} (detect-secrets)", file=shown,
                                         line=ghit.line, properties={"type": ghit.type}))
    if stats.skipped_large:
        notes.append(f"{len(stats.skipped_large)} file(s) over "
                     f"{max_file_bytes // (1024 * 1024)} MB not searched")
    return ScanResult(sorted(findings, key=Finding.sort_key), stats, len(values), notes,
                      env_name, history, generic)


def scan_environment(project: Project, env: EnvironmentConfig, paths: Sequence[Path], *,
                     remote: bool = False, history: bool = False, generic: bool = False,
                     max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ScanResult:
    """`scan` as one call: the values of `env` (its remote store only with `remote`),
    searched for in `paths` (default: the working tree)."""
    from deparrow_secrets.scan.values import environment_values

    values, note = environment_values(project, env, remote)
    result = scan(values, env.name, paths, project, history=history, generic=generic,
                  max_file_bytes=max_file_bytes)
    if note:
        result.notes.insert(0, note)
    return result
