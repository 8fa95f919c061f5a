"""The fast YAML path of `config.yamlfile`: for every text it accepts it returns exactly
what the round-trip path returns (values and their types), it declines whatever it does
not read, and errors keep file, line and key path from the round-trip parser."""

from __future__ import annotations

import secrets
import string
from pathlib import Path
from random import Random
from typing import Any

import pytest

from deparrow_secrets.config import yamlfile
from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.config.yamlfile import (
    DECLINED,
    YamlProblem,
    fast_load,
    load_yaml,
    parse_documents,
    plain_with_lines,
)
from deparrow_secrets.errors import CatalogError, ConfigError, InputError
from deparrow_secrets.providers import load_config
from helpers import CATALOG_FILE, FIXTURES, REPO_ROOT

# Plain scalars whose YAML meaning is easy to get wrong (YAML 1.1 vs 1.2, numbers, dates).
SCALARS = [
    "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF", "y", "Y", "n", "N",
    "true", "True", "TRUE", "tRue", "false", "False", "FALSE", "null", "Null", "NULL", "nULL",
    "~", "0", "-0", "+0", "00", "017", "0o17", "0O17", "0x1F", "0X1f", "0b101", "1_000",
    "12", "-12", "+12", "123456789012", "1234567890123456789012", "1.5", "-1.5", "1.",
    ".5", "1e3", "1E3", "1e+3", "-.inf", ".inf", ".Inf", ".nan", ".NaN", "12:30", "1:20:30",
    "190:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2002-12-14", "20011-12-14", "2001-1-1", "<<", "=", "1h", "30m", "1h30m", "0s", "1.5h",
    "us-east-1", "-x", "-5x", "x-", "a:b", "http://x:8200/p", "arn:aws:iam::1:role/x",
    "a b", "a  b", "a#b", "a,b", "a, b", "(x)", "x'y", 'x"y', "x!", "x&y", "x*y", "%x", "@x",
    "`x", "!x", "&x", "*x", "|", ">", "?x", ":x", "-", "--", "---", "...", "päss", "µs",
    "k8s", "e", "E", "0e", "1e", "_", "._", "./x", "/x", "x/", "=x", "<x", "+x", ".x",
]
KEYS = ["a", "key", "y", "n", "yes", "on", "true", "True", "null", "~", "1", "0x1", "_k",
        "k.k", "k-k", "k/k", "K_K", "a b", "'q'", '"q"', "<<", "=", "-k", "k:"]


def _typed(value: Any) -> Any:
    """`value` with the exact type of every node, so 1 and ScalarInt(1) differ."""
    if isinstance(value, dict):
        return ("map", [(type(k), k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [_typed(v) for v in value])
    return (type(value), value)


def _slow(text: str) -> Any:
    docs = list(parse_documents(text))
    assert len(docs) <= 1
    return plain_with_lines(docs[0] if docs else None, (), {})


def _agrees(text: str) -> bool:
    """True when the fast path read `text` (and then read it as ruamel does)."""
    fast = fast_load(text)
    if fast is DECLINED:
        return False
    try:
        slow = _slow(text)
    except YamlProblem as problem:
        pytest.fail(f"fast path accepted text ruamel refuses ({problem.kind}): {text!r}")
    assert _typed(fast) == _typed(slow), text
    return True


def test_the_shipped_catalog_and_the_repository_configuration_take_the_fast_path() -> None:
    for path in (CATALOG_FILE, REPO_ROOT / "deparrow-secrets.yaml"):
        assert _agrees(path.read_text(encoding="utf-8")), path


def test_every_fixture_file_is_read_as_ruamel_reads_it() -> None:
    files = sorted(p for p in FIXTURES.rglob("*.y*ml") if p.is_file())
    assert files
    accepted = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        try:
            several = len(list(parse_documents(text))) > 1
        except YamlProblem:
            assert fast_load(text) is DECLINED, path
            continue
        if not several:
            accepted += _agrees(text)
    assert accepted >= 1


@pytest.mark.parametrize("scalar", SCALARS)
def test_plain_scalars_resolve_as_yaml_1_2_or_are_declined(scalar: str) -> None:
    for text in (f"k: {scalar}\n", f"- {scalar}\n", f"k: [{scalar}]\n", f"k: {{a: {scalar}}}\n",
                 f"k:\n- {scalar}\n", f"k: {scalar}  # note\n"):
        _agrees(text)


def test_yaml_1_2_words_and_numbers_on_the_fast_path() -> None:
    """What the configuration relies on: 1.1 booleans stay strings, 1.2 core values."""
    expected = {"yes": "yes", "on": "on", "no": "no", "off": "off", "y": "y", "n": "n",
                "true": True, "False": False, "null": None, "~": None, "": None,
                "12": 12, "-3": -3, "1h": "1h", "1h30m": "1h30m",
                "us-east-1": "us-east-1", "'017'": "017", '"0o17"': "0o17", "'on'": "on",
                "'it''s'": "it's"}
    for written, value in expected.items():
        text = f"k: {written}\n"
        assert _agrees(text), text
        assert _typed(fast_load(text)) == _typed({"k": value})


@pytest.mark.parametrize("written,value", [("0o17", 15), ("017", 17), ("0x1F", 31),
                                           ("1_000", 1000), ("1.5", 1.5), ("-0", 0), ("0", 0)])
def test_other_number_forms_are_left_to_ruamel_and_keep_its_values(
        written: str, value: object, tmp_path: Path) -> None:
    text = f"k: {written}\n"
    assert fast_load(text) is DECLINED
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_yaml(path).data == {"k": value}


@pytest.mark.parametrize("key", KEYS)
def test_keys(key: str) -> None:
    for text in (f"{key}: v\n", f"m:\n  {key}: v\n", f"m: {{{key}: v}}\n", f"- {key}: v\n"):
        _agrees(text)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",           # anchors and aliases
    "a: !!str 1\n",               # tags
    "a: |\n  x\n",                # block scalars
    "a: >\n  x\n",
    "a: x\n  y\n",                # a plain scalar over two lines
    "a: 'x\n  y'\n",              # a quoted one
    'a: "x\\ty"\n',               # escapes
    "a: {b: {c: d}}\n",           # nested flow
    "a: [b #c]\n", "a: {b: c #d}\n",                     # a comment inside a flow
    "a: [b,\n  c]\n",             # flow over lines
    "a: 1\na: 2\n",               # duplicate key (ruamel's error message)
    "a: {b: 1, b: 2}\n",
    "---\na: 1\n", "a: 1\n...\n", "%YAML 1.1\n---\na: yes\n",   # markers, directives
    "a:\n\t- x\n", "a: 1\r\nb: 2\r\n", "\ufeffa: 1\n",        # tab, CR, BOM
    "a: x\u2028b: y\n", "a: x\x85\n",                         # YAML 1.1 line breaks
    "? a\n: b\n", '"a": 1\n', "a: [b, c,]\n", "a:\n-\n  b\n",
    "a:\n  - b\n c: d\n",         # bad indentation
    "a: b: c\n", "a: b:\n", "- - x\n", "x\n", "{}\n", "a: 2001-12-14\n",
])
def test_what_the_fast_path_declines(text: str) -> None:
    assert fast_load(text) is DECLINED


def test_bounds_are_kept_for_deep_text(tmp_path: Path) -> None:
    """Deeper than the fast path goes: declined, then the depth bound of the slow path."""
    shallow = "".join(" " * i + f"k{i}:\n" for i in range(yamlfile.FAST_MAX_DEPTH)) + "x: 1\n"
    assert _agrees(shallow)
    deep = "".join(" " * i + f"k{i}:\n" for i in range(150)) + " " * 150 + "v: 1\n"
    assert fast_load(deep) is DECLINED
    path = tmp_path / "deep.yaml"
    path.write_text(deep, encoding="utf-8")
    with pytest.raises(InputError, match="nested deeper than"):
        load_yaml(path)


# ---------------------------------------------------------------- random documents

_ALPHABET = string.ascii_letters + string.digits + " :#-_./'\"@,[]{}!&*|>%?~=<+\\"


def _random_scalar(rng: Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(SCALARS)
    alphabet = _ALPHABET if roll < 0.5 else string.ascii_letters + string.digits + "-_./: "
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


def _random_key(rng: Random) -> str:
    return rng.choice(KEYS) if rng.random() < 0.2 else rng.choice(string.ascii_lowercase) \
        + "".join(rng.choice(string.ascii_letters + "_-.") for _ in range(rng.randint(0, 5)))


def _random_document(rng: Random) -> str:
    lines: list[str] = []

    def node(indent: int, depth: int, head: str) -> None:
        kind = rng.choice(["scalar", "flow", "map", "seq"] if depth < 4 else ["scalar"])
        if kind == "scalar":
            lines.append(f"{head} {_random_scalar(rng)}".rstrip() if head else
                         _random_scalar(rng))
        elif kind == "flow":
            items = [_random_scalar(rng) for _ in range(rng.randint(0, 3))]
            if rng.random() < 0.5:
                flow = "[" + ", ".join(items) + "]"
            else:
                flow = "{" + ", ".join(f"{_random_key(rng)}: {s}" for s in items) + "}"
            lines.append(f"{head} {flow}")
        else:
            lines.append(head)
            step = rng.choice([0, 1, 2, 2, 4]) if kind == "seq" else rng.choice([1, 2, 2, 4])
            inner = indent + step
            for _ in range(rng.randint(1, 3)):
                if kind == "map":
                    node(inner, depth + 1, " " * inner + _random_key(rng) + ":")
                else:
                    node(inner + 2, depth + 1, " " * inner + "-")
        if rng.random() < 0.15:
            lines.append(" " * rng.randint(0, 6) + "# " + _random_scalar(rng))
        if rng.random() < 0.1:
            lines.append("")

    for _ in range(rng.randint(1, 4)):
        node(0, 0, _random_key(rng) + ":")
    if rng.random() < 0.3:  # a random edit: indentation, a character, a line
        i = rng.randrange(len(lines))
        choice = rng.random()
        if choice < 0.4:
            lines[i] = " " * rng.randint(0, 3) + lines[i]
        elif choice < 0.8 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice(_ALPHABET) + lines[i][j + 1:]
        else:
            del lines[i]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(8))
def test_random_documents_are_read_as_ruamel_reads_them(seed: int) -> None:
    rng = Random(seed)
    accepted = 0
    for _ in range(500):
        accepted += _agrees(_random_document(rng))
    assert accepted >= 50  # the generator reaches the fast path, not only ruamel


# ---------------------------------------------------------------- errors and lines


def _both_paths(monkeypatch: pytest.MonkeyPatch, call: Any,
                error: type[InputError]) -> tuple[str, str]:
    """The error message of `call` on the fast path, then with the fast path off."""
    with pytest.raises(error) as fast:
        call()
    monkeypatch.setattr(yamlfile, "fast_load", lambda text: DECLINED)
    with pytest.raises(error) as slow:
        call()
    return str(fast.value), str(slow.value)


def test_a_configuration_error_names_file_line_and_key_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deparrow-secrets.yaml"
    wrong = "k" + secrets.token_hex(4)
    path.write_text("namespace: deparrow\n# a comment\nenvironments:\n  dev:\n"
                    "    store: {provider: local}\n\n  staging:\n    store:\n"
                    f"      provider: vault\n      server: https://v.example:8200\n"
                    f"      {wrong}: x\n", encoding="utf-8")
    assert fast_load(path.read_text(encoding="utf-8")) is not DECLINED
    fast, slow = _both_paths(monkeypatch, lambda: load_config(path), ConfigError)
    assert fast == slow
    assert fast.startswith(f"{path}:11: environments.staging.store.{wrong}: unknown key")


def test_a_catalog_error_in_a_list_names_the_item_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.yaml"
    missing = "K_" + secrets.token_hex(3).upper()
    path.write_text("values:\n  A:\n    requirement: required\n    source: user\n"
                    f"secrets:\n  s:\n  - A\n  - {missing}\n", encoding="utf-8")
    assert fast_load(path.read_text(encoding="utf-8")) is not DECLINED
    fast, slow = _both_paths(monkeypatch, lambda: load_catalog(path), CatalogError)
    assert fast == slow
    assert fast.startswith(f"{path}:8: secrets.s[1]: '{missing}' is not defined")


def test_an_error_in_a_flow_mapping_names_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deparrow-secrets.yaml"
    path.write_text("environments:\n\n  dev:\n    store: {provider: nowhere}\n",
                    encoding="utf-8")
    fast, slow = _both_paths(monkeypatch, lambda: load_config(path), ConfigError)
    assert fast == slow
    assert fast.startswith(f"{path}:4: environments.dev.store.provider: 'nowhere'")


def test_lines_come_from_the_round_trip_parser_only_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b: 1\n  c:\n  - x\n  - {d: 2}\n", encoding="utf-8")
    calls: list[str] = []
    real = yamlfile.parse_documents

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(yamlfile, "parse_documents", counting)
    doc = load_yaml(path)
    assert doc.data == {"a": {"b": 1, "c": ["x", {"d": 2}]}}
    assert calls == []  # valid text: no round-trip parse
    assert doc.line(("a", "c", 1, "d")) == 5
    assert doc.lines == {(): 1, ("a",): 1, ("a", "b"): 2, ("a", "c"): 3, ("a", "c", 0): 4,
                         ("a", "c", 1): 5, ("a", "c", 1, "d"): 5}
    assert len(calls) == 1
    doc.line(("a", "b"))
    assert len(calls) == 1  # computed once


@pytest.mark.parametrize("word", ["yes", "on", "y", "Off"])
def test_a_yaml_1_1_boolean_is_a_string_to_the_configuration(
        word: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deparrow-secrets.yaml"
    path.write_text("environments:\n  production:\n    store: {provider: aws, region: "
                    f"us-east-1}}\n    ha: {word}\n", encoding="utf-8")
    assert fast_load(path.read_text(encoding="utf-8")) is not DECLINED
    fast, slow = _both_paths(monkeypatch, lambda: load_config(path), ConfigError)
    assert fast == slow
    assert fast.startswith(f"{path}:4: environments.production.ha: expected true or false, "
                           "got a string")
