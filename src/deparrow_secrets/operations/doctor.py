"""Doctor: follow store -> SecretStore -> ExternalSecret -> Secret -> workloads and name
each problem with a stable id and the exact fix.

One read of the cluster (cluster/state.py: one list per kind, so the number of API
calls does not depend on the number of objects) and one read of the store with the
tool's own credentials; comparisons by hash only. Findings use the shared model and
output (`deparrow_secrets.findings`: text, JSON, SARIF); the chain is also drawn as
Graphviz dot or Mermaid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import ESO_GROUP, KubeClient
from deparrow_secrets.cluster.collector import collector_paused
from deparrow_secrets.cluster.consumers import FROZEN, SUB_PATH, Workload
from deparrow_secrets.cluster.expected import ExpectedSecret, expected_secrets
from deparrow_secrets.cluster.state import (
    ESO_COMPONENTS,
    ESO_NAMESPACE,
    ClusterState,
    condition,
    last_data_change,
    parse_time,
    read_state,
    require_namespace,
)
from deparrow_secrets.cluster.sync import SecretSync, compare
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import StoreError
from deparrow_secrets.findings import ERROR, WARNING, Finding, Rule, declare
from deparrow_secrets.lint.rules.stores import REFRESH_DISABLED
from deparrow_secrets.project import Project
from deparrow_secrets.stores.interface import SecretStore

# The cluster chain store -> SecretStore -> ExternalSecret -> Secret -> workloads.
# `refresh-disabled` is lint's rule (same problem, found in the cluster instead of a file).
DOCTOR_RULES = declare(
    Rule("eso-not-installed", ERROR,
         "External Secrets Operator is not installed: discovery does not serve the "
         "external-secrets.io API group.",
         "helm upgrade --install external-secrets external-secrets/external-secrets "
         "-n external-secrets --create-namespace", tool="doctor"),
    Rule("eso-v1-not-served", ERROR,
         "ESO is installed but does not serve external-secrets.io/v1 (a release before "
         "0.17, v1beta1 objects only); the rendered manifests cannot be applied.",
         "Upgrade ESO (0.17 or later serves v1), then run `deparrow-secrets deploy`.",
         tool="doctor"),
    Rule("eso-pod-not-running", ERROR,
         "An ESO component (controller, webhook, cert-controller) has no running, ready pod "
         "in namespace external-secrets; with the webhook down, creating or updating an "
         "ExternalSecret fails.",
         "kubectl -n external-secrets describe pods -l app.kubernetes.io/name=COMPONENT, "
         "and fix what its events and logs say.", tool="doctor"),
    REFRESH_DISABLED,
    Rule("secretstore-missing", ERROR, "The environment's SecretStore does not exist.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("secretstore-not-ready", ERROR,
         "The SecretStore is not Ready: ESO cannot authenticate to the store (the detail "
         "comes from its Warning Events).",
         "Check the identity with `deparrow-secrets policy --env ENV` and apply it with "
         "`deparrow-secrets setup --env ENV`.", tool="doctor"),
    Rule("externalsecret-missing", ERROR, "An ExternalSecret the rendering has is absent.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("externalsecret-not-ready", ERROR,
         "An ExternalSecret is not Ready; the real error is in its UpdateFailed Events.",
         "Fix what the error names (a key missing in the store: `deparrow-secrets "
         "provision --env ENV`).", tool="doctor"),
    Rule("secret-missing", ERROR, "A target Secret of the environment does not exist.",
         "Fix the ExternalSecret that creates it, or `deparrow-secrets deploy --env ENV`.",
         tool="doctor"),
    Rule("secret-key-missing", ERROR,
         "A target Secret lacks keys the catalog puts in it.",
         "deparrow-secrets render, commit, then deparrow-secrets deploy --env ENV",
         tool="doctor"),
    Rule("secret-out-of-sync", ERROR,
         "A target Secret's data differs from the store's values (by hash): the store "
         "changed since ESO's last refresh.",
         "deparrow-secrets deploy --env ENV (forces a refresh and verifies it)",
         tool="doctor"),
    Rule("secret-edited-in-cluster", WARNING,
         "A managed Secret's data was edited in the cluster (it no longer matches ESO's "
         "data-hash annotation); ESO overwrites the edit on its next sync.",
         "Change values in the store (`deparrow-secrets set KEY --env ENV`), never in the "
         "Secret.", tool="doctor"),
    Rule("serviceaccount-missing", ERROR,
         "The ServiceAccount the SecretStore authenticates as does not exist.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("serviceaccount-identity-mismatch", ERROR,
         "The ServiceAccount's identity annotations (role ARN, Azure client/tenant id) are "
         "not exactly the ones the configuration renders.",
         "deparrow-secrets deploy --env ENV (or kubectl annotate as the message says)",
         tool="doctor"),
    Rule("auth-delegator-missing", ERROR,
         "Vault's kubernetes auth reviews tokens with the ServiceAccount's own JWT, which "
         "needs the system:auth-delegator ClusterRoleBinding; it is missing or binds "
         "something else.",
         "deparrow-secrets deploy --env ENV (needs permission to create "
         "ClusterRoleBindings)", tool="doctor"),
    Rule("store-unreachable", ERROR,
         "The tool cannot read the store with its own credentials (ESO's `Valid` proves "
         "nothing for Azure, and little elsewhere).",
         "Fix what the message names, then rerun doctor.", tool="doctor"),
    Rule("store-key-missing", ERROR, "A key the environment needs is missing in the store.",
         "deparrow-secrets provision --env ENV", tool="doctor"),
    Rule("workload-secret-missing", ERROR,
         "A workload references a Secret that does not exist (and is not optional): its "
         "pods cannot start.",
         "Create the Secret or correct the name in the workload.", tool="doctor"),
    Rule("workload-key-missing", ERROR,
         "A workload references a key its Secret does not have (and is not optional).",
         "Correct the key in the workload or add the key to the catalog.", tool="doctor"),
    Rule("subpath-mount", WARNING,
         "A Secret mounted with subPath: the file is copied once and never receives "
         "updates, so rotated values never arrive.",
         "Mount the volume without subPath and read the file from that directory (or "
         "restart the workload after every change).", tool="doctor"),
    Rule("pod-stale-env", WARNING,
         "A pod started before its Secret's data last changed, and reads it through "
         "environment variables (or a subPath): it still holds the old values.",
         "kubectl rollout restart the workload (deparrow-secrets impact names them).",
         tool="doctor"),
)
_DOCTOR_RULE_IDS = {r.id: r for r in DOCTOR_RULES}

OK = "ok"
IDENTITY_ANNOTATIONS = ("eks.amazonaws.com/role-arn", "azure.workload.identity/client-id",
                        "azure.workload.identity/tenant-id")


@dataclass
class Node:
    id: str
    kind: str
    label: str
    health: str = OK  # ok | warning | error


@dataclass
class DoctorReport:
    environment: str
    namespace: str
    context: str
    findings: list[Finding] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    checked: int = 0
    api_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def details(self) -> dict[str, Any]:
        """What `doctor -o json` adds to the findings: where it looked and the chain."""
        from deparrow_secrets.operations.reports import camel_dict

        return {"environment": self.environment, "namespace": self.namespace,
                "context": self.context, "apiCalls": self.api_calls,
                "nodes": [camel_dict(n) for n in self.nodes.values()],
                "edges": [list(e) for e in self.edges]}


class _Doctor:
    def __init__(self, project: Project, env: EnvironmentConfig, client: KubeClient) -> None:
        self.project = project
        self.config = project.config
        self.env = env
        self.client = client
        self.ns = project.config.namespace
        self.report = DoctorReport(env.name, self.ns, client.context)
        self._edges: set[tuple[str, str]] = set()
        self._catalog_secrets = {s.name for s in project.catalog.secrets}

    # ------------------------------------------------------------------ helpers

    def add(self, rule: str, resource: str, message: str, fix: str | None = None,
            node: str | None = None, **props: Any) -> None:
        meta = _DOCTOR_RULE_IDS[rule]
        fix = fix or meta.fix.replace("ENV", self.env.name)
        self.report.findings.append(meta.finding(
            message, fix=fix, resource=resource,
            properties={"environment": self.env.name, **props}))
        if node:
            self._mark(node, meta.severity)

    def node(self, id_: str, kind: str, label: str) -> str:
        self.report.nodes.setdefault(id_, Node(id_, kind, label))
        return id_

    def edge(self, a: str, b: str) -> None:
        if (a, b) not in self._edges:
            self._edges.add((a, b))
            self.report.edges.append((a, b))

    def res(self, kind: str, name: str, namespaced: bool = True) -> str:
        return f"{kind} {self.ns}/{name}" if namespaced else f"{kind} {name}"

    # ------------------------------------------------------------------ checks

    def check_eso(self, state: ClusterState) -> bool:
        if state.eso_versions is None:
            self.add("eso-not-installed", f"APIGroup {ESO_GROUP}",
                     f"the API server does not serve {ESO_GROUP}: ESO is not installed")
            return False
        if not state.eso_serves_v1:
            self.add("eso-v1-not-served", f"APIGroup {ESO_GROUP}",
                     f"{ESO_GROUP} serves {', '.join(state.eso_versions) or 'no version'}, "
                     "not v1: the rendered manifests (v1) cannot be applied and v1beta1 "
                     "objects are all the cluster has")
            return False
        for component in ESO_COMPONENTS:
            pods = [p for p in state.eso_pods
                    if ((p.get("metadata") or {}).get("labels") or {})
                    .get("app.kubernetes.io/name") == component]
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                       and (condition(p) or {}).get("status", "True") == "True"]
            if not running:
                state_text = ", ".join(sorted({str((p.get("status") or {}).get("phase"))
                                               for p in pods})) or "no pod"
                self.add("eso-pod-not-running",
                         f"Pod {ESO_NAMESPACE}/app.kubernetes.io/name={component}",
                         f"{component}: {state_text} (expected a Running, ready pod)",
                         f"kubectl -n {ESO_NAMESPACE} describe pods -l "
                         f"app.kubernetes.io/name={component}; kubectl -n {ESO_NAMESPACE} "
                         f"logs -l app.kubernetes.io/name={component}"
                         + ("; if it is not installed: helm upgrade --install external-secrets "
                            "external-secrets/external-secrets -n external-secrets" if not pods
                            else ""))
        return True

    def check_identity(self, state: ClusterState, store_node: str) -> None:
        from deparrow_secrets.render.manifests import service_account

        rendered = service_account(self.config, self.env)
        name = self.config.service_account
        sa_node = self.node(f"sa:{name}", "ServiceAccount", f"ServiceAccount {name}")
        self.edge(sa_node, store_node)
        live = state.service_accounts.get(name)
        if live is None:
            self.add("serviceaccount-missing", self.res("ServiceAccount", name),
                     f"ServiceAccount {name} does not exist (the SecretStore authenticates "
                     "as it)", node=sa_node)
        else:
            want = {k: v for k, v in ((rendered["metadata"].get("annotations") or {})
                                      .items()) if k in IDENTITY_ANNOTATIONS}
            have = {k: v for k, v in ((live.get("metadata") or {}).get("annotations") or {})
                    .items() if k in IDENTITY_ANNOTATIONS}
            if want != have:
                wrong = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
                fixes = [f"{k}={want[k]}" for k in wrong if k in want]
                drops = [f"{k}-" for k in wrong if k not in want]
                self.add("serviceaccount-identity-mismatch",
                         self.res("ServiceAccount", name),
                         "identity annotation(s) differ from the configuration: "
                         + ", ".join(f"{k} is {have.get(k, '(absent)')!r}, configured "
                                     f"{want.get(k, '(none)')!r}" for k in wrong),
                         f"kubectl -n {self.ns} annotate serviceaccount {name} --overwrite "
                         + " ".join(fixes + drops)
                         + f" (or deparrow-secrets deploy --env {self.env.name})", node=sa_node)
        from deparrow_secrets.render.manifests import AUTH_DELEGATOR, needs_auth_delegator

        if needs_auth_delegator(self.env):
            crb_name = f"{name}-auth-delegator"
            crb_node = self.node(f"crb:{crb_name}", "ClusterRoleBinding",
                                 f"ClusterRoleBinding {crb_name}")
            self.edge(crb_node, sa_node)
            crb = state.auth_delegator
            bound = crb is not None and (crb.get("roleRef") or {}).get("name") == \
                AUTH_DELEGATOR and any(
                    s.get("kind") == "ServiceAccount" and s.get("name") == name
                    and s.get("namespace") == self.ns for s in crb.get("subjects") or [])
            if not bound:
                what = "does not exist" if crb is None else \
                    f"does not bind ServiceAccount {self.ns}/{name} to {AUTH_DELEGATOR}"
                self.add("auth-delegator-missing", f"ClusterRoleBinding {crb_name}",
                         f"ClusterRoleBinding {crb_name} {what}",
                         f"deparrow-secrets deploy --env {self.env.name}, or kubectl create "
                         f"clusterrolebinding {crb_name} --clusterrole={AUTH_DELEGATOR} "
                         f"--serviceaccount={self.ns}:{name}", node=crb_node)

    def check_secret_store(self, state: ClusterState, store_node: str) -> str:
        name = self.config.secret_store
        ss_node = self.node(f"ss:{name}", "SecretStore", f"SecretStore {name}")
        self.edge(store_node, ss_node)
        live = state.secret_stores.get(name)
        if live is None:
            self.add("secretstore-missing", self.res("SecretStore", name),
                     f"SecretStore {name} does not exist", node=ss_node)
            return ss_node
        cond = condition(live) or {}
        if cond.get("status") != "True":
            warnings = state.events_for("SecretStore", name, type_="Warning")
            detail = str(warnings[0].get("message") or "") if warnings else ""
            reason = str(cond.get("reason") or "no Ready condition")
            self.add("secretstore-not-ready", self.res("SecretStore", name),
                     f"SecretStore {name} not Ready ({reason})"
                     + (f": {detail}" if detail else
                        (f": {cond.get('message')}" if cond.get("message") else "")),
                     self._store_fix(), node=ss_node, reason=reason)
        return ss_node

    def _store_fix(self) -> str:
        from deparrow_secrets import providers

        return providers.of(self.env).auth_failure_hint(self.env)

    def check_store(self, opener: Callable[[], SecretStore],
                    store_node: str) -> dict[str, ExpectedSecret] | None:
        try:
            with opener() as store:
                expected = expected_secrets(self.project, self.env, store)
        except StoreError as exc:
            self.add("store-unreachable", f"Store {self._store_label()}",
                     f"the tool's own read of the store failed: {exc.message}",
                     exc.hint or "fix what the message names, then rerun doctor",
                     node=store_node)
            return None
        missing = sorted({k for e in expected.values() for k in e.missing_in_store})
        for key in missing:
            self.add("store-key-missing", f"Store {self._store_label()}",
                     f"{key} is missing in the store", node=store_node, key=key)
        return expected

    def _store_label(self) -> str:
        loc = self.env.store.location(self.env.name)
        return f"{loc[0]}:" + " ".join(p for p in loc[1:] if p)

    def check_external_secrets(self, state: ClusterState, syncs: list[SecretSync],
                               ss_node: str | None) -> None:
        for s in syncs:
            sec_node = self.node(f"secret:{s.name}", "Secret", f"Secret {s.name}")
            if s.external_secret is None:
                continue
            es_node = self.node(f"es:{s.external_secret}", "ExternalSecret",
                                f"ExternalSecret {s.external_secret}")
            if ss_node:
                self.edge(ss_node, es_node)
            self.edge(es_node, sec_node)
            res = self.res("ExternalSecret", s.external_secret)
            if not s.es_present:
                self.add("externalsecret-missing", res,
                         f"ExternalSecret {s.external_secret} does not exist", node=es_node)
                continue
            if not s.es_ready:
                error = s.es_error or s.es_message or "no Ready condition yet"
                fix = (f"deparrow-secrets provision --env {self.env.name} (the store lacks "
                       + ", ".join(s.store_missing) + ")") if s.store_missing else \
                    (f"fix the SecretStore first ({self.config.secret_store} is not Ready)"
                     if ss_node and self.report.nodes[ss_node].health == ERROR else
                     f"fix what the error says; kubectl -n {self.ns} describe externalsecret "
                     f"{s.external_secret} shows its events")
                self.add("externalsecret-not-ready", res,
                         f"ExternalSecret {s.external_secret} not Ready"
                         + (f" ({s.es_reason})" if s.es_reason else "") + f": {error}",
                         fix, node=es_node, reason=s.es_reason)
            interval = s.refresh_interval
            if interval in ("0", "0s") or s.refresh_policy == "CreatedOnce":
                what = "refreshPolicy CreatedOnce" if s.refresh_policy == "CreatedOnce" \
                    else "refreshInterval 0"
                self.report.findings.append(REFRESH_DISABLED.finding(
                    f"ExternalSecret {s.external_secret} has {what}: rotated values never "
                    "reach the Secret and force-sync annotations are ignored",
                    fix="set refreshPolicy Periodic with refreshInterval "
                    f"{self.env.refresh_interval} (`deparrow-secrets render` writes it), then "
                    "`deparrow-secrets deploy "
                    f"--env {self.env.name}`", resource=res,
                    properties={"environment": self.env.name}))
                self._mark(es_node, REFRESH_DISABLED.severity)

    def _mark(self, node: str, health: str) -> None:
        n = self.report.nodes.get(node)
        if n and n.health != ERROR:
            n.health = health

    def check_secrets(self, syncs: list[SecretSync]) -> None:
        for s in syncs:
            node = f"secret:{s.name}"
            res = self.res("Secret", s.name)
            if not s.secret_present:
                fix = (f"fix ExternalSecret {s.external_secret} (see its finding)"
                       if s.external_secret and s.es_present and not s.es_ready
                       else f"deparrow-secrets deploy --env {self.env.name}")
                self.add("secret-missing", res, f"Secret {s.name} does not exist", fix,
                         node=node)
                continue
            if s.missing_keys:
                self.add("secret-key-missing", res,
                         f"Secret {s.name} lacks {', '.join(s.missing_keys)}", node=node,
                         keys=s.missing_keys)
            if s.edited_in_cluster:
                self.add("secret-edited-in-cluster", res,
                         f"Secret {s.name} was edited in the cluster: its data no longer "
                         "matches ESO's data-hash annotation", node=node)
            if s.store_missing or s.missing_keys:
                continue
            if not s.in_sync:
                which = ", ".join(s.differing_keys) or "its keys"
                fix = (f"kubectl -n {self.ns} annotate externalsecret {s.external_secret} "
                       "force-sync=$(date +%s) --overwrite, or deparrow-secrets deploy --env "
                       f"{self.env.name} (forces and verifies)") if s.external_secret else \
                    f"deparrow-secrets deploy --env {self.env.name}"
                self.add("secret-out-of-sync", res,
                         f"Secret {s.name}: {which} differ(s) from the store"
                         + (f" (last sync {s.last_sync})" if s.last_sync else ""), fix,
                         node=node, keys=s.differing_keys)

    def check_workloads(self, state: ClusterState, syncs: list[SecretSync]) -> None:
        catalog_secrets = {s.name for s in syncs}
        changed = {s.name: last_data_change(state, s.external_secret) for s in syncs}
        workloads = {w.ref: w for w in state.workloads}
        for w in state.workloads:
            wl_node = None
            for u in w.uses:
                if u.secret in catalog_secrets:
                    wl_node = self.node(f"wl:{w.ref}", w.kind, w.ref)
                    self.edge(f"secret:{u.secret}", wl_node)
            res = f"{w.kind} {w.namespace}/{w.name}"
            self._check_refs(w, state, res, wl_node)
            for u in w.uses:
                if u.how == SUB_PATH and u.secret in catalog_secrets:
                    self.add("subpath-mount", res,
                             f"{w.ref} container {u.container} mounts Secret {u.secret} at "
                             f"{u.target} with subPath: it never receives updates",
                             node=wl_node)
        for pod in state.pods:
            for secret in sorted({u.secret for u in pod.uses if u.how in FROZEN
                                  and u.secret in catalog_secrets}):
                last = changed.get(secret)
                started = parse_time(pod.started)
                if last is None or started is None or started >= last:
                    continue
                owner = pod.owner or f"Pod/{pod.name}"
                workload = workloads.get(owner)
                fix = (f"wait for Stakater Reloader's rollout of {owner} (it watches "
                       f"{secret}); do not restart it a second time"
                       if workload and workload.reloader_watches(secret) else
                       f"kubectl -n {self.ns} rollout restart {owner.lower()}"
                       if pod.owner and pod.owner.split("/")[0] in
                       ("Deployment", "StatefulSet", "DaemonSet") else
                       f"kubectl -n {self.ns} delete pod {pod.name} (recreate it)")
                self.add("pod-stale-env", f"Pod {self.ns}/{pod.name}",
                         f"pod {pod.name} ({owner}) started {pod.started}, before Secret "
                         f"{secret} last changed ({last.isoformat()}); it reads it from "
                         "environment variables (or a subPath) and holds the old values",
                         fix, node=f"wl:{owner}" if pod.owner else None)

    def _check_refs(self, w: Workload, state: ClusterState, res: str,
                    node: str | None) -> None:
        reported: set[tuple[str, str | None]] = set()
        for u in w.uses:
            if u.optional:  # the kubelet starts the pod without it
                continue
            live = state.secrets.get(u.secret)
            if live is None:
                if (u.secret, None) in reported:
                    continue
                reported.add((u.secret, None))
                catalog = u.secret in self._catalog_secrets
                self.add("workload-secret-missing", res,
                         f"{w.ref} references Secret {u.secret}, which does not exist",
                         f"deparrow-secrets deploy --env {self.env.name}" if catalog else
                         f"create Secret {u.secret} in {self.ns} or correct the name in "
                         f"{w.ref}", node=node, secret=u.secret)
            elif u.key and u.key not in live.keys and (u.secret, u.key) not in reported:
                reported.add((u.secret, u.key))
                self.add("workload-key-missing", res,
                         f"{w.ref} references key {u.key} of Secret {u.secret}, which has "
                         f"no such key (it has: {', '.join(live.keys) or 'none'})",
                         f"correct the key in {w.ref} (container {u.container})",
                         node=node, secret=u.secret, key=u.key)


def doctor(project: Project, env: EnvironmentConfig, client: KubeClient,
           open_store: Callable[[], SecretStore]) -> DoctorReport:
    # A run holds a copy of the whole namespace and builds a node per object, all freed by
    # reference counting: the cycle collector would only walk them over and over
    # (cluster/collector.py).
    with collector_paused():
        return _doctor(project, env, client, open_store)


def _doctor(project: Project, env: EnvironmentConfig, client: KubeClient,
            open_store: Callable[[], SecretStore]) -> DoctorReport:
    d = _Doctor(project, env, client)
    calls = client.calls
    require_namespace(client, project.config.namespace, env)
    state = read_state(client, project.config, env, eso_pods=True)
    store_node = d.node("store", "Store", f"store {d._store_label()}")
    eso_ok = d.check_eso(state) if env.uses_eso else False
    ss_node = None
    if env.uses_eso:
        d.check_identity(state, store_node)
        if eso_ok:
            ss_node = d.check_secret_store(state, store_node)
    expected = d.check_store(open_store, store_node)
    if expected is not None:
        syncs = compare(expected, state)
        if env.uses_eso and eso_ok:
            d.check_external_secrets(state, syncs, ss_node)
        else:
            for s in syncs:
                d.edge(store_node, d.node(f"secret:{s.name}", "Secret", f"Secret {s.name}"))
        d.check_secrets(syncs)
        d.check_workloads(state, syncs)
    d.report.checked = (len(state.external_secrets) + len(state.secrets)
                        + len(state.workloads) + len(state.pods)
                        + len(state.secret_stores) + len(state.service_accounts))
    d.report.api_calls = client.calls - calls
    d.report.findings.sort(key=lambda f: (f.resource, f.rule, f.message))
    return d.report


# --------------------------------------------------------------------------- pictures

_COLORS = {OK: "palegreen", WARNING: "khaki", ERROR: "lightcoral"}


def render_dot(report: DoctorReport) -> str:
    lines = [f'digraph "{report.environment}" {{', "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for n in report.nodes.values():
        label = f"{n.label}\\n{n.health}".replace('"', "'")
        lines.append(f'  "{n.id}" [label="{label}", fillcolor="{_COLORS[n.health]}"];')
    for a, b in report.edges:
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines)


def render_mermaid(report: DoctorReport) -> str:
    ids = {n.id: f"n{i}" for i, n in enumerate(report.nodes.values())}
    lines = ["flowchart LR"]
    for n in report.nodes.values():
        label = f"{n.label}<br/>{n.health}".replace('"', "'")
        lines.append(f'  {ids[n.id]}["{label}"]:::{n.health}')
    for a, b in report.edges:
        if a in ids and b in ids:
            lines.append(f"  {ids[a]} --> {ids[b]}")
    lines += [f"  classDef {h} fill:{c}" for h, c in _COLORS.items()]
    return "\n".join(lines)

