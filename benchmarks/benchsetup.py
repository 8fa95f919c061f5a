"""What the cluster benchmarks share: a project written, rendered (and provisioned) from
its configuration, the test tree's fake cluster with ESO installed, and the ESO
simulator's figures. The fakes are the tests' own (`tests/fakes`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from deparrow_secrets.operations.provision import apply_provision, plan_provision  # noqa: E402
from deparrow_secrets.project import Project  # noqa: E402
from deparrow_secrets.render.tree import render_tree, write_tree  # noqa: E402
from fakes.kube_objects import install_eso, started_cluster  # noqa: E402

NS = "deparrow"


def rendered_project(root: Path, config: str, catalog: str | None = None,
                     provision: str | None = None) -> Project:
    """deparrow-secrets.yaml (and catalog.yaml) written under `root`, the tree rendered,
    and environment `provision`'s values created when named."""
    if catalog is not None:
        (root / "catalog.yaml").write_text(catalog, encoding="utf-8")
    (root / "deparrow-secrets.yaml").write_text(config, encoding="utf-8")
    project = Project.load(root / "deparrow-secrets.yaml")
    write_tree(project.config.manifests_dir, render_tree(project.config, project.catalog))
    if provision is not None:
        env = project.environment(provision)
        with project.open_store(env) as store:
            apply_provision(project, env, store, plan_provision(project, env, store, {}), {})
    return project


@contextmanager
def eso_cluster(kube_dir: Path) -> Iterator[Any]:
    """The fake API server with the namespaces, the ESO CRDs and ESO's deployment, and a
    kubeconfig at `kubeconfig(kube_dir)`; stopped on exit."""
    with started_cluster(kube_dir, NS) as api:
        install_eso(api)
        yield api


def kubeconfig(kube_dir: Path) -> str:
    return str(kube_dir / "config")


def simulator_figures(sim: Any) -> dict[str, Any]:
    """The ESO simulator's own work, reported apart from the tool's."""
    return {"simReconciles": sim.reconciles, "simStoreReads": sim.store_reads,
            "simWrites": sim.writes, "simTime": sim.busy_seconds}
