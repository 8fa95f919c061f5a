"""Canary of the change ledger: no value, raw or base64, and no unkeyed hash of one (the
digests anyone could compute from a guess, ESO's data-hash among them) in the ledger
files or in any `audit` output. The tool runs as real processes."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from pathlib import Path

import pytest
from ledger_helpers import HEAD, KEY, LEDGER, records

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.ledger.chain import LedgerKey
from deparrow_secrets.providers.local.store import LocalStore
from helpers import Run, clean_env, find_values, git_init, isolate, run_cli

_DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256",
            "sha3_512", "blake2b", "blake2s")


def _go_map(data: Mapping[str, bytes]) -> bytes:
    """Go's `%+v` of a map[string][]byte, which ESO hashes (see CLUSTER.md)."""
    items = " ".join(f"{k}:[{' '.join(str(b) for b in v)}]" for k, v in sorted(data.items()))
    return f"map[{items}]".encode()


def unkeyed_hashes(name: str, payload: bytes) -> dict[str, str]:
    """`name digest (form)` -> text for every unkeyed digest of `payload`, hex and base64."""
    out = {}
    for algo in _DIGESTS:
        digest = hashlib.new(algo, payload).digest()
        out[f"{name} {algo} (hex)"] = digest.hex()
        out[f"{name} {algo} (base64)"] = base64.b64encode(digest).decode().rstrip("=")
    return out


def find_texts(blobs: Mapping[str, bytes], needles: Mapping[str, str]) -> list[str]:
    return [f"{where}: {name}" for name, needle in needles.items() for where, blob in
            blobs.items() if needle.encode() in blob or needle.lower().encode() in blob.lower()]


@pytest.mark.slow  # twelve commands as real processes: 2 s
def test_ledger_and_audit_hold_no_value_and_no_unkeyed_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    isolate(monkeypatch, tmp_path)
    env = clean_env(HOME=str(home), TMPDIR=str(home))
    git_init(project)
    outputs: dict[str, bytes] = {}

    def run(*args: str, stdin: str = "", code: int = 0) -> Run:
        result = run_cli(args, cwd=project, stdin=stdin, env=env)
        assert result.code == code, result.text
        outputs[f"{' '.join(args)}: stdout"] = result.out.encode()
        outputs[f"{' '.join(args)}: stderr"] = result.err.encode()
        return result

    supplied = "canary-openai-" + secrets.token_urlsafe(32)
    values_file = tmp_path / "values.env"
    values_file.write_text(f"OPENAI_API_KEY={supplied}\n", encoding="utf-8")
    run("quickstart")
    run("provision", "--env", "dev", "--values-file", str(values_file))
    run("set", "REDIS_PASSWORD", stdin="canary-set-" + secrets.token_urlsafe(32) + "\n")
    run("set", "POSTGRES_PASSWORD", stdin="canary-pg-" + secrets.token_urlsafe(32) + "\n")
    run("rollback", "REDIS_PASSWORD")
    run("set", "REDIS_PASSWORD", stdin="short\n", code=2)
    for args in (["audit"], ["audit", "-o", "json"], ["audit", "--verify"],
                 ["audit", "--verify", "-o", "json"], ["audit", "--key", "REDIS_PASSWORD"],
                 ["audit", "--env", "dev", "--key", "OPENAI_API_KEY", "-o", "json"]):
        run(*args)
    assert [r["command"] for r in records(project)] == ["provision", "provision", "set",
                                                       "set", "rollback"]

    # Every value the store has held, at every version, and every object content.
    catalog = load_catalog()
    values: dict[str, str] = {}
    contents: list[dict[str, str]] = []
    with LocalStore(project / ".deparrow-secrets" / "store.db") as store:
        for info in store.history("deparrow/dev"):
            snap = store.read("deparrow/dev", info.version)
            assert snap is not None
            content = {k: v.reveal() for k, v in snap.values.items()}
            contents.append(content)
            for k, v in content.items():
                if catalog.values[k].source != "default":  # defaults are not secrets
                    values[f"{k}@{info.version}"] = v
    assert supplied in values.values() and len(contents) == 5

    needles: dict[str, str] = {}
    for name, value in values.items():
        needles.update(unkeyed_hashes(name, value.encode()))
        needles.update(unkeyed_hashes(f"{name} ESO", _go_map({name.split('@')[0]:
                                                              value.encode()})))
    for n, content in enumerate(contents, 1):
        for form, payload in (("json", json.dumps(content, sort_keys=True)),
                              ("compact json", json.dumps(content, sort_keys=True,
                                                          separators=(",", ":")))):
            needles.update(unkeyed_hashes(f"version {n} {form}", payload.encode()))
        needles.update(unkeyed_hashes(f"version {n} ESO",
                                      _go_map({k: v.encode() for k, v in content.items()})))

    blobs = dict(outputs)
    for name in (LEDGER, HEAD):
        blobs[name] = (project / name).read_bytes()
    assert find_values(blobs, values) == []
    assert find_texts(blobs, needles) == []

    # Positive controls: the searches find what they look for, and the keyed hashes
    # the ledger does hold are there (recomputed here with the ledger key).
    planted = {"planted": f"x{needles['version 3 ESO sha3_224 (hex)']}y".encode()
               + base64.b64encode(values["OPENAI_API_KEY@2"].encode())}
    assert find_texts(planted, needles) == ["planted: version 3 ESO sha3_224 (hex)"]
    assert "planted: OPENAI_API_KEY@2 (base64)" in find_values(planted, values)
    key = LedgerKey(base64.urlsafe_b64decode((project / KEY).read_bytes().strip()))
    with LocalStore(project / ".deparrow-secrets" / "store.db") as store:
        latest = store.read("deparrow/dev")
    assert latest is not None
    keyed = key.data_hash("dev\x00deparrow/dev", latest.values)
    assert keyed.encode() in blobs[LEDGER]
    assert keyed.encode() in outputs["audit -o json: stdout"]
