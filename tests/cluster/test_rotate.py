"""rotate and rollback --sync on OpenBao and moto, through the fake API server, the ESO
simulator and the rollout/Reloader simulator: the store holds a new version, each Secret's
data hash equals the new values', every consumer rolled exactly once (a Reloader-annotated
one by Reloader, not by the tool), and rollback --sync brings the old value back the same way.
Undo when the sync fails, lags past the timeout or a rollout never completes; a race between
plan and write; bad input. Values are generated per test; none is committed."""

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
from fakes.kube_objects import deployment
from helpers import Run, isolate, write_config

Cli = Callable[..., Run]
CATALOG = load_catalog()
NS = "deparrow"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass
class Rot:
    provider: str
    env: str
    root: Path
    kubeconfig: str
    api: FakeKubeApiServer
    eso: Any
    workloads: Any
    cli: Cli
    raw: Callable[[], dict[str, str]]  # key -> value, read with the provider's own client

    def rotate(self, *args: str, stdin: str = "") -> Run:
        return self.cli("rotate", "--env", self.env, "--kubeconfig", self.kubeconfig,
                        "--timeout", "30", *args, stdin=stdin)

    def project(self) -> Project:
        return Project.load(self.root / "deparrow-secrets.yaml")

    def versions(self) -> dict[str, int]:
        """Remote object -> number of versions, read through the project's store class."""
        project = self.project()
        env = project.environment(self.env)
        out = {}
        with project.open_store(env, create=False) as store:
            for rk in project.layout(env).objects(v.name for v in project.layout(env).needed()):
                out[rk] = len(store.history(rk))
        return out

    def secret_data(self, name: str) -> dict[str, bytes]:
        obj = self.api.get("v1", "Secret", name, NS)
        assert obj is not None, name
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def expected(self, name: str) -> dict[str, bytes]:
        values = self.raw()
        sec = next(s for s in CATALOG.secrets if s.name == name)
        return {k: values[k].encode() for k in CATALOG.secret_keys(sec, self.env == "production")}

    def assert_secrets_carry_the_store(self) -> None:
        for name in ("deparrow-secrets", "postgres-credentials", "redis-credentials"):
            data = self.secret_data(name)
            assert data == self.expected(name), name
            annotation = self.api.get("v1", "Secret", name, NS)["metadata"]["annotations"][
                "reconcile.external-secrets.io/data-hash"]
            assert annotation == eso_data_hash(self.expected(name))

    def tool_restarts(self, name: str) -> int:
        return sum(1 for r in self.api.requests if r.verb == "patch"
                   and r.path.endswith(f"/deployments/{name}"))

    def app(self, name: str, pod: dict[str, Any], annotations: dict[str, str] | None = None,
            paused: bool = False) -> None:
        dep = deployment(name, NS, {"app": name})
        spec = dep["spec"]["template"]["spec"]
        spec["containers"][0].update(pod.get("container", {}))
        if "volumes" in pod:
            spec["volumes"] = pod["volumes"]
        if annotations:
            dep["metadata"]["annotations"] = annotations
        if paused:
            dep["spec"]["paused"] = True
        self.api.put(dep)


def ledger_records(rot: Rot, command: str | None = None) -> list[dict[str, Any]]:
    path = rot.root / ".deparrow-secrets" / "ledger.jsonl"
    found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in found if command is None or r["command"] == command]


def unstick(rot: Rot, name: str) -> None:
    """The cause fixed: the Deployment rolls out again (the person's part before a rerun)."""
    rot.workloads.stick(NS, name, False)

    def progressing() -> bool:
        dep = rot.api.get("apps/v1", "Deployment", name, NS)
        return all(c.get("reason") != "ProgressDeadlineExceeded"
                   for c in (dep.get("status") or {}).get("conditions") or [])
    rot.api.wait_for(progressing, timeout=10)


def _wait_settled(api: FakeKubeApiServer, names: list[str]) -> None:
    def ready() -> bool:
        for name in names:
            dep = api.get("apps/v1", "Deployment", name, NS)
            status = (dep or {}).get("status") or {}
            if status.get("observedGeneration") != dep["metadata"].get("generation"):
                return False
        return True
    api.wait_for(ready, timeout=10)


def build(provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli,
          kube_api: FakeKubeApiServer, eso: Callable[..., Any],
          eso_install: Callable[..., None], workloads: Any, server: Any) -> Rot:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    if provider == "vault":
        monkeypatch.setenv("VAULT_ADDR", server.addr)
        monkeypatch.setenv("VAULT_TOKEN", server.token)
        env = "staging"
        path = f"deparrow-{secrets.token_hex(4)}/staging"
        write_config(root, "environments:\n  staging:\n    store: {provider: vault, "
                           f"server: 'https://vault.example.com:8200', path: {path}}}\n")
        kv = server.client().secrets.kv.v2

        def raw() -> dict[str, str]:
            data = kv.read_secret_version(path=path, mount_point="secret",
                                          raise_on_deleted_version=True)
            return dict(data["data"]["data"])
    else:
        env = "production"
        prefix = f"deparrow-{secrets.token_hex(4)}/production"
        write_config(root, "environments:\n  production:\n    store: {provider: aws, region: "
                           "us-east-1, accountId: '210987654321', roleArn: "
                           "'arn:aws:iam::210987654321:role/deparrow-eso', "
                           f"prefix: {prefix}}}\n")

        def raw() -> dict[str, str]:
            objects = server.current_secrets()
            return {v.name: objects[f"{prefix}/{v.group}"][v.property or v.name]
                    for v in CATALOG.needed(True)}
    assert cli("provision", "--env", env).code == 0
    assert cli("render").code == 0
    eso_install(kube_api)
    project = Project.load(root / "deparrow-secrets.yaml")
    sim = eso(lambda store_obj: project.open_store(project.environment(env)))
    kc = str(kube_api.kubeconfig_path)
    run = cli("deploy", "--env", env, "--kubeconfig", kc, "--timeout", "30")
    assert run.code == 0, run.text
    rot = Rot(provider, env, root, kc, kube_api, sim, workloads, cli, raw)
    rot.app("web", {"container": {"envFrom": [{"secretRef": {"name": "deparrow-secrets"}}]}})
    rot.app("db-client", {"container": {"env": [{"name": "PGPASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "postgres-credentials", "key": "POSTGRES_PASSWORD"}}}]}})
    rot.app("cache", {"container": {"volumeMounts": [{"name": "r", "mountPath": "/r"}]},
                      "volumes": [{"name": "r", "secret": {"secretName": "redis-credentials"}}]},
            annotations={"reloader.stakater.com/auto": "true"})
    _wait_settled(kube_api, ["web", "db-client", "cache"])
    kube_api.reset_log()
    return rot


@pytest.fixture(params=["vault", "aws"])
def rot(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cli: Cli, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], workloads: Any) -> Iterator[Rot]:
    server = request.getfixturevalue("openbao" if request.param == "vault" else "aws_env")
    yield build(request.param, tmp_path, monkeypatch, cli, kube_api, eso, eso_install,
                workloads, server)


@pytest.fixture
def vault_rot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, openbao: Any,
              kube_api: FakeKubeApiServer, eso: Callable[..., Any],
              eso_install: Callable[..., None], workloads: Any) -> Rot:
    return build("vault", tmp_path, monkeypatch, cli, kube_api, eso, eso_install, workloads,
                 openbao)


# --------------------------------------------------------------------------- the happy path


def test_rotation_lands_is_verified_and_rolls_every_consumer_once_then_rollback_sync(
        rot: Rot) -> None:
    before = rot.raw()
    versions = rot.versions()
    run = rot.rotate("POSTGRES_PASSWORD", "REDIS_PASSWORD", "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    after = rot.raw()
    # a new version in the store, one write per remote object
    for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert after[key] != before[key]
    assert after["DEPARROW_JWT_SECRET"] == before["DEPARROW_JWT_SECRET"]
    changed = {rk for rk, n in rot.versions().items() if n != versions[rk]}
    assert {rk: rot.versions()[rk] - versions[rk] for rk in changed} == \
        {o["remoteKey"]: 1 for o in doc["objects"]}
    assert doc["storeWrites"] == len(doc["objects"]) == (1 if rot.provider == "vault" else 2)
    # the Secrets carry exactly the store's new values, by ESO's own hash
    rot.assert_secrets_carry_the_store()
    assert all(s["hashVerified"] for s in doc["secrets"])
    # every consumer rolled exactly once; Reloader's workload not touched by the tool
    actions = {w["name"]: w["action"] for w in doc["workloads"]}
    assert actions == {"web": "restart", "db-client": "restart", "cache": "reloader"}
    assert all(w["rolledOut"] for w in doc["workloads"])
    rollouts = rot.workloads.rollouts
    assert rollouts[("Deployment", NS, "web")] == 1
    assert rollouts[("Deployment", NS, "db-client")] == 1
    assert rollouts[("Deployment", NS, "cache")] == 1
    assert rot.workloads.reloader.restarts[("Deployment", NS, "cache")] == 1
    assert rot.tool_restarts("cache") == 0 and rot.tool_restarts("web") == 1
    assert doc["outcome"] == "rotated" and doc["exitCode"] == 0
    assert [s["step"] for s in doc["steps"]] == ["plan", "write", "sync", "restart", "wait"]
    assert not (rot.root / ".deparrow-secrets" / f"rotate-{rot.env}.json").exists()

    # rollback --sync: the old value back, the same way
    back = rot.cli("rollback", "POSTGRES_PASSWORD", "--env", rot.env, "--sync",
                   "--kubeconfig", rot.kubeconfig, "--timeout", "30", "-o", "json")
    assert back.code == 0, back.text
    now = rot.raw()
    assert now["POSTGRES_PASSWORD"] == before["POSTGRES_PASSWORD"]
    assert now["REDIS_PASSWORD"] == after["REDIS_PASSWORD"]  # only the key rolled back
    rot.assert_secrets_carry_the_store()
    assert back.json()["kind"] == "rollback" and back.json()["outcome"] == "rotated"
    assert rollouts[("Deployment", NS, "web")] == 2
    assert rollouts[("Deployment", NS, "db-client")] == 2
    assert rot.tool_restarts("web") == 2

    # the change ledger: one record per command, keyed hashes, sync times, workloads
    [rotated] = ledger_records(rot, "rotate")
    assert rotated["keys"] == ["POSTGRES_PASSWORD", "REDIS_PASSWORD"]
    assert rotated["outcome"] == {"status": "ok"}
    assert [(o["remoteKey"], o["before"], o["after"]) for o in rotated["objects"]] == \
        [(o["remoteKey"], o["versionBefore"], o["versionAfter"]) for o in doc["objects"]]
    for o in rotated["objects"]:
        assert o["hashBefore"].startswith("hmac-sha256:") and o["hashAfter"] != o["hashBefore"]
    facts = rotated["facts"]
    assert sorted(facts["workloadsRolled"]) == ["Deployment/cache", "Deployment/db-client",
                                                "Deployment/web"]
    assert facts["workloadsLeftToReloader"] == ["Deployment/cache"]
    assert set(facts["esoSync"]) == {"deparrow-secrets-external",
                                     "postgres-credentials-external",
                                     "redis-credentials-external"}
    assert all(v["refreshTime"] and v["syncedResourceVersion"]
               for v in facts["esoSync"].values())
    assert all(facts["secretsVerified"].values())
    [rolled_back] = ledger_records(rot, "rollback")
    assert rolled_back["keys"] == ["POSTGRES_PASSWORD"] and rolled_back["facts"]["sync"]
    assert rolled_back["outcome"] == {"status": "ok"}
    assert sorted(rolled_back["facts"]["workloadsRolled"]) == ["Deployment/db-client",
                                                               "Deployment/web"]
    if rot.provider == "aws":  # the database object holds only the rolled-back key's group
        [db] = [o for o in rotated["objects"] if o["remoteKey"].endswith("/database")]
        assert rolled_back["objects"][0]["hashAfter"] == db["hashBefore"]
    verify = rot.cli("audit", "--verify", "--env", rot.env)
    assert verify.code == 0, verify.text


def test_paused_deployment_is_reported_not_touched_and_text_output(vault_rot: Rot) -> None:
    rot = vault_rot
    rot.app("frozen", {"container": {"envFrom": [{"secretRef": {"name": "deparrow-secrets"}}]}},
            paused=True)
    run = rot.rotate("DEPARROW_JWT_SECRET")
    assert run.code == 0, run.text
    assert "deployment  frozen: paused: not touched" in run.out
    assert "deployment  web: restarted, rolled out" in run.out
    assert "hash verified yes" in run.out
    assert rot.tool_restarts("frozen") == 0
    dep = rot.api.get("apps/v1", "Deployment", "frozen", NS)
    assert RESTARTED_AT not in (dep["spec"]["template"]["metadata"].get("annotations") or {})


def test_on_delete_statefulset_is_reported_not_patched(vault_rot: Rot) -> None:
    rot = vault_rot
    rot.api.put({"apiVersion": "apps/v1", "kind": "StatefulSet",
                 "metadata": {"name": "db", "namespace": NS},
                 "spec": {"replicas": 1, "serviceName": "db",
                          "updateStrategy": {"type": "OnDelete"},
                          "selector": {"matchLabels": {"app": "db"}},
                          "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                              "containers": [{"name": "db", "image": "example.invalid/db:1",
                                              "envFrom": [{"secretRef": {
                                                  "name": "postgres-credentials"}}]}]}}}})
    run = rot.rotate("POSTGRES_PASSWORD", "-o", "json")
    assert run.code == 0, run.text
    actions = {w["name"]: w["action"] for w in run.json()["workloads"]}
    assert actions["db"] == "on-delete" and actions["db-client"] == "restart"
    assert not any(r.verb == "patch" and r.path.endswith("/statefulsets/db")
                   for r in rot.api.requests)
    assert "OnDelete" in next(s["detail"] for s in run.json()["steps"]
                              if s["step"] == "restart")


def test_dry_run_writes_nothing(vault_rot: Rot) -> None:
    rot = vault_rot
    versions = rot.versions()
    run = rot.rotate("--all", "--dry-run", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["outcome"] == "planned"
    assert {w["name"]: w["action"] for w in run.json()["workloads"]} == \
        {"web": "restart", "db-client": "restart", "cache": "reloader"}
    text = rot.rotate("--secret", "redis-credentials", "--dry-run")
    assert text.code == 0, text.text
    assert "would rotate REDIS_PASSWORD" in text.out
    assert "force-sync and verify by hash" in text.out
    assert rot.versions() == versions
    assert not any(r.verb in ("patch", "update", "create") for r in rot.api.requests)


# --------------------------------------------------------------------------- undo


def _assert_rolled_back(rot: Rot, run: Run, before: dict[str, str], step: str) -> None:
    assert run.code == 8, run.text
    doc = run.json()
    assert doc["outcome"] == "rolled-back" and doc["failedStep"] == step
    assert f"step {step} failed" in doc["message"]
    now = rot.raw()
    assert now == before
    for s in doc["secrets"]:
        assert s["restoredVerified"] is True
    rot.assert_secrets_carry_the_store()
    assert [u["step"] for u in doc["undo"]][:2] == ["restore", "sync"]
    record = ledger_records(rot, "rotate")[-1]
    assert record["outcome"] == {"status": "failed", "error": "StepFailed", "exitCode": 8}
    assert record["facts"]["failedStep"] == step and record["facts"]["result"] == "rolled-back"
    written, restored = record["objects"][0], record["objects"][1]
    assert restored["before"] == written["after"]
    assert restored["hashAfter"] == written["hashBefore"]  # the old content, exactly


def _redis_object(rot: Rot) -> str:
    project = rot.project()
    return project.layout(project.environment(rot.env)).ref("REDIS_PASSWORD").key


def test_undo_when_eso_fails_the_sync(rot: Rot, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.operations import rotate as ops

    before = rot.raw()
    rot.eso.fail_key(_redis_object(rot))
    real = ops._Run.restore_objects

    def outage_over_by_the_undo(self: Any) -> str:
        rot.eso.restore_key(_redis_object(rot))
        return real(self)

    monkeypatch.setattr(ops._Run, "restore_objects", outage_over_by_the_undo)
    run = rot.rotate("REDIS_PASSWORD", "-o", "json", "--timeout", "10")
    _assert_rolled_back(rot, run, before, "sync")
    # the UpdateFailed Event's real error, at once (not after the timeout)
    assert "ESO could not sync ExternalSecret" in run.json()["message"]
    assert "Secret does not exist" in run.json()["message"]
    assert run.json()["seconds"] < 10
    assert rot.tool_restarts("web") == 0  # nothing restarted


def test_a_failing_undo_needs_a_person(vault_rot: Rot) -> None:
    rot = vault_rot
    rot.eso.fail_key(_redis_object(rot))
    try:
        run = rot.rotate("REDIS_PASSWORD", "--timeout", "2")
    finally:
        rot.eso.restore_key(_redis_object(rot))
    assert run.code == 9, run.text
    assert "step sync failed" in run.err and "the undo failed too" in run.err
    assert "drift --env staging" in run.err
    record = rot.root / ".deparrow-secrets" / "rotate-staging.json"
    assert record.exists()
    again = rot.rotate("REDIS_PASSWORD")
    assert again.code == 2 and "failed during its undo" in again.err, again.text


def test_undo_when_eso_lags_past_the_timeout(vault_rot: Rot) -> None:
    rot = vault_rot
    before = rot.raw()
    rot.eso.lag(3.0)
    run = rot.rotate("DEPARROW_SECRET_KEY", "-o", "json", "--timeout", "1")
    rot.eso.lag(0.0)
    _assert_rolled_back(rot, run, before, "sync")
    assert "did not sync within 1s" in run.json()["message"]
    assert rot.tool_restarts("web") == 0


def test_undo_when_a_rollout_never_completes(vault_rot: Rot) -> None:
    rot = vault_rot
    before = rot.raw()
    rot.workloads.stick(NS, "db-client")
    run = rot.rotate("POSTGRES_PASSWORD", "-o", "json", "--timeout", "5")
    _assert_rolled_back(rot, run, before, "wait")
    doc = run.json()
    assert "ProgressDeadlineExceeded" in doc["message"] and "db-client" in doc["message"]
    # what was restarted is restarted again on the old value
    assert [u["step"] for u in doc["undo"]] == ["restore", "sync", "restart", "wait"]
    assert rot.tool_restarts("web") == 2
    assert rot.workloads.rollouts[("Deployment", NS, "web")] == 2


def test_no_rollback_keeps_the_new_value_and_says_how_to_finish(vault_rot: Rot) -> None:
    rot = vault_rot
    before = rot.raw()
    rot.workloads.stick(NS, "db-client")
    run = rot.rotate("POSTGRES_PASSWORD", "--no-rollback", "--timeout", "3")
    assert run.code == 9, run.text
    assert rot.raw()["POSTGRES_PASSWORD"] != before["POSTGRES_PASSWORD"]
    assert "resumes at step wait" in run.err and "rollback POSTGRES_PASSWORD" in run.err
    unstick(rot, "db-client")
    again = rot.rotate("POSTGRES_PASSWORD", "-o", "json")
    assert again.code == 0, again.text
    assert again.json()["resumedAfter"] == "restart"
    assert again.json()["storeWrites"] == 0


# --------------------------------------------------------------------------- race, input


def test_another_writer_between_plan_and_write_is_a_conflict(
        vault_rot: Rot, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.operations import rotate as ops

    rot = vault_rot
    real = ops.plan_rotation

    def plan_then_race(*args: Any, **kwargs: Any) -> Any:
        planned = real(*args, **kwargs)
        assert rot.cli("set", "GRAFANA_ADMIN_PASSWORD", "--env", rot.env,
                       stdin=secrets.token_urlsafe(40)).code == 0
        return planned

    monkeypatch.setattr(ops, "plan_rotation", plan_then_race)
    before = rot.raw()
    run = rot.rotate("DEPARROW_JWT_SECRET")
    assert run.code == 5, run.text
    assert "another writer" in run.err
    assert rot.raw()["DEPARROW_JWT_SECRET"] == before["DEPARROW_JWT_SECRET"]
    assert not any(r.verb == "patch" for r in rot.api.requests)
    record = ledger_records(rot, "rotate")[-1]
    assert record["outcome"] == {"status": "failed", "error": "ConflictError", "exitCode": 5}


@pytest.mark.parametrize("args,stdin,fragment", [
    (["NO_SUCH_KEY"], "", "'NO_SUCH_KEY' is not in the catalog"),
    (["DEPARROW_JWT_SECRET", "s3cr3t-Typed-Here"], "", "not shown: it may be a value"),
    (["POSTGRES_REPLICATION_PASSWORD"], "", "does not use POSTGRES_REPLICATION_PASSWORD"),
    (["--all"], "", "confirm with --yes"),
    (["GRAFANA_ADMIN_USER"], "", "no new value given for: GRAFANA_ADMIN_USER"),
    (["--secret", "no-such-secret"], "", "not a Kubernetes Secret of the catalog"),
    ([], "", "name the keys to rotate"),
])
def test_bad_input_exit_2_nothing_written(vault_rot: Rot, args: list[str], stdin: str,
                                          fragment: str) -> None:
    rot = vault_rot
    versions = rot.versions()
    run = rot.rotate(*args, stdin=stdin)
    assert run.code == 2, run.text
    assert fragment in run.err, run.text
    assert "s3cr3t-Typed-Here" not in run.err + run.out
    assert rot.versions() == versions
    assert ledger_records(rot, "rotate") == []
    assert not any(r.verb in ("patch", "update", "create") for r in rot.api.requests)


def test_a_supplied_value_is_taken_from_stdin(vault_rot: Rot) -> None:
    rot = vault_rot
    value = secrets.token_urlsafe(12)
    run = rot.rotate("GRAFANA_ADMIN_USER", "--stdin", stdin=f"GRAFANA_ADMIN_USER={value}\n")
    assert run.code == 0, run.text
    assert rot.raw()["GRAFANA_ADMIN_USER"] == value
    assert value not in run.out + run.err


def test_refused_when_an_external_secret_cannot_be_forced(vault_rot: Rot) -> None:
    rot = vault_rot
    for patch, fragment in (({"refreshPolicy": "CreatedOnce"}, "CreatedOnce"),
                            ({"refreshInterval": "0"}, "refreshInterval 0"),
                            ({"target": {"immutable": True}}, "immutable target"),
                            ({"pin": "1"}, "pins REDIS_PASSWORD to version 1")):
        es = rot.api.get("external-secrets.io/v1", "ExternalSecret",
                         "redis-credentials-external", NS)
        original = json.loads(json.dumps(es))
        if "pin" in patch:
            es["spec"]["data"][0]["remoteRef"]["version"] = patch["pin"]
        elif "target" in patch:
            es["spec"]["target"] = {**es["spec"]["target"], "immutable": True}
        else:
            es["spec"].update(patch)
        rot.api.put(es)
        versions = rot.versions()
        run = rot.rotate("REDIS_PASSWORD")
        assert run.code == 2, run.text
        assert fragment in run.err and "deploy --env" in run.err
        assert rot.versions() == versions
        original["metadata"].pop("resourceVersion", None)
        rot.api.put(original)


def test_rollback_sync_that_fails_needs_a_person_and_a_rerun_finishes(vault_rot: Rot) -> None:
    rot = vault_rot
    before = rot.raw()
    assert rot.rotate("POSTGRES_PASSWORD").code == 0
    versions = rot.versions()
    rot.workloads.stick(NS, "db-client")
    args = ("rollback", "POSTGRES_PASSWORD", "--env", rot.env, "--sync", "--kubeconfig",
            rot.kubeconfig)
    run = rot.cli(*args, "--timeout", "2")
    assert run.code == 9, run.text
    assert "step wait failed" in run.err and "resumes at step wait" in run.err
    assert rot.raw()["POSTGRES_PASSWORD"] == before["POSTGRES_PASSWORD"]  # store restored
    unstick(rot, "db-client")
    again = rot.cli(*args, "-o", "json")
    assert again.code == 0, again.text
    assert again.json()["resumedAfter"] == "restart"
    assert sum(rot.versions().values()) == sum(versions.values()) + 1  # one rollback write
    rot.assert_secrets_carry_the_store()


def test_no_restart_syncs_and_verifies_but_leaves_the_workloads(vault_rot: Rot) -> None:
    rot = vault_rot
    before = rot.raw()
    run = rot.rotate("DEPARROW_JWT_SECRET", "--no-restart", "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    assert rot.raw()["DEPARROW_JWT_SECRET"] != before["DEPARROW_JWT_SECRET"]
    rot.assert_secrets_carry_the_store()
    assert [(s["step"], s["status"]) for s in doc["steps"]][-2:] == \
        [("restart", "skipped"), ("wait", "skipped")]
    assert not any(r.verb == "patch" and "/deployments/" in r.path for r in rot.api.requests)
    assert rot.workloads.rollouts[("Deployment", NS, "web")] == 0


def test_a_writer_during_the_sync_gives_a_hash_mismatch_and_a_person_is_needed(
        vault_rot: Rot, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.operations import rotate as ops

    rot = vault_rot
    real = ops._Run.expected

    def then_another_writer(self: Any) -> Any:
        expected = real(self)
        if not self.record.undoing:
            assert rot.cli("set", "GRAFANA_ADMIN_PASSWORD", "--env", rot.env,
                           stdin=secrets.token_urlsafe(40)).code == 0
        return expected

    monkeypatch.setattr(ops._Run, "expected", then_another_writer)
    run = rot.rotate("DEPARROW_JWT_SECRET", "--timeout", "2")
    assert run.code == 9, run.text
    assert "step sync failed: hash mismatch" in run.err
    assert "changed by another writer since the rotation's write: not restored" in run.err
    assert not any(r.verb == "patch" and "/deployments/" in r.path for r in rot.api.requests)
