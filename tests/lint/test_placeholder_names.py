"""placeholder-value judges values, not names (issue 8.9): in the configuration too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = Any

CONFIG = """\
environments:
  staging:
    store:
      provider: vault
      server: {server}
      role: example-role
      policy: example-policy
"""


def test_configuration_names_are_not_judged(tmp_path: Path, cli: Callable[..., Run]) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(
        CONFIG.format(server="https://vault.corp.internal"), encoding="utf-8")
    run = cli("lint", "-o", "json", cwd=tmp_path)
    assert run.findings("placeholder-value") == [], run.out


def test_configuration_values_still_are(tmp_path: Path, cli: Callable[..., Run]) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(
        CONFIG.format(server="https://vault.example.com"), encoding="utf-8")
    run = cli("lint", "-o", "json", cwd=tmp_path)
    assert [f["keyPath"] for f in run.findings("placeholder-value")] == [
        "environments.staging.store.server"]
