"""migrate --rotate-leaked: the values found in git history are rotated in the same run,
through `rotate` (operations/rotate.py), end to end on OpenBao and the fake cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from migrate_layout import (
    CATALOG,
    NS,
    Cli,
    Layout,
    cluster_data,
    start_eso,
    vault_layout,
)

from fakes.kube_apiserver import FakeKubeApiServer
from fakes.workload_simulator import WorkloadSimulator

__all__ = ["vault_layout"]


def test_rotate_leaked_rotates_exactly_the_leaked_keys_end_to_end(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        workloads: WorkloadSimulator, cli: Cli) -> None:
    start_eso(eso, vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--rotate-leaked", "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    leaked = set(doc["leakedKeys"])
    generated = {k for k in vault_layout.values if CATALOG.values[k].source == "generated"}
    assert leaked == generated
    rotation = doc["rotation"]
    assert rotation["outcome"] == "rotated", rotation
    assert set(rotation["keys"]) == leaked
    assert doc["rotationExitCode"] == 0
    stored = vault_layout.store_values()
    for key, old in vault_layout.values.items():
        if key in leaked:
            assert stored[key] != old, key  # the committed value is no longer in use
        else:
            assert stored[key] == old, key  # defaults were not leaked: untouched
    # The cluster carries the new values, and the consumers rolled.
    for secret in CATALOG.secrets:
        data = cluster_data(kube_api, secret.name)
        for key, value in data.items():
            assert value == stored[key].encode()
    restarted = {w["name"] for w in rotation["workloads"] if w["restarted"]}
    assert restarted == {"metaos", "postgres"}
    for dep in kube_api.list("apps/v1", "Deployment", NS):
        annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
        assert "kubectl.kubernetes.io/restartedAt" in annotations
    # Neither the old nor the new values show anywhere.
    ledger = (vault_layout.root / ".deparrow-secrets" / "ledger.jsonl").read_text()
    commands = [json.loads(line)["command"] for line in ledger.splitlines()]
    assert "migrate" in commands
    for text in (run.out, run.err, ledger):
        for canary in vault_layout.canaries() + [stored[k] for k in leaked]:
            assert canary not in text
