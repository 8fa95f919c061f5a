"""The file side of migrate: what is read from manifests and kustomizations, and the
round-trip edits that remove it (only the migrated entries change, in the file's own
indentation, comments kept)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest

from deparrow_secrets.errors import InputError
from deparrow_secrets.operations.migrate_files import collect, remove_embedded

STYLES = {
    "indented-sequences": ("resources:\n  # the app\n  - app.yaml\n  # the values\n"
                           "  - secrets.yaml\nlabels:\n  - pairs:\n      team: a  # owner\n"),
    "deep-sequences": ("resources:\n    # the app\n    - app.yaml\n    # the values\n"
                       "    - secrets.yaml\ncommonLabels:\n  team: a  # owner\n"),
    "flush-sequences": ("resources:\n# the app\n- app.yaml\n# the values\n- secrets.yaml\n"
                        "commonLabels:\n    team: a  # owner\n"),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_the_edit_removes_exactly_the_migrated_entry_in_the_files_own_style(
        tmp_path: Path, style: str) -> None:
    text = "# header comment\nkind: Kustomization\n" + STYLES[style]
    (tmp_path / "kustomization.yaml").write_text(text)
    (tmp_path / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                       "  name: app\n")
    value = secrets.token_urlsafe(16)
    (tmp_path / "secrets.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: redis-credentials\n"
        f"stringData:\n  REDIS_PASSWORD: {value}\n")
    sources = collect(tmp_path, [tmp_path])
    assert sources.secrets["redis-credentials"].values["REDIS_PASSWORD"].line == 6
    remove_embedded(sources, {"redis-credentials"})
    after = (tmp_path / "kustomization.yaml").read_text()
    removed = next(line for line in text.splitlines(True) if "- secrets.yaml" in line)
    assert after == text.replace(removed, "")
    assert not (tmp_path / "secrets.yaml").exists()
    assert value not in after


def test_a_manifest_keeps_its_other_documents_and_an_env_file_shared_stays(
        tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n  - all.yaml\nsecretGenerator:\n  - name: redis-credentials\n"
        "    envs: [shared.env]\n  - name: other-app\n    envs: [shared.env]\n")
    (tmp_path / "shared.env").write_text(f"REDIS_PASSWORD={secrets.token_urlsafe(16)}\n")
    data = base64.b64encode(secrets.token_urlsafe(16).encode()).decode()
    (tmp_path / "all.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: postgres-credentials\n"
        f"data:\n  POSTGRES_PASSWORD: {data}\n---\n# keep me\napiVersion: v1\n"
        "kind: ConfigMap\nmetadata:\n  name: settings  # named\n")
    sources = collect(tmp_path, [tmp_path / "kustomization.yaml"])
    remove_embedded(sources, {"postgres-credentials", "redis-credentials"})
    left = (tmp_path / "all.yaml").read_text()
    assert "kind: Secret" not in left and data not in left
    assert "# keep me" in left and "name: settings  # named" in left
    kustomization = (tmp_path / "kustomization.yaml").read_text()
    assert "redis-credentials" not in kustomization and "other-app" in kustomization
    assert (tmp_path / "shared.env").exists()  # other-app still reads it


def test_links_and_paths_outside_the_project_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("kind: Secret\napiVersion: v1\nmetadata: {name: x}\n")
    root = tmp_path / "project"
    root.mkdir()
    with pytest.raises(InputError, match="outside the project"):
        collect(root, [outside])
    os.symlink(outside, root / "linked.yaml")
    with pytest.raises(InputError, match="link"):
        collect(root, [root / "linked.yaml"])
