"""`audit`: listing, filters, JSON, bad input, and `--verify` catching a removed, a
reordered, an edited record, a cut end, an unknown key and malformed lines."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import pytest
from ledger_helpers import HEAD, KEY, LEDGER, fresh_value, ledger_lines, records, write_lines

from helpers import write_config

TWO_ENVS = """\
environments:
  dev:
    store: {provider: local}
  staging:
    store: {provider: local, path: .deparrow-secrets/staging.db}
"""


@pytest.fixture
def five(project: Path, cli) -> Path:
    """Five records: provision dev, provision staging, set dev, set staging, rollback dev."""
    write_config(project, TWO_ENVS)
    assert cli("provision", "--env", "dev").code == 0
    assert cli("provision", "--env", "staging").code == 0
    assert cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n").code == 0
    assert cli("set", "POSTGRES_PASSWORD", "--env", "staging",
               stdin=fresh_value() + "\n").code == 0
    assert cli("rollback", "REDIS_PASSWORD").code == 0
    assert [r["command"] for r in records(project)] == ["provision", "provision", "set",
                                                       "set", "rollback"]
    return project


def _verify(cli) -> tuple[int, str]:
    result = cli("audit", "--verify")
    assert "Traceback" not in result.err
    return result.code, result.err


def test_intact_ledger_verifies(five: Path, cli) -> None:
    result = cli("audit", "--verify")
    assert result.code == 0, result.text
    assert "ledger intact: 5 record(s) chained" in result.out
    as_json = cli("audit", "--verify", "-o", "json").json()
    assert as_json["verified"]["intact"] is True and as_json["verified"]["records"] == 5
    assert as_json["verified"]["head"] == records(five)[-1]["mac"]


def test_filters_by_environment_and_key(five: Path, cli) -> None:
    staging = cli("audit", "--env", "staging", "-o", "json").json()["records"]
    assert [(r["command"], r["env"]) for r in staging] == [("provision", "staging"),
                                                           ("set", "staging")]
    redis = cli("audit", "--key", "REDIS_PASSWORD", "--env", "dev", "-o", "json").json()
    assert [r["command"] for r in redis["records"]] == ["provision", "set", "rollback"]
    postgres = cli("audit", "--key", "POSTGRES_PASSWORD", "-o", "json").json()["records"]
    assert [r["seq"] for r in postgres] == [1, 2, 4]
    text = cli("audit", "--env", "staging")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split()[:5] == ["#", "WHEN", "WHO", "COMMAND", "ENV"]
    assert len(lines) == 4 and all(" staging " in line for line in lines[2:])


@pytest.mark.parametrize("args, message", [
    (["--env", "qa"], "unknown environment 'qa'"),
    (["--key", "NO_SUCH_KEY"], "'NO_SUCH_KEY' is not in the catalog"),
    (["-o", "yaml"], "Invalid value"),
])
def test_bad_input_exits_2(five: Path, cli, args: list[str], message: str) -> None:
    result = cli("audit", *args)
    assert result.code == 2, result.text
    assert message in result.err


def test_a_removed_record_is_detected(five: Path, cli) -> None:
    lines = ledger_lines(five)
    write_lines(five, lines[:2] + lines[3:])
    code, err = _verify(cli)
    assert code == 6 and "record 3 is missing (removed): line 3 holds record 4" in err


def test_the_first_record_removed_is_detected(five: Path, cli) -> None:
    write_lines(five, ledger_lines(five)[1:])
    code, err = _verify(cli)
    assert code == 6 and "record 1 is missing" in err


def test_a_reordered_record_is_detected(five: Path, cli) -> None:
    lines = ledger_lines(five)
    write_lines(five, [lines[0], lines[2], lines[1], *lines[3:]])
    code, err = _verify(cli)
    assert code == 6
    assert "reordered at line 2: it holds record 3 where record 2 belongs" in err


@pytest.mark.parametrize("field, value", [("env", "production"), ("user", "someone-else"),
                                          ("outcome", {"status": "ok", "x": 1})])
def test_an_edited_record_is_detected(five: Path, cli, field: str, value: object) -> None:
    lines = ledger_lines(five)
    edited = json.loads(lines[3])
    edited[field] = value
    lines[3] = json.dumps(edited).encode() + b"\n"
    write_lines(five, lines)
    code, err = _verify(cli)
    assert code == 6 and "record 4 (line 4) was edited" in err


def test_a_renumbered_chain_after_a_removal_is_detected_as_edited(five: Path, cli) -> None:
    """Removing a record and renumbering the rest needs the key to redo the MACs."""
    kept = [json.loads(line) for line in ledger_lines(five)]
    del kept[2]
    for n, record in enumerate(kept, 1):
        record["seq"] = n
    write_lines(five, [json.dumps(r).encode() + b"\n" for r in kept])
    code, err = _verify(cli)
    assert code == 6 and "record 3 (line 3) was edited" in err


def test_cutting_the_newest_records_is_detected_through_the_head(five: Path, cli) -> None:
    write_lines(five, ledger_lines(five)[:3])
    code, err = _verify(cli)
    assert code == 6 and "records 4 to 5 are missing" in err and "its end was cut" in err


def test_without_the_head_file_a_cut_end_goes_unnoticed(five: Path, cli) -> None:
    """The documented limit (docs/ledger.md): the chain alone cannot see its own end."""
    write_lines(five, ledger_lines(five)[:3])
    (five / HEAD).unlink()
    assert _verify(cli)[0] == 0


def test_an_edited_head_file_is_detected(five: Path, cli) -> None:
    head = json.loads((five / HEAD).read_text())
    head["seq"] = 3
    (five / HEAD).write_text(json.dumps(head))
    code, err = _verify(cli)
    assert code == 6 and "was edited" in err


def test_a_truncated_last_line_is_bad_input_named_not_quoted(five: Path, cli) -> None:
    data = (five / LEDGER).read_bytes()
    cut = data[:-40]
    (five / LEDGER).write_bytes(cut)
    for args in (["audit", "--verify"], ["audit"], ["audit", "-o", "json"]):
        result = cli(*args)
        assert result.code == 2, result.text
        assert "line 5 of the ledger is incomplete" in result.err
        assert cut.splitlines()[-1][-30:].decode() not in result.err + result.out
    # A writer does not chain onto the broken line: it warns, the store write stands.
    done = cli("set", "REDIS_PASSWORD", stdin=fresh_value() + "\n")
    assert done.code == 0 and "last line" in done.err and "incomplete" in done.err
    assert (five / LEDGER).read_bytes() == cut


def test_a_malformed_line_exits_2_without_quoting_it(five: Path, cli) -> None:
    planted = "planted-" + secrets.token_urlsafe(24)
    lines = ledger_lines(five)
    lines[1] = f'{{"not": "a record {planted}"}}\n'.encode()
    lines[2] = f"garbage {planted}\n".encode()
    write_lines(five, lines)
    result = cli("audit", "--verify")
    assert result.code == 2, result.text
    assert "line 2 of the ledger is not a ledger record (missing " in result.err
    assert planted not in result.err + result.out


def test_a_ledger_chained_with_another_key_is_detected(five: Path, cli) -> None:
    (five / KEY).write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    code, err = _verify(cli)
    assert code == 6 and "record 1 (line 1) was chained with an unknown key" in err


def test_a_damaged_key_file_is_an_integrity_error(five: Path, cli) -> None:
    (five / KEY).write_bytes(b"not a key\n")
    code, err = _verify(cli)
    assert code == 6 and "does not hold a ledger key" in err


def test_audit_reads_only(five: Path, cli) -> None:
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
              for p in (five / ".deparrow-secrets").iterdir()}
    for args in (["audit"], ["audit", "--verify"], ["audit", "-o", "json", "--verify"]):
        assert cli(*args).code == 0
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in (five / ".deparrow-secrets").iterdir()}
    assert after == before


def test_audit_is_a_library_call_with_the_commands_outputs(five: Path, cli) -> None:
    from deparrow_secrets.operations.audit import audit
    from deparrow_secrets.project import Project

    report = audit(Project.load(cwd=five), "dev", "REDIS_PASSWORD", verify=True)
    assert [r["command"] for r in report.shown] == ["provision", "set", "rollback"]
    assert report.recorded == 5 and report.empty_line() is None
    assert report.verified is not None and report.verified[0] == 5
    assert report.to_json() == cli("audit", "--env", "dev", "--key", "REDIS_PASSWORD",
                                   "--verify", "-o", "json").json()
    assert report.verified_line() in cli("audit", "--verify").out
