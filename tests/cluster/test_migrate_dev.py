"""migrate --env dev: an old embedded layout (secretGenerator literals and env files, a
base/secrets.yaml) moved into the embedded store and the secretGenerator export the tool
renders; no cluster is needed."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from migrate_layout import CATALOG, Cli

from deparrow_secrets.project import Project
from helpers import git, git_init, isolate, kustomize, write_config

OLD_OVERLAY = """\
# the old dev overlay: values inline (never again)
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: deparrow
resources:
  - ../../base
secretGenerator:
  # application secrets as literals
  - name: deparrow-secrets
    literals:
{literals}
  - name: postgres-credentials
    envs:
      - postgres.env
generatorOptions:
  disableNameSuffixHash: true  # the guide's plain names
"""

OLD_BASE = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - secrets.yaml
"""


@pytest.fixture
def dev_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                cli: Cli) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    git_init(root)
    write_config(root, "manifests: deploy/secrets\nenvironments:\n  dev:\n"
                       "    store: {provider: local}\n")
    assert cli("render").code == 0
    values = {v.name: (v.default if v.source == "default" and v.default
                       else secrets.token_urlsafe(24)) for v in CATALOG.needed(False)}
    app = CATALOG.secrets[0]
    keys = CATALOG.secret_keys(app, False)
    literals = "".join(f"      - {k}={values[k]}\n" for k in keys)
    old = root / "old"
    (old / "overlays" / "dev").mkdir(parents=True)
    (old / "base").mkdir()
    (old / "overlays" / "dev" / "kustomization.yaml").write_text(
        OLD_OVERLAY.format(literals=literals.rstrip("\n")))
    pg = next(s for s in CATALOG.secrets if s.name == "postgres-credentials")
    (old / "overlays" / "dev" / "postgres.env").write_text(
        "# postgres\n" + "".join(f"{k}={values[k]}\n" for k in CATALOG.secret_keys(pg, False)))
    (old / "base" / "kustomization.yaml").write_text(OLD_BASE)
    redis = base64.b64encode(values["REDIS_PASSWORD"].encode()).decode()
    (old / "base" / "secrets.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: redis-credentials\n"
        f"data:\n  REDIS_PASSWORD: {redis}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "old dev layout")
    return root, values


def test_dev_moves_to_the_embedded_store_and_the_export(
        dev_project: tuple[Path, dict[str, str]], cli: Cli) -> None:
    root, values = dev_project
    run = cli("migrate", "--env", "dev", "--from", "files", "old/overlays/dev", "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    assert doc["step"] == "done"
    project = Project.load(root / "deparrow-secrets.yaml")
    env = project.environment("dev")
    with project.open_store(env, create=False) as store:
        read = project.layout(env).read(store)
    assert {k: r.value.reveal() for k, r in read.items() if r.value is not None} == values
    # The tool's dev overlay builds Secrets with exactly the migrated bytes.
    built = {o["metadata"]["name"]: o for o in kustomize(root / "deploy/secrets/overlays/dev")
             if o["kind"] == "Secret"}
    for secret in CATALOG.secrets:
        data = {k: base64.b64decode(v).decode() for k, v in built[secret.name]["data"].items()}
        assert data == {k: values[k] for k in CATALOG.secret_keys(secret, False)}
    # The old layout no longer holds a value: generators, env file and manifest gone.
    overlay = (root / "old/overlays/dev/kustomization.yaml").read_text()
    assert "secretGenerator" not in overlay and "literals" not in overlay
    assert "# the old dev overlay" in overlay and "# the guide's plain names" in overlay
    assert not (root / "old/overlays/dev/postgres.env").exists()
    assert not (root / "old/base/secrets.yaml").exists()
    assert "secrets.yaml" not in (root / "old/base/kustomization.yaml").read_text()
    assert cli("render", "--check").code == 0
    lint = cli("lint", "old", "deploy/secrets")
    assert lint.code == 0, lint.text
    # Committed to git: reported by key and commit.
    assert "DEPARROW_JWT_SECRET" in doc["leakedKeys"]
    exported = (root / "deploy/secrets/overlays/dev/secrets").iterdir()
    for canary in [v for k, v in values.items() if CATALOG.values[k].source == "generated"]:
        assert canary not in run.out + run.err
        assert canary not in overlay
    assert all(p.stat().st_mode & 0o077 == 0 for p in exported)
