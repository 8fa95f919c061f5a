"""Canary: no migrated value (raw or base64) and no unkeyed hash of one (ESO's data hash)
in any migrate output (text and JSON; plan, conflict, failure, success, rerun), in the
ledger, the state file or the edited files."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from migrate_layout import (
    APP,
    CATALOG,
    Cli,
    Layout,
    expected_data,
    start_eso,
    vault_layout,
)

from deparrow_secrets.cluster.datahash import eso_data_hash
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run

__all__ = ["vault_layout"]


def test_no_value_and_no_data_hash_in_any_output_or_file(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    sim = start_eso(eso, vault_layout)
    overlay = str(vault_layout.overlay)
    runs: list[Run] = []
    for fmt in ("text", "json"):
        runs.append(vault_layout.migrate(cli, "--from", "files", overlay, "--dry-run",
                                         "-o", fmt))
    other = secrets.token_urlsafe(24)
    assert cli("set", "REDIS_PASSWORD", "--env", "staging", stdin=other + "\n").code == 0
    for fmt in ("text", "json"):
        conflict = vault_layout.migrate(cli, "--from", "files", overlay, "-o", fmt)
        assert conflict.code == 5, conflict.text
        runs.append(conflict)
    sim.never_sync()
    failed = vault_layout.migrate(cli, "--from", "files", overlay, "--force",
                                  "--timeout", "1")
    assert failed.code == 1, failed.text
    runs.append(failed)
    sim.never_sync(False)
    for fmt in ("json", "text"):
        done = vault_layout.migrate(cli, "--from", "files", overlay, "--delete-original",
                                    "-o", fmt)
        assert done.code == 0, done.text
        runs.append(done)
    cluster = vault_layout.migrate(cli, "--from", "cluster", "-o", "json")
    assert cluster.code == 0, cluster.text
    runs.append(cluster)
    state = vault_layout.root / ".deparrow-secrets"
    files = [state / "ledger.jsonl", state / "migrate-staging.json",
             vault_layout.root / APP / "base" / "kustomization.yaml",
             vault_layout.root / APP / "base" / "deployment.yaml"]
    texts = [r.out for r in runs] + [r.err for r in runs] + [p.read_text() for p in files]
    hashes = [eso_data_hash(expected_data(vault_layout.values, s.name, False))
              for s in CATALOG.secrets]
    for canary in vault_layout.canaries() + hashes + [other]:
        for text in texts:
            assert canary not in text
