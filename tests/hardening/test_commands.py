"""rollback restores one key, bad input is never exit 70, scan reads what it is given,
and the friction a new user hit (issue 9, points 8, 16, 17, 19)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from deparrow_secrets.cli import COMMANDS
from deparrow_secrets.errors import ConflictError
from deparrow_secrets.operations.history import rollback_key
from deparrow_secrets.project import Project
from deparrow_secrets.providers.local.store import LocalStore
from deparrow_secrets.secret import SecretValue
from helpers import git, git_init, validation_skips_external_secrets, write_config


def store_of(root: Path) -> LocalStore:
    return LocalStore(root / ".deparrow-secrets" / "store.db")


def current(root: Path) -> dict[str, str]:
    with store_of(root) as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    return {k: v.reveal() for k, v in snap.values.items()}


def token() -> str:
    return "v" + secrets.token_urlsafe(30)


# --------------------------------------------------------------------------- point 8


def test_rollback_restores_its_key_and_never_reverts_another(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    original = current(project)
    redis, grafana = token(), token()
    assert cli("set", "REDIS_PASSWORD", stdin=redis).code == 0  # version 2
    assert cli("set", "GRAFANA_ADMIN_PASSWORD", stdin=grafana).code == 0  # version 3
    # REDIS_PASSWORD did not change in version 3: its previous value is version 1's.
    run = cli("rollback", "REDIS_PASSWORD", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["changedKeys"] == ["REDIS_PASSWORD"]
    assert run.json()["restoredFrom"] == "1" and run.json()["version"] == "4"
    after = current(project)
    assert after["REDIS_PASSWORD"] == original["REDIS_PASSWORD"]
    assert after["GRAFANA_ADMIN_PASSWORD"] == grafana  # not reverted
    assert {k: v for k, v in after.items() if k != "REDIS_PASSWORD"} == \
        {k: v for k, v in current(project).items() if k != "REDIS_PASSWORD"}
    # Rolling back again goes back to the value it had before: the one set on stdin.
    assert cli("rollback", "REDIS_PASSWORD").code == 0
    assert current(project)["REDIS_PASSWORD"] == redis
    assert current(project)["GRAFANA_ADMIN_PASSWORD"] == grafana


def test_rollback_of_a_key_that_never_changed_is_refused(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    assert cli("set", "GRAFANA_ADMIN_PASSWORD", stdin=token()).code == 0
    before = current(project)
    run = cli("rollback", "REDIS_PASSWORD")
    assert run.code == 1 and "nothing to roll back" in run.err, run.text
    run = cli("rollback", "REDIS_PASSWORD", "--to", "1")
    assert run.code == 1 and "already has the value it had in version 1" in run.err
    assert current(project) == before
    with store_of(project) as store:
        assert [v.version for v in store.history("deparrow/dev")] == ["1", "2"]


def test_rollback_is_check_and_set(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that changes the object between rollback's read and its write makes the
    rollback fail; its change is not undone."""
    assert cli("provision", "--env", "dev").code == 0
    assert cli("set", "REDIS_PASSWORD", stdin=token()).code == 0
    project_obj = Project.load(cwd=project)
    env = project_obj.environment("dev")
    other = token()

    class Interfering(LocalStore):
        def write(self, key: str, values: Mapping[str, SecretValue],
                  expected_version: str | None) -> str:
            with store_of(project) as second:
                snap = second.read(key)
                assert snap is not None
                second.write(key, {**snap.values, "GRAFANA_ADMIN_PASSWORD": SecretValue(other)},
                             snap.version)
            return super().write(key, values, expected_version)

    with Interfering(project / ".deparrow-secrets" / "store.db") as store, \
            pytest.raises(ConflictError):
        rollback_key(project_obj, env, store, "REDIS_PASSWORD")
    assert current(project)["GRAFANA_ADMIN_PASSWORD"] == other


# --------------------------------------------------------------------------- point 16


@pytest.mark.parametrize("version", ["9" * 40, "99999999999999999999", "-1", "1e9", "²"])
def test_huge_or_odd_versions_are_bad_input_not_a_crash(project: Path, version: str,
                                                        cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    for args in (["get", "REDIS_PASSWORD", "--version", version],
                 ["rollback", "REDIS_PASSWORD", "--to", version]):
        run = cli(*args)
        assert run.code in (1, 2), run.text
        assert "internal error" not in run.err and "error:" in run.err


def test_render_check_over_a_non_utf8_file_or_a_directory(project: Path, cli) -> None:
    assert cli("render").code == 0
    tree = project / "deparrow/k8s"
    namespace = tree / "base/namespace.yaml"
    namespace.write_bytes(namespace.read_bytes() + b"# \xff\n")
    kustomization = tree / "overlays/dev/kustomization.yaml"
    kustomization.unlink()
    kustomization.mkdir()
    run = cli("render", "--check")
    assert run.code == 1, run.text
    assert "changed  base/namespace.yaml" in run.out
    assert "changed  overlays/dev/kustomization.yaml" in run.out
    diff = cli("render", "--check", "--diff")
    assert diff.code == 1 and "is not UTF-8 text (byte" in diff.out
    assert "is a directory, not a file" in diff.out
    # Writing over the directory is refused with the fix, before anything is written
    # (base/ comes before overlays/: it would have been rewritten first).
    run = cli("render")
    assert run.code == 2 and "is a directory" in run.err and "hint:" in run.err, run.text
    assert b"\xff" in namespace.read_bytes()
    kustomization.rmdir()
    assert cli("render").code == 0
    assert cli("render", "--check").code == 0


# --------------------------------------------------------------------------- point 17


def test_scan_reads_a_force_added_export_file_it_is_given(project: Path, cli) -> None:
    git_init(project)
    assert cli("quickstart").code == 0
    exported = project / "deparrow/k8s/overlays/dev/secrets/redis-credentials.env"
    assert exported.is_file()
    git(project, "add", "-f", str(exported))  # what a careless commit does
    # The pre-commit hook passes the staged paths.
    run = cli("scan", "-o", "json", str(exported.relative_to(project)))
    assert run.code == 1, run.text
    assert run.json()["summary"]["checked"] == 1 and run.findings("known-value")
    # The export directory named explicitly is read too, as git sees it (the tracked file;
    # the others are git-ignored).
    run = cli("scan", "-o", "json", "deparrow/k8s/overlays/dev/secrets")
    assert run.code == 1 and run.json()["summary"]["checked"] == 1, run.text
    # A whole-tree scan skips only the export's own directory, not the rest of the overlay.
    leaked = project / "deparrow/k8s/overlays/dev/notes.yaml"
    leaked.write_text("password: " + current(project)["REDIS_PASSWORD"] + "\n", "utf-8")
    run = cli("scan", "-o", "json")
    assert run.code == 1, run.text
    files = {f["file"] for f in run.findings("known-value")}
    assert files == {"deparrow/k8s/overlays/dev/notes.yaml"}


# --------------------------------------------------------------------------- point 19


def test_env_default_is_shown_alike_in_every_command(project: Path, cli) -> None:
    with_env = []
    for name in COMMANDS:
        run = cli(name, "--help")
        assert run.code == 0, run.text
        if "--env" in run.out:
            with_env.append(name)
            line = " ".join(run.out.split("--env ENV", 1)[1].split("\n\n")[0].split())
            if name == "audit":  # a filter over the ledger: every environment by default
                assert line.startswith("Only records of this environment (default: all)")
                continue
            assert line.startswith("Environment: dev, staging or production. [default: dev]"), \
                (name, line)
    assert {"provision", "verify", "rollback", "set", "get", "export", "scan",
            "policy", "setup"} <= set(with_env)


def test_an_environment_variable_overriding_the_endpoint_is_said(
        project: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    write_config(project, "environments:\n  dev:\n    store: {provider: local}\n"
                 "  staging:\n    store: {provider: vault, server: https://vault.invalid:8200,"
                 " role: r}\n"
                 "  production:\n    store: {provider: aws, region: us-east-1, "
                 "accountId: '123456789012'}\n")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "0.3")  # nothing listens: fail fast
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("VAULT_TOKEN", "t" + secrets.token_hex(8))
    run = cli("status", "--env", "staging")
    assert ("warning: staging: using Vault at http://127.0.0.1:9 from $VAULT_ADDR (the "
            "configuration says https://vault.invalid:8200)") in run.err, run.text
    assert run.err.count("using Vault") == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    run = cli("status", "--env", "production")
    assert ("warning: production: using the AWS Secrets Manager endpoint http://127.0.0.1:9 "
            "from $AWS_ENDPOINT_URL") in run.err, run.text
    monkeypatch.setenv("VAULT_ADDR", "https://vault.invalid:8200/")
    run = cli("status", "--env", "staging")
    assert "using Vault" not in run.err  # the configured server itself: nothing to say


def test_parallel_set_of_different_keys_of_one_object_all_land(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    project_obj = Project.load(cwd=project)
    env = project_obj.environment("dev")
    from deparrow_secrets.operations.values import apply_set, plan_set, value_target

    keys = ["REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD",
            "DEPARROW_JWT_SECRET", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
    values = {k: token() for k in keys}
    barrier = threading.Barrier(len(keys))
    errors: list[BaseException] = []

    def one(key: str) -> None:
        try:
            with store_of(project) as store:
                barrier.wait()
                plan = plan_set(project_obj, value_target(project_obj, env, key),
                                SecretValue(values[key]), force=True)
                apply_set(project_obj, env, store, plan)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    after = current(project)
    assert {k: after[k] for k in keys} == values


def test_set_retries_a_conflict_instead_of_failing(project: Path, cli,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process writes another key of the object between set's read and write."""
    assert cli("provision", "--env", "dev").code == 0
    other, mine = token(), token()
    real_write = LocalStore.write
    interfered = []

    def write(self: LocalStore, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        if not interfered:
            interfered.append(key)
            with store_of(project) as second:
                snap = second.read(key)
                assert snap is not None
                real_write(second, key, {**snap.values,
                                         "GRAFANA_ADMIN_PASSWORD": SecretValue(other)},
                           snap.version)
        return real_write(self, key, values, expected_version)

    monkeypatch.setattr(LocalStore, "write", write)
    run = cli("set", "REDIS_PASSWORD", stdin=mine)
    assert run.code == 0, run.text
    after = current(project)
    assert after["REDIS_PASSWORD"] == mine and after["GRAFANA_ADMIN_PASSWORD"] == other


def test_quickstart_does_not_call_unvalidated_manifests_valid(
        project: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    validation_skips_external_secrets(monkeypatch)
    run = cli("quickstart")
    assert run.code == 0, run.text
    assert "not validated: ExternalSecret objects" in run.out
    assert "manifests valid" not in run.out
    assert "manifests not fully validated" in run.out
