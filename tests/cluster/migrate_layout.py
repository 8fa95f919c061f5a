"""The guide's embedded layout, built for the migrate tests (values generated per test).

`deparrow/k8s/base/secrets.yaml` holds the three Secrets of the guide (stringData and
data), `base/kustomization.yaml` lists it beside a Deployment file, an overlay uses the
base; the same objects are put into the fake cluster as `kubectl apply -k` leaves them
(with the last-applied-configuration annotation that repeats the values).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.project import Project
from fakes.kube_apiserver import FakeKubeApiServer
from helpers import Run, git, git_init, isolate, project_on_openbao, write_config

Cli = Callable[..., Run]
CATALOG = load_catalog()
NS = "deparrow"
ESO = "external-secrets.io/v1"
APP = "deparrow/k8s"  # the guide's layout; the tool's own tree goes to MANIFESTS
MANIFESTS = "deploy/secrets"

BASE_KUSTOMIZATION = """\
# DEparrow base: the application and (for now) its secrets.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: deparrow
resources:
  # the workloads
  - deployment.yaml
  # development placeholder secrets (guide: base/secrets.yaml)
  - secrets.yaml
commonLabels:
  app.kubernetes.io/part-of: deparrow  # keep this label
"""

OVERLAY_KUSTOMIZATION = """\
# {env} overlay of the guide's layout
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
"""

DEPLOYMENTS = """\
# Workloads consuming the Secrets
apiVersion: apps/v1
kind: Deployment
metadata:
  name: metaos
  namespace: deparrow
spec:
  replicas: 1
  selector:
    matchLabels: {app: metaos}
  template:
    metadata:
      labels: {app: metaos}
    spec:
      containers:
        - name: metaos
          image: deparrow/metaos:1.0
          envFrom:
            - secretRef:
                name: deparrow-secrets
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: postgres
  namespace: deparrow
spec:
  replicas: 1
  selector:
    matchLabels: {app: postgres}
  template:
    metadata:
      labels: {app: postgres}
    spec:
      containers:
        - name: postgres
          image: postgres:16
          env:
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef: {name: postgres-credentials, key: POSTGRES_PASSWORD}
          volumeMounts:
            - {name: redis, mountPath: /etc/redis}
      volumes:
        - name: redis
          secret: {secretName: redis-credentials}
"""


def generated_values(ha: bool) -> dict[str, str]:
    """A value per needed key: secrets generated here, the catalog defaults as they are."""
    out = {}
    for value in CATALOG.needed(ha):
        out[value.name] = value.default if value.source == "default" and value.default \
            else secrets.token_urlsafe(24)
    return out


def secret_objects(values: dict[str, str], ha: bool) -> list[dict[str, Any]]:
    objs = []
    for secret in CATALOG.secrets:
        keys = CATALOG.secret_keys(secret, ha)
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": secret.name, "namespace": NS},
                     "data": {k: base64.b64encode(values[k].encode()).decode()
                              for k in keys}})
    return objs


def secrets_yaml(values: dict[str, str], ha: bool) -> str:
    """deparrow-secrets and redis-credentials in stringData, postgres-credentials in data."""
    docs = ["# Development placeholder secrets (the guide's base/secrets.yaml)\n"]
    for secret in CATALOG.secrets:
        keys = CATALOG.secret_keys(secret, ha)
        text = (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {secret.name}\n"
                f"  namespace: {NS}\ntype: Opaque\n")
        if secret.name == "postgres-credentials":
            text += "data:\n" + "".join(
                f"  {k}: {base64.b64encode(values[k].encode()).decode()}\n" for k in keys)
        else:
            text += "stringData:\n" + "".join(f'  {k}: "{values[k]}"\n' for k in keys)
        docs.append(text)
    return docs[0] + "---\n".join(docs[1:])


def write_layout(root: Path, values: dict[str, str], ha: bool, env: str) -> Path:
    app = root / APP
    (app / "base").mkdir(parents=True)
    (app / "overlays" / env).mkdir(parents=True)
    (app / "base" / "kustomization.yaml").write_text(BASE_KUSTOMIZATION)
    (app / "base" / "deployment.yaml").write_text(DEPLOYMENTS)
    (app / "base" / "secrets.yaml").write_text(secrets_yaml(values, ha))
    (app / "overlays" / env / "kustomization.yaml").write_text(
        OVERLAY_KUSTOMIZATION.format(env=env))
    return app / "overlays" / env


def put_cluster_state(api: FakeKubeApiServer, values: dict[str, str], ha: bool) -> None:
    """What `kubectl apply -k` of the guide's layout leaves: Secrets with their
    last-applied-configuration (values inside), and the Deployments."""
    from helpers import load_documents

    for obj in secret_objects(values, ha):
        obj["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(obj)}
        api.put(obj)
    for doc in load_documents(DEPLOYMENTS):
        api.put(doc)


def cluster_data(api: FakeKubeApiServer, name: str) -> dict[str, bytes]:
    obj = api.get("v1", "Secret", name, NS)
    assert obj is not None, f"Secret {name} missing"
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def expected_data(values: dict[str, str], name: str, ha: bool) -> dict[str, bytes]:
    sec = next(s for s in CATALOG.secrets if s.name == name)
    return {k: values[k].encode() for k in CATALOG.secret_keys(sec, ha)}


def workload_versions(api: FakeKubeApiServer) -> dict[str, tuple[Any, ...]]:
    out = {}
    for dep in api.list("apps/v1", "Deployment", NS):
        meta = dep["metadata"]
        out[meta["name"]] = (meta["resourceVersion"], meta.get("generation"),
                             json.dumps(dep["spec"]["template"], sort_keys=True))
    return out


@dataclass
class Layout:
    name: str  # environment
    ha: bool
    root: Path
    overlay: Path
    kubeconfig: str
    values: dict[str, str]
    store_values: Callable[[], dict[str, str]]  # read with the provider's own client
    project: Callable[[], Project]

    def migrate(self, cli: Cli, *args: str) -> Run:
        return cli("migrate", "--env", self.name, "--kubeconfig", self.kubeconfig,
                   "--timeout", "30", *args)

    def canaries(self) -> list[str]:
        """Every secret-like value, raw and in base64."""
        out = []
        for key, value in self.values.items():
            if CATALOG.values[key].source in ("generated", "user"):
                out += [value, base64.b64encode(value.encode()).decode()]
        return out


def _project_with(root: Path, config: str, env: str, ha: bool, api: FakeKubeApiServer,
                  cli: Cli) -> tuple[dict[str, str], Path]:
    git_init(root)
    write_config(root, f"manifests: {MANIFESTS}\n" + config)
    assert cli("render").code == 0
    values = generated_values(ha)
    overlay = write_layout(root, values, ha, env)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the guide's layout, secrets embedded")
    put_cluster_state(api, values, ha)
    return values, overlay


@pytest.fixture
def vault_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: Any, cli: Cli,
                 kube_api: FakeKubeApiServer) -> Iterator[Layout]:
    root, path = project_on_openbao(tmp_path, monkeypatch, openbao)
    values, overlay = _project_with(
        root, "environments:\n  staging:\n    store: {provider: vault, server: "
              f"'https://vault.deparrow.internal:8200', path: {path}}}\n", "staging", False,
        kube_api, cli)
    client = openbao.client()

    def raw() -> dict[str, str]:
        try:
            data = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True)
        except Exception:  # noqa: BLE001 - absent
            return {}
        return dict(data["data"]["data"])

    yield Layout("staging", False, root, overlay, str(kube_api.kubeconfig_path), values, raw,
                 lambda: Project.load(root / "deparrow-secrets.yaml"))


@pytest.fixture
def aws_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: Any, cli: Cli,
               kube_api: FakeKubeApiServer) -> Iterator[Layout]:
    root = tmp_path / "project"
    root.mkdir()
    isolate(monkeypatch, root)
    prefix = f"deparrow-{secrets.token_hex(4)}/production"
    values, overlay = _project_with(
        root, "environments:\n  production:\n    store: {provider: aws, region: us-east-1, "
              "accountId: '210987654321', roleArn: "
              f"'arn:aws:iam::210987654321:role/deparrow-eso', prefix: {prefix}}}\n",
        "production", True, kube_api, cli)

    def raw() -> dict[str, str]:
        out = {}
        objects = aws_env.current_secrets()
        for value in CATALOG.needed(True):
            obj = objects.get(f"{prefix}/{value.group}") or {}
            if (value.property or value.name) in obj:
                out[value.name] = obj[value.property or value.name]
        return out

    yield Layout("production", True, root, overlay, str(kube_api.kubeconfig_path), values,
                 raw, lambda: Project.load(root / "deparrow-secrets.yaml"))


def start_eso(eso: Callable[..., Any], layout: Layout, **knobs: Any) -> Any:
    project = layout.project()
    env = project.environment(layout.name)
    return eso(lambda store_obj: project.open_store(env), **knobs)
