"""deploy from an empty fake cluster to hash-verified sync, on OpenBao and on moto.

The ESO simulator reads the real stores (OpenBao, moto) and writes the Secrets; the
test checks the Secrets' data against the store with the provider's own client, and
that a second deploy changes nothing.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.cluster.datahash import eso_data_hash
from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.project import Project
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run, isolate, vault_staging_project, write_config

Cli = Callable[..., Run]
CATALOG = load_catalog()
ESO = "external-secrets.io/v1"


@dataclass
class Env:
    name: str
    root: Path
    kubeconfig: str
    raw: Callable[[], dict[str, str]]  # key -> value, read with the provider's own client

    def expected(self, secret: str) -> dict[str, bytes]:
        values = self.raw()
        sec = next(s for s in CATALOG.secrets if s.name == secret)
        keys = CATALOG.secret_keys(sec, self.name == "production")
        return {k: values[k].encode() for k in keys}


def cluster_data(api: FakeKubeApiServer, name: str) -> dict[str, bytes]:
    obj = api.get("v1", "Secret", name, "deparrow")
    assert obj is not None, f"Secret {name} missing"
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def _start_eso(eso: Callable[..., Any], root: Path, env_name: str) -> Any:
    project = Project.load(root / "deparrow-secrets.yaml")
    env = project.environment(env_name)
    return eso(lambda store_obj: project.open_store(env))


@pytest.fixture
def vault_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: Any, cli: Cli,
              kube_api: FakeKubeApiServer) -> Iterator[Env]:
    root, path = vault_staging_project(tmp_path, monkeypatch, openbao)
    assert cli("provision", "--env", "staging").code == 0
    assert cli("render").code == 0
    client = openbao.client()

    def raw() -> dict[str, str]:
        data = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                        raise_on_deleted_version=True)
        return dict(data["data"]["data"])

    yield Env("staging", root, str(kube_api.kubeconfig_path), raw)


@pytest.fixture
def aws_env_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: Any, cli: Cli,
                    kube_api: FakeKubeApiServer) -> Iterator[Env]:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    prefix = f"deparrow-{secrets.token_hex(4)}/production"
    write_config(root, "environments:\n  production:\n    store: {provider: aws, region: "
                       "us-east-1, accountId: '210987654321', roleArn: "
                       "'arn:aws:iam::210987654321:role/deparrow-eso', "
                       f"prefix: {prefix}}}\n")
    assert cli("provision", "--env", "production").code == 0
    assert cli("render").code == 0

    def raw() -> dict[str, str]:
        out = {}
        objects = aws_env.current_secrets()
        for value in CATALOG.needed(True):
            obj = json.loads(json.dumps(objects[f"{prefix}/{value.group}"]))
            out[value.name] = obj[value.property or value.name]
        return out

    yield Env("production", root, str(kube_api.kubeconfig_path), raw)


@pytest.fixture(params=["vault", "aws"])
def env(request: pytest.FixtureRequest) -> Env:
    fixture = "vault_project" if request.param == "vault" else "aws_env_project"
    return request.getfixturevalue(fixture)


def test_deploy_from_empty_cluster_to_hash_verified_sync_then_nothing_changes(
        env: Env, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], cli: Cli) -> None:
    eso_install(kube_api)
    sim = _start_eso(eso, env.root, env.name)
    run = cli("deploy", "--env", env.name, "--kubeconfig", env.kubeconfig, "--timeout", "60")
    assert run.code == 0, run.text
    secrets_ = [s.name for s in CATALOG.secrets
                if CATALOG.secret_keys(s, env.name == "production")]
    for name in secrets_:
        es = kube_api.get("external-secrets.io/v1", "ExternalSecret", f"{name}-external",
                          "deparrow")
        ready = next(c for c in es["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        data = cluster_data(kube_api, name)
        assert data == env.expected(name)  # the provider's own view of the values
        secret = kube_api.get("v1", "Secret", name, "deparrow")
        assert secret["metadata"]["annotations"]["reconcile.external-secrets.io/data-hash"] \
            == eso_data_hash(data)
    assert f"{len(secrets_)} Secret(s) synced and verified by hash" in run.out
    for obj in ("ServiceAccount/deparrow-external-secrets-sa",
                "SecretStore/deparrow-secretstore"):
        assert f"create    {obj}" in run.out
    reconciles = sim.reconciles
    kube_api.reset_log()
    again = cli("deploy", "--env", env.name, "--kubeconfig", env.kubeconfig, "-o", "json")
    assert again.code == 0, again.text
    doc = again.json()
    assert {c["action"] for c in doc["changes"]} == {"unchanged"}, doc["changes"]
    assert doc["forcedSync"] == [] and doc["converged"] is True
    assert all(s["synced"] for s in doc["secrets"])
    assert kube_api.count("update") == 0
    # Nothing for ESO to do: no new ExternalSecret generation, no forced refresh.
    assert sim.reconciles - reconciles <= len(secrets_)
    dry = cli("deploy", "--env", env.name, "--kubeconfig", env.kubeconfig, "--dry-run",
              "-o", "json")
    assert dry.code == 0, dry.text
    assert {c["action"] for c in dry.json()["changes"]} == {"unchanged"}, dry.json()["changes"]
    # What deploy applied is healthy to doctor: in Vault's in-cluster review mode no
    # auth-delegator binding is rendered, so none is asked for.
    healthy = cli("doctor", "--env", env.name, "--kubeconfig", env.kubeconfig)
    assert healthy.code == 0, healthy.text


def test_deploy_forces_a_refresh_when_the_store_changed(
        vault_project: Env, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], cli: Cli) -> None:
    eso_install(kube_api)
    _start_eso(eso, vault_project.root, "staging")
    kc = vault_project.kubeconfig
    assert cli("deploy", "--env", "staging", "--kubeconfig", kc).code == 0
    new_value = secrets.token_urlsafe(40)
    assert cli("set", "REDIS_PASSWORD", "--env", "staging", stdin=new_value + "\n").code == 0
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc, "-o", "json")
    assert run.code == 0, run.text
    assert "redis-credentials-external" in run.json()["forcedSync"]
    assert cluster_data(kube_api, "redis-credentials")["REDIS_PASSWORD"] == new_value.encode()
    assert new_value not in run.out + run.err


def test_no_apply_waits_and_reports_why_it_does_not_converge(
        vault_project: Env, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], cli: Cli) -> None:
    eso_install(kube_api)
    sim = _start_eso(eso, vault_project.root, "staging")
    kc = vault_project.kubeconfig
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc, "--no-apply", "--timeout", "1")
    assert run.code == 1, run.text
    assert "ExternalSecret deparrow-secrets-external does not exist" in run.err
    assert kube_api.count("patch") == 0
    # A GitOps controller applies the committed tree; ESO fails on the store read.
    path = Project.load(vault_project.root / "deparrow-secrets.yaml").environment(
        "staging").remote_path
    sim.fail_key(path)
    assert cli("deploy", "--env", "staging", "--kubeconfig", kc, "--no-wait").code == 0
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc, "--no-apply", "--timeout", "2")
    assert run.code == 1, run.text
    assert "not Ready" in run.err and "doctor --env staging" in run.err
    sim.restore_key(path)
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc, "--no-apply", "--timeout", "30")
    assert run.code == 0, run.text
    # The store changes: --no-apply writes nothing, not even a force-sync annotation.
    assert cli("set", "REDIS_PASSWORD", "--env", "staging",
               stdin=secrets.token_urlsafe(40) + "\n").code == 0
    kube_api.reset_log()
    run = cli("deploy", "--env", "staging", "--kubeconfig", kc, "--no-apply", "--timeout", "1")
    assert run.code == 1, run.text
    assert "REDIS_PASSWORD differ(s) from the store" in run.err
    assert "annotate externalsecret redis-credentials-external force-sync=$(date +%s)" \
        in run.err
    assert kube_api.count("patch") == 0


def test_eso_not_installed_is_named(vault_project: Env, kube_api: FakeKubeApiServer,
                                    cli: Cli) -> None:
    for crd in ("externalsecrets", "secretstores", "clustersecretstores", "pushsecrets"):
        kube_api.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                        f"{crd}.external-secrets.io")
    run = cli("deploy", "--env", "staging", "--kubeconfig", vault_project.kubeconfig)
    assert run.code == 1, run.text
    assert "is not installed" in run.err and "helm upgrade --install" in run.err


def test_dry_run_and_no_wait_need_no_store_credentials(
        vault_project: Env, kube_api: FakeKubeApiServer, cli: Cli,
        eso_install: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    eso_install(kube_api)
    monkeypatch.setenv("VAULT_TOKEN", "s." + secrets.token_hex(12))  # rejected by OpenBao
    run = cli("deploy", "--env", "staging", "--kubeconfig", vault_project.kubeconfig, "--dry-run")
    assert run.code == 0, run.text
    # The namespace exists (unlabelled): its labels would change; the rest is new.
    assert "would change 6 of 6 object(s)" in run.out
    assert "update    Namespace/deparrow (metadata.labels.app.kubernetes.io/managed-by" in run.out
    assert kube_api.get(ESO, "ExternalSecret", "redis-credentials-external", "deparrow") is None
    run = cli("deploy", "--env", "staging", "--kubeconfig", vault_project.kubeconfig, "--no-wait")
    assert run.code == 0, run.text
    assert kube_api.get(ESO, "ExternalSecret", "redis-credentials-external", "deparrow")
    run = cli("deploy", "--env", "staging", "--kubeconfig", vault_project.kubeconfig)
    assert run.code == 4, run.text  # the wait reads the store: denied, named as such


def test_a_key_missing_in_the_store_stops_the_wait_at_once(
        vault_project: Env, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], cli: Cli, openbao: Any) -> None:
    import time

    eso_install(kube_api)
    _start_eso(eso, vault_project.root, "staging")
    path = Project.load(vault_project.root / "deparrow-secrets.yaml").environment(
        "staging").remote_path
    kv = openbao.client().secrets.kv.v2
    data = vault_project.raw()
    data.pop("REDIS_PASSWORD")
    kv.create_or_update_secret(path=path, secret=data, mount_point="secret")
    began = time.monotonic()
    run = cli("deploy", "--env", "staging", "--kubeconfig", vault_project.kubeconfig,
              "--timeout", "60")
    assert run.code == 1, run.text
    assert time.monotonic() - began < 20
    assert "the store lacks REDIS_PASSWORD" in run.err
    assert "deparrow-secrets provision --env staging" in run.err
