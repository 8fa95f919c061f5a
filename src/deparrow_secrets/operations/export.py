"""Export: the env files a dev overlay's secretGenerator reads, mode 0600, git-ignored."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from deparrow_secrets import gitrepo, safefiles
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import InputError
from deparrow_secrets.project import Project
from deparrow_secrets.render import manifests
from deparrow_secrets.render.tree import overlay_dir
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore


@dataclass
class ExportResult:
    files: list[Path]
    missing: list[str]


def write_private(root: Path, path: Path, content: str, private_dir: bool = True) -> None:
    """Replace `path` atomically with a file that is 0600 from its first byte, reached
    from `root` without following links (see safefiles)."""
    gitrepo.refuse_tracked(path)
    safefiles.write_file(root, path, content.encode("utf-8"), mode=safefiles.PRIVATE_FILE,
                         private_dir=private_dir)


def _collect(project: Project, env: EnvironmentConfig,
             store: SecretStore) -> tuple[dict[str, dict[str, SecretValue]], list[str]]:
    layout = project.layout(env)
    read = layout.read(store, (v.name for v in layout.needed()))
    by_secret: dict[str, dict[str, SecretValue]] = {}
    missing = []
    for secret in project.catalog.secrets:
        keys = project.catalog.secret_keys(secret, env.ha, env.optional_keys)
        if not keys:
            continue
        out = by_secret.setdefault(secret.name, {})
        for key in keys:
            value = read[key].value
            if value is None:
                missing.append(key)
            else:
                out[key] = value
    return by_secret, sorted(set(missing))


def check_allowed(env: EnvironmentConfig, allow_non_dev: bool) -> None:
    """Export is for dev: an environment whose values live in a remote store (and reach
    its cluster through External Secrets Operator) is exported only when asked for."""
    if env.uses_eso and not allow_non_dev:
        raise InputError(f"export writes plaintext files for a dev overlay; {env.name}'s "
                         f"values live in its {env.provider} store and reach the cluster "
                         "through External Secrets Operator",
                         hint="nothing was written; if you really want them on this disk, "
                         "add --allow-non-dev (and delete the files when done)")


def export(project: Project, env: EnvironmentConfig, store: SecretStore,
           fmt: str = "env", output: Path | None = None,
           allow_non_dev: bool = False) -> ExportResult:
    check_allowed(env, allow_non_dev)
    config = project.config
    overlay = project.manifests_dir / overlay_dir(env)
    if output is not None:
        output = Path(os.path.abspath(output))
    # A chosen path outside the project is taken as given; inside it, nothing is
    # followed from the project root down.
    trusted = config.root if output is None or safefiles.inside(config.root, output) \
        else (output.parent if fmt == "json" else output)
    if fmt == "json":
        json_path = output or config.state_dir / f"export-{env.name}.json"
        targets = {"": json_path}
        private_dir = output is None  # the state directory; a chosen file's dir is the user's
        # The file itself: its directory may be the project root.
        ignored, pattern = json_path, _ignore_pattern(config.root, json_path, directory=False)
    else:
        target_dir = (output or overlay) / "secrets"
        targets = {secret.name: (output or overlay) / manifests.env_file_name(secret)
                   for secret in project.catalog.secrets}
        private_dir = True
        ignored, pattern = target_dir / "probe", _ignore_pattern(config.root, target_dir)
    for path in targets.values():  # no link on the way, before reading or writing anything
        safefiles.check_path(trusted, path)
    by_secret, missing = _collect(project, env, store)
    if missing:
        raise InputError(f"environment {env.name} lacks values: " + ", ".join(missing),
                         hint=f"run `deparrow-secrets provision --env {env.name}` first")
    # Every file's content first: a problem stops the export before anything is written.
    contents: dict[Path, str] = {}
    if fmt == "json":
        data = {name: {k: v.reveal() for k, v in values.items()}
                for name, values in by_secret.items()}
        contents[json_path] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    else:
        for name, values in by_secret.items():
            lines = []
            for key, value in values.items():
                if "\n" in value.reveal() or "\r" in value.reveal():
                    raise InputError(f"the value of {key} spans lines, which an env file "
                                     "cannot hold", hint="use --format json")
                lines.append(f"{key}={value.reveal()}\n")
            contents[targets[name]] = "".join(lines)
    for path in contents:  # refuse before writing anything, not half-way through
        gitrepo.refuse_tracked(path)
    gitrepo.ensure_ignored(ignored, pattern, config.root / ".gitignore")
    for path, content in contents.items():
        write_private(trusted, path, content, private_dir)
    return ExportResult(list(contents), missing)


def _ignore_pattern(root: Path, path: Path, directory: bool = True) -> str:
    suffix = "/" if directory else ""
    try:
        return "/" + path.resolve().relative_to(root.resolve()).as_posix() + suffix
    except ValueError:
        return path.name + suffix
