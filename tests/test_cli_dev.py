"""CLI behaviour on the embedded store: provision, verify, HA, export, render --check,
get/set/history/rollback and JSON output. Commands run in this process
(`deparrow_secrets.cli.main`) in a temporary project; values are generated here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from deparrow_secrets.providers.local.store import LocalStore
from deparrow_secrets.secret import SecretValue
from helpers import git, git_init, isolate, write_config

STAGING_LOCAL = """\
environments:
  dev:
    store: {provider: local}
  staging:
    ha: %s
    store: {provider: local}
"""
ENV_FILES = ["deparrow-secrets.env", "postgres-credentials.env", "redis-credentials.env"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(monkeypatch, tmp_path)
    return tmp_path


def store_file(root: Path) -> Path:
    return root / ".deparrow-secrets" / "store.db"


def open_store(root: Path) -> LocalStore:
    return LocalStore(store_file(root))


def snapshot_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in p.as_posix()}


def fresh_value() -> str:
    return "t" + secrets.token_urlsafe(30)


# --------------------------------------------------------------------------- provision


def test_provision_twice_creates_nothing_the_second_time(project: Path, cli) -> None:
    first = cli("provision", "--env", "dev", "-o", "json")
    assert first.code == 0, first.text
    data = first.json()
    assert data["dryRun"] is False and data["environment"] == "dev"
    assert {k["action"] for k in data["keys"]} == {"generate", "default"}
    assert {k["version"] for k in data["keys"]} == {"1"}
    with open_store(project) as store:
        before = store.read("deparrow/dev")
        assert [v.version for v in store.history("deparrow/dev")] == ["1"]
    second = cli("provision", "--env", "dev", "-o", "json")
    assert second.code == 0, second.text
    assert {k["action"] for k in second.json()["keys"]} == {"exists"}
    assert {k["version"] for k in second.json()["keys"]} == {None}
    text = cli("provision", "--env", "dev")
    assert "created 0 value(s), 0 remote object(s) written" in text.out
    with open_store(project) as store:
        assert [v.version for v in store.history("deparrow/dev")] == ["1"]
        after = store.read("deparrow/dev")
    assert before is not None and after is not None and before.values == after.values


def test_provision_keeps_values_it_did_not_create(project: Path, cli) -> None:
    mine = fresh_value()
    with open_store(project) as store:
        store.write("deparrow/dev", {"REDIS_PASSWORD": SecretValue(mine)}, None)
    run = cli("provision", "--env", "dev", "-o", "json")
    actions = {k["key"]: k["action"] for k in run.json()["keys"]}
    assert actions["REDIS_PASSWORD"] == "exists"
    assert cli("get", "REDIS_PASSWORD", "--reveal").out == mine + "\n"


def test_dry_run_writes_nothing_on_a_fresh_project(project: Path, cli) -> None:
    git_init(project)
    write_config(project, STAGING_LOCAL % "false")
    before = snapshot_files(project)
    run = cli("provision", "--env", "dev", "--dry-run", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["dryRun"] is True
    assert {k["action"] for k in run.json()["keys"]} == {"generate", "default"}
    assert snapshot_files(project) == before
    assert not (project / ".deparrow-secrets").exists()


def test_dry_run_writes_nothing_to_an_existing_store(project: Path, cli) -> None:
    write_config(project, STAGING_LOCAL % "false")
    assert cli("provision", "--env", "dev").code == 0
    before = snapshot_files(project)
    run = cli("provision", "--env", "staging", "--dry-run")
    assert run.code == 0, run.text
    assert "would create 8 value(s)" in run.out
    assert snapshot_files(project) == before
    with open_store(project) as store:
        assert store.list_objects() == ["deparrow/dev"]


def test_read_only_commands_create_no_store(project: Path, cli) -> None:
    git_init(project)
    before = snapshot_files(project)
    assert cli("status").code == 0
    verify = cli("verify", "--env", "dev")
    assert verify.code == 1 and "MISSING   REDIS_PASSWORD" in verify.out
    assert cli("get", "REDIS_PASSWORD").code == 1
    assert cli("history", "REDIS_PASSWORD", "-o", "json").json()["versions"] == []
    assert cli("rollback", "REDIS_PASSWORD", "--env", "dev").code == 1
    assert cli("export", "--env", "dev").code == 2
    assert snapshot_files(project) == before


def test_the_store_is_git_ignored_when_provision_creates_it(project: Path, cli) -> None:
    git_init(project)
    assert cli("provision", "--env", "dev").code == 0
    for name in ("store.db", "store.key"):
        path = project / ".deparrow-secrets" / name
        assert path.exists()
        assert git(project, "check-ignore", "-q", str(path)).returncode == 0
    assert git(project, "status", "--porcelain").stdout.strip() == "?? .gitignore"


def test_a_store_path_outside_the_state_directory_is_ignored_too(project: Path, cli) -> None:
    git_init(project)
    write_config(project, "environments:\n  dev:\n    store: {provider: local, "
                 "path: state/dev.db}\n")
    assert cli("provision", "--env", "dev").code == 0
    status = git(project, "status", "--porcelain", "--untracked-files=all").stdout
    assert sorted(status.splitlines()) == ["?? .gitignore", "?? deparrow-secrets.yaml"]
    assert (project / "state" / "dev.key").exists()


# --------------------------------------------------------------------------- verify and HA


def test_verify_lists_a_missing_key(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    assert cli("verify", "--env", "dev").code == 0
    with open_store(project) as store:
        snap = store.read("deparrow/dev")
        assert snap is not None
        kept = {k: v for k, v in snap.values.items() if k != "GRAFANA_ADMIN_PASSWORD"}
        store.write("deparrow/dev", kept, snap.version)
    run = cli("verify", "--env", "dev")
    assert run.code == 1, run.text
    assert "MISSING   GRAFANA_ADMIN_PASSWORD (required) at deparrow/dev" in run.out
    assert "1 of 8 needed values missing or invalid" in run.out
    data = cli("verify", "--env", "dev", "-o", "json").json()
    assert data["ok"] is False
    assert [c["key"] for c in data["checks"] if c["status"] != "ok"] == ["GRAFANA_ADMIN_PASSWORD"]
    # provision puts back exactly what is missing
    run = cli("provision", "--env", "dev", "-o", "json")
    assert [k["key"] for k in run.json()["keys"] if k["action"] != "exists"] == [
        "GRAFANA_ADMIN_PASSWORD"]
    assert cli("verify", "--env", "dev").code == 0


def test_verify_flags_a_value_shorter_than_its_policy(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    short = secrets.token_hex(4) + "\n"
    run = cli("set", "DEPARROW_JWT_SECRET", stdin=short)
    assert run.code == 2 and "policy asks for at least 64" in run.err, run.text
    assert cli("set", "DEPARROW_JWT_SECRET", "--force", stdin=short).code == 0
    run = cli("verify", "--env", "dev")
    assert run.code == 1 and "TOO-SHORT DEPARROW_JWT_SECRET" in run.out, run.text


@pytest.mark.parametrize("ha", [True, False])
def test_ha_environment_needs_the_replication_password(project: Path, cli, ha: bool) -> None:
    write_config(project, STAGING_LOCAL % ("true" if ha else "false"))
    run = cli("provision", "--env", "staging", "-o", "json")
    assert run.code == 0, run.text
    created = {k["key"] for k in run.json()["keys"]}
    assert ("POSTGRES_REPLICATION_PASSWORD" in created) is ha
    status = {r["key"]: r for r in cli("status", "--env", "staging", "-o", "json").json()["keys"]}
    assert status["POSTGRES_REPLICATION_PASSWORD"]["needed"] is ha
    assert status["POSTGRES_REPLICATION_PASSWORD"]["present"] is ha
    assert cli("verify", "--env", "staging").code == 0
    dev = {r["key"]: r for r in cli("status", "--env", "dev", "-o", "json").json()["keys"]}
    assert dev["POSTGRES_REPLICATION_PASSWORD"]["needed"] is False
    if ha:
        with open_store(project) as store:
            snap = store.read("deparrow/staging")
            assert snap is not None
            store.write("deparrow/staging", {k: v for k, v in snap.values.items()
                                             if k != "POSTGRES_REPLICATION_PASSWORD"},
                        snap.version)
        run = cli("verify", "--env", "staging")
        assert run.code == 1 and "MISSING   POSTGRES_REPLICATION_PASSWORD (ha)" in run.out


def test_user_supplied_optional_value_from_stdin(project: Path, cli) -> None:
    write_config(project, "environments:\n  dev:\n    optionalKeys: [ANTHROPIC_API_KEY]\n"
                 "    store: {provider: local}\n")
    run = cli("provision", "--env", "dev")
    assert run.code == 2 and "no value given for: ANTHROPIC_API_KEY" in run.err, run.text
    key = fresh_value()
    run = cli("provision", "--env", "dev", "--stdin", stdin=f"ANTHROPIC_API_KEY={key}\n")
    assert run.code == 0, run.text
    assert key not in run.out + run.err
    assert cli("get", "ANTHROPIC_API_KEY", "--reveal").out == key + "\n"


# --------------------------------------------------------------------------- export


def test_export_files_are_private_and_git_ignored(project: Path, cli) -> None:
    git_init(project)
    assert cli("quickstart").code == 0
    secrets_dir = project / "deparrow/k8s/overlays/dev/secrets"
    assert sorted(p.name for p in secrets_dir.iterdir()) == ENV_FILES
    with open_store(project) as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    for path in secrets_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert git(project, "check-ignore", "-q", str(path)).returncode == 0
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            assert snap.values[key].reveal() == value
    git(project, "add", ".")
    listed = git(project, "ls-files").stdout.split()
    assert not [p for p in listed if "/secrets/" in p or p.startswith(".deparrow-secrets")]
    assert "deparrow/k8s/overlays/dev/kustomization.yaml" in listed
    run = cli("export", "--env", "dev", "--format", "json")
    assert run.code == 0, run.text
    exported = project / ".deparrow-secrets" / "export-dev.json"
    assert exported.stat().st_mode & 0o777 == 0o600
    data = json.loads(exported.read_text(encoding="utf-8"))
    assert set(data) == {"deparrow-secrets", "postgres-credentials", "redis-credentials"}


def test_export_refuses_a_tracked_path(project: Path, cli) -> None:
    git_init(project)
    assert cli("quickstart").code == 0
    secrets_dir = project / "deparrow/k8s/overlays/dev/secrets"
    tracked = secrets_dir / "redis-credentials.env"
    git(project, "add", "-f", str(tracked))
    git(project, "commit", "-q", "-m", "oops")
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    assert cli("set", "POSTGRES_PASSWORD", stdin=fresh_value()).code == 0
    run = cli("export", "--env", "dev")
    assert run.code == 2, run.text
    assert "refusing to write secret values into a file tracked by git" in run.err
    assert "redis-credentials.env" in run.err and "git rm --cached" in run.err
    # Nothing was written, not even the files that come before the tracked one.
    assert {p.name: p.read_bytes() for p in secrets_dir.iterdir()} == before


def test_json_export_to_a_chosen_path_is_git_ignored(project: Path, cli) -> None:
    git_init(project)
    assert cli("quickstart").code == 0
    run = cli("export", "--env", "dev", "--format", "json", "--path", "values.json")
    assert run.code == 0, run.text
    target = project / "values.json"
    assert target.stat().st_mode & 0o777 == 0o600
    assert git(project, "check-ignore", "-q", str(target)).returncode == 0
    assert "/values.json" in (project / ".gitignore").read_text().splitlines()
    git(project, "add", ".")
    assert "values.json" not in git(project, "ls-files").stdout.split()


def test_export_refuses_a_multi_line_value_before_writing(project: Path, cli,
                                                          tmp_path: Path) -> None:
    assert cli("quickstart").code == 0
    secrets_dir = project / "deparrow/k8s/overlays/dev/secrets"
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    value_file = tmp_path / "two-lines.txt"
    value_file.write_text(fresh_value() + "\n" + fresh_value() + "\n", encoding="utf-8")
    assert cli("set", "REDIS_PASSWORD", "--from-file", str(value_file)).code == 0
    run = cli("export", "--env", "dev")
    assert run.code == 2 and "the value of REDIS_PASSWORD spans lines" in run.err, run.text
    assert {p.name: p.read_bytes() for p in secrets_dir.iterdir()} == before
    assert cli("export", "--env", "dev", "--format", "json").code == 0


# --------------------------------------------------------------------------- render


def test_render_check_detects_edits_and_render_repairs(project: Path, cli) -> None:
    write_config(project, STAGING_LOCAL % "true")
    assert cli("render", "--check").code == 1
    run = cli("render")
    assert run.code == 0 and "6 files, 6 changed" in run.out, run.text
    assert cli("render", "--check").code == 0
    kustomization = project / "deparrow/k8s/overlays/dev/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "# edited\n", encoding="utf-8")
    run = cli("render", "--check", "--diff")
    assert run.code == 1
    assert "changed  overlays/dev/kustomization.yaml" in run.out and "-# edited" in run.out
    assert "out of date" in run.err
    (project / "deparrow/k8s/base/namespace.yaml").unlink()
    run = cli("render", "--check")
    assert run.code == 1 and "missing  base/namespace.yaml" in run.out
    assert cli("render").code == 0
    assert cli("render", "--check").code == 0
    write_config(project, "environments:\n  dev:\n    store: {provider: local}\n")
    run = cli("render", "--check")
    assert run.code == 1 and "stale    overlays/staging/kustomization.yaml" in run.out
    assert cli("render").code == 0
    assert not (project / "deparrow/k8s/overlays/staging/kustomization.yaml").exists()
    assert cli("render", "--check").code == 0


# --------------------------------------------------------------------------- get, set, history


def test_get_unknown_and_unset_keys(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    run = cli("get", "NO_SUCH_KEY")
    assert run.code == 2 and "'NO_SUCH_KEY' is not in the catalog" in run.err, run.text
    run = cli("get", "OPENAI_API_KEY")
    assert run.code == 1 and "OPENAI_API_KEY: not set in dev" in run.err, run.text
    run = cli("get", "REDIS_PASSWORD")
    assert run.code == 0
    assert "version 1, 32 characters (add --reveal to print it)" in run.out


def test_set_from_file_history_and_rollback(project: Path, cli, tmp_path: Path) -> None:
    assert cli("provision", "--env", "dev").code == 0
    original = cli("get", "REDIS_PASSWORD", "--reveal").out
    new = fresh_value()
    value_file = tmp_path / "value.txt"
    value_file.write_text(new + "\n", encoding="utf-8")
    run = cli("set", "REDIS_PASSWORD", "--from-file", str(value_file))
    assert run.code == 0 and "version 2" in run.out, run.text
    assert new not in run.out + run.err
    assert cli("get", "REDIS_PASSWORD", "--reveal").out == new + "\n"

    history = cli("history", "REDIS_PASSWORD", "-o", "json").json()
    assert [(v["version"], v["current"], v["keyChange"]) for v in history["versions"]] == [
        ("1", False, "created"), ("2", True, "changed")]
    other = cli("history", "POSTGRES_PASSWORD", "-o", "json").json()
    assert [v["keyChange"] for v in other["versions"]] == ["created", "unchanged"]
    table = cli("history", "REDIS_PASSWORD")
    assert "remote object deparrow/dev" in table.out
    assert table.out.splitlines()[1].split()[-1] == "REDIS_PASSWORD"
    assert table.out.splitlines()[-1].split()[-1] == "changed"

    run = cli("rollback", "REDIS_PASSWORD", "--env", "dev")
    assert run.code == 0 and "current version is now 3" in run.out, run.text
    assert "also changed back" not in run.out  # only REDIS_PASSWORD differed
    assert cli("get", "REDIS_PASSWORD", "--reveal").out == original
    history = cli("history", "REDIS_PASSWORD", "-o", "json").json()
    assert [v["keyChange"] for v in history["versions"]] == ["created", "changed", "changed"]
    grafana = fresh_value()
    assert cli("set", "GRAFANA_ADMIN_PASSWORD", stdin=grafana + "\n").code == 0
    run = cli("rollback", "REDIS_PASSWORD", "--env", "dev", "--to", "2")
    assert run.code == 0 and "no other key changed" in run.out, run.text
    assert cli("get", "REDIS_PASSWORD", "--reveal").out == new + "\n"
    # The key set after version 2 keeps its value: only REDIS_PASSWORD was rolled back.
    assert cli("get", "GRAFANA_ADMIN_PASSWORD", "--reveal").out == grafana + "\n"
    assert cli("rollback", "REDIS_PASSWORD", "--env", "dev", "--to", "9").code == 1


def test_set_refuses_an_empty_value(project: Path, cli) -> None:
    run = cli("set", "REDIS_PASSWORD", stdin="\n")
    assert run.code == 2 and "empty value for REDIS_PASSWORD" in run.err
    assert not store_file(project).exists()


def test_json_output_parses(project: Path, cli) -> None:
    provision = cli("provision", "--env", "dev", "-o", "json").json()
    assert provision["provider"] == "local" and len(provision["keys"]) == 8
    status = cli("status", "-o", "json").json()
    rows = {r["key"]: r for r in status["keys"]}
    assert len(rows) == 11 and rows["OPENAI_API_KEY"]["needed"] is False
    assert rows["REDIS_PASSWORD"]["present"] is True and rows["REDIS_PASSWORD"]["state"] == "ok"
    assert rows["POSTGRES_PASSWORD"]["secrets"] == ["deparrow-secrets", "postgres-credentials"]
    verify = cli("verify", "--env", "dev", "-o", "json").json()
    assert verify["ok"] is True and len(verify["checks"]) == 8
    history = cli("history", "POSTGRES_USER", "-o", "json").json()
    assert history["remoteKey"] == "deparrow/dev" and len(history["versions"]) == 1
    with open_store(project) as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    generated = [v.reveal() for k, v in snap.values.items() if rows[k]["source"] == "generated"]
    for data in (provision, status, verify, history):
        assert not [v for v in generated if v in json.dumps(data)]  # key names, never values


def test_json_of_get_rollback_and_render_check(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    meta = cli("get", "REDIS_PASSWORD", "-o", "json").json()
    assert meta["set"] is True and meta["version"] == "1" and meta["length"] == 32
    assert "value" not in meta
    revealed = cli("get", "REDIS_PASSWORD", "-o", "json", "--reveal").json()
    assert len(revealed["value"]) == 32
    assert cli("get", "OPENAI_API_KEY", "-o", "json").json()["set"] is False

    assert cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n").code == 0
    rolled = cli("rollback", "REDIS_PASSWORD", "--env", "dev", "-o", "json")
    assert rolled.code == 0 and rolled.json()["changedKeys"] == ["REDIS_PASSWORD"]
    assert rolled.json()["version"] == "3"

    assert cli("render").code == 0
    assert cli("render", "--check", "-o", "json").json()["upToDate"] is True
    kustomization = project / "deparrow/k8s/overlays/dev/kustomization.yaml"
    kustomization.write_text(kustomization.read_text("utf-8") + "# edited\n", "utf-8")
    stale = cli("render", "--check", "-o", "json")
    assert stale.code == 1
    assert stale.json()["changed"] == ["overlays/dev/kustomization.yaml"]
