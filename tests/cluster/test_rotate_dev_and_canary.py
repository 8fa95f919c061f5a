"""rotate in dev (embedded store, export rewritten, the dev overlay applied when a cluster is
given, its consumers rolled), and the canary: no value, raw or base64, and no data hash in
any output of rotate or rollback --sync, healthy and failing."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_rotate import NS, build, unstick

from deparrow_secrets.cluster.datahash import eso_data_hash
from deparrow_secrets.providers.local.store import LocalStore
from fakes.kube_apiserver import FakeKubeApiServer
from fakes.kube_objects import deployment
from helpers import Run, find_values, isolate, write_config

Cli = Callable[..., Run]


def _dev_values(root: Path) -> dict[str, str]:
    with LocalStore(root / ".deparrow-secrets" / "store.db") as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    return {k: v.reveal() for k, v in snap.values.items()}


def _exported(root: Path) -> dict[str, str]:
    out = {}
    for path in (root / "deparrow" / "k8s" / "overlays" / "dev" / "secrets").glob("*"):
        for line in path.read_text().splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                out[key] = value
    return out


def test_dev_rotation_rewrites_the_export_applies_the_overlay_and_rolls_consumers(
        dev_project: Path, cli: Cli, kube_api: FakeKubeApiServer, workloads: Any) -> None:
    root = dev_project
    assert cli("export", "--env", "dev").code == 0
    before = _dev_values(root)

    # Without a cluster: the store and the export.
    run = cli("rotate", "--env", "dev", "DEPARROW_SECRET_KEY", "-o", "json")
    assert run.code == 0, run.text
    after = _dev_values(root)
    assert after["DEPARROW_SECRET_KEY"] != before["DEPARROW_SECRET_KEY"]
    assert _exported(root)["DEPARROW_SECRET_KEY"] == after["DEPARROW_SECRET_KEY"]
    assert [s["status"] for s in run.json()["steps"]][-2:] == ["skipped", "skipped"]
    assert kube_api.requests == []

    # With a cluster: the dev overlay's Secrets applied, verified, consumers rolled.
    kc = str(kube_api.kubeconfig_path)
    assert cli("deploy", "--env", "dev", "--kubeconfig", kc).code == 0
    kube_api.put(deployment("web", NS, {"app": "web"}) | {})
    web = kube_api.get("apps/v1", "Deployment", "web", NS)
    web["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"secretRef": {"name": "deparrow-secrets"}}]
    kube_api.put(web)
    kube_api.wait_for(lambda: (kube_api.get("apps/v1", "Deployment", "web", NS).get("status")
                               or {}).get("updatedReplicas") == 1)
    rollouts = workloads.rollouts[("Deployment", NS, "web")]
    run = cli("rotate", "--env", "dev", "REDIS_PASSWORD", "--kubeconfig", kc, "-o", "json")
    assert run.code == 0, run.text
    now = _dev_values(root)
    assert now["REDIS_PASSWORD"] != after["REDIS_PASSWORD"]
    assert _exported(root)["REDIS_PASSWORD"] == now["REDIS_PASSWORD"]
    for name in ("deparrow-secrets", "redis-credentials"):
        obj = kube_api.get("v1", "Secret", name, NS)
        data = {k: base64.b64decode(v) for k, v in obj["data"].items()}
        assert data["REDIS_PASSWORD"] == now["REDIS_PASSWORD"].encode()
    assert [w["name"] for w in run.json()["workloads"] if w["rolledOut"]] == ["web"]
    assert workloads.rollouts[("Deployment", NS, "web")] == rollouts + 1


def test_no_value_and_no_data_hash_in_any_rotate_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, openbao: Any,
        kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], workloads: Any) -> None:
    rot = build("vault", tmp_path, monkeypatch, cli, kube_api, eso, eso_install, workloads,
                openbao)
    outputs: dict[str, bytes] = {}
    values: dict[str, str] = {}
    hashes: dict[str, str] = {}

    def remember() -> None:
        for key, value in rot.raw().items():
            if key not in ("POSTGRES_USER", "POSTGRES_DB", "GRAFANA_ADMIN_USER"):
                values[f"{key} {len(values)}"] = value
        for obj in kube_api.list("v1", "Secret", NS):
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            hashes[f"{obj['metadata']['name']} {len(hashes)}"] = eso_data_hash(data)

    def run(*args: str, stdin: str = "") -> Run:
        result = cli(*args, stdin=stdin)
        assert "Traceback" not in result.err and "internal error" not in result.err
        n = len(outputs)
        outputs[f"[{n}] {' '.join(args)}: stdout"] = result.out.encode()
        outputs[f"[{n}] {' '.join(args)}: stderr"] = result.err.encode()
        remember()
        return result

    kc = ("--kubeconfig", rot.kubeconfig)
    remember()
    for fmt in ("text", "json"):
        assert run("rotate", "--env", "staging", "--all", "--dry-run", *kc, "-o", fmt).code == 0
        assert run("rotate", "--env", "staging", "POSTGRES_PASSWORD", *kc, "-o", fmt).code == 0
        assert run("rollback", "POSTGRES_PASSWORD", "--env", "staging", "--sync", *kc,
                   "-o", fmt).code == 0
    supplied = "supplied-" + secrets.token_urlsafe(30)
    values["supplied"] = supplied
    assert run("rotate", "--env", "staging", "GRAFANA_ADMIN_USER", "--stdin", *kc,
               stdin=f"GRAFANA_ADMIN_USER={supplied}\n").code == 0
    # failing: undo after a sync failure, a stuck rollout with --no-rollback, bad input
    redis = rot.project().layout(rot.project().environment("staging")).ref(
        "REDIS_PASSWORD").key
    rot.eso.fail_key(redis)
    for fmt in ("text", "json"):
        assert run("rotate", "--env", "staging", "REDIS_PASSWORD", *kc, "--timeout", "1",
                   "-o", fmt).code == 9
        (rot.root / ".deparrow-secrets" / "rotate-staging.json").unlink()
    rot.eso.restore_key(redis)
    assert run("deploy", "--env", "staging", *kc).code == 0
    rot.workloads.stick(NS, "db-client")
    assert run("rotate", "--env", "staging", "POSTGRES_PASSWORD", *kc, "--timeout", "2",
               "--no-rollback").code == 9
    unstick(rot, "db-client")
    assert run("rotate", "--env", "staging", "POSTGRES_PASSWORD", *kc).code == 0
    assert run("rotate", "--env", "staging", "GRAFANA_ADMIN_USER", "--stdin", *kc,
               stdin=f"GRAFANA_ADMIN_USER={supplied}\nREDIS_PASSWORD={supplied}\n").code == 2

    state = rot.root / ".deparrow-secrets"
    for path in state.glob("ledger*"):
        outputs[str(path.name)] = path.read_bytes()
    assert len([r for r in (state / "ledger.jsonl").read_text().splitlines()
                if '"command":"rotate"' in r]) >= 5
    assert len(values) >= 20 and len(hashes) >= 9
    found = find_values(outputs, values)
    found += [f"{where}: {name}" for name, h in hashes.items()
              for where, blob in outputs.items() if h.encode() in blob]
    assert found == [], "\n".join(found)
    # positive control: the search finds a value where it is
    assert find_values({"x": base64.b64encode(supplied.encode())}, {"s": supplied})


def test_keys_declared_to_rotate_together_rotate_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    (root / "catalog.yaml").write_text(
        "values:\n"
        "  DB_USER: {requirement: required, source: generated, rotateWith: [DB_PASSWORD]}\n"
        "  DB_PASSWORD: {requirement: required, source: generated}\n"
        "  OTHER: {requirement: required, source: generated}\n"
        "secrets:\n  db: [DB_USER, DB_PASSWORD]\n  other: [OTHER]\n")
    write_config(root, "catalog: catalog.yaml\nenvironments:\n  dev:\n"
                       "    store: {provider: local}\n")
    assert cli("provision", "--env", "dev").code == 0
    assert cli("render").code == 0
    before = _dev_values(root)
    run = cli("rotate", "--env", "dev", "DB_PASSWORD", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["keys"] == ["DB_USER", "DB_PASSWORD"]
    after = _dev_values(root)
    assert after["DB_USER"] != before["DB_USER"]
    assert after["DB_PASSWORD"] != before["DB_PASSWORD"]
    assert after["OTHER"] == before["OTHER"]
    assert run.json()["storeWrites"] == 1  # one remote object, one write

    (root / "catalog.yaml").write_text(
        "values:\n"
        "  DB_USER: {requirement: required, source: generated, rotateWith: [NOPE]}\n"
        "secrets:\n  db: [DB_USER]\n")
    bad = cli("rotate", "--env", "dev", "DB_USER")
    assert bad.code == 2 and "values.DB_USER.rotateWith[0]" in bad.err \
        and "'NOPE' is not defined" in bad.err, bad.text
