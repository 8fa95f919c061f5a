"""Canary: known secret values never show up where they should not.

The tool runs as real processes (the venv's `deparrow-secrets`) in a fresh git
project with its own HOME and TMPDIR. After quickstart the generated values are read
from the store; one more value enters through `set` on stdin, and two more through
inputs that are rejected. Then every reporting and writing command runs, and
stdout, stderr and every file of the project, HOME and TMPDIR are searched for each
value, raw and base64-encoded. Only the store (.deparrow-secrets/) and the exported
env files (deparrow/k8s/overlays/dev/secrets/) may hold them. Positive controls show
that the search finds the values where they are meant to be.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.providers.local.store import LocalStore
from helpers import (
    Run,
    clean_env,
    find_values,
    git,
    git_init,
    isolate,
    iter_files,
    kubectl,
    run_cli,
)


def test_values_appear_only_in_the_store_and_the_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, home, tmp, inputs = (tmp_path / n for n in ("project", "home", "tmp", "inputs"))
    for d in (project, home, tmp, inputs):
        d.mkdir()
    isolate(monkeypatch, tmp_path)
    env = clean_env(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"),
                    XDG_CONFIG_HOME=str(home / ".config"))
    git_init(project)
    outputs: dict[str, bytes] = {}

    def run(*args: str, stdin: str = "", code: int = 0) -> Run:
        result = run_cli(args, cwd=project, stdin=stdin, env=env)
        assert result.code == code, result.text
        assert "Traceback" not in result.err
        n = len(outputs) // 2
        outputs[f"[{n}] {' '.join(args)}: stdout"] = result.out.encode()
        outputs[f"[{n}] {' '.join(args)}: stderr"] = result.err.encode()
        return result

    run("quickstart")
    catalog = load_catalog()
    with LocalStore(project / ".deparrow-secrets" / "store.db") as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    generated = {k: v.reveal() for k, v in snap.values.items()
                 if catalog.values[k].source == "generated"}
    assert sorted(generated) == ["DEPARROW_JWT_SECRET", "DEPARROW_SECRET_KEY",
                                 "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD",
                                 "REDIS_PASSWORD"]
    assert all(len(v) >= 32 for v in generated.values())
    canaries = dict(generated)
    canaries["set REDIS_PASSWORD"] = "canary" + secrets.token_urlsafe(32)
    canaries["set -o json POSTGRES_REPLICATION_PASSWORD"] = "canary" + secrets.token_urlsafe(32)
    canaries["rejected short value"] = "short" + secrets.token_hex(12)
    canaries["rejected values-file line"] = "bad line " + secrets.token_urlsafe(24)
    canaries["rejected argv value"] = "argv" + secrets.token_urlsafe(32)
    canaries["rejected short provision value"] = "p" + secrets.token_hex(6)
    canaries["rejected duplicate json value"] = "dup" + secrets.token_urlsafe(32)

    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "quickstart")

    run("provision", "--env", "dev")
    run("provision", "--env", "dev", "-o", "json")
    run("provision", "--env", "dev", "--dry-run")
    run("status")
    run("status", "--env", "dev", "-o", "json")
    run("verify", "--env", "dev")
    run("verify", "--env", "dev", "-o", "json")
    run("export", "--env", "dev")
    run("export", "--env", "dev", "--format", "json")
    run("render")
    run("render", "--check")
    run("render", "--check", "--diff")
    for key in catalog.values:
        run("get", key, code=0 if key in snap.values else 1)
    run("history", "REDIS_PASSWORD")
    run("history", "REDIS_PASSWORD", "-o", "json")
    run("set", "REDIS_PASSWORD", stdin=canaries["set REDIS_PASSWORD"] + "\n")
    run("get", "REDIS_PASSWORD")
    written = run("set", "POSTGRES_REPLICATION_PASSWORD", "-o", "json",
                  stdin=canaries["set -o json POSTGRES_REPLICATION_PASSWORD"])
    assert written.json()["key"] == "POSTGRES_REPLICATION_PASSWORD"
    run("get", "POSTGRES_REPLICATION_PASSWORD", "-o", "json")
    assert run("quickstart", "-o", "json").json()["created"] == []
    run("history", "REDIS_PASSWORD")
    run("history", "DEPARROW_JWT_SECRET", "-o", "json")
    run("verify", "--env", "dev")
    run("export", "--env", "dev")
    run("rollback", "REDIS_PASSWORD", "--env", "dev")
    run("status", "--env", "dev")
    run("audit")
    run("audit", "--verify", "-o", "json")
    run("audit", "--key", "REDIS_PASSWORD", "--env", "dev")
    run("posture", "--env", "dev")
    run("posture", "--env", "dev", "-o", "json")
    run("posture", "--env", "dev", "-o", "sarif")
    run("setup", "--env", "dev", "--audit")
    run("export", "--env", "dev")
    # Rejected input: the messages name key, file and line, never the value.
    run("set", "DEPARROW_JWT_SECRET", stdin=canaries["rejected short value"], code=2)
    values_file = inputs / "values.env"
    values_file.write_text(f"# comment\n{canaries['rejected values-file line']}\n",
                           encoding="utf-8")
    bad = run("provision", "--env", "dev", "--values-file", str(values_file), code=2)
    assert "values.env:2: expected KEY=VALUE" in bad.err
    # A value in argv: click would quote the stray argument; set refuses it unquoted.
    run("set", "REDIS_PASSWORD", canaries["rejected argv value"], code=2)
    run("set", "REDIS_PASSWORD", "-e" + canaries["rejected argv value"], "x", code=2)
    run("set", "REDIS_PASSWORD", "--env", "dev", "-x" + canaries["rejected argv value"],
        code=2)
    short_file = inputs / "short.env"
    short_file.write_text(f"POSTGRES_PASSWORD={canaries['rejected short provision value']}\n",
                          encoding="utf-8")
    run("provision", "--env", "dev", "--values-file", str(short_file), code=2)
    duplicate = inputs / "values.json"
    dup = canaries["rejected duplicate json value"]
    duplicate.write_text(f'{{"OPENAI_API_KEY": "{dup}", "OPENAI_API_KEY": "{dup}x"}}',
                         encoding="utf-8")
    run("provision", "--env", "dev", "--values-file", str(duplicate), code=2)

    # Positive controls: the value is printed on request, and is where it belongs.
    revealed = run_cli(["get", "REDIS_PASSWORD", "--reveal"], cwd=project, env=env)
    assert revealed.out == generated["REDIS_PASSWORD"] + "\n"
    assert find_values({"get --reveal": revealed.out.encode()}, canaries) == [
        "get --reveal: REDIS_PASSWORD (raw)"]
    exported = {p.name: p.read_bytes()
                for p in iter_files(project / "deparrow/k8s/overlays/dev/secrets")}
    assert sorted(exported) == ["deparrow-secrets.env", "postgres-credentials.env",
                                "redis-credentials.env"]
    assert {f.split(":")[1].split()[0] for f in find_values(exported, generated)} == \
        set(generated)
    # kustomize's build of the dev overlay carries them base64-encoded, as a Secret does.
    built = subprocess.run([kubectl(), "kustomize", "deparrow/k8s/overlays/dev"], cwd=project,
                           capture_output=True, check=True).stdout
    found = find_values({"build": built}, generated)
    assert {f.split(": ")[1] for f in found if f.endswith("(base64)")} == {
        f"{k} (base64)" for k in generated}
    # After the rollback and a new export, the value set on stdin is in the store only.
    assert find_values(exported, {"set": canaries["set REDIS_PASSWORD"]}) == []

    # The search itself.
    allowed = [project / ".deparrow-secrets", project / "deparrow/k8s/overlays/dev/secrets"]
    blobs = dict(outputs)
    scanned = []
    for root in (project, home, tmp):
        for path in iter_files(root, skip=allowed):
            blobs[str(path.relative_to(tmp_path))] = path.read_bytes()
            scanned.append(path.relative_to(tmp_path).as_posix())
    assert "project/deparrow-secrets.yaml" in scanned and "project/.gitignore" in scanned
    assert "project/deparrow/k8s/overlays/dev/kustomization.yaml" in scanned
    assert any(s.startswith("project/.git/") for s in scanned)
    assert len(outputs) >= 2 * 30
    assert find_values(blobs, canaries) == []

    # The store holds the values encrypted: not even it has them in plain or base64.
    store_blobs = {p.name: p.read_bytes() for p in iter_files(project / ".deparrow-secrets")
                   if not p.name.startswith("export-")}
    assert find_values(store_blobs, canaries) == []
