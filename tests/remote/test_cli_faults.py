"""Faults seen through the CLI: a store that stops answering or dies mid-provision.

The command fails with exit 3 and one message naming environment, provider and remote
key; nothing is half-written; a rerun after the fault converges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import MotoServer, RaftOpenBao, http_request

GROUPS = 40


def write_project(root: Path, store_yaml: str) -> None:
    lines = ["values:"]
    for g in range(GROUPS):
        for p in ("A", "B"):
            lines += [f"  K{g}_{p}:", "    requirement: required", "    source: generated",
                      "    generate: {length: 24}", f"    remote: {{group: g{g}, property: {p}}}"]
    lines.append("secrets:\n  app:")
    lines += [f"    - K{g}_{p}" for g in range(GROUPS) for p in ("A", "B")]
    (root / "catalog.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "deparrow-secrets.yaml").write_text(
        "catalog: catalog.yaml\nenvironments:\n  production:\n"
        f"    store: {store_yaml}\n", encoding="utf-8")


def cli_process(root: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "deparrow-secrets"
    return subprocess.Popen([str(exe), *args], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_store_unreachable_mid_provision_then_rerun_converges(
        tmp_path: Path, aws_env: MotoServer, fault_proxy) -> None:
    proxy = fault_proxy(aws_env.port)
    write_project(tmp_path, "{provider: aws, region: us-east-1}")
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "DEPARROW_SECRETS_RETRIES": "2",
           "DEPARROW_SECRETS_TIMEOUT": "1"}
    existing = aws_env.current_secrets

    proc = cli_process(tmp_path, "provision", "--env", "production", env=env)
    deadline = time.monotonic() + 30
    while len(existing()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proxy.mode = "blackhole"
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, (out, err)
    assert "Traceback" not in err
    assert "environment production" in err and "provider aws" in err
    assert "remote key deparrow/production/g" in err

    partial = existing()
    assert 0 < len(partial) < GROUPS
    assert all(set(props) == {"A", "B"} for props in partial.values())  # none half-written

    proxy.mode = "pass"
    rerun = cli_process(tmp_path, "provision", "--env", "production", env=env)
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    final = existing()
    assert len(final) == GROUPS
    for name, props in partial.items():
        assert final[name] == props  # what existed was kept, not regenerated
    verify = cli_process(tmp_path, "verify", "--env", "production", env=env)
    verify.communicate(timeout=60)
    assert verify.returncode == 0


@pytest.fixture
def persistent_bao(tmp_path: Path) -> Iterator[RaftOpenBao]:
    with RaftOpenBao(tmp_path / "bao") as server:
        server.initialize()
        yield server


def test_vault_killed_during_provision_then_rerun_converges(
        tmp_path: Path, persistent_bao: RaftOpenBao, fault_proxy) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, "{provider: vault, server: 'https://vault.example.com'}")
    proxy = fault_proxy(persistent_bao.port, mode="delay", delay_seconds=0.3)
    env = {**os.environ, "VAULT_ADDR": proxy.url, "VAULT_TOKEN": persistent_bao.token,
           "DEPARROW_SECRETS_RETRIES": "2", "DEPARROW_SECRETS_TIMEOUT": "2"}
    proc = cli_process(project, "provision", "--env", "production", env=env)
    time.sleep(0.45)  # the plan's read is through; the server dies under the next requests
    persistent_bao.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, (out, err)
    assert "provider vault" in err and "environment production" in err
    assert "VAULT_ADDR" in err and "Traceback" not in err  # names what to check

    persistent_bao.start()
    persistent_bao.unseal()
    status, body = http_request("GET", f"{persistent_bao.addr}/v1/secret/data/deparrow/production",
                                headers={"X-Vault-Token": persistent_bao.token})
    if status == 200:  # the write landed before the kill: then it is whole
        assert len(json.loads(body)["data"]["data"]) == GROUPS * 2
    else:
        assert status == 404

    proxy.mode = "pass"
    rerun = cli_process(project, "provision", "--env", "production", env=env)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0
    verify = cli_process(project, "verify", "--env", "production", env=env)
    verify.communicate(timeout=60)
    assert verify.returncode == 0
