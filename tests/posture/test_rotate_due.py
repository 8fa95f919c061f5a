"""`rotate --due`: exactly the values older than their catalog maxAge, end to end."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from posture_helpers import backdate_local, catalog_with_max_age

from helpers import write_config


def _revealed(cli, key: str) -> str:
    run = cli("get", key, "--env", "dev", "--reveal")
    assert run.code == 0, run.text
    return run.out


def test_rotate_due_rotates_only_overdue_values_and_leaves_a_record(project: Path,
                                                                     cli) -> None:
    catalog = catalog_with_max_age(project, {"REDIS_PASSWORD": "90d",
                                             "DEPARROW_JWT_SECRET": "180d"})
    write_config(project, f"catalog: {catalog.name}\nenvironments:\n  dev:\n"
                 "    store: {provider: local}\n")
    assert cli("provision", "--env", "dev").code == 0
    backdate_local(project / ".deparrow-secrets" / "store.db",
                   datetime.now(UTC) - timedelta(days=120))
    keys = ["REDIS_PASSWORD", "DEPARROW_JWT_SECRET", "DEPARROW_SECRET_KEY"]
    before = {k: _revealed(cli, k) for k in keys}

    dry = cli("rotate", "--due", "--env", "dev", "--dry-run", "-o", "json")
    assert dry.code == 0, dry.text
    assert {k: _revealed(cli, k) for k in keys} == before  # a dry run writes nothing

    run = cli("rotate", "--due", "--env", "dev", "-o", "json")
    assert run.code == 0, run.text
    assert run.json()["keys"] == ["REDIS_PASSWORD"]
    after = {k: _revealed(cli, k) for k in keys}
    assert after["REDIS_PASSWORD"] != before["REDIS_PASSWORD"]
    # Within its maxAge, and without one: never due.
    assert after["DEPARROW_JWT_SECRET"] == before["DEPARROW_JWT_SECRET"]
    assert after["DEPARROW_SECRET_KEY"] == before["DEPARROW_SECRET_KEY"]

    audit = cli("audit", "--env", "dev", "-o", "json")
    assert audit.code == 0, audit.text
    records = audit.json()["records"]
    assert records[-1]["command"] == "rotate" and records[-1]["keys"] == ["REDIS_PASSWORD"]

    again = cli("rotate", "--due", "--env", "dev")
    assert again.code == 0 and "nothing to rotate" in again.out, again.text
    # The canary: no value, old or new, raw or base64, in any output of the command.
    for value in [*before.values(), *after.values()]:
        secret = value.strip()
        for shown in (secret, base64.b64encode(secret.encode()).decode()):
            for out in (dry, run, again):
                assert shown not in out.out and shown not in out.err


def test_rotate_due_takes_no_key_names(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    run = cli("rotate", "--due", "--all", "--env", "dev")
    assert run.code == 2 and "--due chooses the keys itself" in run.err, run.text
