"""Test-side controllers for workloads on the fake API server: rollouts and Stakater Reloader.

:class:`WorkloadSimulator` plays the Deployment, ReplicaSet, StatefulSet and DaemonSet
controllers closely enough for kubectl's ``rollout status`` and for the project's impact/doctor
logic (pods lead to workloads through ownerReferences, pods have a ``startTime``), and
:class:`Reloader` plays Stakater Reloader (annotations listed in /work/shared/CLUSTER.md).

It works through the server's Python API (``put``/``update_status``/``delete``), so its own
work never shows in ``request_log``; status is written through the status subresource, so a
client's concurrent spec change is never lost.

Deployment (k8s.io/kubernetes pkg/controller/deployment): one ReplicaSet per pod template,
named ``<deployment>-<pod-template-hash>`` and labelled ``pod-template-hash``, annotation
``deployment.kubernetes.io/revision``; a template change makes a new ReplicaSet, the old ones
scale to 0 (their pods go); status ``observedGeneration``, ``replicas``, ``updatedReplicas``,
``readyReplicas``, ``availableReplicas`` and conditions ``Available`` and ``Progressing``
(reason ``NewReplicaSetAvailable``, or ``ReplicaSetUpdated`` while new pods are not yet
available, or ``ProgressDeadlineExceeded`` when told to get stuck). A paused Deployment
(``spec.paused``) does not roll out (condition Progressing reason ``DeploymentPaused``).
StatefulSet (pkg/controller/statefulset): pods ``<name>-<ordinal>`` with label
``controller-revision-hash``; ``updateRevision`` follows the template, ``currentRevision``
catches up once every pod at or above ``spec.updateStrategy.rollingUpdate.partition`` is
updated (pods below the partition keep the old revision). DaemonSet: one pod per simulated
node, ``desiredNumberScheduled``/``updatedNumberScheduled``/``numberAvailable``.
Simplified: every pod is Running and Ready at once (or after ``rollout_seconds``); no
maxSurge/maxUnavailable steps, no scheduling, no probes, no ControllerRevision objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fakes.kube_apiserver import ApiError, FakeKubeApiServer

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: Obj) -> str:
    """A stable 10-character hash of a pod template (the real one is FNV-32a, rendered in
    the safe alphabet; only stability and change detection matter here)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i:i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def _owner_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


def _condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = _now()
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}


def _set_conditions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """Keep lastTransitionTime when a condition's status did not change."""
    by_type = {c["type"]: c for c in old}
    out = []
    for cond in new:
        prev = by_type.get(cond["type"])
        if prev and prev.get("status") == cond["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime", cond["lastTransitionTime"])
            if prev.get("reason") == cond["reason"]:
                cond["lastUpdateTime"] = prev.get("lastUpdateTime", cond["lastUpdateTime"])
        out.append(cond)
    return out


class WorkloadSimulator:
    """Deployment/ReplicaSet/StatefulSet/DaemonSet controllers in a background thread."""

    def __init__(self, api: FakeKubeApiServer, *, interval: float = 0.05, nodes: int = 1,
                 rollout_seconds: float = 0.0) -> None:
        self.api = api
        self.interval = interval
        self.nodes = nodes
        self.rollout_seconds = rollout_seconds
        self.rollouts: Counter[tuple[str, str, str]] = Counter()  # (kind, ns, name)
        self.reconciles = 0
        self._stuck: set[tuple[str, str]] = set()
        self._ready_at: dict[str, float] = {}  # ReplicaSet/revision uid -> when available
        self._settled: dict[str, tuple[str, ...]] = {}  # workload uid -> fingerprint
        self._current_rs: dict[str, str] = {}  # Deployment uid -> its current ReplicaSet uid
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_rv = -1
        self.reloader: Reloader | None = None
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> WorkloadSimulator:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="WorkloadSimulator",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WorkloadSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stick(self, namespace: str, name: str, stuck: bool = True) -> None:
        """Make Deployment `name` fail its rollouts with ProgressDeadlineExceeded."""
        if stuck:
            self._stuck.add((namespace, name))
        else:
            self._stuck.discard((namespace, name))
        self._seen_rv = -1
        self._settled.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except ApiError as exc:  # a race with a client's delete: next round fixes it
                self.errors.append(exc.message)
            except Exception as exc:  # pragma: no cover - a bug in the simulator
                self.errors.append(repr(exc))
                raise
            self._stop.wait(self.interval)

    def reconcile_once(self) -> None:
        """One pass of every controller; skipped while nothing changed in the API."""
        rv = self.api.resource_version
        waiting = any(t > time.monotonic() for t in self._ready_at.values())
        if rv == self._seen_rv and not waiting:
            return
        self.reconciles += 1
        if self.reloader is not None:
            self.reloader.reconcile_once()
        for kind, reconcile in (("Deployment", self._deployment),
                                ("StatefulSet", self._statefulset),
                                ("DaemonSet", self._daemonset)):
            for obj in self.api.list("apps/v1", kind):
                # the fingerprint read before the work: the pass after our own writes runs
                # once more and settles, and a client's change made meanwhile is not lost
                fingerprint = self._fingerprint(obj)
                uid = obj["metadata"]["uid"]
                if self._settled.get(uid) == fingerprint and self._available(
                        self._current_rs.get(uid, "")):
                    continue
                reconcile(obj)
                self._settled[uid] = fingerprint
        # the version read before the pass: a change made during it gets its own pass
        self._seen_rv = rv

    # ------------------------------------------------------------------ pods

    def _pod(self, owner: Obj, name: str, template: Obj, extra_labels: dict[str, str],
             node: str = "node-0") -> Obj:
        meta = template.get("metadata") or {}
        spec = json.loads(json.dumps(template.get("spec") or {}))
        spec.setdefault("nodeName", node)
        now = _now()
        containers = spec.get("containers") or []
        return self.api.put({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": owner["metadata"]["namespace"],
                         "labels": {**(meta.get("labels") or {}), **extra_labels},
                         "annotations": dict(meta.get("annotations") or {}),
                         "ownerReferences": [_owner_ref(owner)]},
            "spec": spec,
            "status": {
                "phase": "Running", "startTime": now,
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                               for t in ("Initialized", "Ready", "ContainersReady",
                                         "PodScheduled")],
                "containerStatuses": [
                    {"name": c.get("name"), "image": c.get("image"), "ready": True,
                     "imageID": f"{c.get('image')}@sha256:{'0' * 64}",
                     "containerID": f"containerd://{uuid.uuid4().hex}",
                     "started": True, "restartCount": 0,
                     "state": {"running": {"startedAt": now}}} for c in containers],
            },
        }, manager="kubelet")

    def _pods_of(self, owner: Obj) -> list[Obj]:
        return [p for p in self.api.owned_by(owner["metadata"]["uid"], "v1", "Pod")
                if _controlled_by(p, owner)]

    def _fingerprint(self, obj: Obj) -> tuple[str, ...]:
        """Resource versions of a workload and everything it owns, two levels down."""
        out = [obj["metadata"]["resourceVersion"]]
        for uid, rv in self.api.owned_versions(obj["metadata"]["uid"]):
            out.append(rv)
            out += [grand_rv for _, grand_rv in self.api.owned_versions(uid)]
        return tuple(out)

    def _available(self, uid: str) -> bool:
        return self._ready_at.get(uid, 0.0) <= time.monotonic()

    # ------------------------------------------------------------------ Deployment

    def _deployment(self, dep: Obj) -> None:
        meta, spec = dep["metadata"], dep.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        thash = template_hash(template)
        owned = [rs for rs in self.api.owned_by(meta["uid"], "apps/v1", "ReplicaSet")
                 if _controlled_by(rs, dep)]
        current = next((rs for rs in owned
                        if rs["metadata"].get("labels", {}).get("pod-template-hash") == thash),
                       None)
        conditions: list[Obj] = []
        status = dep.get("status") or {}
        if spec.get("paused"):
            conditions = [_condition("Progressing", "Unknown", "DeploymentPaused",
                                     "Deployment is paused")]
            self._write_status(dep, {**status, "observedGeneration": meta.get("generation", 1),
                                     "conditions": _set_conditions(
                                         status.get("conditions") or [], conditions)})
            return
        if (ns, name) in self._stuck:
            self._write_status(dep, {
                **status, "observedGeneration": meta.get("generation", 1),
                "replicas": replicas, "updatedReplicas": 0,
                "conditions": _set_conditions(status.get("conditions") or [], [
                    _condition("Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability."),
                    _condition("Progressing", "False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{name}-{thash}" has timed out progressing.')])})
            return
        if current is None:
            revision = 1 + max((int(rs["metadata"].get("annotations", {}).get(REVISION, 0))
                                for rs in owned), default=0)
            labels = {**(template.get("metadata") or {}).get("labels", {}),
                      "pod-template-hash": thash}
            current = self.api.put({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{name}-{thash}", "namespace": ns, "labels": labels,
                             "annotations": {REVISION: str(revision)},
                             "ownerReferences": [_owner_ref(dep)]},
                "spec": {"replicas": replicas,
                         "selector": {"matchLabels": {**spec.get("selector", {}).get(
                             "matchLabels", {}), "pod-template-hash": thash}},
                         "template": {**template, "metadata": {
                             **(template.get("metadata") or {}), "labels": labels}}},
            }, manager="deployment-controller")
            self._ready_at[current["metadata"]["uid"]] = time.monotonic() + self.rollout_seconds
            if owned:
                self.rollouts[("Deployment", ns, name)] += 1
        for rs in owned:
            if rs["metadata"]["uid"] != current["metadata"]["uid"]:
                for pod in self._pods_of(rs):
                    self.api.delete("v1", "Pod", pod["metadata"]["name"], ns)
                if (rs.get("spec") or {}).get("replicas") != 0:
                    rs = dict(rs, spec={**rs["spec"], "replicas": 0})
                    self.api.put(rs, manager="deployment-controller")
                self._write_status(rs, {"replicas": 0, "observedGeneration":
                                        rs["metadata"].get("generation", 1)})
        if (current.get("spec") or {}).get("replicas") != replicas:
            current = self.api.put(dict(current, spec={**current["spec"], "replicas": replicas}),
                                   manager="deployment-controller")
        self._current_rs[meta["uid"]] = current["metadata"]["uid"]
        available = self._available(current["metadata"]["uid"])
        pods = self._scale_pods(current, replicas, template, thash)
        ready = len(pods) if available else 0
        self._write_status(current, {"replicas": len(pods), "readyReplicas": ready,
                                     "availableReplicas": ready, "fullyLabeledReplicas":
                                     len(pods), "observedGeneration":
                                     current["metadata"].get("generation", 1)})
        conditions = [
            _condition("Available", "True" if ready >= replicas else "False",
                       "MinimumReplicasAvailable" if ready >= replicas
                       else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if ready >= replicas
                       else "Deployment does not have minimum availability."),
            _condition("Progressing", "True",
                       "NewReplicaSetAvailable" if ready >= replicas else "ReplicaSetUpdated",
                       f'ReplicaSet "{current["metadata"]["name"]}" has successfully progressed.'
                       if ready >= replicas else
                       f'ReplicaSet "{current["metadata"]["name"]}" is progressing.'),
        ]
        self._write_status(dep, {
            "observedGeneration": meta.get("generation", 1), "replicas": len(pods),
            "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
            **({"unavailableReplicas": replicas - ready} if ready < replicas else {}),
            "conditions": _set_conditions(status.get("conditions") or [], conditions)})

    def _scale_pods(self, rs: Obj, replicas: int, template: Obj, thash: str) -> list[Obj]:
        pods = self._pods_of(rs)
        for pod in pods[replicas:]:
            self.api.delete("v1", "Pod", pod["metadata"]["name"], rs["metadata"]["namespace"])
        pods = pods[:replicas]
        while len(pods) < replicas:
            name = f"{rs['metadata']['name']}-{uuid.uuid4().hex[:5]}"
            pods.append(self._pod(rs, name, template, {"pod-template-hash": thash}))
        return pods

    def _write_status(self, obj: Obj, status: Obj) -> None:
        if (obj.get("status") or {}) == status:
            return
        with contextlib.suppress(ApiError):  # deleted meanwhile
            self.api.update_status({**obj, "status": status})

    # ------------------------------------------------------------------ StatefulSet

    def _statefulset(self, sts: Obj) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        revision = f"{name}-{template_hash(template)}"
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        on_delete = strategy.get("type") == "OnDelete"
        status = sts.get("status") or {}
        previous = status.get("updateRevision")
        if previous and previous != revision:
            self.rollouts[("StatefulSet", ns, name)] += 1
        pods = {p["metadata"]["name"]: p for p in self._pods_of(sts)}
        current_revision = status.get("currentRevision") or revision
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            pod = pods.pop(pod_name, None)
            pod_rev = (pod or {}).get("metadata", {}).get("labels", {}).get(
                "controller-revision-hash")
            wanted = revision if ordinal >= partition else current_revision
            if pod is not None and (pod_rev == wanted or on_delete):
                continue
            if pod is not None:
                self.api.delete("v1", "Pod", pod_name, ns)
            self._pod(sts, pod_name, template, {"controller-revision-hash": wanted,
                                                "apps.kubernetes.io/pod-index": str(ordinal),
                                                "statefulset.kubernetes.io/pod-name": pod_name})
        for extra in pods:
            self.api.delete("v1", "Pod", extra, ns)
        live = self._pods_of(sts)
        updated = sum(1 for p in live
                      if p["metadata"]["labels"].get("controller-revision-hash") == revision)
        if updated == replicas:
            current_revision = revision
        self._write_status(sts, {
            "observedGeneration": meta.get("generation", 1), "replicas": len(live),
            "readyReplicas": len(live), "availableReplicas": len(live),
            "currentReplicas": sum(1 for p in live if p["metadata"]["labels"].get(
                "controller-revision-hash") == current_revision),
            "updatedReplicas": updated, "currentRevision": current_revision,
            "updateRevision": revision, "collisionCount": 0})

    # ------------------------------------------------------------------ DaemonSet

    def _daemonset(self, ds: Obj) -> None:
        meta, spec = ds["metadata"], ds.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        template = spec.get("template") or {}
        thash = template_hash(template)
        status = ds.get("status") or {}
        pods = self._pods_of(ds)
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        changed = False
        for n in range(self.nodes):
            node = f"node-{n}"
            pod = by_node.get(node)
            if pod is not None and pod["metadata"]["labels"].get(
                    "controller-revision-hash") == thash:
                continue
            if pod is not None:
                self.api.delete("v1", "Pod", pod["metadata"]["name"], ns)
                changed = True
            self._pod(ds, f"{name}-{uuid.uuid4().hex[:5]}", template,
                      {"controller-revision-hash": thash}, node=node)
        if changed:
            self.rollouts[("DaemonSet", ns, name)] += 1
        live = self._pods_of(ds)
        self._write_status(ds, {
            "observedGeneration": meta.get("generation", 1),
            "desiredNumberScheduled": self.nodes, "currentNumberScheduled": len(live),
            "updatedNumberScheduled": sum(1 for p in live if p["metadata"]["labels"].get(
                "controller-revision-hash") == thash),
            "numberReady": len(live), "numberAvailable": len(live),
            "numberMisscheduled": 0, **({} if status.get("numberUnavailable") is None else {})})


# --------------------------------------------------------------------------- Reloader

AUTO = "reloader.stakater.com/auto"
SECRET_AUTO = "secret.reloader.stakater.com/auto"
SECRET_RELOAD = "secret.reloader.stakater.com/reload"
SEARCH = "reloader.stakater.com/search"
MATCH = "reloader.stakater.com/match"
LAST_RELOADED_FROM = "reloader.stakater.com/last-reloaded-from"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def secret_refs(pod_spec: Obj) -> set[str]:
    """Names of the Secrets a pod spec references (volumes, projected volumes, env, envFrom,
    imagePullSecrets), in containers, initContainers and ephemeralContainers."""
    names: set[str] = set()
    for vol in pod_spec.get("volumes") or []:
        if (vol.get("secret") or {}).get("secretName"):
            names.add(vol["secret"]["secretName"])
        for source in (vol.get("projected") or {}).get("sources") or []:
            if (source.get("secret") or {}).get("name"):
                names.add(source["secret"]["name"])
    for section in ("containers", "initContainers", "ephemeralContainers"):
        for container in pod_spec.get(section) or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("name"):
                    names.add(ref["name"])
            for env_from in container.get("envFrom") or []:
                if (env_from.get("secretRef") or {}).get("name"):
                    names.add(env_from["secretRef"]["name"])
    for pull in pod_spec.get("imagePullSecrets") or []:
        if pull.get("name"):
            names.add(pull["name"])
    return names


class Reloader:
    """Stakater Reloader: restarts annotated workloads when a Secret they use changes.

    Rules (github.com/stakater/Reloader, internal/pkg/handler and README): a workload is
    reloaded for Secret S in its namespace when annotated ``reloader.stakater.com/auto:
    "true"`` or ``secret.reloader.stakater.com/auto: "true"`` and it references S, when
    ``secret.reloader.stakater.com/reload`` lists S, or when annotated
    ``reloader.stakater.com/search: "true"``, it references S and S carries
    ``reloader.stakater.com/match: "true"`` (Reloader reads it as an annotation; CLUSTER.md
    says label: both are accepted). The annotations are read from the workload's metadata.

    Restart strategy: ``"env-vars"`` (Reloader's default) sets env var
    ``STAKATER_<SECRET>_SECRET`` to the Secret's data hash in every container;
    ``"annotations"`` sets the pod template annotation
    ``reloader.stakater.com/last-reloaded-from``. Either changes the pod template, so the
    workload rolls out. Only data changes count (as Reloader hashes the data).
    """

    def __init__(self, api: FakeKubeApiServer, *, strategy: str = "env-vars") -> None:
        self.api = api
        self.strategy = strategy
        self.restarts: Counter[tuple[str, str, str]] = Counter()  # (kind, ns, name)
        self._hashes: dict[tuple[str, str], str] = {}

    def reconcile_once(self) -> None:
        for secret in self.api.list("v1", "Secret"):
            meta = secret["metadata"]
            key = (meta["namespace"], meta["name"])
            digest = hashlib.sha1(json.dumps(secret.get("data") or {}, sort_keys=True)
                                  .encode()).hexdigest()
            previous = self._hashes.get(key)
            self._hashes[key] = digest
            if previous is not None and previous != digest:
                self._reload(secret, digest)

    def _wants(self, workload: Obj, secret: Obj) -> bool:
        annotations = workload["metadata"].get("annotations") or {}
        name = secret["metadata"]["name"]
        spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
        referenced = name in secret_refs(spec)
        if referenced and "true" in (annotations.get(AUTO), annotations.get(SECRET_AUTO)):
            return True
        listed = [s.strip() for s in (annotations.get(SECRET_RELOAD) or "").split(",")]
        if name in listed:
            return True
        secret_meta = secret["metadata"]
        matched = "true" in ((secret_meta.get("annotations") or {}).get(MATCH),
                             (secret_meta.get("labels") or {}).get(MATCH))
        return referenced and annotations.get(SEARCH) == "true" and matched

    def _reload(self, secret: Obj, digest: str) -> None:
        ns, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        for kind in WORKLOAD_KINDS:
            for workload in self.api.list("apps/v1", kind, ns):
                if not self._wants(workload, secret):
                    continue
                template = workload["spec"].get("template") or {}
                patch: Obj
                if self.strategy == "annotations":
                    patch = {"spec": {"template": {"metadata": {"annotations": {
                        LAST_RELOADED_FROM: json.dumps(
                            {"type": "SECRET", "name": name, "namespace": ns, "hash": digest,
                             "containerRefs": [], "observedAt": int(time.time())})}}}}}
                else:
                    var = "STAKATER_" + "".join(
                        c if c.isalnum() else "_" for c in name).upper() + "_SECRET"
                    containers = [{"name": c["name"], "env": [{"name": var, "value": digest}]}
                                  for c in (template.get("spec") or {}).get("containers") or []]
                    patch = {"spec": {"template": {"spec": {"containers": containers}}}}
                with contextlib.suppress(ApiError):  # deleted meanwhile
                    self.api.patch("apps/v1", kind, workload["metadata"]["name"], ns, patch,
                                   patch_type="strategic", manager="Reloader")
                self.restarts[(kind, ns, workload["metadata"]["name"])] += 1
