"""Git integration: quickstart and export keep values git-ignored and refuse tracked
paths; the pre-commit hooks this repository offers are valid and run."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
Run = Any


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "dev@deparrow.invalid")
    git(tmp_path, "config", "user.name", "dev")
    git(tmp_path, "config", "commit.gpgsign", "false")
    return tmp_path


def test_quickstart_keeps_store_and_exports_out_of_git(repo: Path,
                                                       cli: Callable[..., Run]) -> None:
    assert cli("quickstart", cwd=repo).code == 0
    written = [repo / ".deparrow-secrets" / "store.db", repo / ".deparrow-secrets" / "store.key",
               *(repo / "deparrow/k8s/overlays/dev/secrets").iterdir()]
    assert len(written) >= 5
    for path in written:
        assert git(repo, "check-ignore", "-q", str(path), check=False).returncode == 0, path
    status = git(repo, "status", "--porcelain", "--untracked-files=all").stdout
    assert ".deparrow-secrets" not in status and "secrets/" not in status
    assert "deparrow/k8s/overlays/dev/kustomization.yaml" in status


def test_export_refuses_to_write_into_a_tracked_file(repo: Path,
                                                     cli: Callable[..., Run]) -> None:
    assert cli("quickstart", cwd=repo).code == 0
    env_file = repo / "deparrow/k8s/overlays/dev/secrets/redis-credentials.env"
    before = env_file.read_text("utf-8")
    git(repo, "add", "-f", str(env_file))
    run = cli("export", "--env", "dev", cwd=repo)
    assert run.code == 2
    assert "refusing to write secret values into a file tracked by git" in run.err
    assert "git rm --cached" in run.err
    assert env_file.read_text("utf-8") == before


def test_export_json_is_ignored_before_it_is_written(repo: Path,
                                                     cli: Callable[..., Run]) -> None:
    assert cli("quickstart", cwd=repo).code == 0
    target = repo / "out" / "dev.json"
    assert cli("export", "--format", "json", "--path", str(target), cwd=repo).code == 0
    assert target.stat().st_mode & 0o777 == 0o600
    assert git(repo, "check-ignore", "-q", str(target), check=False).returncode == 0


MANIFEST = REPO_ROOT / ".pre-commit-hooks.yaml"


def hooks() -> list[dict[str, Any]]:
    """The manifest as pre-commit reads it, defaults filled in."""
    from ruamel.yaml import YAML

    defaults = {"args": [], "files": "", "pass_filenames": True}
    return [{**defaults, **hook} for hook in YAML(typ="safe").load(MANIFEST.read_text("utf-8"))]


def test_pre_commit_manifest_is_valid() -> None:
    pytest.importorskip("pre_commit", reason="pre-commit validates its own manifest schema")
    from pre_commit.clientlib import load_manifest

    by_id = {h["id"]: h for h in load_manifest(str(MANIFEST))}
    assert set(by_id) == {"deparrow-secrets-lint", "deparrow-secrets-scan"}
    assert by_id["deparrow-secrets-lint"]["entry"] == "deparrow-secrets lint"
    assert by_id["deparrow-secrets-scan"]["entry"] == "deparrow-secrets scan"
    assert all(h["language"] == "python" and h["pass_filenames"] for h in by_id.values())


def test_pre_commit_hooks_run_as_declared(repo: Path, cli: Callable[..., Run]) -> None:
    """Each hook's entry + args + the staged file names, as pre-commit calls it."""
    import re

    assert cli("quickstart", cwd=repo).code == 0
    guide = REPO_ROOT / "tests" / "fixtures" / "guide" / "secretstores.yaml"
    (repo / "stores.yaml").write_text(guide.read_text("utf-8"), "utf-8")
    (repo / "README.md").write_text("nothing to see\n", "utf-8")
    for hook in hooks():
        argv = hook["entry"].split()[1:] + hook["args"]
        files = [name for name in ("stores.yaml", "README.md")
                 if re.search(hook["files"], name)]
        run = cli(*argv, *files, cwd=repo)
        expected = 1 if hook["id"] == "deparrow-secrets-lint" else 0
        assert run.code == expected, (hook["id"], run.out, run.err)
