"""Rotation age: maxAge in the catalog, ages in status, overdue values in verify and
posture, and the selection `rotate --due` uses (overdue_keys)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from posture_helpers import backdate_local, catalog_with_max_age

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.posture.rotation import format_age, overdue_keys, value_ages
from deparrow_secrets.project import Project
from deparrow_secrets.providers.vault.settings import VaultSettings
from deparrow_secrets.secret import SecretValue
from helpers import assert_input_error, write_config

OLD = datetime.now(UTC) - timedelta(days=120)


def _dev(project: Path, cli, ages: dict[str, str]) -> None:
    catalog = catalog_with_max_age(project, ages)
    write_config(project, f"catalog: {catalog.name}\nenvironments:\n  dev:\n"
                 "    store: {provider: local}\n")
    assert cli("provision", "--env", "dev").code == 0


def test_malformed_max_age_is_exit_2_with_file_line_and_key_path(project: Path, cli) -> None:
    catalog = catalog_with_max_age(project, {"REDIS_PASSWORD": "90days"})
    text = catalog.read_text().replace("maxAge: 90days", "maxAge: 90days  # <- error")
    catalog.write_text(text)
    write_config(project, f"catalog: {catalog.name}\n")
    run = cli("status", "--env", "dev")
    assert_input_error(run, catalog, "values.REDIS_PASSWORD.maxAge",
                       ["'90days' is not a valid maximum age", "such as 90d"])


@pytest.mark.parametrize("bad", ["0d", "90", "1.5d", "-3d", "90m", "d"])
def test_every_malformed_max_age_is_refused(project: Path, cli, bad: str) -> None:
    catalog_with_max_age(project, {"REDIS_PASSWORD": bad})
    write_config(project, "catalog: catalog.yaml\n")
    run = cli("verify", "--env", "dev")
    assert run.code == 2 and "maxAge" in run.err, run.text


def test_parse_max_age_units() -> None:
    from deparrow_secrets.config.catalog import parse_max_age

    assert parse_max_age("90d") == timedelta(days=90)
    assert parse_max_age("12h") == timedelta(hours=12)
    assert parse_max_age("2w") == timedelta(weeks=2)
    assert format_age(timedelta(days=97, hours=3)) == "97d"
    assert format_age(timedelta(hours=5)) == "5h"
    assert format_age(timedelta(minutes=5)) == "<1h"


def test_status_verify_posture_report_overdue_values_only(project: Path, cli) -> None:
    _dev(project, cli, {"REDIS_PASSWORD": "90d", "DEPARROW_JWT_SECRET": "180d"})
    # fresh values: nothing due
    assert cli("verify", "--env", "dev").code == 0
    backdate_local(project / ".deparrow-secrets" / "store.db", OLD)
    status = cli("status", "--env", "dev", "-o", "json")
    rows = {r["key"]: r for r in status.json()["keys"]}
    assert rows["REDIS_PASSWORD"]["overdue"] is True
    assert rows["REDIS_PASSWORD"]["maxAge"] == "90d"
    assert rows["REDIS_PASSWORD"]["age"] == "120d"
    assert rows["DEPARROW_JWT_SECRET"]["overdue"] is False  # 120d < 180d
    assert rows["POSTGRES_PASSWORD"]["overdue"] is False  # no maxAge: never due
    assert rows["POSTGRES_PASSWORD"]["maxAge"] is None
    assert rows["POSTGRES_PASSWORD"]["age"] == "120d"
    text = cli("status", "--env", "dev").out
    assert "AGE" in text.splitlines()[0] and "120d OVERDUE" in text
    verify = cli("verify", "--env", "dev")
    assert verify.code == 1, verify.text
    assert "OVERDUE   REDIS_PASSWORD" in verify.out and "maxAge 90d" in verify.out
    assert "DEPARROW_JWT_SECRET" not in verify.out
    data = cli("verify", "--env", "dev", "-o", "json").json()
    assert [o["key"] for o in data["overdue"]] == ["REDIS_PASSWORD"] and not data["ok"]
    posture = cli("posture", "--env", "dev", "-o", "json")
    assert posture.code == 1, posture.text
    rotation = [f for f in posture.json()["findings"] if f["rule"] == "rotation-age"]
    assert rotation[0]["verdict"] == "fail" and "REDIS_PASSWORD" in rotation[0]["message"]
    assert "rotate --due --env dev" in rotation[0]["fix"]


def test_values_without_max_age_are_never_due(project: Path, cli) -> None:
    _dev(project, cli, {})
    backdate_local(project / ".deparrow-secrets" / "store.db", OLD - timedelta(days=3000))
    assert cli("verify", "--env", "dev").code == 0
    run = cli("posture", "--env", "dev", "-o", "json")
    rotation = [f for f in run.json()["findings"] if f["rule"] == "rotation-age"]
    assert rotation[0]["verdict"] == "unknown"


def test_overdue_keys_walks_versions_per_value_on_openbao(openbao, monkeypatch) -> None:
    """Vault keeps an environment in one object: writing one key makes a new version for
    all, yet the other values keep their age (compared version by version)."""
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    from deparrow_secrets.config.settings import Config
    from deparrow_secrets.providers.vault.store import VaultStore

    path = f"deparrow-{secrets.token_hex(4)}/staging"
    env = EnvironmentConfig("staging", VaultSettings(server=openbao.addr, path=path))
    base = load_catalog()
    values = dict(base.values)
    from deparrow_secrets.record import replace

    values["REDIS_PASSWORD"] = replace(values["REDIS_PASSWORD"], max_age="1h")
    values["DEPARROW_JWT_SECRET"] = replace(values["DEPARROW_JWT_SECRET"], max_age="1h")
    catalog = replace(base, values=values)
    project = Project(Config(Path.cwd(), None, environments={"staging": env}), catalog)
    store = VaultStore.from_config(project.config, env)
    first = {"REDIS_PASSWORD": SecretValue(secrets.token_urlsafe(24)),
             "DEPARROW_JWT_SECRET": SecretValue(secrets.token_urlsafe(24))}
    v1 = store.write(path, first, None)
    rotated = dict(first, DEPARROW_JWT_SECRET=SecretValue(secrets.token_urlsafe(24)))
    v2 = store.write(path, rotated, v1)
    history = {v.version: v.created for v in store.history(path)}
    ages = value_ages(project, env, store, ["REDIS_PASSWORD", "DEPARROW_JWT_SECRET"])
    assert ages["REDIS_PASSWORD"].since == history[v1]
    assert ages["DEPARROW_JWT_SECRET"].since == history[v2]
    later = history[v2] + timedelta(hours=1, seconds=1)
    assert [a.key for a in overdue_keys(project, env, store, now=later)] == \
        ["DEPARROW_JWT_SECRET", "REDIS_PASSWORD"]
    # REDIS_PASSWORD unchanged since v1: due earlier than the rotated JWT secret
    between = history[v1] + timedelta(hours=1, seconds=1)
    if between < history[v2] + timedelta(hours=1):
        assert [a.key for a in overdue_keys(project, env, store, now=between)] == \
            ["REDIS_PASSWORD"]
    assert overdue_keys(project, env, store, now=history[v2]) == []
    store.close()
