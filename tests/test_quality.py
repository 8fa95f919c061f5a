"""Repository hygiene: lint, the committed tree up to date, a light `--help`, the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import CLI_EXE, REPO_ROOT, clean_env, run_cli

PROVIDER_SDKS = ("boto3", "botocore", "hvac", "azure", "kubernetes", "requests")


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    command = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    targets = [d for d in ("src", "tests", "benchmarks", "tools") if (REPO_ROOT / d).is_dir()]
    assert "benchmarks" in targets
    done = subprocess.run([*command, "check", "--no-cache", *targets], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow  # mypy over the whole of src: 10 s from a cold cache
def test_mypy_is_clean() -> None:
    """The `[tool.mypy]` gate of pyproject.toml over src; its cache is the git-ignored one."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir",
                           str(REPO_ROOT / ".mypy_cache"), "src"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


NON_EXHAUSTIVE = """
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.providers import builtin_settings
from deparrow_secrets.providers.aws.settings import AwsSettings
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.local.settings import LocalSettings
from deparrow_secrets.providers.vault.settings import VaultSettings
from typing import assert_never


def hint(env: EnvironmentConfig) -> str:
    match builtin_settings(env):
        case VaultSettings() | AwsSettings() | LocalSettings(){azure}:
            return "known"
        case None:
            return "not checked"
        case unknown:
            assert_never(unknown)
"""


@pytest.mark.slow  # two mypy runs
@pytest.mark.parametrize("azure", ["", " | AzureSettings()"], ids=["azure-forgotten", "all"])
def test_a_choice_over_the_providers_that_forgets_one_fails_the_type_check(
        tmp_path: Path, azure: str) -> None:
    """The gate catches a `match` on builtin_settings() without a case for every built-in
    provider (the posture checks choose this way)."""
    module = tmp_path / "choice.py"
    module.write_text(NON_EXHAUSTIVE.replace("{azure}", azure), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir",
                           str(REPO_ROOT / ".mypy_cache"), "--config-file",
                           str(REPO_ROOT / "pyproject.toml"), str(module)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    if azure:
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        assert done.returncode == 1 and "AzureSettings" in done.stdout, done.stdout


def test_committed_tree_is_up_to_date() -> None:
    run = run_cli(["render", "--check"], cwd=REPO_ROOT)
    assert run.code == 0, run.text
    assert "up to date" in run.out


def test_repository_configuration_and_tree_lint_clean() -> None:
    run = run_cli(["lint"], cwd=REPO_ROOT)
    assert run.code == 0, run.text


def test_help_loads_no_provider_sdk() -> None:
    """`python -X importtime -m deparrow_secrets --help`: every module imported is listed."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "deparrow_secrets",
                           "--help"], capture_output=True, text=True, timeout=60,
                          env=clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "provision" in done.stdout and "render" in done.stdout
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:")}
    assert "click" in modules and "deparrow_secrets.cli" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in PROVIDER_SDKS)
    assert loaded == []
    # Nor anything a command needs only when it runs.
    assert not modules & {"jsonschema", "cryptography", "sqlite3", "ruamel.yaml",
                          "deparrow_secrets.providers.local.store",
                          "deparrow_secrets.render.validate"}


def test_help_in_process_loads_no_provider_sdk() -> None:
    """The same through the console script's own entry point, as sys.modules sees it."""
    code = (
        "import sys\n"
        "from deparrow_secrets.cli import cli\n"
        "cli.main(['--help'], prog_name='deparrow-secrets', standalone_mode=False)\n"
        "print('MODULES', *sorted(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    modules = line.split()[1:]
    assert [m for m in modules if m.split(".")[0] in PROVIDER_SDKS] == []
    exe = subprocess.run([str(CLI_EXE), "--help"], capture_output=True, text=True, timeout=60,
                         env=clean_env(), check=False)
    assert exe.returncode == 0 and "Exit codes" in exe.stdout


def test_readme_starts_with_exactly_two_commands() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```[a-z]*\n(.*?)```", text, re.S)
    assert match is not None
    commands = [line for line in match.group(1).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    assert "deparrow-secrets quickstart" in commands[0]
    assert "pytest" in commands[1]
