"""Every writing command leaves one ledger record on the embedded store; dry runs and
read-only commands leave nothing; a ledger problem never fails a store write."""

from __future__ import annotations

import base64
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from ledger_helpers import HEAD, KEY, LEDGER, STATE, fresh_value, ledger_files, records

from deparrow_secrets import ledger
from deparrow_secrets.errors import StoreUnavailableError
from deparrow_secrets.ledger.chain import LedgerKey
from deparrow_secrets.project import Project
from deparrow_secrets.providers.local.store import LocalStore


def _key(root: Path) -> LedgerKey:
    return LedgerKey(base64.urlsafe_b64decode((root / KEY).read_bytes().strip()))


def _store(root: Path) -> LocalStore:
    return LocalStore(root / STATE / "store.db")


def test_provision_set_and_rollback_each_leave_one_record(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    value = fresh_value()
    done = cli("set", "REDIS_PASSWORD", stdin=value + "\n")
    assert done.code == 0, done.text
    assert cli("rollback", "REDIS_PASSWORD").code == 0

    provision, set_, rollback = records(project)
    assert [r["command"] for r in (provision, set_, rollback)] == ["provision", "set",
                                                                  "rollback"]
    assert [r["seq"] for r in (provision, set_, rollback)] == [1, 2, 3]
    for r in (provision, set_, rollback):
        assert r["env"] == "dev" and r["provider"] == "local"
        assert r["user"] and r["uid"] == os.geteuid()
        assert r["time"].endswith("Z") and r["outcome"] == {"status": "ok"}
        assert "principal" not in r  # the embedded store has none beyond the OS user
    assert "REDIS_PASSWORD" in provision["keys"] and len(provision["keys"]) >= 5
    assert provision["objects"][0]["before"] is None
    assert provision["objects"][0]["after"] == "1"
    assert set_["keys"] == ["REDIS_PASSWORD"]
    assert (set_["objects"][0]["before"], set_["objects"][0]["after"]) == ("1", "2")
    assert (rollback["objects"][0]["before"], rollback["objects"][0]["after"]) == ("2", "3")
    assert rollback["facts"] == {"restoredFrom": "1"}

    # The hashes are keyed HMACs of the object's content: recomputable with the key.
    key = _key(project)
    with _store(project) as store:
        after_set = store.read("deparrow/dev", "2")
        after_rollback = store.read("deparrow/dev", "3")
    assert after_set is not None and after_rollback is not None
    assert set_["objects"][0]["hashAfter"] == key.data_hash("dev\x00deparrow/dev",
                                                            after_set.values)
    assert set_["objects"][0]["hashBefore"] == provision["objects"][0]["hashAfter"]
    # The rollback restored the content from before the set: the same hash shows it.
    assert rollback["objects"][0]["hashAfter"] == set_["objects"][0]["hashBefore"]
    assert rollback["objects"][0]["hashAfter"] == key.data_hash("dev\x00deparrow/dev",
                                                                after_rollback.values)
    assert set_["objects"][0]["hashAfter"] != set_["objects"][0]["hashBefore"]

    listed = cli("audit", "--verify")
    assert listed.code == 0, listed.text
    assert "ledger intact: 3 record(s)" in listed.out
    assert "deparrow/dev 1 -> 2" in listed.out and "rollback" in listed.out


def test_a_known_store_principal_is_recorded_and_shown(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    loaded = Project.load(cwd=project)
    ledger.record(loaded, loaded.environment("dev"), "deploy", keys=["REDIS_PASSWORD"],
                  principal="arn:aws:iam::123456789012:role/deployer",
                  facts={"workloadsRolled": ["Deployment/api"]})
    last = records(project)[-1]
    assert last["principal"] == "arn:aws:iam::123456789012:role/deployer"
    assert last["facts"] == {"workloadsRolled": ["Deployment/api"]}
    listed = cli("audit", "--verify")
    assert listed.code == 0, listed.text
    assert " as arn:aws:iam::123456789012:role/deployer " in listed.out


def test_dry_runs_and_read_only_commands_create_no_ledger(project: Path, cli) -> None:
    for args in (["provision", "--env", "dev", "--dry-run"], ["status"], ["verify"],
                 ["get", "REDIS_PASSWORD"], ["history", "REDIS_PASSWORD"], ["audit"],
                 ["audit", "--verify"], ["audit", "-o", "json"]):
        cli(*args)
        assert ledger_files(project) == [], args
    assert cli("provision", "--env", "dev").code == 0
    count = len(records(project))
    for args in (["provision", "--env", "dev", "--dry-run"], ["status"], ["verify"],
                 ["export", "--env", "dev"], ["audit", "--verify"]):
        assert cli(*args).code == 0, args
    assert len(records(project)) == count


def test_a_second_provision_is_recorded_as_writing_nothing(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    assert cli("provision", "--env", "dev").code == 0
    second = records(project)[1]
    assert second["command"] == "provision" and second["objects"] == []
    assert second["keys"] == [] and second["outcome"] == {"status": "ok"}


def test_a_failed_write_is_recorded_with_its_error_class_and_exit_code(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("provision", "--env", "dev").code == 0

    def down(*args: object, **kwargs: object) -> str:
        raise StoreUnavailableError("simulated outage")

    monkeypatch.setattr(LocalStore, "write", down)
    failed = cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n")
    assert failed.code == 3, failed.text
    last = records(project)[-1]
    assert last["command"] == "set"
    # The write was attempted from version 1; whether it landed is not known.
    assert [(o["remoteKey"], o["before"], o["after"], o["hashAfter"])
            for o in last["objects"]] == [("deparrow/dev", "1", None, None)]
    assert last["objects"][0]["hashBefore"] == records(project)[0]["objects"][0]["hashAfter"]
    assert last["outcome"] == {"status": "failed", "error": "StoreUnavailableError",
                               "exitCode": 3}
    listed = cli("audit", "--key", "REDIS_PASSWORD")
    assert "failed: StoreUnavailableError (exit 3)" in listed.out
    assert "deparrow/dev 1 -> ?" in listed.out


def test_a_run_that_fails_before_any_write_is_not_recorded(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to roll back, or a store that cannot be read: the store did not change."""
    assert cli("rollback", "REDIS_PASSWORD").code == 1
    assert ledger_files(project) == []
    assert cli("provision", "--env", "dev").code == 0
    assert cli("rollback", "REDIS_PASSWORD").code == 1

    def down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("simulated outage")

    monkeypatch.setattr(LocalStore, "read", down)
    assert cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n").code == 3
    assert [r["command"] for r in records(project)] == ["provision"]


def test_bad_input_is_not_recorded(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = (project / LEDGER).read_bytes()
    assert cli("set", "REDIS_PASSWORD", stdin="short\n").code == 2
    assert cli("set", "NO_SUCH_KEY", stdin=fresh_value()).code == 2
    assert cli("rollback", "REDIS_PASSWORD", "--to", "../x").code == 2
    assert (project / LEDGER).read_bytes() == before


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_any_umask_still_gives_private_ledger_files(project: Path, cli, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert cli("provision", "--env", "dev").code == 0
    finally:
        os.umask(old)
    for name in (LEDGER, KEY, HEAD):
        assert stat.S_IMODE((project / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((project / STATE).stat().st_mode) == 0o700


def test_a_planted_link_at_the_ledger_is_refused_and_the_write_stands(
        project: Path, cli, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert cli("provision", "--env", "dev").code == 0
    (project / LEDGER).unlink()
    (project / HEAD).unlink()
    outside = tmp_path_factory.mktemp("elsewhere") / "planted"
    outside.write_bytes(b"")
    (project / LEDGER).symlink_to(outside)
    done = cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n")
    assert done.code == 0, done.text
    assert "warning:" in done.err and "symbolic link" in done.err
    assert "ledger could not record" in done.err
    assert outside.read_bytes() == b""
    with _store(project) as store:
        assert [v.version for v in store.history("deparrow/dev")] == ["1", "2"]
    # audit refuses to read through it (bad input), naming the link.
    listed = cli("audit")
    assert listed.code == 2 and "symbolic link" in listed.err


def test_a_ledger_without_its_key_is_not_given_a_new_one(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    (project / KEY).unlink()
    done = cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n")
    assert done.code == 0, done.text
    assert "ledger key" in done.err and "is missing" in done.err
    assert not (project / KEY).exists()
    assert len(records(project)) == 1
    checked = cli("audit", "--verify")
    assert checked.code == 6 and "missing" in checked.err


def test_a_removed_ledger_is_not_silently_restarted(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    (project / LEDGER).unlink()
    done = cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n")
    assert done.code == 0, done.text
    assert "the ledger was removed or emptied" in done.err
    assert (project / LEDGER).read_bytes() == b""
    checked = cli("audit", "--verify")
    assert checked.code == 6 and "records 1 to 1 are missing" in checked.err


def _append_records(root: str, n: int, count: int) -> None:
    loaded = Project.load(cwd=Path(root))
    env = loaded.environment("dev")
    for _ in range(count):
        assert ledger.record(loaded, env, "test", keys=[f"K{n}"]) is not None


def test_concurrent_writers_keep_one_chain(project: Path, cli) -> None:
    """Records appended by processes at once stay one chain (each append holds a lock
    from reading the newest record to writing its own)."""
    assert cli("provision", "--env", "dev").code == 0
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_append_records, args=(str(project), n, 25))
               for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert [r["seq"] for r in records(project)] == list(range(1, 102))
    checked = cli("audit", "--verify")
    assert checked.code == 0, checked.text


@pytest.mark.parametrize("name", [KEY, HEAD])
def test_a_planted_link_at_the_key_or_head_is_not_followed(
        project: Path, cli, tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    (project / STATE).mkdir(mode=0o700)
    outside = tmp_path_factory.mktemp("elsewhere") / "planted"
    planted = base64.urlsafe_b64encode(os.urandom(32)) + b"\n"
    outside.write_bytes(planted)
    (project / name).symlink_to(outside)
    done = cli("provision", "--env", "dev")
    assert done.code == 0, done.text
    assert outside.read_bytes() == planted
    # Neither is read or written through the link: the run is not recorded, it warns.
    assert "symbolic link" in done.err and "ledger could not record" in done.err
    assert not (project / LEDGER).exists() or (project / LEDGER).read_bytes() == b""
