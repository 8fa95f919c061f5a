"""Canary for the cluster commands: no value (raw or base64) and no data hash in any output.

A staging environment on a real OpenBao is deployed to the fake API server (ESO
simulator writing the Secrets); then every cluster command runs in every output format,
healthy and broken (a changed store value, an edited Secret, a failing store read, a
denied and a conflicting API call), and a dev environment is deployed (its Secrets
carry the values in the request bodies). stdout and stderr of every run are searched
for every value, raw and base64, and for every Secret's data hash. A positive control
shows the search finds them where they are meant to be.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.cluster.datahash import eso_data_hash
from deparrow_secrets.project import Project
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run, find_values, vault_staging_project

Cli = Callable[..., Run]
NS = "deparrow"


def test_no_value_and_no_data_hash_in_any_cluster_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: Any, cli: Cli,
        kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], workloads: Any) -> None:
    root, path = vault_staging_project(tmp_path, monkeypatch, openbao, dev=True)
    kc = str(kube_api.kubeconfig_path)
    outputs: dict[str, bytes] = {}

    def run(*args: str, code: int | None = 0, stdin: str = "") -> Run:
        result = cli(*args, stdin=stdin)
        if code is not None:
            assert result.code == code, result.text
        assert "Traceback" not in result.err and "internal error" not in result.err
        n = len(outputs) // 2
        outputs[f"[{n}] {' '.join(args)}: stdout"] = result.out.encode()
        outputs[f"[{n}] {' '.join(args)}: stderr"] = result.err.encode()
        return result

    assert cli("provision", "--env", "staging").code == 0
    assert cli("provision", "--env", "dev").code == 0
    assert cli("render").code == 0
    eso_install(kube_api)
    project = Project.load(root / "deparrow-secrets.yaml")
    sim = eso(lambda store_obj: project.open_store(project.environment("staging")))
    web = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": NS},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "containers": [{"name": "web", "image": "example.invalid/web:1",
                                        "envFrom": [{"secretRef":
                                                     {"name": "deparrow-secrets"}}]}]}}}}

    def every_report(code: int | None = None) -> None:
        for fmt in ("text", "json", "sarif", "dot", "mermaid"):
            run("doctor", "--env", "staging", "--kubeconfig", kc, "-o", fmt, code=code)
        for fmt in ("text", "json", "sarif"):
            run("drift", "--env", "staging", "--kubeconfig", kc, "-o", fmt, code=code)
        for fmt in ("text", "json"):
            for target in ("deparrow-secrets", "REDIS_PASSWORD"):
                run("impact", target, "--env", "staging", "--kubeconfig", kc, "-o", fmt)

    # Dev first (same namespace: ESO takes its Secrets over afterwards): the Secrets' data
    # travels in the apply bodies; errors must not echo it.
    kube_api.deny("patch", "secrets")
    run("deploy", "--env", "dev", "--kubeconfig", kc, code=4)
    kube_api.allow_all()
    kube_api.fail_next("patch", "secrets", 409, count=20)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    run("deploy", "--env", "dev", "--kubeconfig", kc, code=5)
    monkeypatch.delenv("DEPARROW_SECRETS_RETRIES")
    kube_api.clear_faults()
    for fmt in ("text", "json"):
        run("deploy", "--env", "dev", "--kubeconfig", kc, "--dry-run", "-o", fmt)
    run("deploy", "--env", "dev", "--kubeconfig", kc)
    run("doctor", "--env", "dev", "--kubeconfig", kc, "-o", "json", code=None)
    run("drift", "--env", "dev", "--kubeconfig", kc, "-o", "json")

    for fmt in ("text", "json"):
        run("deploy", "--env", "staging", "--kubeconfig", kc, "--dry-run", "-o", fmt)
    run("deploy", "--env", "staging", "--kubeconfig", kc)
    run("deploy", "--env", "staging", "--kubeconfig", kc, "-o", "json")
    kube_api.put(web)  # started after the sync: not stale
    every_report(code=0)

    # Broken: a new value in the store, an edited Secret, a failing store read.
    canary = "canary-" + secrets.token_urlsafe(40)
    assert cli("set", "REDIS_PASSWORD", "--env", "staging", stdin=canary + "\n").code == 0
    sim.pause()
    edited = "edited-" + secrets.token_urlsafe(24)
    secret = kube_api.get("v1", "Secret", "postgres-credentials", NS)
    secret["data"]["POSTGRES_USER"] = base64.b64encode(edited.encode()).decode()
    kube_api.put(secret)
    every_report(code=1)
    run("deploy", "--env", "staging", "--kubeconfig", kc, "--no-apply", "--timeout", "1",
        code=1)
    sim.resume()
    sim.fail_key(path)
    run("deploy", "--env", "staging", "--kubeconfig", kc, "--timeout", "2", code=1)
    sim.restore_key(path)
    run("deploy", "--env", "staging", "--kubeconfig", kc, "--timeout", "30")
    monkeypatch.setenv("VAULT_TOKEN", "s." + secrets.token_hex(12))
    run("doctor", "--env", "staging", "--kubeconfig", kc, code=1)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)

    # Every value of both environments, and every data hash the cluster has seen.
    values: dict[str, str] = {"canary": canary, "edited": edited}
    for env_name in ("staging", "dev"):
        env = project.environment(env_name)
        with project.open_store(env) as store:
            for key, read in project.layout(env).read(store).items():
                # Defaults (POSTGRES_USER: deparrow) are names, not secrets.
                if read.value is not None and \
                        project.catalog.values[key].source == "generated":
                    values[f"{env_name} {key}"] = read.value.reveal()
    hashes: dict[str, str] = {}
    for obj in kube_api.list("v1", "Secret", NS):
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        hashes[f"hash {obj['metadata']['name']}"] = eso_data_hash(data)
        annotated = (obj["metadata"].get("annotations") or {}).get(
            "reconcile.external-secrets.io/data-hash")
        if annotated:
            hashes[f"annotation {obj['metadata']['name']}"] = annotated
    assert len(hashes) >= 6 and len(values) >= 12
    found = find_values(outputs, values)
    found += [f"{where}: {name}" for name, h in hashes.items()
              for where, blob in outputs.items() if h.encode() in blob]
    assert found == [], "\n".join(found)

    # Positive control: the search finds values and hashes where they are.
    control = {"secret": json.dumps(kube_api.get("v1", "Secret", "redis-credentials",
                                                 NS)).encode()}
    assert "secret: canary (base64)" in find_values(control, {"canary": canary})
    assert any(h.encode() in control["secret"] for h in hashes.values())
