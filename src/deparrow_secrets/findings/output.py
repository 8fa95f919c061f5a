"""Reports of findings (lint, scan, doctor, posture): text, json and SARIF 2.1.0."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deparrow_secrets import __version__
from deparrow_secrets.findings.model import Finding, Rule
from deparrow_secrets.findings.registry import rule as declared_rule

SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
TOOL = "deparrow-secrets"
_SRCROOT = "SRCROOT"


def summary(findings: Sequence[Finding], checked: int, what: str = "file",
            place: str = "file") -> str:
    if not findings:
        return f"no findings ({checked} {what}(s) checked)"
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    files = len({f.file or f.resource for f in findings})
    return (f"{len(findings)} finding(s): {errors} error(s), {warnings} warning(s) in "
            f"{files} {place}(s); {checked} {what}(s) checked")


def render_text(findings: Sequence[Finding], checked: int, what: str = "file",
                place: str = "file") -> str:
    lines = []
    for f in findings:
        where = (f.file + (f":{f.line}" if f.line else "")) if f.file else f.resource
        if f.commit:
            where = f"{f.commit[:12]}:{where}"
        at = f" (at {f.key_path})" if f.key_path and f.key_path not in f.message else ""
        lines.append(f"{where}: {f.severity} [{f.rule}] {f.message}{at}")
        excerpt = f.properties.get("excerpt")
        if excerpt:
            lines.append(f"    | {excerpt}")
        lines.append(f"    fix: {f.fix}")
    lines.append(summary(findings, checked, what, place))
    return "\n".join(lines)


def render_json(command: str, findings: Sequence[Finding], checked: list[str] | int,
                extra: dict[str, Any] | None = None) -> str:
    count = checked if isinstance(checked, int) else len(checked)
    data: dict[str, Any] = {
        "tool": TOOL, "version": __version__, "command": command,
        "findings": [f.to_json() for f in findings],
        "summary": {"checked": count, "findings": len(findings),
                    "errors": sum(1 for f in findings if f.severity == "error"),
                    "warnings": sum(1 for f in findings if f.severity == "warning")},
    }
    if extra:
        data.update(extra)
    return json.dumps(data, indent=2)


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title.split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": rule.title},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": rule.severity},
        "properties": {"tags": ["security" if rule.tool == "scan" else "kubernetes",
                                rule.tool]},
    }


def _artifact(file: str, cwd: Path) -> dict[str, Any]:
    path = Path(file)
    if path.is_absolute():
        try:
            rel = path.relative_to(cwd)
        except ValueError:
            return {"uri": path.as_uri()}
        file = rel.as_posix()
    return {"uri": quote(file.replace(os.sep, "/")), "uriBaseId": _SRCROOT}


def render_sarif(findings: Sequence[Finding], rules: Sequence[Rule],
                 cwd: Path | None = None) -> str:
    """One SARIF 2.1.0 log with one run; every rule of the command is described."""
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    descriptors = list(rules)
    for f in findings:  # a rule used outside its command still gets described
        if all(r.id != f.rule for r in descriptors):
            descriptors.append(declared_rule(f.rule))
    index = {r.id: i for i, r in enumerate(descriptors)}
    results = []
    for f in findings:
        location: dict[str, Any] = {}
        if f.file:
            physical: dict[str, Any] = {"artifactLocation": _artifact(f.file, cwd)}
            if f.line:
                physical["region"] = {"startLine": f.line}
            location["physicalLocation"] = physical
        if f.resource:  # a cluster object (doctor): no file to point at
            location["logicalLocations"] = [{"fullyQualifiedName": f.resource,
                                             "kind": "resource"}]
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": f.severity,
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [location],
        }
        props = dict(f.properties)
        if f.key_path:
            props["keyPath"] = f.key_path
        if f.commit:
            props["commit"] = f.commit
        if props:
            result["properties"] = props
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL, "version": __version__,
                                "semanticVersion": __version__,
                                "rules": [_rule_descriptor(r) for r in descriptors]}},
            "originalUriBaseIds": {_SRCROOT: {"uri": cwd.as_uri() + "/"}},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(log, indent=2)
