"""The small interface every Kubernetes client of the tool implements, and its kinds.

Operations work on plain dicts (the API's JSON) through `KubeClient`; only
`deparrow_secrets.cluster.official` imports a client library, so it can be swapped.
Secrets never cross this interface with their data: `secret_digests` lists them and
returns key names and hashes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """`plural` or `plural.group`, as RBAC rules and kubectl name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


NAMESPACE = Kind("Namespace", "", "v1", "namespaces", namespaced=False)
SECRET = Kind("Secret", "", "v1", "secrets")
SERVICE_ACCOUNT = Kind("ServiceAccount", "", "v1", "serviceaccounts")
POD = Kind("Pod", "", "v1", "pods")
EVENT = Kind("Event", "", "v1", "events")
DEPLOYMENT = Kind("Deployment", "apps", "v1", "deployments")
STATEFUL_SET = Kind("StatefulSet", "apps", "v1", "statefulsets")
DAEMON_SET = Kind("DaemonSet", "apps", "v1", "daemonsets")
REPLICA_SET = Kind("ReplicaSet", "apps", "v1", "replicasets")
CLUSTER_ROLE_BINDING = Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1",
                            "clusterrolebindings", namespaced=False)
ESO_GROUP = "external-secrets.io"
SECRET_STORE = Kind("SecretStore", ESO_GROUP, "v1", "secretstores")
EXTERNAL_SECRET = Kind("ExternalSecret", ESO_GROUP, "v1", "externalsecrets")
WORKLOAD_KINDS = (DEPLOYMENT, STATEFUL_SET, DAEMON_SET)

KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (NAMESPACE, SECRET, SERVICE_ACCOUNT, POD, EVENT, DEPLOYMENT, STATEFUL_SET,
              DAEMON_SET, REPLICA_SET, CLUSTER_ROLE_BINDING, SECRET_STORE, EXTERNAL_SECRET)
}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    from deparrow_secrets.errors import DeparrowError

    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key not in KINDS:
        raise DeparrowError(f"the tool does not apply {key[1]} objects of {key[0]}")
    return KINDS[key]


@dataclass(frozen=True)
class SecretDigest:
    """What the tool knows of a Secret without holding a value.

    `data_hash` is ESO's hash of the live data and `key_digests` per-process keyed
    digests per key: both compare, neither is ever shown (repr hides them).
    """

    name: str
    namespace: str
    keys: tuple[str, ...]
    data_hash: str = field(repr=False)
    key_digests: Mapping[str, str] = field(repr=False, default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    owner_references: Sequence[Mapping[str, Any]] = ()
    resource_version: str = ""
    created: str = ""
    type: str = "Opaque"


class KubeClient(Protocol):
    """The operations the cluster commands need; one implementation per client library."""

    @property
    def context(self) -> str:
        """Name of the kubeconfig context (or "in-cluster")."""

    @property
    def calls(self) -> int:
        """API requests sent so far (for benchmarks and the API-call budget)."""

    def served_versions(self, group: str) -> list[str] | None:
        """Versions discovery lists for `group`; None when the group is not served."""

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """One object, or None if it does not exist."""

    def list_objects(self, kind: Kind, namespace: str | None = None, *,
             label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        """Every object of `kind` matching the selectors, in one request."""

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Server-side apply with field manager `deparrow-secrets`; the object after it."""

    def patch(self, kind: Kind, name: str, patch: Obj,
              namespace: str | None = None) -> Obj:
        """Strategic-merge patch (JSON merge patch for custom resources)."""

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               orphan_dependents: bool = False) -> bool:
        """Delete one object; False when it did not exist. `orphan_dependents`: garbage
        collection drops the dependents' ownerReferences instead of deleting them
        (propagationPolicy Orphan)."""

    def events(self, namespace: str, *, involved_kind: str | None = None) -> list[Obj]:
        """Events of a namespace (optionally only those about one kind), in one request."""

    def secret_digests(self, namespace: str, *,
                       label_selector: str | None = None) -> list[SecretDigest]:
        """Every Secret of a namespace, as digests; values never leave this call."""

    def close(self) -> None:
        """Release connections."""
