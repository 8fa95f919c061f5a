"""Restarting workloads the way `kubectl rollout restart` does, and kubectl's rollout-status
rules, without kubectl.

Restart: a strategic-merge patch of `spec.template.metadata.annotations
["kubectl.kubernetes.io/restartedAt"]` (kubectl, staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
objectrestarter.go); refused for a paused Deployment, as kubectl refuses it.
Status: kubectl's rollout status (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
rollout_status.go): Deployment observedGeneration >= generation, updatedReplicas ==
replicas, availableReplicas == updatedReplicas, failed when condition Progressing has
reason ProgressDeadlineExceeded; StatefulSet updatedReplicas reaching replicas - partition
with a partition, else currentRevision == updateRevision; DaemonSet updatedNumberScheduled
and numberAvailable equal to desiredNumberScheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from deparrow_secrets.cluster.api import DAEMON_SET, DEPLOYMENT, STATEFUL_SET, Kind, Obj
from deparrow_secrets.cluster.state import condition

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KINDS_BY_NAME: dict[str, Kind] = {k.kind: k for k in (DEPLOYMENT, STATEFUL_SET, DAEMON_SET)}
RELOADER_SEARCH = "reloader.stakater.com/search"
RELOADER_MATCH = "reloader.stakater.com/match"


def restart_time(now: datetime | None = None) -> str:
    """RFC 3339 as kubectl writes it (time.Now().Format(time.RFC3339)), with microseconds:
    two restarts within one second must still differ, or the second patch changes nothing
    and a rerun could not tell its own stamp from an earlier one."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def restart_patch(at: str) -> Obj:
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}


def restarted_at(obj: Obj) -> str | None:
    template = (obj.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)


def is_paused(obj: Obj) -> bool:
    return obj.get("kind") == "Deployment" and bool((obj.get("spec") or {}).get("paused"))


@dataclass(frozen=True)
class RolloutStatus:
    done: bool
    failed: bool
    message: str


def rollout_status(obj: Obj) -> RolloutStatus:
    """kubectl rollout status, applied to one object as read."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = f"{kind}/{meta.get('name')}"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return RolloutStatus(False, False, f"{name}: waiting for the controller to observe "
                                           "the change")
    if kind == "Deployment":
        progressing = condition(obj, "Progressing") or {}
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            return RolloutStatus(False, True, f"{name}: exceeded its progress deadline "
                                              "(ProgressDeadlineExceeded)")
        replicas = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if updated < replicas:
            return RolloutStatus(False, False, f"{name}: {updated} of {replicas} updated")
        if int(status.get("replicas") or 0) > updated:
            return RolloutStatus(False, False, f"{name}: old replicas pending termination")
        if available < updated:
            return RolloutStatus(False, False, f"{name}: {available} of {updated} available")
        return RolloutStatus(True, False, f"{name}: rolled out")
    if kind == "StatefulSet":
        replicas = int(spec.get("replicas", 1))
        if int(status.get("readyReplicas") or 0) < replicas:
            return RolloutStatus(False, False, f"{name}: {status.get('readyReplicas') or 0} "
                                               f"of {replicas} ready")
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        partition = rolling.get("partition")
        if partition is not None and int(partition) > 0:
            wanted = replicas - int(partition)
            if int(status.get("updatedReplicas") or 0) < wanted:
                return RolloutStatus(False, False, f"{name}: partitioned rollout waiting")
            return RolloutStatus(True, False, f"{name}: partitioned rollout done")
        if status.get("updateRevision") != status.get("currentRevision"):
            return RolloutStatus(False, False, f"{name}: revision not current yet")
        return RolloutStatus(True, False, f"{name}: rolled out")
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        if int(status.get("updatedNumberScheduled") or 0) < desired:
            return RolloutStatus(False, False, f"{name}: not every node updated")
        if int(status.get("numberAvailable") or 0) < desired:
            return RolloutStatus(False, False, f"{name}: not every pod available")
        return RolloutStatus(True, False, f"{name}: rolled out")
    return RolloutStatus(True, False, f"{name}: not a rolling kind")
