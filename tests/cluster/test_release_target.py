"""Undoing an adoption (migrate's undo) keeps the Secret even when ESO, still working from
the Owner spec, puts its ownerReference back after the tool removed it."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from deparrow_secrets.cluster.api import KubeClient
from deparrow_secrets.cluster.migration import release_target
from deparrow_secrets.cluster.official import connect
from fakes.kube_apiserver import FakeKubeApiServer

NS = "deparrow"


def test_a_reference_put_back_by_a_racing_reconcile_does_not_take_the_secret(
        kube_api: FakeKubeApiServer) -> None:
    es = kube_api.put({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "app-external", "namespace": NS},
        "spec": {"secretStoreRef": {"name": "store", "kind": "SecretStore"},
                 "target": {"name": "app", "creationPolicy": "Owner"},
                 "data": [{"secretKey": "K", "remoteRef": {"key": "k", "property": "K"}}]}})
    owner = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
             "name": "app-external", "uid": es["metadata"]["uid"], "controller": True}
    kube_api.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": "app", "namespace": NS, "ownerReferences": [owner]},
                  "data": {"K": base64.b64encode(secrets.token_bytes(9)).decode()}})
    client = connect(str(kube_api.kubeconfig_path))
    real_patch = client.patch

    def patch_then_eso_reconciles(kind: Any, name: str, body: Any,
                                  namespace: str | None = None) -> Any:
        out = real_patch(kind, name, body, namespace)
        if kind.kind == "Secret":  # ESO's reconcile from the old spec lands right after
            secret = kube_api.get("v1", "Secret", "app", NS)
            assert secret is not None
            secret["metadata"]["ownerReferences"] = [owner]
            kube_api.put(secret)
        return out

    client.patch = patch_then_eso_reconciles  # type: ignore[method-assign]
    racing: KubeClient = client
    try:
        release_target(racing, NS, "app-external", "app")
    finally:
        client.close()
    assert kube_api.get("external-secrets.io/v1", "ExternalSecret", "app-external", NS) is None
    kept = kube_api.get("v1", "Secret", "app", NS)
    assert kept is not None, "the Secret went with its former owner"
    assert not kept["metadata"].get("ownerReferences")
