"""Canary for lint: no output format ever shows a value from the files it reads, parser
errors included (issue 8.10): a reused anchor in a Secret (ruamel's warning prints the
source lines), an undefined alias (its name quoted), a duplicate key, syntax errors
next to values, tabs, a non-UTF-8 byte, an oversize file, and values that look like
placeholders. Positive control: the search finds the values in the files themselves."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from helpers import clean_env, find_values, run_cli


def value() -> str:
    return "cv" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def secret_doc(body: str) -> str:
    return ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: prod\n"
            "type: Opaque\n" + body)


def write_corpus(root: Path) -> dict[str, str]:
    v = {f"v{i}": value() for i in range(12)}
    b64 = base64.b64encode(v["v5"].encode()).decode()
    files = {
        "reused-anchor.yaml": secret_doc(f"stringData:\n  a: &x {v['v0']}\n  b: &x {v['v1']}\n"
                                         "  c: *x\n"),
        "undefined-alias.yaml": secret_doc(f"stringData:\n  a: *{v['v2']}\n"),
        "duplicate-key.yaml": secret_doc(f"stringData:\n  a: {v['v3']}\n  a: {v['v4']}\n"),
        "alias-in-data.yaml": secret_doc(f"data:\n  a: &k {b64}\n  b: *k\n  c: [*k\n"),
        "syntax-after-value.yaml": secret_doc(f"stringData:\n  a: {v['v6']}\n b: : {v['v7']}\n"),
        "tab.yaml": secret_doc(f"stringData:\n\ta: {v['v8']}\n"),
        "bad-quote.yaml": secret_doc(f"stringData:\n  a: \"{v['v9']}\n  b: '{v['v10']}\n"),
        "placeholder-like.yaml": secret_doc(f"stringData:\n  a: your-{v['v11']}\n"),
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "latin1.yaml").write_bytes(secret_doc(f"stringData:\n  a: {v['v0']}\xe9\n")
                                       .encode("latin-1"))
    (root / "oversize.yaml").write_text(
        secret_doc("stringData:\n" + "".join(f"  k{i}: {v['v1']}\n" for i in range(150_000))),
        encoding="utf-8")
    return v


def test_lint_outputs_never_show_a_value(tmp_path: Path) -> None:
    values = write_corpus(tmp_path)
    blobs: dict[str, bytes] = {}
    env = clean_env()
    for output in ("text", "json", "sarif"):
        run = run_cli(["lint", "-o", output, "."], cwd=tmp_path, env=env)
        assert run.code == 1, run.text
        assert "Traceback" not in run.err
        blobs[f"lint -o {output}: stdout"] = run.out.encode()
        blobs[f"lint -o {output}: stderr"] = run.err.encode()
        if output == "json":
            rules = {(f["file"], f["rule"]) for f in run.findings()}
            for name in ("reused-anchor.yaml", "undefined-alias.yaml", "duplicate-key.yaml",
                         "alias-in-data.yaml", "syntax-after-value.yaml", "tab.yaml",
                         "bad-quote.yaml", "placeholder-like.yaml", "latin1.yaml",
                         "oversize.yaml"):
                assert any(f == name for f, _ in rules), (name, rules)
    assert find_values(blobs, values) == []
    # positive control: the same search finds every value in the files
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    found = {hit.split(": ")[1].split(" ")[0] for hit in find_values(files, values)}
    assert found == set(values)
