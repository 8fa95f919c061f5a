"""Faults seen through the CLI: a store that stops answering or dies mid-provision.

The command fails with exit 3 and one message naming environment, provider and remote
key; nothing is half-written; a rerun after the fault converges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from servers import MotoServer

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
    client = aws_env.client("secretsmanager")

    def existing() -> dict[str, dict[str, str]]:
        out = {}
        for page in client.get_paginator("list_secrets").paginate():
            for s in page["SecretList"]:
                v = client.get_secret_value(SecretId=s["Name"], VersionStage="AWSCURRENT")
                out[s["Name"]] = json.loads(v["SecretString"])
        return out

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


def test_vault_killed_names_what_to_check(tmp_path: Path, openbao_fresh, monkeypatch,
                                          cli) -> None:
    write_project(tmp_path, "{provider: vault, server: 'https://vault.example.com'}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULT_ADDR", openbao_fresh.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao_fresh.token)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1")
    assert cli("verify", "--env", "production").code == 1
    killer = threading.Timer(0.0, openbao_fresh.kill)
    killer.start()
    killer.join()
    result = cli("provision", "--env", "production")
    assert result.code == 3, result.text
    assert "Traceback" not in result.text
    assert "provider vault" in result.err and "environment production" in result.err
    assert "VAULT_ADDR" in result.err  # names what to check
