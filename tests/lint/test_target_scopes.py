"""target-not-consumed is judged within what is deployed together (issue 8.8): one
kustomization's build with its name prefixes and suffixes, or one file; silent when no
workload is in scope."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = Any


def deployment(name: str, secret: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: {name}
          image: registry.corp.internal/{name}:1
          envFrom:
            - secretRef:
                name: {secret}
"""


def external_secret(name: str, target: str | None = None) -> str:
    target_block = f"  target:\n    name: {target}\n" if target else ""
    return f"""apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {name}
spec:
  secretStoreRef:
    name: store
    kind: SecretStore
{target_block}  data:
    - secretKey: password
      remoteRef:
        key: apps/{name}
        property: password
"""


def kustomization(resources: list[str], prefix: str = "", suffix: str = "") -> str:
    text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    if prefix:
        text += f"namePrefix: {prefix}\n"
    if suffix:
        text += f"nameSuffix: {suffix}\n"
    return text + "resources:\n" + "".join(f"  - {r}\n" for r in resources)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def rules(run: Run) -> list[tuple[str, str]]:
    return sorted((f["file"], f["rule"]) for f in run.findings())


def test_separate_example_files_are_not_judged_together(tmp_path: Path,
                                                        cli: Callable[..., Run]) -> None:
    # ESO's documentation: one example per file, workloads in others.
    write(tmp_path, {"es-db.yaml": external_secret("db"),
                     "deploy-web.yaml": deployment("web", "web-config")})
    run = cli("lint", "-o", "json", ".", cwd=tmp_path)
    assert rules(run) == [], run.out


def test_a_kustomization_without_workloads_is_silent(tmp_path: Path,
                                                     cli: Callable[..., Run]) -> None:
    write(tmp_path, {
        "secrets/kustomization.yaml": kustomization(["es.yaml"]),
        "secrets/es.yaml": external_secret("db"),
        "apps/kustomization.yaml": kustomization(["web.yaml"]),
        "apps/web.yaml": deployment("web", "web-config"),
    })
    run = cli("lint", "-o", "json", ".", cwd=tmp_path)
    assert rules(run) == [], run.out


def test_name_prefix_and_suffix_are_honoured(tmp_path: Path, cli: Callable[..., Run]) -> None:
    write(tmp_path, {
        "overlay/kustomization.yaml": kustomization(["../base"], suffix="-v2"),
        "base/kustomization.yaml": kustomization(["es.yaml", "web.yaml"], prefix="team-"),
        "base/es.yaml": external_secret("db"),  # target: its own name, so team-db-v2
        "base/web.yaml": deployment("web", "team-db-v2"),
    })
    run = cli("lint", "-o", "json", ".", cwd=tmp_path)
    assert rules(run) == [], run.out


def test_an_unconsumed_target_in_a_build_with_workloads_is_reported(
        tmp_path: Path, cli: Callable[..., Run]) -> None:
    write(tmp_path, {
        "app/kustomization.yaml": kustomization(["es.yaml", "web.yaml"]),
        "app/es.yaml": external_secret("db", target="db-credentials"),
        "app/web.yaml": deployment("web", "db-credential"),  # typo
        "other/kustomization.yaml": kustomization(["web.yaml"]),
        "other/web.yaml": deployment("api", "db-credentials"),  # deployed apart
    })
    run = cli("lint", "-o", "json", ".", cwd=tmp_path)
    assert rules(run) == [("app/es.yaml", "target-not-consumed")], run.out
    [finding] = run.findings()
    assert finding["keyPath"] == "spec.target.name" and "db-credentials" in finding["message"]


AZURE_SA = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: kv-reader
  annotations:
    azure.workload.identity/client-id: 7d8cdf74-1c6a-4b3e-9d2f-274d963d358b
    azure.workload.identity/tenant-id: 5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8
"""
AZURE_STORE = """apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: kv
spec:
  provider:
    azurekv:
      authType: WorkloadIdentity
      vaultUrl: https://team-a.vault.azure.net
      tenantId: 5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8
      serviceAccountRef:
        name: kv-reader
"""


def test_azure_tenant_twice_is_judged_within_what_is_deployed_together(
        tmp_path: Path, cli: Callable[..., Run]) -> None:
    # ESO's documentation: two alternative examples in two files, not deployed together
    write(tmp_path / "docs", {"sa-annotated.yaml": AZURE_SA, "store-tenant.yaml": AZURE_STORE})
    assert rules(cli("lint", "-o", "json", ".", cwd=tmp_path / "docs")) == []
    write(tmp_path / "app", {"kustomization.yaml": kustomization(["sa.yaml", "store.yaml"]),
                             "sa.yaml": AZURE_SA, "store.yaml": AZURE_STORE})
    run = cli("lint", "-o", "json", ".", cwd=tmp_path / "app")
    assert rules(run) == [("store.yaml", "azure-tenant-twice")], run.out
