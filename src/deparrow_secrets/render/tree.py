"""The deparrow/k8s tree: which files exist, what they hold, writing and checking them.

Paths follow the guide: base/, overlays/dev/, overlays/<env>/patches/external-secrets.yaml.
"""

from __future__ import annotations

import os
from pathlib import Path

from deparrow_secrets import safefiles
from deparrow_secrets.config.catalog import Catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import InputError
from deparrow_secrets.render import manifests
from deparrow_secrets.render.yamlout import GENERATED, dump_documents

ESO_PATCH = "patches/external-secrets.yaml"
NETWORK_POLICY_FILE = "network-policy.yaml"
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
    files = {
        f"{base}/kustomization.yaml": dump_documents([kustomization]),
        f"{base}/{ESO_PATCH}": dump_documents(manifests.eso_objects(config, catalog, env)),
    }
    eso_policy = manifests.eso_egress_policy(config, env)
    if eso_policy is not None:
        # Its own kustomization: the overlay's `namespace:` would move it out of ESO's
        # namespace. Applied once per cluster: kubectl apply -k eso/<env>.
        files[f"eso/{env.name}/kustomization.yaml"] = dump_documents([{
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [NETWORK_POLICY_FILE]}])
        files[f"eso/{env.name}/{NETWORK_POLICY_FILE}"] = dump_documents([eso_policy])
    return files


def render_tree(config: Config, catalog: Catalog) -> dict[str, str]:
    """Relative path -> file content for every file the tool owns in the tree."""
    app_policies = manifests.app_network_policies(config)
    files = {
        "base/kustomization.yaml": dump_documents([{
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["namespace.yaml"] + ([NETWORK_POLICY_FILE] if app_policies else []),
        }]),
        "base/namespace.yaml": dump_documents([manifests.namespace_object(config)]),
    }
    if app_policies:
        files[f"base/{NETWORK_POLICY_FILE}"] = dump_documents(app_policies)
    for env in config.environments.values():
        files.update(render_environment(config, catalog, env))
    return dict(sorted(files.items()))


class TreeDiff:
    """What `render --check` finds: files that differ, are missing or are left over.

    A plain class (so is RenderOutcome): a dataclass costs about half a millisecond of
    `render`'s start-up, its methods compiled at import."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.missing: list[str] = []
        self.stale: list[str] = []  # generated earlier, no longer rendered
        self.diffs: dict[str, str] = {}

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.stale)


def _stale_files(root: Path, files: dict[str, str]) -> list[str]:
    """Files under `root` that an earlier `render` generated and `files` no longer has
    (only those are opened: the rendered ones are not read again)."""
    if not root.is_dir() or root.is_symlink():
        return []
    out = []
    for dirpath, _subdirs, filenames in os.walk(root):  # os.walk does not enter links
        for name in filenames:
            path = Path(dirpath) / name
            if not name.endswith(".yaml") or path.relative_to(root).as_posix() in files \
                    or path.is_symlink():
                continue
            try:
                with path.open("rb") as fh:
                    head = fh.read(len(GENERATED.encode()))
            except OSError:
                continue
            if head == GENERATED.encode():
                out.append(path.relative_to(root).as_posix())
    return sorted(out)


def _read_current(root: Path, rel: str) -> str | None:
    """The file's text; None if absent. A directory, link or non-UTF-8 file is a note."""
    path = root / rel
    try:
        data = safefiles.read_bytes(root, path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise _Unreadable("is a directory, not a file") from None
    except InputError as exc:
        raise _Unreadable(exc.message.removeprefix(f"{path} ")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"is not UTF-8 text (byte {exc.start})") from None


class _Unreadable(Exception):
    pass


def check_tree(root: Path, files: dict[str, str]) -> TreeDiff:
    diff = TreeDiff()
    for rel, content in files.items():
        try:
            current = _read_current(root, rel)
        except _Unreadable as exc:
            diff.changed.append(rel)
            diff.diffs[rel] = f"{rel}: {exc}; `deparrow-secrets render` replaces it\n"
            continue
        if current is None:
            diff.missing.append(rel)
            continue
        if current != content:
            import difflib  # only for a file that differs: start-up stays light

            diff.changed.append(rel)
            diff.diffs[rel] = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), content.splitlines(keepends=True),
                f"a/{rel}", f"b/{rel}"))
    diff.stale = _stale_files(root, files)
    return diff


def write_tree(root: Path, files: dict[str, str], project_root: Path | None = None) -> list[str]:
    """Write what differs (each file replaced atomically); return the paths written.

    Nothing is written or deleted outside `project_root` (default: `root` itself), and
    no link inside it is followed. The files are not fsynced: the tree is regenerated
    from the configuration (`safefiles` says why that is enough).
    """
    trusted = project_root or root
    for rel in files:  # refused before anything is written, not half-way through
        safefiles.check_path(trusted, root / rel)  # inside the project, through no link
        if (root / rel).is_dir():
            raise InputError(f"{root / rel} is a directory, where render writes a file",
                             hint="move that directory away, then run the command again")
    written = []
    for rel, content in files.items():
        path = root / rel
        try:
            unchanged = _read_current(root, rel) == content if root.is_dir() else False
        except _Unreadable:
            unchanged = False
        except FileNotFoundError:
            unchanged = False
        if unchanged:
            continue
        safefiles.write_file(trusted, path, content.encode("utf-8"),
                             mode=safefiles.PUBLIC_FILE, durable=False)
        written.append(rel)
    for rel in _stale_files(root, files):
        safefiles.remove_file(trusted, root / rel)
        written.append(rel)
    return written
