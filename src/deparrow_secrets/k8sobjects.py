"""The Kubernetes objects every provider's ESO setup shares, as plain data.

Labels, the ServiceAccount ESO authenticates as (its annotations come from the
provider), the binding to system:auth-delegator and the SecretStore around the
provider's block. `render` and the providers' identity plans both write them, so
`policy` prints exactly what `render` commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config

ESO_API = "external-secrets.io/v1"
AUTH_DELEGATOR = "system:auth-delegator"

Obj = dict[str, Any]


def meta(name: str, namespace: str | None, **extra: Any) -> Obj:
    out: Obj = {"name": name}
    if namespace:
        out["namespace"] = namespace
    out["labels"] = {"app.kubernetes.io/part-of": "deparrow",
                     "app.kubernetes.io/managed-by": "deparrow-secrets"}
    out.update(extra)
    return out


def service_account(config: Config, annotations: dict[str, str]) -> Obj:
    metadata = meta(config.service_account, config.namespace)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def secret_store(config: Config, provider_block: Obj) -> Obj:
    return {"apiVersion": ESO_API, "kind": "SecretStore",
            "metadata": meta(config.secret_store, config.namespace),
            "spec": {"provider": provider_block}}


def auth_delegator_binding(config: Config) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": meta(f"{config.service_account}-auth-delegator", None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": AUTH_DELEGATOR},
        "subjects": [{"kind": "ServiceAccount", "name": config.service_account,
                      "namespace": config.namespace}],
    }
