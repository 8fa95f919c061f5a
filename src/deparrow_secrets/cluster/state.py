"""One read of everything the cluster commands look at, in a fixed number of API calls.

Each kind is listed once per namespace (never one get per object), so the number of
requests does not grow with the number of ExternalSecrets, Secrets or workloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from deparrow_secrets import providers
from deparrow_secrets.cluster.api import (
    CLUSTER_ROLE_BINDING,
    DAEMON_SET,
    DEPLOYMENT,
    ESO_GROUP,
    EXTERNAL_SECRET,
    NAMESPACE,
    POD,
    SECRET_STORE,
    SERVICE_ACCOUNT,
    STATEFUL_SET,
    KubeClient,
    Obj,
    SecretDigest,
)
from deparrow_secrets.cluster.collector import collector_paused
from deparrow_secrets.cluster.consumers import PodInfo, Workload, pods_from, workloads_from
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import ClusterConfigError, ClusterDeniedError

ESO_NAMESPACE = "external-secrets"
ESO_COMPONENTS = ("external-secrets", "external-secrets-webhook",
                  "external-secrets-cert-controller")


@dataclass
class ClusterState:
    namespace: str
    eso_versions: list[str] | None
    eso_pods: list[Obj] = field(default_factory=list)
    secret_stores: dict[str, Obj] = field(default_factory=dict)
    external_secrets: dict[str, Obj] = field(default_factory=dict)
    secrets: dict[str, SecretDigest] = field(default_factory=dict)
    service_accounts: dict[str, Obj] = field(default_factory=dict)
    auth_delegator: Obj | None = None
    events: list[Obj] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    pods: list[PodInfo] = field(default_factory=list)
    _event_index: dict[tuple[str, str], list[Obj]] | None = field(default=None, repr=False)

    @property
    def eso_serves_v1(self) -> bool:
        return bool(self.eso_versions) and "v1" in (self.eso_versions or [])

    def events_for(self, kind: str, name: str, *, reason: str | None = None,
                   type_: str | None = None) -> list[Obj]:
        """Events about one object, newest first."""
        if self._event_index is None:  # built once: doctor asks for every object
            index: dict[tuple[str, str], list[Obj]] = {}
            for e in sorted(self.events, key=event_time, reverse=True):
                involved = e.get("involvedObject") or {}
                index.setdefault((str(involved.get("kind")), str(involved.get("name"))),
                                 []).append(e)
            self._event_index = index
        return [e for e in self._event_index.get((kind, name), [])
                if (reason is None or e.get("reason") == reason)
                and (type_ is None or e.get("type") == type_)]


def event_time(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or (event.get("series") or {}).get("lastObservedTime")
               or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def require_namespace(client: KubeClient, namespace: str, env: EnvironmentConfig) -> None:
    """Exit 2 when the configured namespace does not exist (a typo or a fresh cluster)."""
    try:
        found = client.get(NAMESPACE, namespace)
    except ClusterDeniedError:
        return  # a namespace-scoped identity may not read Namespaces: the lists will tell
    if found is None:
        raise ClusterConfigError(
            f"namespace '{namespace}' does not exist", context=client.context,
            hint=f"run `deparrow-secrets deploy --env {env.name}` (it creates it), or set "
                 "`namespace:` in deparrow-secrets.yaml to the namespace the application "
                 "runs in")


def read_state(client: KubeClient, config: Config, env: EnvironmentConfig, *,
               workloads: bool = True, eso_pods: bool = False,
               events: bool = True) -> ClusterState:
    with collector_paused():  # the lists and their conversions make no cycles
        return _read_state(client, config, env, workloads=workloads, eso_pods=eso_pods,
                           events=events)


def _read_state(client: KubeClient, config: Config, env: EnvironmentConfig, *,
                workloads: bool, eso_pods: bool, events: bool) -> ClusterState:
    ns = config.namespace
    versions = client.served_versions(ESO_GROUP) if env.uses_eso else None
    state = ClusterState(ns, versions)
    if env.uses_eso and state.eso_serves_v1:
        state.secret_stores = by_name(client.list_objects(SECRET_STORE, ns))
        state.external_secrets = by_name(client.list_objects(EXTERNAL_SECRET, ns))
    if eso_pods and env.uses_eso:
        state.eso_pods = client.list_objects(POD, ESO_NAMESPACE)
    state.secrets = {d.name: d for d in client.secret_digests(ns)}
    if env.uses_eso:
        state.service_accounts = by_name(client.list_objects(SERVICE_ACCOUNT, ns))
        if providers.of(env).needs_auth_delegator(env):
            state.auth_delegator = client.get(
                CLUSTER_ROLE_BINDING, f"{config.service_account}-auth-delegator")
    if events:
        state.events = client.events(ns)
    if workloads:
        objs = [o for kind in (DEPLOYMENT, STATEFUL_SET, DAEMON_SET)
                for o in client.list_objects(kind, ns)]
        state.workloads = workloads_from(objs)
        state.pods = pods_from(client.list_objects(POD, ns),
                               [w.name for w in state.workloads if w.kind == "Deployment"])
    return state


def by_name(objs: list[Obj]) -> dict[str, Obj]:
    return {str((o.get("metadata") or {}).get("name")): o for o in objs}


def condition(obj: Obj | None, type_: str = "Ready") -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_ready(obj: Obj | None) -> bool:
    cond = condition(obj)
    return cond is not None and cond.get("status") == "True"


def last_data_change(state: ClusterState, external_secret: str | None) -> datetime | None:
    """When ESO last changed the target Secret's data: its newest Normal Created/Updated
    Event (ESO emits `Updated` only when the data changed, CLUSTER.md)."""
    if not external_secret:
        return None
    times = [parse_time(event_time(e)) for e in state.events_for("ExternalSecret",
                                                                 external_secret)
             if e.get("type") == "Normal" and e.get("reason") in ("Created", "Updated")]
    found = [t for t in times if t is not None]
    return max(found) if found else None
