"""The deparrow/k8s tree: which files exist, what they hold, writing and checking them.

Paths follow the guide: base/, overlays/dev/, overlays/<env>/patches/external-secrets.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.config.catalog import Catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.render import manifests
from deparrow_secrets.render.yamlout import GENERATED, dump_documents

ESO_PATCH = "patches/external-secrets.yaml"
DEV_GITIGNORE = "# Exported values (deparrow-secrets export): never committed.\nsecrets/\n"


def overlay_dir(env: EnvironmentConfig) -> str:
    return f"overlays/{env.name}"


def render_environment(config: Config, catalog: Catalog,
                       env: EnvironmentConfig) -> dict[str, str]:
    base = overlay_dir(env)
    if not env.uses_eso:
        return {
            f"{base}/kustomization.yaml": dump_documents(
                [manifests.generator_kustomization(config, catalog, env)]),
            f"{base}/.gitignore": DEV_GITIGNORE,
        }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": config.namespace,
        "resources": ["../../base", ESO_PATCH],
    }
    return {
        f"{base}/kustomization.yaml": dump_documents([kustomization]),
        f"{base}/{ESO_PATCH}": dump_documents(manifests.eso_objects(config, catalog, env)),
    }


def render_tree(config: Config, catalog: Catalog) -> dict[str, str]:
    """Relative path -> file content for every file the tool owns in the tree."""
    files = {
        "base/kustomization.yaml": dump_documents([{
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["namespace.yaml"],
        }]),
        "base/namespace.yaml": dump_documents([manifests.namespace_object(config)]),
    }
    for env in config.environments.values():
        files.update(render_environment(config, catalog, env))
    return dict(sorted(files.items()))


@dataclass
class TreeDiff:
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # generated earlier, no longer rendered
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.stale)


def _generated_files(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    out = []
    for path in root.rglob("*.yaml"):
        try:
            head = path.read_text(encoding="utf-8")[: len(GENERATED)]
        except (OSError, UnicodeDecodeError):
            continue
        if head == GENERATED:
            out.append(path.relative_to(root).as_posix())
    return out


def check_tree(root: Path, files: dict[str, str]) -> TreeDiff:
    import difflib  # only --check needs it; keep `render` start-up light

    diff = TreeDiff()
    for rel, content in files.items():
        path = root / rel
        if not path.exists():
            diff.missing.append(rel)
            continue
        current = path.read_text(encoding="utf-8")
        if current != content:
            diff.changed.append(rel)
            diff.diffs[rel] = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), content.splitlines(keepends=True),
                f"a/{rel}", f"b/{rel}"))
    diff.stale = sorted(set(_generated_files(root)) - set(files))
    return diff


def write_tree(root: Path, files: dict[str, str]) -> list[str]:
    """Write what differs (each file replaced atomically); return the paths written."""
    written = []
    for rel, content in files.items():
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
        written.append(rel)
    for rel in _generated_files(root):
        if rel not in files:
            (root / rel).unlink()
            written.append(rel)
    return written
