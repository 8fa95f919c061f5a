"""`render` without click: the command lines the CLI parses itself, the same output,
exit codes and errors as through click, and what the fast path does not import."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from deparrow_secrets import cli
from deparrow_secrets.render.yamlout import scalar
from helpers import REPO_ROOT, Run, clean_env, invoke, isolate, write_config

CONFIG = (REPO_ROOT / "deparrow-secrets.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("args,expected", [
    (["render"], (None, None, False, False, "text")),
    (["render", "--check"], (None, None, True, False, "text")),
    (["render", "--check", "--diff", "-o", "json"], (None, None, True, True, "json")),
    (["render", "--diff", "--check", "--check"], (None, None, True, True, "text")),
    (["render", "-ojson"], (None, None, False, False, "json")),
    (["render", "--output=json", "--check"], (None, None, True, False, "json")),
    (["render", "--output", "text"], (None, None, False, False, "text")),
    (["--config", "c.yaml", "render"], ("c.yaml", None, False, False, "text")),
    (["--config=c.yaml", "--catalog", "k.yaml", "render", "--check"],
     ("c.yaml", "k.yaml", True, False, "text")),
])
def test_the_forms_render_runs_without_click(args: list[str], expected: tuple[object, ...],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = cli.fast_render_options(args)
    assert options is not None
    assert (options.config_path, options.catalog_path, options.check, options.show_diff,
            options.output) == expected


@pytest.mark.parametrize("args", [
    [], ["--help"], ["-h"], ["--version"], ["render", "--help"], ["render", "-h"],
    ["status"], ["renderx"], ["render", "extra"], ["render", "--"], ["render", "--check=1"],
    ["render", "-o"], ["render", "--output"], ["render", "-o", "yaml"], ["render", "-o=json"],
    ["render", "-o", "JSON"], ["render", "-o", "json", "-o", "text"], ["render", "--chec"],
    ["--config"], ["--config", "c.yaml"], ["--config=", "render"], ["--config", "-c", "render"],
    ["--config", "a", "--config", "b", "render"], ["--catalog", "render"],
    ["render", "--config", "c.yaml"], ["--verbose", "render"], ["-c", "x", "render"],
    ["--config", "dir", "render"], ["--catalog=dir", "render"], ["--config", "a\0b", "render"],
])
def test_everything_else_goes_through_click(args: list[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    assert cli.fast_render_options(args) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_configuration_goes_through_click(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, CONFIG)
    path.chmod(0)
    assert cli.fast_render_options(["--config", str(path), "render"]) is None


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    write_config(root, CONFIG)
    return root


def _both(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
          args: list[str], before: object = None) -> tuple[Run, Run]:
    """The same command line without click, then through click; `before` runs first."""
    real = cli.fast_render_options

    def fast_only(args: list[str]) -> cli.RenderOptions:
        return real(args) or pytest.fail(f"not on the fast path: {args}")

    runs = []
    for parse in (fast_only, lambda args: None):
        if callable(before):
            before()
        with monkeypatch.context() as patched:
            patched.setattr(cli, "fast_render_options", parse)
            runs.append(invoke(capsys, args))
    return runs[0], runs[1]


@pytest.mark.parametrize("output", ["text", "json"])
def test_the_fast_path_prints_what_click_prints(output: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, monkeypatch)
    tree = root / "deparrow" / "k8s"
    o = ["-o", output]

    def fresh() -> None:
        import shutil

        shutil.rmtree(root / "deparrow", ignore_errors=True)

    def changed() -> None:
        fresh()
        invoke(capsys, ["render"])
        (tree / "base" / "namespace.yaml").write_text("# edited\n", encoding="utf-8")
        (tree / "overlays" / "dev" / "kustomization.yaml").unlink()
        stale = tree / "overlays" / "old" / "kustomization.yaml"
        stale.parent.mkdir(parents=True)
        stale.write_bytes((tree / "base" / "kustomization.yaml").read_bytes())

    cases: list[tuple[list[str], object]] = [
        (["render", *o], fresh),                   # every file written
        (["render", *o], None),                    # nothing to write
        (["render", "--check", *o], None),         # up to date
        (["render", "--check", *o], changed),      # changed, missing, stale
        (["render", "--check", "--diff", *o], changed),
        (["render", *o], changed),                 # rewritten, the stale file removed
    ]
    for args, before in cases:
        fast, slow = _both(capsys, monkeypatch, args, before)
        assert (fast.code, fast.out, fast.err) == (slow.code, slow.out, slow.err), args
        assert fast.out
        if output == "json":
            json.loads(fast.out)
    assert _both(capsys, monkeypatch, ["render", "--check"], changed)[0].code == 1


def test_errors_are_the_same_without_click(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, monkeypatch)
    key = "k" + secrets.token_hex(3)
    write_config(root, CONFIG.replace("    ha: true\n", f"    ha: true\n    {key}: 1\n"))
    fast, slow = _both(capsys, monkeypatch, ["render"])
    assert (fast.code, fast.out, fast.err) == (slow.code, slow.out, slow.err)
    assert fast.code == 2
    assert f"deparrow-secrets.yaml:24: environments.production.{key}: unknown key" in fast.err
    other = root / "elsewhere.yaml"
    other.write_text("environments:\n  dev:\n    store: {provider: local}\n", encoding="utf-8")
    outside = tmp_path / "outside"
    write_config(root, CONFIG + f"manifests: {outside}\n")
    for args in (["render"], ["--config", str(other), "render", "--check"],
                 ["--catalog", str(root / "missing.yaml"), "render"]):
        fast, slow = _both(capsys, monkeypatch, args)
        assert (fast.code, fast.out, fast.err) == (slow.code, slow.out, slow.err), args
    assert not outside.exists()


def test_echo_leaves_what_it_cannot_write_as_is_to_click(
        capsys: pytest.CaptureFixture[str]) -> None:
    import click

    for text in ("plain", "päss ✓", "\x1b[31mred\x1b[0m", ""):
        for err in (False, True):
            cli.echo(text, err=err)
            ours = capsys.readouterr()
            click.echo(text, err=err)
            assert ours == capsys.readouterr(), text


def _imports(args: list[str], cwd: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "deparrow_secrets", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=clean_env(), check=False)
    assert done.returncode in (0, 1, 2), done.stderr
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:")}


def test_render_imports_neither_click_nor_ruamel_nor_an_sdk(tmp_path: Path) -> None:
    write_config(tmp_path, CONFIG)
    # dataclasses (it brings inspect) and datetime: the records render loads are
    # `deparrow_secrets.record`s, and an age is computed only where one is checked.
    heavy = {"click", "ruamel.yaml", "jsonschema", "json", "difflib", "boto3", "botocore",
             "hvac", "azure", "kubernetes", "cryptography", "sqlite3", "dataclasses",
             "inspect", "datetime"}
    for args in (["render"], ["render", "--check"]):
        modules = _imports(args, tmp_path)
        assert "deparrow_secrets.render.tree" in modules
        assert not {m for m in modules if m.split(".")[0] in heavy or m in heavy}, args
    # An error to report: the lines come from ruamel, click is still not needed.
    write_config(tmp_path, CONFIG.replace("  dev:\n", "  dev:\n    wrong: 1\n"))
    modules = _imports(["render"], tmp_path)
    assert "ruamel.yaml" in modules and "click" not in modules


def test_other_commands_still_go_through_click(tmp_path: Path) -> None:
    write_config(tmp_path, CONFIG)
    assert "click" in _imports(["render", "--help"], tmp_path)


def test_scalars_are_quoted_as_json_quotes_them() -> None:
    """The emitter writes JSON string and number syntax without importing json."""
    texts = [chr(c) for c in range(0x3000)] + ["a\"b\\c\n\t\x00\x7f\u2028\ud7ff", "1e5",
                                                "yes", "x: y", "", " lead", "trail "]
    for text in texts:
        expected = json.dumps(text, ensure_ascii=False)
        assert scalar(text) in (expected, text), repr(text)
        assert scalar(f"a{text}: b") == json.dumps(f"a{text}: b", ensure_ascii=False)
    for number in (0, -7, 2**70, True, 1.5, -0.0, 1e300, float("inf"), float("-inf"),
                   float("nan")):
        expected = json.dumps(number)
        assert scalar(number) == expected, number

    class Port(int):
        def __repr__(self) -> str:
            return "Port()"

    assert scalar(Port(443)) == json.dumps(Port(443)) == "443"
