"""Hostile YAML at every entry point (configuration, `--catalog`, lint input): an alias
bomb, a 5,000-deep nesting and an oversize file are each one clear error, exit 2 (lint:
a finding, exit 1), in under a second; parser texts never quote the file."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.errors import CatalogError, ConfigError, DeparrowError
from deparrow_secrets.lint.engine import lint
from deparrow_secrets.providers import load_config
from helpers import clean_env, run_cli

DEADLINE = 1.0
# A guard that breaks makes these hang (an alias bomb expands for hours): fail instead.
pytestmark = pytest.mark.timeout(60)


def alias_bomb() -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 9) + "]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def deep_flow() -> str:
    return "key: " + "[" * 5000 + "]" * 5000 + "\n"


def deep_block() -> str:
    # 1,400 levels of indentation fit in the 1 MiB limit: the depth bound, not the size
    return "".join(" " * i + f"k{i}:\n" for i in range(1400)) + " " * 1400 + "v: 1\n"


def deep_dashes() -> str:
    return "key:\n" + "- " * 5000 + "x\n"  # block sequences, 5,000 deep on one line


def oversize() -> str:
    filler = secrets.token_hex(16)
    return "".join(f"k{i}: {filler}\n" for i in range(200_000))  # ~9 MB


WHY = {"alias-bomb": "aliases expand to more than", "deep-flow": "nested deeper than",
       "deep-block": "nested deeper than", "deep-dashes": "nested deeper than",
       "oversize": "larger than"}
HOSTILE: dict[str, Callable[[], str]] = {
    "alias-bomb": alias_bomb, "deep-flow": deep_flow, "deep-block": deep_block,
    "deep-dashes": deep_dashes,
    "oversize": oversize,
}


def in_process(call: Callable[[], object]) -> float:
    """Seconds `call` takes in this process (no interpreter start-up to subtract, which
    is noisy on a shared machine); it must raise or return, not hang."""
    start = time.perf_counter()
    with contextlib.suppress(DeparrowError):
        call()
    return time.perf_counter() - start


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_configuration_refuses_hostile_yaml(shape: str, tmp_path: Path) -> None:
    path = tmp_path / "deparrow-secrets.yaml"
    path.write_text(HOSTILE[shape](), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)
    assert in_process(lambda: load_config(path)) < DEADLINE
    run = run_cli(["status", "--env", "dev"], cwd=tmp_path, env=clean_env())
    assert run.code == 2, run.text
    assert "deparrow-secrets.yaml" in run.err and "Traceback" not in run.err
    assert WHY[shape] in run.err


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_catalog_refuses_hostile_yaml(shape: str, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(HOSTILE[shape](), encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog(path)
    assert in_process(lambda: load_catalog(path)) < DEADLINE
    run = run_cli(["--catalog", "catalog.yaml", "status", "--env", "dev"], cwd=tmp_path,
                  env=clean_env())
    assert run.code == 2, run.text
    assert "catalog.yaml" in run.err and "Traceback" not in run.err


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_lint_reports_hostile_yaml(shape: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE[shape](), encoding="utf-8")
    [finding] = lint([path], None, cwd=tmp_path).findings
    assert finding.rule in ("yaml-invalid", "file-unreadable")
    assert WHY[shape] in finding.message
    assert in_process(lambda: lint([path], None, cwd=tmp_path)) < DEADLINE
    run = run_cli(["lint", "-o", "json", "hostile.yaml"], cwd=tmp_path)
    assert run.code == 1, run.text
    assert [f["file"] for f in run.findings()] == ["hostile.yaml"]


def test_lint_reports_hostile_json_policy(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text('{"Statement": ' + "[" * 5000 + "]" * 5000 + "}",
                                          encoding="utf-8")
    run = run_cli(["lint", "-o", "json", "policy.json"], cwd=tmp_path)
    assert run.code == 1, run.text
    assert [f["rule"] for f in run.findings()] == ["yaml-invalid"]


def test_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text("namespace: &n [*n]\n", encoding="utf-8")
    run = run_cli(["status", "--env", "dev"], cwd=tmp_path)
    assert run.code == 2, run.text
    assert "alias" in run.err


def test_a_template_marker_does_not_hide_a_bound(tmp_path: Path) -> None:
    # `{{ ... }}` files are skipped when they do not parse, but not when they are hostile
    path = tmp_path / "chart.yaml"
    path.write_text("# {{ .Values.x }}\n" + alias_bomb(), encoding="utf-8")
    [finding] = lint([path], None, cwd=tmp_path).findings
    assert finding.rule == "yaml-invalid" and WHY["alias-bomb"] in finding.message


def test_a_large_json_file_that_is_no_policy_is_not_lints_business(tmp_path: Path) -> None:
    lock = tmp_path / "package-lock.json"
    lock.write_text('{"packages": {' + ",".join(f'"p{i}": "{secrets.token_hex(8)}"'
                                                 for i in range(300_000)) + "}}",
                    encoding="utf-8")
    assert lock.stat().st_size > 5 * 1024 * 1024
    assert lint([lock], None, cwd=tmp_path).findings == []
    policy = tmp_path / "policy.json"
    policy.write_text('{"Statement": [], "pad": "' + "x" * (6 * 1024 * 1024) + '"}',
                      encoding="utf-8")
    [finding] = lint([policy], None, cwd=tmp_path).findings
    assert finding.rule == "file-unreadable" and "larger than" in finding.message


def _depth(node: object) -> int:
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0


def test_the_textual_depth_bound_never_underestimates() -> None:
    """The shortcut that skips the event pass must be sound: for random nestings of
    mappings and sequences, written by a YAML emitter in block and mixed styles, the
    bound is at least the real depth."""
    import io
    import random

    from ruamel.yaml import YAML

    from deparrow_secrets.config import yamlfile

    rng = random.Random(8)

    def build(level: int) -> object:
        if level == 0 or rng.random() < 0.15:
            return "v"
        width = 1 if rng.random() < 0.85 else 2
        if rng.random() < 0.5:
            return {f"k{i}": build(level - 1) for i in range(width)}
        return [build(level - 1) for _ in range(width)]

    for case in range(120):
        data = {"root": build(rng.randint(1, 40))}
        for flow in (False, None):
            yaml = YAML()
            yaml.default_flow_style = flow
            yaml.indent(mapping=rng.choice([1, 2, 4]), sequence=rng.choice([2, 4]),
                        offset=rng.choice([0, 2]))
            out = io.StringIO()
            try:
                yaml.dump(data, out)
            except Exception:  # noqa: BLE001 - an indent combination the emitter refuses
                continue
            text = out.getvalue()
            flow_depth = yamlfile._flow_depth(text, 10_000)
            assert yamlfile._block_depth_bound(text) + flow_depth >= _depth(data) + 1, (
                case, text)
