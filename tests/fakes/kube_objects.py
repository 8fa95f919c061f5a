"""Objects for the fake Kubernetes API server: the ESO CRDs and an ESO installation.

The CRDs are built from the project's derived ESO schemas
(``src/deparrow_secrets/render/schemas/eso.json``, from ESO v2.9.0's
``config/crds/bases/*.yaml``) so that the tests need nothing outside the repository; names,
short names and printer columns are those of the same CRD files.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

ESO_GROUP = "external-secrets.io"
ESO_NAMESPACE = "external-secrets"
SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "deparrow_secrets" / "render" / \
    "schemas" / "eso.json"

_READY = '.status.conditions[?(@.type=="Ready")]'
_STORE_COLUMNS = [
    {"jsonPath": ".metadata.creationTimestamp", "name": "AGE", "type": "date"},
    {"jsonPath": _READY + ".reason", "name": "Status", "type": "string"},
    {"jsonPath": ".status.capabilities", "name": "Capabilities", "type": "string"},
    {"jsonPath": _READY + ".status", "name": "Ready", "type": "string"},
]
# names and printer columns from ESO v2.9.0 config/crds/bases/external-secrets.io_*.yaml
_NAMES: dict[str, tuple[Obj, list[Obj]]] = {
    "ExternalSecret": (
        {"categories": ["external-secrets"], "kind": "ExternalSecret",
         "listKind": "ExternalSecretList", "plural": "externalsecrets", "shortNames": ["es"],
         "singular": "externalsecret"},
        [{"jsonPath": ".spec.secretStoreRef.kind", "name": "StoreType", "type": "string"},
         {"jsonPath": ".spec.secretStoreRef.name", "name": "Store", "type": "string"},
         {"jsonPath": ".spec.refreshInterval", "name": "Refresh Interval", "type": "string"},
         {"jsonPath": _READY + ".reason", "name": "Status", "type": "string"},
         {"jsonPath": _READY + ".status", "name": "Ready", "type": "string"},
         {"jsonPath": ".status.refreshTime", "name": "Last Sync", "type": "date"}],
    ),
    "SecretStore": (
        {"categories": ["external-secrets", "external-secrets-stores"], "kind": "SecretStore",
         "listKind": "SecretStoreList", "plural": "secretstores", "shortNames": ["ss"],
         "singular": "secretstore"},
        _STORE_COLUMNS,
    ),
    "ClusterSecretStore": (
        {"categories": ["external-secrets", "external-secrets-stores"],
         "kind": "ClusterSecretStore", "listKind": "ClusterSecretStoreList",
         "plural": "clustersecretstores", "shortNames": ["css"],
         "singular": "clustersecretstore"},
        _STORE_COLUMNS,
    ),
    "PushSecret": (
        {"categories": ["external-secrets"], "kind": "PushSecret",
         "listKind": "PushSecretList", "plural": "pushsecrets", "singular": "pushsecret"},
        [],
    ),
}


@cache
def _schemas() -> Obj:
    return json.loads(SCHEMAS.read_text())


def eso_crds() -> list[Obj]:
    """The four ESO CustomResourceDefinitions (v1 served, v1beta1 present but not served)."""
    out = []
    for kind, spec in _schemas()["kinds"].items():
        names, columns = _NAMES[kind]
        versions = []
        for version, info in spec["versions"].items():
            schema = {k: v for k, v in info["schema"].items() if k != "$schema"}
            versions.append({
                "name": version, "served": info["served"], "storage": info["storage"],
                **({"deprecated": True} if info.get("deprecated") else {}),
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}},
                **({"additionalPrinterColumns": columns} if info["served"] and columns
                   else {}),
            })
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{names['plural']}.{ESO_GROUP}",
                         "labels": {"external-secrets.io/component": "controller"}},
            "spec": {"group": ESO_GROUP, "names": copy.deepcopy(names),
                     "scope": spec["scope"], "versions": versions},
        })
    return out


ESO_COMPONENTS = ("external-secrets", "external-secrets-webhook",
                  "external-secrets-cert-controller")
WEBHOOKS = ("secretstore-validate", "externalsecret-validate")


def deployment(name: str, namespace: str, labels: dict[str, str], *, replicas: int = 1,
               image: str = "example.invalid/app:1") -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"containers": [{"name": name.split("-")[-1] or "app",
                                                  "image": image}]}},
        },
    }


def install_eso(api: Any, *, webhook: bool = True, cert_controller: bool = True) -> None:
    """An ESO installation as CLUSTER.md describes it, healthy: the controller, webhook and
    cert-controller Deployments in ``external-secrets`` with Running pods labelled
    ``app.kubernetes.io/name=<component>`` (through ReplicaSets, as the Deployment controller
    makes them) and the validating webhooks ``secretstore-validate`` and
    ``externalsecret-validate``. The ESO CRDs must already be installed."""
    from fakes.workload_simulator import WorkloadSimulator

    if api.get("v1", "Namespace", ESO_NAMESPACE) is None:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ESO_NAMESPACE}})
    wanted = [ESO_COMPONENTS[0]]
    if webhook:
        wanted.append(ESO_COMPONENTS[1])
    if cert_controller:
        wanted.append(ESO_COMPONENTS[2])
    for component in wanted:
        labels = {"app.kubernetes.io/name": component,
                  "app.kubernetes.io/instance": "external-secrets"}
        api.put(deployment(component, ESO_NAMESPACE, labels,
                           image="oci.external-secrets.io/external-secrets/external-secrets:"
                                 "v2.9.0"))
        api.put({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": component, "namespace": ESO_NAMESPACE,
                              "labels": labels}})
    if webhook:
        for name in WEBHOOKS:
            kind = "SecretStore" if name.startswith("secretstore") else "ExternalSecret"
            plural = kind.lower() + "s"
            api.put({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name, "labels": {"external-secrets.io/component":
                                                      "webhook"}},
                "webhooks": [{
                    "name": f"validate.{plural}.{ESO_GROUP}",
                    "admissionReviewVersions": ["v1", "v1beta1"],
                    "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
                    "clientConfig": {"service": {
                        "name": "external-secrets-webhook", "namespace": ESO_NAMESPACE,
                        "path": f"/validate-{ESO_GROUP.replace('.', '-')}-v1-{kind.lower()}"}},
                    "rules": [{"apiGroups": [ESO_GROUP], "apiVersions": ["v1"],
                               "operations": ["CREATE", "UPDATE", "DELETE"],
                               "resources": [plural], "scope": "Namespaced"}],
                }],
            })
    WorkloadSimulator(api).reconcile_once()


@contextlib.contextmanager
def started_cluster(kube_dir: Path, namespace: str = "deparrow") -> Iterator[Any]:
    """A started fake API server with namespaces `namespace` and ``external-secrets``, the ESO
    CRDs, and a kubeconfig ``kube_dir/config`` (context ``fake``); closed on exit."""
    from fakes.kube_apiserver import FakeKubeApiServer

    with FakeKubeApiServer() as api:
        for ns in (namespace, ESO_NAMESPACE):
            api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for crd in eso_crds():
            api.put(crd)
        kube_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        api.kubeconfig(kube_dir / "config", context="fake", namespace=namespace)
        yield api
