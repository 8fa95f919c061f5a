"""The ledger against real remote stores (OpenBao, moto): provision, set and rollback
record the versions the store itself reports, in a project that has no embedded store
(the state directory is made for the ledger alone, private and git-ignored)."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from ledger_helpers import STATE, fresh_value, records

from helpers import git, git_init


def _remote_versions(kind: str, openbao_or_moto, remote_key: str) -> list[str]:
    if kind == "vault":
        client = openbao_or_moto.client()
        meta = client.secrets.kv.v2.read_secret_metadata(path=remote_key, mount_point="secret")
        return sorted(meta["data"]["versions"], key=int)
    client = openbao_or_moto.client("secretsmanager")
    listed = client.list_secret_version_ids(SecretId=remote_key, IncludeDeprecated=True)
    return [v["VersionId"] for v in listed["Versions"]]


@pytest.fixture(params=["vault", "aws"])
def remote(request: pytest.FixtureRequest, project: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[str, object, str]:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "5")
    if request.param == "vault":
        server = request.getfixturevalue("openbao")
        path = f"ledger-{secrets.token_hex(4)}/production"
        monkeypatch.setenv("VAULT_ADDR", server.addr)
        monkeypatch.setenv("VAULT_TOKEN", server.token)
        store = f"{{provider: vault, server: 'https://vault.example.com', path: {path}}}"
        remote_key = path
    else:
        server = request.getfixturevalue("aws_env")
        store = "{provider: aws, region: us-east-1, accountId: '123456789012'}"
        remote_key = "deparrow/production/redis"
    (project / "deparrow-secrets.yaml").write_text(
        f"environments:\n  production:\n    ha: true\n    store: {store}\n", encoding="utf-8")
    git_init(project)
    return request.param, server, remote_key


def test_remote_commands_record_the_store_versions(remote, project: Path, cli) -> None:
    kind, server, remote_key = remote
    assert cli("provision", "--env", "production").code == 0
    assert cli("set", "REDIS_PASSWORD", "--env", "production",
               stdin=fresh_value() + "\n").code == 0
    assert cli("rollback", "REDIS_PASSWORD", "--env", "production").code == 0
    versions = _remote_versions(kind, server, remote_key)
    assert len(versions) == 3

    provision, set_, rollback = records(project)
    assert {r["provider"] for r in (provision, set_, rollback)} == {kind}
    assert {r["env"] for r in (provision, set_, rollback)} == {"production"}
    by_key = {o["remoteKey"]: o for o in provision["objects"]}
    assert by_key[remote_key]["before"] is None
    assert by_key[remote_key]["after"] == versions[0]
    assert "REDIS_PASSWORD" in by_key[remote_key]["keys"]
    assert [(o["remoteKey"], o["before"], o["after"]) for o in set_["objects"]] == [
        (remote_key, versions[0], versions[1])]
    assert [(o["remoteKey"], o["before"], o["after"]) for o in rollback["objects"]] == [
        (remote_key, versions[1], versions[2])]
    assert rollback["objects"][0]["hashAfter"] == set_["objects"][0]["hashBefore"]

    checked = cli("audit", "--verify", "--env", "production", "--key", "REDIS_PASSWORD")
    assert checked.code == 0, checked.text
    assert f"{remote_key} {versions[0]} -> {versions[1]}" in checked.out

    # The state directory exists for the ledger alone: private, and kept out of git.
    assert not (project / STATE / "store.db").exists()
    assert stat.S_IMODE((project / STATE).stat().st_mode) == 0o700
    assert "/.deparrow-secrets/" in (project / ".gitignore").read_text("utf-8")
    assert git(project, "status", "--porcelain", "--untracked-files=all").stdout.split() == [
        "??", ".gitignore", "??", "deparrow-secrets.yaml"]


def test_a_lost_check_and_set_is_recorded_as_a_conflict(remote, project: Path, cli,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from deparrow_secrets.errors import ConflictError
    from deparrow_secrets.providers import get as provider_named

    kind, _server, remote_key = remote
    assert cli("provision", "--env", "production").code == 0

    def lose(*args: object, **kwargs: object) -> str:
        raise ConflictError("simulated: another writer got there first")

    monkeypatch.setattr(provider_named(kind).store_class(), "write", lose)
    monkeypatch.setattr("deparrow_secrets.operations.provision._backoff", lambda n: None)
    lost = cli("set", "REDIS_PASSWORD", "--env", "production", stdin=fresh_value() + "\n")
    assert lost.code == 5, lost.text
    last = records(project)[-1]
    assert last["outcome"] == {"status": "failed", "error": "ConflictError", "exitCode": 5}
    assert [(o["remoteKey"], o["after"]) for o in last["objects"]] == [(remote_key, None)]
    nothing_changed = _remote_versions(kind, _server, remote_key)
    assert last["objects"][0]["before"] == nothing_changed[-1]
