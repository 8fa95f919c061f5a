# ruff: noqa: UP030, UP031, UP032 - the old formatting forms are what the SecretValue tests try
"""Values are text, exactly, under one policy; SecretValue never shows itself; generated
values come from a CSPRNG (issue 9, points 5, 6, 7, 9, 10 and the input half of 16)."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import random
import secrets
from pathlib import Path

import pytest

from deparrow_secrets.config.catalog import GeneratePolicy
from deparrow_secrets.operations.provision import generate
from deparrow_secrets.providers.local.store import LocalStore
from deparrow_secrets.secret import SecretValue
from helpers import clean_env, run_cli


def stored(root: Path) -> dict[str, str]:
    with LocalStore(root / ".deparrow-secrets" / "store.db") as store:
        snap = store.read("deparrow/dev")
    return {k: v.reveal() for k, v in snap.values.items()} if snap else {}


def token() -> str:
    return "v" + secrets.token_urlsafe(30)


# --------------------------------------------------------------------------- point 5


def test_non_utf8_stdin_is_refused_naming_stdin(project: Path, cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = stored(project)
    binary = secrets.token_bytes(8) + b"\xff\xfe" + secrets.token_bytes(38)
    run = cli("set", "REDIS_PASSWORD", stdin=binary)
    assert run.code == 2, run.text
    assert "<stdin>" in run.err and "not UTF-8" in run.err
    run = cli("provision", "--env", "dev", "--stdin",
              stdin=b"REDIS_PASSWORD=" + b"\xc3" + secrets.token_urlsafe(40).encode() + b"\n")
    assert run.code == 2 and "<stdin>" in run.err and "not UTF-8" in run.err, run.text
    assert stored(project) == before


def test_non_utf8_files_are_refused_naming_the_file(project: Path, tmp_path: Path,
                                                    cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = stored(project)
    value_file = tmp_path / "value.bin"
    value_file.write_bytes(b"\x80" + secrets.token_bytes(47))
    run = cli("set", "REDIS_PASSWORD", "--from-file", str(value_file))
    assert run.code == 2 and f"{value_file}: not UTF-8" in run.err, run.text
    values_file = tmp_path / "values.env"
    values_file.write_bytes(b"OPENAI_API_KEY=" + secrets.token_urlsafe(20).encode()
                            + b"\xe2\x82\n")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    assert run.code == 2 and f"{values_file}: not UTF-8" in run.err, run.text
    assert stored(project) == before


def test_nul_bytes_and_oversized_values_are_refused(project: Path, tmp_path: Path,
                                                    cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = stored(project)
    run = cli("set", "REDIS_PASSWORD", stdin=token() + "\0" + token())
    assert run.code == 2 and "NUL" in run.err, run.text
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps({"OPENAI_API_KEY": token() + "\0"}), encoding="utf-8")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    assert run.code == 2 and "NUL" in run.err and "OPENAI_API_KEY" in run.err, run.text
    big = tmp_path / "big.txt"
    big.write_text(secrets.token_hex(1024 * 1024 // 2) + "x", encoding="utf-8")
    run = cli("set", "REDIS_PASSWORD", "--from-file", str(big))
    assert run.code == 2 and "1 MiB" in run.err, run.text
    values_file.write_text(json.dumps({"OPENAI_API_KEY": "\ud800" + token()}),
                           encoding="utf-8")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    assert run.code == 2 and "not valid Unicode" in run.err, run.text
    assert stored(project) == before


def test_a_value_of_exactly_one_mib_is_kept_exactly(project: Path, tmp_path: Path,
                                                    cli) -> None:
    value = "é" * (512 * 1024)  # 1 MiB of UTF-8: the limit itself is allowed
    path = tmp_path / "value.txt"
    path.write_text(value, encoding="utf-8")
    run = cli("set", "OPENAI_API_KEY", "--from-file", str(path))
    assert run.code == 0, run.text
    assert stored(project)["OPENAI_API_KEY"] == value


# --------------------------------------------------------------------------- point 6


def test_provision_applies_the_catalog_policy_like_set(project: Path, tmp_path: Path,
                                                       cli) -> None:
    short = secrets.token_hex(2)[:3]
    values_file = tmp_path / "values.env"
    values_file.write_text(f"POSTGRES_PASSWORD={short}\n", encoding="utf-8")
    set_run = cli("set", "POSTGRES_PASSWORD", stdin=short + "\n")
    file_run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    stdin_run = cli("provision", "--env", "dev", "--stdin", stdin=f"POSTGRES_PASSWORD={short}\n")
    for run in (set_run, file_run, stdin_run):
        assert run.code == 2, run.text
        assert "the value for POSTGRES_PASSWORD has 3 characters" in run.err
        assert short not in run.out + run.err.replace("has 3 characters", "")
    assert not (project / ".deparrow-secrets" / "store.db").exists()
    empty = cli("provision", "--env", "dev", "--stdin", stdin="OPENAI_API_KEY=\n")
    assert empty.code == 2 and "empty value for OPENAI_API_KEY" in empty.err


def test_a_supplied_value_never_overwrites_an_existing_one(project: Path, tmp_path: Path,
                                                           cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    before = stored(project)
    values_file = tmp_path / "values.env"
    values_file.write_text(f"POSTGRES_PASSWORD={token()}\nREDIS_PASSWORD={token()}\n",
                           encoding="utf-8")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file), "-o", "json")
    assert run.code == 0, run.text
    actions = {k["key"]: k["action"] for k in run.json()["keys"]}
    assert actions["POSTGRES_PASSWORD"] == "exists" and actions["REDIS_PASSWORD"] == "exists"
    run = cli("provision", "--env", "dev", "--stdin", stdin=f"REDIS_PASSWORD={token()}\n")
    assert run.code == 0, run.text
    assert stored(project) == before


def test_duplicate_keys_in_a_json_values_file_are_an_error(project: Path, tmp_path: Path,
                                                           cli) -> None:
    first, second = token(), token()
    values_file = tmp_path / "values.json"
    values_file.write_text('{"OPENAI_API_KEY": "%s", "OPENAI_API_KEY": "%s"}' % (first, second),
                           encoding="utf-8")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    assert run.code == 2 and "'OPENAI_API_KEY' is given twice" in run.err, run.text
    assert first not in run.err and second not in run.err
    assert not (project / ".deparrow-secrets" / "store.db").exists()


def test_a_json_values_file_that_is_not_an_object_is_an_error(project: Path,
                                                              tmp_path: Path, cli) -> None:
    values_file = tmp_path / "values.json"
    values_file.write_text("{}\n", encoding="utf-8")
    values_file.write_text('{"a": {"b": "c"}}', encoding="utf-8")
    run = cli("provision", "--env", "dev", "--values-file", str(values_file))
    assert run.code == 2 and "JSON object of string values" in run.err, run.text


# --------------------------------------------------------------------------- point 7


@pytest.mark.parametrize("prefix", ["", "-", "--"])
def test_set_with_a_value_in_argv_is_refused_without_echoing_it(project: Path, prefix: str,
                                                                cli) -> None:
    value = prefix + token()
    run = cli("set", "REDIS_PASSWORD", value)
    assert run.code == 2, run.text
    assert "extra argument is not shown" in run.err
    assert value not in run.out + run.err and value[len(prefix):] not in run.out + run.err
    real = run_cli(["set", "REDIS_PASSWORD", "--env", "dev", value], cwd=project,
                   env=clean_env())
    assert real.code == 2 and value[len(prefix):] not in real.out + real.err, real.text
    assert not (project / ".deparrow-secrets" / "store.db").exists()


# --------------------------------------------------------------------------- point 9


def test_secret_value_never_formats_as_itself(caplog: pytest.LogCaptureFixture) -> None:
    raw = token()
    value = SecretValue(raw)
    shown = [f"{value}", f"{value!s}", f"{value!r}", f"{value:>80}", format(value),
             format(value, "s"), "{}".format(value), "{0!r}".format(value),
             "%s" % value, "%r" % (value,), "%(v)s" % {"v": value}, "%-50s" % (value,),
             str(value), repr(value), ascii(value), str([value]), str({"k": value})]
    for text in shown:
        assert raw not in text, text
    with pytest.raises(AttributeError):
        "{0._value}".format(value)  # format fields reach attributes
    with pytest.raises(AttributeError):
        value._value  # noqa: B018
    logger = logging.getLogger("deparrow-test")
    with caplog.at_level(logging.DEBUG, logger="deparrow-test"):
        logger.warning("value %s", value)
        logger.warning(value)
        logger.warning("value %(v)s", {"v": value})
        logger.warning("%r", value)
        try:
            raise ValueError(value)
        except ValueError:
            logger.exception("failed")
    assert caplog.records and raw not in caplog.text
    assert value.reveal() == raw and value == SecretValue(raw) and len(value) == len(raw)


def test_secret_value_cannot_be_pickled_or_copied() -> None:
    value = SecretValue(token())
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(value, protocol)
    with pytest.raises(TypeError):
        copy.copy(value)
    with pytest.raises(TypeError):
        copy.deepcopy(value)
    with pytest.raises(TypeError):
        copy.deepcopy({"k": [value]})
    with pytest.raises(TypeError):
        hash(value)
    with pytest.raises(AttributeError):
        value.other = 1  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- point 10


def test_generated_values_do_not_depend_on_random_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    policy = GeneratePolicy(length=32, alphabet="alphanumeric")
    random.seed(1234)
    first = generate(policy).reveal()
    random.seed(1234)
    second = generate(policy).reveal()
    assert first != second
    assert len(first) == 32 and set(first) <= set(policy.characters)

    def predictable(*args: object, **kwargs: object) -> object:
        raise AssertionError("generated values must come from `secrets`, not `random`")

    for name in ("choice", "choices", "randint", "randrange", "random", "sample",
                 "getrandbits"):
        monkeypatch.setattr(random, name, predictable)
        monkeypatch.setattr(random.Random, name, predictable)
    assert len(generate(policy)) == 32
