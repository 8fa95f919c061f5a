"""migrate: the guide's embedded layout moved to Vault (OpenBao) and AWS (moto), verified
in the fake cluster through the ESO simulator before the files are edited."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from migrate_layout import (
    APP,
    BASE_KUSTOMIZATION,
    CATALOG,
    ESO,
    NS,
    Cli,
    Layout,
    aws_layout,
    cluster_data,
    expected_data,
    start_eso,
    vault_layout,
    workload_versions,
)

from deparrow_secrets.cluster.datahash import eso_data_hash
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import git

__all__ = ["aws_layout", "vault_layout"]  # fixtures, imported for pytest


@pytest.fixture(params=["vault", "aws"])
def layout(request: pytest.FixtureRequest) -> Layout:
    return request.getfixturevalue("vault_layout" if request.param == "vault"
                                   else "aws_layout")


def _ledger(layout: Layout) -> list[dict[str, Any]]:
    path = layout.root / ".deparrow-secrets" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_guides_layout_migrates_verified_then_the_files_are_edited(
        layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        eso_install: Callable[..., None], cli: Cli) -> None:
    eso_install(kube_api)
    start_eso(eso, layout)
    before = workload_versions(kube_api)
    assert cli("lint", APP).code == 1  # the embedded Secrets are findings before
    dry = layout.migrate(cli, "--from", "files", str(layout.overlay), "--dry-run", "-o", "json")
    assert dry.code == 0, dry.text
    plan = dry.json()
    assert {k["action"] for k in plan["keys"]} == {"write"}, plan["keys"]
    assert sorted(plan["secrets"]) == sorted(s.name for s in CATALOG.secrets)
    assert {"file": f"{APP}/base/secrets.yaml", "action": "deleted"}.items() <= \
        plan["removals"][0].items()
    assert layout.store_values() == {}  # the dry run wrote nothing
    assert (layout.root / APP / "base" / "secrets.yaml").exists()

    run = layout.migrate(cli, "--from", "files", str(layout.overlay), "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    assert doc["step"] == "done"
    # The store holds every value, read with the provider's own client.
    stored = layout.store_values()
    assert stored == layout.values
    # The Secrets carry the same bytes, with ESO's data hash over exactly those bytes.
    for secret in CATALOG.secrets:
        data = cluster_data(kube_api, secret.name)
        assert data == expected_data(layout.values, secret.name, layout.ha)
        obj = kube_api.get("v1", "Secret", secret.name, NS)
        assert obj is not None
        assert obj["metadata"]["annotations"][
            "reconcile.external-secrets.io/data-hash"] == eso_data_hash(data)
        assert obj["metadata"]["labels"]["reconcile.external-secrets.io/managed"] == "true"
    assert sorted(doc["verified"]) == sorted(s.name for s in CATALOG.secrets)
    # Workloads untouched: same resourceVersion, generation and pod template.
    assert workload_versions(kube_api) == before
    # The files: secrets.yaml gone, the kustomization edited with its comments kept.
    base = layout.root / APP / "base"
    assert not (base / "secrets.yaml").exists()
    text = (base / "kustomization.yaml").read_text()
    assert "secrets.yaml" not in text.replace("guide: base/secrets.yaml", "")
    for comment in ("# DEparrow base: the application", "# the workloads",
                    "# development placeholder secrets", "# keep this label"):
        assert comment in text, text
    assert text.index("namespace: deparrow") < text.index("resources:") < \
        text.index("commonLabels:")
    assert text == BASE_KUSTOMIZATION.replace("  - secrets.yaml\n", "")  # only that line
    assert (base / "deployment.yaml").exists()
    # render --check and lint are clean afterwards.
    check = cli("render", "--check")
    assert check.code == 0, check.text
    lint = cli("lint", APP, "deploy/secrets")
    assert lint.code == 0, lint.text
    # The values were committed: reported by key and commit, never printed.
    head = git(layout.root, "rev-parse", "HEAD").stdout.strip()
    leaked = {k for leak in doc["leaks"] for k in leak["keys"]}
    secret_keys = {k for k in layout.values
                   if CATALOG.values[k].source in ("generated", "user")}
    assert leaked == secret_keys
    assert {leak["commit"] for leak in doc["leaks"]} == {head}
    assert doc["rotateCommand"] == (f"deparrow-secrets rotate --env {layout.name} "
                                    + " ".join(sorted(secret_keys)))
    # Leftovers: the kubectl apply annotation holds the values; reported, not removed.
    assert any("last-applied-configuration" in item for item in doc["leftovers"])
    # The ledger has the migration, the canary finds no value anywhere.
    records = [r for r in _ledger(layout) if r["command"] == "migrate"]
    assert len(records) == 1 and records[0]["outcome"] == {"status": "ok"}
    assert set(records[0]["keys"]) == set(layout.values)
    text_run = layout.migrate(cli, "--from", "files", str(layout.overlay))
    exposed = [run.out, run.err, dry.out, dry.err, text_run.out, text_run.err,
               (layout.root / ".deparrow-secrets" / "ledger.jsonl").read_text(),
               (layout.root / ".deparrow-secrets" / f"migrate-{layout.name}.json").read_text(),
               (base / "kustomization.yaml").read_text()]
    for canary in layout.canaries():
        for where in exposed:
            assert canary not in where


def test_text_output_names_leaks_and_the_rotate_command(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    start_eso(eso, vault_layout)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay))
    assert run.code == 0, run.text
    head = git(vault_layout.root, "rev-parse", "HEAD").stdout.strip()
    assert f"leaked    DEPARROW_JWT_SECRET: commit {head[:12]}" in run.out
    assert "deparrow-secrets rotate --env staging DEPARROW_JWT_SECRET" in run.out
    assert "edited    deparrow/k8s/base/kustomization.yaml: resources: secrets.yaml" in run.out
    assert "deleted   deparrow/k8s/base/secrets.yaml: Secret deparrow-secrets" in run.out
    for canary in vault_layout.canaries():
        assert canary not in run.out + run.err


def test_delete_original_removes_the_value_holding_leftovers(
        vault_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    start_eso(eso, vault_layout)
    # An old generator Secret nobody references, one a workload still uses.
    for name in ("redis-credentials-5h2gk7bm9c", "deparrow-secrets-t8dg9c6m4f"):
        kube_api.put({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": name, "namespace": NS},
                      "data": {"REDIS_PASSWORD": "b2xk"}})
    dep = kube_api.get("apps/v1", "Deployment", "metaos", NS)
    assert dep is not None
    dep["spec"]["template"]["spec"]["containers"][0]["envFrom"].append(
        {"secretRef": {"name": "deparrow-secrets-t8dg9c6m4f"}})
    kube_api.put(dep)
    run = vault_layout.migrate(cli, "--from", "files", str(vault_layout.overlay),
                               "--delete-original", "-o", "json")
    assert run.code == 0, run.text
    doc = run.json()
    assert kube_api.get("v1", "Secret", "redis-credentials-5h2gk7bm9c", NS) is None
    assert kube_api.get("v1", "Secret", "deparrow-secrets-t8dg9c6m4f", NS) is not None
    assert any("deparrow-secrets-t8dg9c6m4f" in item and "referenced" in item
               for item in doc["leftovers"])
    for secret in CATALOG.secrets:
        live = kube_api.get("v1", "Secret", secret.name, NS)
        assert live is not None
        annotations = live["metadata"].get("annotations") or {}
        assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
        assert cluster_data(kube_api, secret.name) == expected_data(
            vault_layout.values, secret.name, False)


def test_from_cluster_moves_the_secrets_the_cluster_holds(
        aws_layout: Layout, kube_api: FakeKubeApiServer, eso: Callable[..., Any],
        cli: Cli) -> None:
    start_eso(eso, aws_layout)
    before = workload_versions(kube_api)
    run = aws_layout.migrate(cli, "--from", "cluster", "-o", "json")
    assert run.code == 0, run.text
    assert aws_layout.store_values() == aws_layout.values
    for secret in CATALOG.secrets:
        assert cluster_data(kube_api, secret.name) == expected_data(
            aws_layout.values, secret.name, True)
        es = kube_api.get(ESO, "ExternalSecret", f"{secret.name}-external", NS)
        assert es is not None
    assert workload_versions(kube_api) == before
    assert run.json()["leaks"] == []  # from the cluster: no files, no history search
    # The files are not touched by a migration from the cluster.
    assert (aws_layout.root / APP / "base" / "secrets.yaml").exists()
    for canary in aws_layout.canaries():
        assert canary not in run.out + run.err
