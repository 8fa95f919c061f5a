"""Who consumes a Secret: pod templates and pods, matched locally from one list per kind.

No API indexes "who uses Secret X" (CLUSTER.md): workloads and pods are listed once
and their specs matched here. References counted, as the kubelet resolves them:
`volumes[].secret.secretName`, `volumes[].projected.sources[].secret.name`,
`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef` in containers, initContainers
and ephemeralContainers, and `imagePullSecrets`. A mount with `subPath` (or
`subPathExpr`) never receives updates; environment variables are frozen at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import Obj

ENV = "env"
ENV_FROM = "envFrom"
VOLUME = "volume"
PROJECTED = "projected"
SUB_PATH = "subPath"
IMAGE_PULL = "imagePullSecrets"
# Ways whose value is fixed when the container starts: a restart is needed to see a change.
FROZEN = frozenset({ENV, ENV_FROM, SUB_PATH})
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

RELOADER_AUTO = ("reloader.stakater.com/auto", "secret.reloader.stakater.com/auto")
RELOADER_RELOAD = "secret.reloader.stakater.com/reload"


@dataclass(frozen=True)
class SecretUse:
    secret: str
    how: str  # env | envFrom | volume | projected | subPath | imagePullSecrets
    container: str | None = None
    key: str | None = None  # the one key referenced (secretKeyRef, volume items)
    optional: bool = False
    target: str | None = None  # env variable name or mount path


def _volume_secrets(volume: Mapping[str, Any]) -> list[tuple[str, str, list[str], bool]]:
    """(secret, how, item keys, optional) for a pod volume."""
    out = []
    secret = volume.get("secret")
    if isinstance(secret, dict) and secret.get("secretName"):
        keys = [i.get("key") for i in secret.get("items") or [] if isinstance(i, dict)]
        out.append((secret["secretName"], VOLUME, [k for k in keys if k],
                    bool(secret.get("optional"))))
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for source in projected.get("sources") or []:
            ref = source.get("secret") if isinstance(source, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                keys = [i.get("key") for i in ref.get("items") or [] if isinstance(i, dict)]
                out.append((ref["name"], PROJECTED, [k for k in keys if k],
                            bool(ref.get("optional"))))
    return out


def _each_key(keys: list[str]) -> list[str | None]:
    """The keys a volume names one by one, or None for all of them."""
    return list(keys) if keys else [None]


def pod_spec_uses(spec: Mapping[str, Any] | None) -> list[SecretUse]:
    """Every reference to a Secret in a pod spec (pod or template)."""
    if not spec:
        return []
    uses: list[SecretUse] = []
    volumes: dict[str, list[tuple[str, str, list[str], bool]]] = {}
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("name"):
            found = _volume_secrets(volume)
            if found:
                volumes[volume["name"]] = found
    mounted: set[str] = set()
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or []:
            if not isinstance(container, dict):
                continue
            cname = container.get("name")
            for env in container.get("env") or []:
                ref = ((env.get("valueFrom") or {}).get("secretKeyRef")
                       if isinstance(env, dict) else None)
                if isinstance(ref, dict) and ref.get("name"):
                    uses.append(SecretUse(ref["name"], ENV, cname, ref.get("key"),
                                          bool(ref.get("optional")), env.get("name")))
            for env_from in container.get("envFrom") or []:
                ref = env_from.get("secretRef") if isinstance(env_from, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    uses.append(SecretUse(ref["name"], ENV_FROM, cname, None,
                                          bool(ref.get("optional"))))
            for mount in container.get("volumeMounts") or []:
                if not isinstance(mount, dict) or mount.get("name") not in volumes:
                    continue
                mounted.add(mount["name"])
                sub_path = mount.get("subPath") or mount.get("subPathExpr")
                for secret, how, keys, optional in volumes[mount["name"]]:
                    if sub_path:
                        # A subPath names one file of the volume: the key, unless items
                        # remapped paths (then the key is not knowable from the path).
                        key = sub_path if not keys else None
                        uses.append(SecretUse(secret, SUB_PATH, cname, key, optional,
                                              f"{mount.get('mountPath')}"))
                    else:
                        uses += [SecretUse(secret, how, cname, k, optional,
                                           mount.get("mountPath")) for k in _each_key(keys)]
    for name, found in volumes.items():
        if name not in mounted:  # declared, not mounted: still a reference
            for secret, how, keys, optional in found:
                uses += [SecretUse(secret, how, None, k, optional) for k in _each_key(keys)]
    for ref in spec.get("imagePullSecrets") or []:
        if isinstance(ref, dict) and ref.get("name"):
            uses.append(SecretUse(ref["name"], IMAGE_PULL))
    return uses


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str
    uses: list[SecretUse]
    annotations: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def reloader_watches(self, secret: str) -> bool:
        """Whether Stakater Reloader restarts this workload when `secret` changes."""
        ann = self.annotations
        if any(ann.get(a) == "true" for a in RELOADER_AUTO):
            return True
        listed = [s.strip() for s in ann.get(RELOADER_RELOAD, "").split(",") if s.strip()]
        return secret in listed


@dataclass
class PodInfo:
    name: str
    namespace: str
    uses: list[SecretUse]
    owner: str | None  # "Deployment/x", "StatefulSet/y", ... (None for a bare pod)
    started: str | None  # earliest container start (RFC 3339), None if not running
    phase: str = ""


def workloads_from(objs: Iterable[Obj]) -> list[Workload]:
    out = []
    for obj in objs:
        meta = obj.get("metadata") or {}
        template = (obj.get("spec") or {}).get("template") or {}
        out.append(Workload(
            obj.get("kind", ""), meta.get("name", ""), meta.get("namespace", ""),
            pod_spec_uses(template.get("spec")), dict(meta.get("annotations") or {}),
            dict((template.get("metadata") or {}).get("annotations") or {}),
            str(meta.get("uid") or "")))
    return out


def _controller(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    refs = meta.get("ownerReferences") or []
    return next((r for r in refs if isinstance(r, dict) and r.get("controller")),
                refs[0] if refs else None)


def pods_from(pods: Iterable[Obj], deployments: Iterable[str] = ()) -> list[PodInfo]:
    """Pods with their owning workload (Pod -> ReplicaSet -> Deployment).

    The Deployment controller names a ReplicaSet `<deployment>-<pod-template-hash>` and
    labels its pods `pod-template-hash` (k8s.io/kubernetes pkg/controller/deployment,
    sync.go getNewReplicaSet), so the Deployment follows from the pod alone: no list of
    ReplicaSets (the largest objects of a namespace) is needed. A ReplicaSet that no
    known Deployment explains stays the owner.
    """
    known = set(deployments)
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        owner = _controller(meta)
        ref = None
        if owner:
            ref = f"{owner.get('kind')}/{owner.get('name')}"
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            rs_name = str(owner.get("name"))
            if owner.get("kind") == "ReplicaSet" and template_hash and \
                    rs_name.endswith(f"-{template_hash}") and \
                    rs_name[:-len(template_hash) - 1] in known:
                ref = f"Deployment/{rs_name[:-len(template_hash) - 1]}"
        status = pod.get("status") or {}
        starts = [(cs.get("state") or {}).get("running", {}).get("startedAt")
                  for cs in status.get("containerStatuses") or [] if isinstance(cs, dict)]
        started = min((s for s in starts if s), default=None) or status.get("startTime")
        out.append(PodInfo(meta.get("name", ""), meta.get("namespace", ""),
                           pod_spec_uses(pod.get("spec")), ref, started,
                           str(status.get("phase") or "")))
    return out
