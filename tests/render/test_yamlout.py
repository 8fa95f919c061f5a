"""The generated-file emitter: what it writes reads back as the same data, in YAML 1.1 and 1.2."""

from __future__ import annotations

import string
from random import Random

import pytest
from ruamel.yaml import YAML

from deparrow_secrets.render.yamlout import GENERATED, dump_documents

TRICKY = ["", " ", "true", "False", "yes", "No", "on", "y", "null", "~", "0", "-1", "1.0",
          ".5", "1e3", "0x1F", "0o17", "1_000", "12:30", ".inf", "a: b", "#x", "x #y",
          "@at", "`tick", "-dash", "? q", "a\nb", "tab\there", "k ", "quote\"s", "it's",
          "{x}", "[x]", "*ref", "&anchor", "!tag", "%pct", "1h", "1h30m",
          "https://vault.example.com:8200/v1", "arn:aws:iam::123456789012:role/x",
          "system:serviceaccount:deparrow:sa", "päss", "end:"]


def _load(text: str, typ: str) -> list[object]:
    if typ == "pyyaml":
        yaml = pytest.importorskip("yaml")
        return list(yaml.safe_load_all(text))
    return list(YAML(typ="safe", pure=True).load_all(text))


@pytest.mark.parametrize("typ", ["ruamel", "pyyaml"])
def test_tricky_strings_round_trip(typ: str) -> None:
    doc = {"values": {f"k{i}": v for i, v in enumerate(TRICKY)}, "list": TRICKY,
           "keys": {v: i for i, v in enumerate(TRICKY) if v}}
    text = dump_documents([doc])
    assert text.startswith(GENERATED)
    assert _load(text, typ) == [doc]


@pytest.mark.parametrize("seed", range(30))
def test_random_structures_round_trip(seed: int) -> None:
    rng = Random(seed)
    alphabet = string.ascii_letters + string.digits + " :#-_./'\"@"

    def make(depth: int) -> object:
        kind = rng.choice(["str", "int", "bool", "dict", "list"] if depth < 4 else ["str"])
        if kind == "str":
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if kind == "int":
            return rng.randint(-5, 10**6)
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "dict":
            return {f"k{i}{rng.choice(alphabet)}": make(depth + 1)
                    for i in range(rng.randint(0, 4))}
        return [make(depth + 1) for _ in range(rng.randint(0, 4))]

    docs = [{"root": make(0)} for _ in range(3)]
    assert _load(dump_documents(docs), "ruamel") == docs
