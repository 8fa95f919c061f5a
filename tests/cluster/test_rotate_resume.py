"""A rotation killed (SIGKILL) after each step in turn resumes when rerun: the rerun finishes
without a second store write and without a second restart. The CLI runs as a real process;
the test-only hook DEPARROW_SECRETS_TEST_KILL_AFTER=<step> kills it after that step."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_rotate import NS, Rot, build, ledger_records

from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run, clean_env, run_cli

Cli = Callable[..., Run]


@pytest.fixture
def rot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, openbao: Any,
        kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], workloads: Any) -> Rot:
    return build("vault", tmp_path, monkeypatch, cli, kube_api, eso, eso_install, workloads,
                 openbao)


def _run(rot: Rot, openbao: Any, kill_after: str | None) -> Run:
    extra = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}
    if kill_after:
        extra["DEPARROW_SECRETS_TEST_KILL_AFTER"] = kill_after
    return run_cli(["rotate", "--env", rot.env, "--kubeconfig", rot.kubeconfig, "--timeout",
                    "30", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "-o", "json"], rot.root,
                   env=clean_env(**extra))


@pytest.mark.parametrize("step", ["plan", "write-sent", "write", "sync", "restart-sent",
                                  "restart", "wait"])
def test_killed_after_each_step_the_rerun_finishes_without_repeating(
        rot: Rot, openbao: Any, step: str) -> None:
    before = rot.raw()
    versions = rot.versions()
    killed = _run(rot, openbao, step)
    assert killed.code == -signal.SIGKILL, killed.text
    record = rot.root / ".deparrow-secrets" / "rotate-staging.json"
    assert record.exists()
    assert (record.stat().st_mode & 0o777) == 0o600
    assert (record.parent.stat().st_mode & 0o777) == 0o700
    held = record.read_text()
    for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DEPARROW_JWT_SECRET"):
        assert before[key] not in held  # the record never holds a value, old or new
        assert rot.raw()[key] not in held

    rerun = _run(rot, openbao, None)
    assert rerun.code == 0, rerun.text
    doc = rerun.json()
    assert doc["outcome"] == "rotated"
    if step != "plan":
        assert doc["resumedAfter"] == {"write-sent": "plan",
                                       "restart-sent": "sync"}.get(step, step)
        assert doc["storeWrites"] == 0
    assert all(s["hashVerified"] for s in doc["secrets"])
    after = rot.raw()
    assert after["POSTGRES_PASSWORD"] != before["POSTGRES_PASSWORD"]
    assert after["REDIS_PASSWORD"] != before["REDIS_PASSWORD"]
    # exactly one store write over both runs
    assert {rk: n - versions[rk] for rk, n in rot.versions().items()} == \
        {rk: 1 for rk in versions}
    rot.assert_secrets_carry_the_store()
    # exactly one restart of each consumer over both runs; Reloader's left to Reloader
    assert rot.tool_restarts("web") == 1 and rot.tool_restarts("db-client") == 1
    assert rot.tool_restarts("cache") == 0
    rollouts = rot.workloads.rollouts
    for name in ("web", "db-client", "cache"):
        assert rollouts[("Deployment", NS, name)] == 1, name
    assert not record.exists()
    [entry] = ledger_records(rot, "rotate")  # the killed run left none, the rerun one
    assert entry["outcome"] == {"status": "ok"}
    assert len(entry["objects"]) == 1 and entry["objects"][0]["hashBefore"]
    if step != "plan":
        assert entry["facts"]["resumedAfter"] == doc["resumedAfter"]


def test_an_other_rotation_waits_for_the_interrupted_one(rot: Rot, openbao: Any) -> None:
    killed = _run(rot, openbao, "write")
    assert killed.code == -signal.SIGKILL
    other = rot.rotate("DEPARROW_JWT_SECRET")
    assert other.code == 2, other.text
    assert "has not finished" in other.err and "POSTGRES_PASSWORD REDIS_PASSWORD" in other.err
