"""Fixtures for the cluster commands: a fake Kubernetes API server and simulated controllers.

* ``kube_api`` (from ``tests/conftest.py``) - a started
  :class:`fakes.kube_apiserver.FakeKubeApiServer` (fresh per test) with namespaces
  ``deparrow`` and ``external-secrets``, the ESO CRDs installed (so
  ``external-secrets.io/v1`` is served) and a kubeconfig at ``kube_api.kubeconfig_path``
  (context ``fake``, namespace ``deparrow``, CA data and bearer token);
* ``eso_install`` - ``eso_install(kube_api)`` creates a healthy ESO installation (controller,
  webhook and cert-controller Deployments and pods, validating webhooks);
* ``eso`` - factory ``eso(store_for, **knobs) -> EsoSimulator``, started, stopped at teardown;
  ``store_for(secretstore_obj) -> deparrow_secrets.stores.interface.SecretStore``;
* ``workloads`` - a started :class:`fakes.workload_simulator.WorkloadSimulator` with its
  Stakater Reloader (``workloads.reloader``).

What is faked and how faithfully: ``fakes.kube_apiserver.FIDELITY`` and the docstrings of
``fakes/eso_simulator.py`` and ``fakes/workload_simulator.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import install_eso
from fakes.workload_simulator import Reloader, WorkloadSimulator
from helpers import Run, isolate, write_config

NAMESPACE = "deparrow"


@pytest.fixture
def dev_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                cli: Callable[..., Run]) -> Path:
    """A project with dev on the embedded store, provisioned and rendered."""
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    write_config(root, "environments:\n  dev:\n    store: {provider: local}\n")
    assert cli("provision", "--env", "dev").code == 0
    assert cli("render").code == 0
    return root


@pytest.fixture
def eso_install() -> Callable[..., None]:
    """``eso_install(kube_api, webhook=True, cert_controller=True)``: a healthy ESO."""
    return install_eso


@pytest.fixture
def eso(kube_api: FakeKubeApiServer) -> Iterator[Callable[..., Any]]:
    """Factory ``eso(store_for, **options) -> EsoSimulator`` (started; stopped at teardown)."""
    from fakes.eso_simulator import EsoSimulator

    made: list[EsoSimulator] = []

    def start(store_for: Callable[[dict[str, Any]], Any], **options: Any) -> EsoSimulator:
        sim = EsoSimulator(kube_api, store_for, **options).start()
        made.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in made:
            sim.stop()


@pytest.fixture
def workloads(kube_api: FakeKubeApiServer) -> Iterator[WorkloadSimulator]:
    """Rollout controllers plus Stakater Reloader (``workloads.reloader``), started."""
    sim = WorkloadSimulator(kube_api)
    sim.reloader = Reloader(kube_api)
    with sim:
        yield sim
