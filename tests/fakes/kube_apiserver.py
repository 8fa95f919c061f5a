"""HTTPS fake of the Kubernetes API server, for the official ``kubernetes`` client and kubectl.

No API server can be installed here (see /work/shared/CLUSTER.md, "Testing without a
kube-apiserver"), so this module serves the subset of the REST API that the project's cluster
commands, the test-side controllers and kubectl 1.37 use. Stdlib HTTP server with TLS from a
throw-away ``trustme`` CA, as the Key Vault fake (``azure_keyvault.py``) does; state lives in
memory; bearer-token authentication.

Usage::

    from fakes.kube_apiserver import FakeKubeApiServer

    with FakeKubeApiServer() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "deparrow"}})
        path = api.kubeconfig(tmp_path / "kubeconfig")     # CA data + token, context "fake"
        ...  # kubernetes.config.load_kube_config(str(path)) / kubectl --kubeconfig path
        api.deny("list", "secrets", namespace="deparrow")   # 403 with the real message
        api.fail_next("patch", "externalsecrets", status=409)
        api.request_log                                      # [("list", "/api/v1/..."), ...]

Test hooks (Python, never logged in ``request_log``): ``put`` (create or replace, status as
given), ``get``, ``list`` (with selectors), ``delete`` (with garbage collection), ``patch``
(merge/strategic/JSON, atomic), ``update_status``, ``event``/``events_for`` (Events as a
controller's recorder writes them), ``versions``/``owned_by``/``owned_versions`` (cheap polling
for simulated controllers), ``wait_for``; faults: ``deny`` (403), ``fail_next`` (any status),
``set_delay`` (slow server), ``stop``/``start`` (down, then back on the same port),
``clear_faults``; accounting: ``request_log`` ((verb, path) pairs), ``requests`` (with query,
status, content type, user agent), ``count(verb, resource)``, ``reset_log``;
``kubeconfig(path, context, namespace)``. Helpers for ESO objects and a healthy ESO install
are in ``kube_objects.py``; controllers in ``eso_simulator.py`` and ``workload_simulator.py``.

Layout of the module: a registry of resource types (built-in table + types registered by
CustomResourceDefinition objects, :class:`Registry`), the object storage with resourceVersion,
generation, managed fields, indexes by type and owner and garbage collection
(:class:`FakeKubeApiServer` ``_create``/``_update``/``_delete_object``), server-side apply
(``_apply``), selectors (:class:`LabelSelector`, :class:`FieldSelector`), the patch engines
(``kube_patch.py``), the watch hub (:class:`WatchHub`) and the HTTP layer (``_handle``,
``_route``, ``_serve``; the HTTPS server is ``tls_server.py``).

What is real and what is simplified is listed in :data:`FIDELITY` (kept next to the code so
that it stays true).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import yaml

from fakes import kube_patch
from fakes.kube_patch import FieldPath, PatchError
from fakes.tls_server import QuietHandler, RequestLog, ServingThread, TestCA, TLSHTTPServer

__all__ = ["ApiError", "ApiRequest", "FakeKubeApiServer", "ResourceType", "FIDELITY"]

Obj = dict[str, Any]

FIDELITY = """\
Faked faithfully (checked with the official client and kubectl 1.37 in
tests/fakes/test_kube_apiserver_fake.py): HTTPS with bearer-token authentication (401),
discovery (/api, /apis, /apis/<g>, /apis/<g>/<v>, /version; legacy, not aggregated),
get/list/create/update/delete/deletecollection, a global resourceVersion with 409 Conflict on
a stale update, patch or delete precondition, no write (and no new resourceVersion) for an
update that changes nothing, metadata.generation bumped when anything but metadata and status
changes, label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors
(metadata.name, metadata.namespace, Secret type, Event involvedObject.* and reason, Pod
spec.nodeName and status.phase), list paging (limit/continue), lists of kind <Kind>List,
JSON merge patch, JSON patch, strategic merge patch (built-in kinds; 415 for custom resources
as the real server), server-side apply with conflicts and force, dryRun=All, the status
subresource, watch (resourceVersion, sendInitialEvents with the k8s.io/initial-events-end
BOOKMARK, allowWatchBookmarks, timeoutSeconds, 410 Expired, selector transitions as
ADDED/DELETED), Status error bodies (401, 403 with the RBAC message, 404, 409, 410, 415, 422),
Secret stringData folded into data, immutable Secrets, Namespaces that must exist, the system
namespaces, CRDs that register their served versions (and take their objects with them),
structural defaults and pruning of unknown fields from CRD schemas (fieldValidation Strict:
400, Warn: Warning header), ownerReferences with garbage collection (background and Orphan
propagation), Table output for kubectl get (Name, Age, a few built-in columns and a CRD's
additionalPrinterColumns), Events aggregated by the recorder into count.
Simplified: server-side apply tracks leaf fields per manager (lists without a merge key are
atomic, merge keys by field name, see kube_patch.py), managedFields are rendered from that
and a client-sent managedFields is ignored; deletion is immediate (no finalizers, no
deletionTimestamp, no graceful pod termination; garbage collection is synchronous);
Namespace deletion removes its objects at once; no admission (webhook configurations are
stored, never called), no RBAC objects evaluated (403 only through deny()); no validation of
objects beyond names, labels, Secret/ConfigMap keys and data, immutable Secrets and CRD
pruning; no defaulting of built-in kinds except Deployment/StatefulSet/ReplicaSet replicas
and Secret type; no protobuf (415: kubectl's typed create commands fail); OpenAPI v3 only
as a stub that tells kubectl every kind takes fieldValidation (so kubectl validates on the
server, where only CRD pruning exists), no schemas and no /openapi/v2; no subresources
but status (no scale, exec, logs, token requests, eviction); bookmarks every second when
asked; one watch history of 20,000 events.
"""

# --------------------------------------------------------------------------- resource types


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    tracks_generation: bool = False
    builtin: bool = True
    categories: tuple[str, ...] = ()
    printer_columns: tuple[Obj, ...] = ()
    schema: Obj | None = None
    # (group, plural) of the storage key; one resource across its versions
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def discovery(self) -> list[Obj]:
        entry: Obj = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        if self.has_status:
            out.append({"name": f"{self.plural}/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind,
                        "verbs": ["get", "patch", "update"]})
        return out


def _rt(group: str, version: str, plural: str, kind: str, namespaced: bool = True,
        short: tuple[str, ...] = (), status: bool = False, generation: bool = False,
        categories: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, kind.lower(), short,
                        status, generation, True, categories)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, ("ns",), status=True),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _rt("", "v1", "pods", "Pod", short=("po",), status=True, categories=("all",)),
    _rt("", "v1", "events", "Event", short=("ev",)),
    _rt("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _rt("apps", "v1", "deployments", "Deployment", short=("deploy",), status=True,
        generation=True, categories=("all",)),
    _rt("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), status=True,
        generation=True, categories=("all",)),
    _rt("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), status=True,
        generation=True, categories=("all",)),
    _rt("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), status=True,
        generation=True, categories=("all",)),
    _rt("batch", "v1", "jobs", "Job", status=True, generation=True, categories=("all",)),
    _rt("batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True, generation=True,
        categories=("all",)),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",),
        generation=True),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        False, ("crd", "crds"), status=True, generation=True),
    _rt("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration", False, generation=True),
)
# kinds the real API server writes without status but with generation 0: nothing to do;
# Deployment/StatefulSet/ReplicaSet replicas default to 1 (k8s.io/kubernetes
# pkg/apis/apps/v1/defaults.go)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_REPLICAS_DEFAULTED = frozenset({("apps", "deployments"), ("apps", "statefulsets"),
                                 ("apps", "replicasets")})


def _ready_pods(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


# server-side printing of a few built-in kinds (k8s.io/kubernetes pkg/printers/internalversion
# printers.go), column name -> cell; Name and Age are added around them
BUILTIN_COLUMNS: dict[tuple[str, str], tuple[tuple[str, Callable[[Obj], Any]], ...]] = {
    ("", "secrets"): (("Type", lambda o: o.get("type", "")),
                      ("Data", lambda o: len(o.get("data") or {}))),
    ("", "configmaps"): (("Data", lambda o: len(o.get("data") or {})
                          + len(o.get("binaryData") or {})),),
    ("", "namespaces"): (("Status", lambda o: (o.get("status") or {}).get("phase", "")),),
    ("", "pods"): (("Ready", _ready_pods),
                   ("Status", lambda o: (o.get("status") or {}).get("phase", "")),
                   ("Restarts", lambda o: sum(c.get("restartCount", 0) for c in (
                       o.get("status") or {}).get("containerStatuses") or []))),
    ("apps", "deployments"): (
        ("Ready", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                            f"{(o.get('spec') or {}).get('replicas', 1)}"),
        ("Up-to-date", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", lambda o: (o.get("status") or {}).get("availableReplicas", 0))),
    ("", "events"): (("Type", lambda o: o.get("type", "")),
                     ("Reason", lambda o: o.get("reason", "")),
                     ("Object", lambda o: f"{(o.get('involvedObject') or {}).get('kind', '')}"
                                          f"/{(o.get('involvedObject') or {}).get('name', '')}"
                      .lower()),
                     ("Message", lambda o: o.get("message", ""))),
}


class Registry:
    """Served resource types: the built-in table plus those of CRD objects."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTIN_TYPES:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._types if k[0] == group and k[2] == plural]:
            del self._types[key]

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return next((rt for rt in self._types.values()
                     if rt.group == group and rt.version == version and rt.kind == kind), None)

    def by_group_resource(self, group: str, plural: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.plural == plural]

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            if group and version not in out.setdefault(group, []):
                out[group].append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._types.items() if g == group and v == version]

    def add_crd(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        plural = names.get("plural", "")
        self.remove_group_resource(group, plural)
        for version in spec.get("versions") or []:
            if not version.get("served"):
                continue
            self.add(ResourceType(
                group=group, version=version["name"], plural=plural, kind=names.get("kind", ""),
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames") or ()),
                has_status="status" in (version.get("subresources") or {}),
                tracks_generation=True, builtin=False,
                categories=tuple(names.get("categories") or ()),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            ))


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, *,
                 details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                     "status": "Failure", "message": self.message, "reason": self.reason,
                     "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(rt)} "{name}" not found',
                    details={"name": name, "group": rt.group, "kind": rt.plural})


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{name}" not found',
                    details={"name": name, "kind": "namespaces"})


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(rt)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": rt.group, "kind": rt.plural})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(rt)} "{name}" already exists',
                    details={"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    return ApiError(
        422, "Invalid", f'{rt.kind} "{name}" is invalid: {text}',
        details={"name": name, "group": rt.group, "kind": rt.kind,
                 "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f}
                            for f, m in causes]})


def forbidden(user: str, verb: str, resource: str, group: str, namespace: str | None,
              name: str | None) -> ApiError:
    # k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go (ForbiddenStatus)
    plural = resource.split("/")[0]
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return ApiError(
        403, "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
        f'group "{group}" {where}',
        details={**({"name": name} if name else {}), "group": group, "kind": plural})


# --------------------------------------------------------------------------- selectors

_LABEL_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)|"
    r"\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


class LabelSelector:
    """A parsed ``labelSelector`` query parameter (k8s.io/apimachinery pkg/labels)."""

    def __init__(self, text: str) -> None:
        self.requirements: list[tuple[str, str, list[str]]] = []
        for part in _split_selector(text):
            match = _LABEL_REQ.match(part)
            if not match:
                raise ApiError(400, "BadRequest",
                               f"unable to parse requirement: invalid label selector {text!r}")
            key = match["key"]
            if match["neg"]:
                self.requirements.append((key, "!", []))
            elif match["op"]:
                op = "!=" if match["op"] == "!=" else "="
                self.requirements.append((key, op, [match["value"]]))
            elif match["setop"]:
                values = [v.strip() for v in match["values"].split(",") if v.strip()]
                self.requirements.append((key, match["setop"], values))
            else:
                self.requirements.append((key, "exists", []))

    def matches(self, labels: dict[str, str]) -> bool:
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "=" and value != values[0]:
                return False
            if op == "!=" and value == values[0]:
                return False
            if op == "in" and value not in values:
                return False
            if op == "notin" and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
        return True


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


# field selectors each kind supports (k8s.io/kubernetes pkg/registry/*/strategy.go
# *ToSelectableFields); metadata.name and metadata.namespace everywhere.
FIELD_SELECTABLE: dict[tuple[str, str], frozenset[str]] = {
    ("", "secrets"): frozenset({"type"}),
    ("", "events"): frozenset({
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
    ("", "pods"): frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                             "spec.serviceAccountName", "status.phase", "status.podIP",
                             "status.nominatedNodeName"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("batch", "jobs"): frozenset({"status.successful"}),
    ("apps", "replicasets"): frozenset({"status.replicas"}),
}


def field_value(obj: Obj, path: str) -> str:
    if path == "source":
        path = "source.component"
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    return str(cur).lower() if isinstance(cur, bool) else str(cur)


class FieldSelector:
    def __init__(self, text: str, rt: ResourceType) -> None:
        self.requirements: list[tuple[str, bool, str]] = []
        allowed = FIELD_SELECTABLE.get(rt.key, frozenset()) | {
            "metadata.name", "metadata.namespace"}
        for part in _split_selector(text):
            match = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
            if not match:
                raise ApiError(400, "BadRequest", f"invalid field selector: {text!r}")
            key, op, value = match.groups()
            if key not in allowed:
                raise ApiError(400, "BadRequest",
                               f'field label not supported: {key}')
            self.requirements.append((key, op != "!=", value))

    def matches(self, obj: Obj) -> bool:
        return all((field_value(obj, k) == v) == eq for k, eq, v in self.requirements)


class Filter:
    """What a list or watch asks for: one resource, maybe one namespace, selectors."""

    def __init__(self, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> None:
        self.rt = rt
        self.namespace = namespace
        self.labels = LabelSelector(query.get("labelSelector", ""))
        self.fields = FieldSelector(query.get("fieldSelector", ""), rt)

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels") or {}) and self.fields.matches(obj)


# --------------------------------------------------------------------------- watch hub


class WatchEvent(NamedTuple):
    rv: int
    type: str  # ADDED / MODIFIED / DELETED
    key: tuple[str, str]  # (group, plural)
    obj: Obj
    old: Obj | None


class WatchHub:
    """Recent changes, for watches that resume from a resourceVersion."""

    def __init__(self, capacity: int = 20000) -> None:
        self.events: deque[WatchEvent] = deque(maxlen=capacity)
        self.cond = threading.Condition()
        self.first_rv = 0  # events with rv > first_rv are retained

    def publish(self, event: WatchEvent) -> None:
        with self.cond:
            if len(self.events) == self.events.maxlen:
                self.first_rv = self.events[0].rv
            self.events.append(event)
            self.cond.notify_all()

    def since(self, rv: int) -> list[WatchEvent]:
        with self.cond:
            if not self.events or self.events[-1].rv <= rv:
                return []
            return [e for e in self.events if e.rv > rv]


# --------------------------------------------------------------------------- request log


class ApiRequest(NamedTuple):
    """One request as the fake saw it (bodies are never recorded)."""

    verb: str  # Kubernetes verb (get, list, watch, create, update, patch, delete, ...)
    path: str
    query: str
    status: int
    content_type: str
    user_agent: str


@dataclass
class _Fault:
    verb: str
    resource: str
    status: int
    namespace: str | None = None
    count: int = 1


@dataclass
class _Response:
    status: int
    body: Obj | None = None
    stream: Iterator[bytes] | None = None
    raw: bytes | None = None  # the body already encoded (lists: joined cached items)
    headers: dict[str, str] = field(default_factory=dict)


_SKIP_OWNERSHIP: tuple[FieldPath, ...] = (
    ("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"),
    ("metadata", "uid"), ("metadata", "resourceVersion"), ("metadata", "generation"),
    ("metadata", "creationTimestamp"), ("metadata", "managedFields"),
    ("metadata", "selfLink"), ("metadata", "generateName"),
)
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DATA_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def _clone(value: Any) -> Any:
    """Deep copy of JSON data (objects here are only dicts, lists and scalars): several times
    faster than copy.deepcopy, which matters with thousands of objects."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _owned(path: FieldPath, has_status: bool) -> bool:
    if any(path[: len(skip)] == skip for skip in _SKIP_OWNERSHIP):
        return False
    return not (has_status and path[:1] == ("status",))


def _strip_for_compare(obj: Obj) -> Obj:
    out = _clone(obj)
    meta = out.get("metadata") or {}
    meta.pop("managedFields", None)
    meta.pop("resourceVersion", None)
    return out


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "status", "apiVersion", "kind")}


def _apply_schema_defaults(obj: Any, schema: Obj | None) -> None:
    """Structural defaulting of a CRD schema (apiextensions-apiserver
    pkg/apiserver/schema/defaulting/algorithm.go): a missing property with a ``default`` gets it,
    recursively inside present objects and array items."""
    if not schema:
        return
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in obj and "default" in sub:
                obj[name] = _clone(sub["default"])
            if name in obj:
                _apply_schema_defaults(obj[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in obj.items():
                if name not in (schema.get("properties") or {}):
                    _apply_schema_defaults(value, extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _apply_schema_defaults(item, schema["items"])


def _parse_body(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if "protobuf" in content_type:
        raise ApiError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media '
                       f'types include: application/json, application/yaml '
                       f'(this fake does not speak {content_type})')
    try:
        if "yaml" in content_type:
            return yaml.load(body.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest",
                       f"the body of the request could not be decoded: {exc}") from exc


_USER_AGENT_MANAGER = re.compile(r"^([^/\s]+)")


# --------------------------------------------------------------------------- HTTPS layer


class _TLSServer(TLSHTTPServer):
    """The shared HTTPS server (``tls_server.py``, as the Key Vault fake's) on a fixed port,
    so that stop()/start() come back on the same address."""

    def __init__(self, fake: FakeKubeApiServer, context: ssl.SSLContext, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler, context, socket_timeout=60)


class _Handler(QuietHandler):
    server: _TLSServer

    def _dispatch(self) -> None:
        body = self.read_body()
        resp = self.server.fake._handle(self.command, self.path, self.headers, body)
        if resp.stream is not None:
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in resp.stream:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (OSError, ssl.SSLError):
                self.close_connection = True
            finally:
                resp.stream.close()  # type: ignore[attr-defined]
            return
        payload = resp.raw if resp.raw is not None else (
            json.dumps(resp.body).encode() if resp.body is not None else b"")
        self.send_body(resp.status, {**resp.headers, "Content-Type": "application/json"},
                       payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _dispatch


# --------------------------------------------------------------------------- the server


class FakeKubeApiServer:
    """The fake API server; see the module docstring. Thread safe."""

    def __init__(self, *, token: str | None = None, user: str = "deparrow-test",
                 bookmark_interval: float = 1.0, watch_history: int = 20000) -> None:
        self.token = token or uuid.uuid4().hex
        self.user = user
        self.bookmark_interval = bookmark_interval
        self.registry = Registry()
        self.hub = WatchHub(watch_history)
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], Obj] = {}
        # ownership for server-side apply: key -> {(manager, operation, subresource): paths}
        self._owners: dict[tuple[str, str, str, str], dict[tuple[str, str, str],
                                                            set[FieldPath]]] = {}
        self._rv = 0
        self._dependents: dict[str, set[tuple[str, str, str, str]]] = {}
        self._by_type: dict[tuple[str, str], set[tuple[str, str, str, str]]] = {}
        self._events: dict[tuple[str, str, str, str, str], tuple[str, str, str, str]] = {}
        # key -> (served apiVersion, the stored object's JSON as a list item): _list_item
        self._encoded: dict[tuple[str, str, str, str], tuple[str, bytes]] = {}
        self._denied: builtins.list[tuple[str, str, str | None]] = []
        self._faults: builtins.list[_Fault] = []
        self._delay = 0.0
        self._log: RequestLog[ApiRequest] = RequestLog()
        self._serving: ServingThread | None = None
        self._stopping = threading.Event()
        self._port: int | None = None
        self._tls: TestCA | None = None
        self.kubeconfig_path: Path | None = None
        # a real cluster always has these (Events about cluster-scoped objects go to default)
        for ns in SYSTEM_NAMESPACES:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                     manager="kube-apiserver")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKubeApiServer:
        """Serve on 127.0.0.1 (a free port the first time, the same port after stop())."""
        if self._serving is not None:
            return self
        if self._tls is None:
            self._tls = TestCA("127.0.0.1", "localhost", prefix="fake-kube-apiserver-")
        self._stopping.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                server = _TLSServer(self, self._tls.context, self._port or 0)
                break
            except OSError:
                if self._port is None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._serving = ServingThread(server, "FakeKubeApiServer")
        self._port = self._serving.port
        return self

    def stop(self) -> None:
        """Stop serving (the API is down: connections refused); state is kept."""
        self._stopping.set()
        with self.hub.cond:
            self.hub.cond.notify_all()
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def close(self) -> None:
        """Stop and remove the CA directory."""
        self.stop()
        tls, self._tls = self._tls, None
        if tls is not None:
            tls.remove()

    def __enter__(self) -> FakeKubeApiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeKubeApiServer was never started")
        return self._port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        if self._tls is None:
            raise RuntimeError("FakeKubeApiServer was never started")
        return str(self._tls.ca_path)

    def kubeconfig(self, path: str | Path, context: str = "fake",
                   namespace: str = "deparrow", *, token: str | None = None) -> Path:
        """Write a kubeconfig (JSON, valid YAML) for this server; returns its path."""
        ca_data = base64.b64encode(Path(self.ca_path).read_bytes()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {
                "server": self.url, "certificate-authority-data": ca_data}}],
            "users": [{"name": f"{context}-user", "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {
                "cluster": context, "user": f"{context}-user", "namespace": namespace}}],
            "preferences": {},
        }
        out = Path(path)
        out.write_text(json.dumps(config, indent=2))
        out.chmod(0o600)
        self.kubeconfig_path = out
        return out

    # ------------------------------------------------------------------ test controls

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to `verb` ("*" for any) on `resource` ("secrets", "deployments/status",
        "*"), in `namespace` (None: everywhere)."""
        with self._lock:
            self._denied.append((verb, resource, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._denied.clear()

    def fail_next(self, verb: str, resource: str, status: int = 500, *, count: int = 1,
                  namespace: str | None = None) -> None:
        """The next `count` requests `verb` on `resource` answer `status` (409 is a Conflict
        with the real message, 500 an InternalError, 503 ServiceUnavailable, 429 with
        Retry-After: 1)."""
        with self._lock:
            self._faults.append(_Fault(verb, resource, status, namespace, count))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._denied.clear()
            self._delay = 0.0

    def set_delay(self, seconds: float) -> None:
        """Every request waits `seconds` before it is handled (a slow API server)."""
        with self._lock:
            self._delay = seconds

    @property
    def request_log(self) -> builtins.list[tuple[str, str]]:
        """(verb, path) of every request since the last reset_log(), in order."""
        return [(r.verb, r.path) for r in self._log.snapshot()]

    @property
    def requests(self) -> builtins.list[ApiRequest]:
        return self._log.snapshot()

    def reset_log(self) -> None:
        self._log.clear()

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Requests with `verb` whose path names `resource` (plural) as a path segment."""
        return self._log.count(lambda r: (verb is None or r.verb == verb)
                               and (resource is None or resource in r.path.split("/")))

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    # ------------------------------------------------------------------ Python object API

    def _type_of(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise ApiError(404, "NotFound",
                           f'no matches for kind "{kind}" in version "{api_version}"')
        return rt

    def put(self, obj: Obj, *, manager: str = "test", check_rv: bool = False) -> Obj:
        """Create or replace `obj` as stored (status kept as given; the resourceVersion in
        `obj` is checked only with `check_rv`, ApiError 409 when stale); returns the stored
        copy. For tests and simulated controllers (not logged)."""
        rt = self._type_of(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") if rt.namespaced else None
        with self._lock:
            old = self._objects.get(self._key(rt, ns, meta.get("name", "")))
            if old is None:
                return self._create(rt, ns, _clone(obj), manager=manager,
                                    keep_status=True)
            return self._update(rt, ns, meta["name"], _clone(obj), manager=manager,
                                subresource=None, check_rv=check_rv, keep_status=True)

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> Obj | None:
        rt = self._type_of(api_version, kind)
        with self._lock:
            obj = self._objects.get(self._key(rt, namespace if rt.namespaced else None, name))
            return self._out(rt, obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str = "", field_selector: str = "") -> builtins.list[Obj]:
        rt = self._type_of(api_version, kind)
        flt = Filter(rt, namespace, {"labelSelector": label_selector,
                                     "fieldSelector": field_selector})
        with self._lock:
            return [self._out(rt, o) for o in self._select(rt, flt)]

    def versions(self, api_version: str, kind: str) -> dict[tuple[str, str], tuple[str, str]]:
        """{(namespace, name): (uid, resourceVersion)} of every object of a kind, without
        copying objects (for controllers that poll cheaply)."""
        rt = self._type_of(api_version, kind)
        with self._lock:
            return {(k[2], k[3]): (o["metadata"]["uid"], o["metadata"]["resourceVersion"])
                    for k, o in ((k, self._objects[k]) for k in self._by_type.get(rt.key, ()))}

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               *, propagation: str = "Background") -> bool:
        rt = self._type_of(api_version, kind)
        with self._lock:
            key = self._key(rt, namespace if rt.namespaced else None, name)
            if key not in self._objects:
                return False
            self._delete_object(rt, key, propagation)
            return True

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              patch: Any, *, patch_type: str = "merge", manager: str = "test",
              subresource: str | None = None) -> Obj:
        """Patch atomically (no lost update against a concurrent client): `patch_type` is
        "merge", "strategic" or "json"."""
        rt = self._type_of(api_version, kind)
        engines = {"merge": kube_patch.json_merge_patch, "json": kube_patch.json_patch,
                   "strategic": kube_patch.strategic_merge_patch}
        with self._lock:
            ns = namespace if rt.namespaced else None
            live = self._objects.get(self._key(rt, ns, name))
            if live is None:
                raise not_found(rt, name)
            new = engines[patch_type](self._out(rt, live), patch)
            return self._update(rt, ns, name, new, manager=manager, subresource=subresource,
                                check_rv=False)

    def update_status(self, obj: Obj) -> Obj:
        """Write only `obj`'s status (as a controller does through /status)."""
        rt = self._type_of(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        with self._lock:
            return self._update(rt, meta.get("namespace") if rt.namespaced else None,
                                meta["name"], _clone(obj), manager="test",
                                subresource="status", check_rv=False)

    def event(self, involved: Obj, reason: str, message: str, *, type_: str = "Normal",
              component: str = "test") -> Obj:
        """Record a core/v1 Event about `involved` (as a controller's event recorder does,
        aggregating repeats into `count`)."""
        meta = involved["metadata"]
        ns = meta.get("namespace") or "default"
        with self._lock:
            rt = self._type_of("v1", "Event")
            found = self._events.get((ns, meta.get("uid") or "", reason, message, type_))
            ev = self._objects.get(found) if found else None
            if ev is not None:  # the event recorder's aggregation: one Event, count + 1
                updated = _clone(ev)
                updated["count"] = int(ev.get("count", 1)) + 1
                updated["lastTimestamp"] = _now()
                return self._update(rt, ns, ev["metadata"]["name"], updated,
                                    manager=component, subresource=None, check_rv=False)
            now = _now()
            obj = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                             "namespace": ns},
                "involvedObject": {"apiVersion": involved.get("apiVersion"),
                                   "kind": involved.get("kind"), "name": meta["name"],
                                   "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                                   "resourceVersion": meta.get("resourceVersion")},
                "reason": reason, "message": message, "type": type_, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": component}, "reportingComponent": component,
            }
            return self._create(rt, ns, obj, manager=component, keep_status=True)

    def events_for(self, involved: Obj) -> builtins.list[Obj]:
        uid = involved["metadata"].get("uid")
        with self._lock:
            return [_clone(o) for o in self._objects.values()
                    if o.get("kind") == "Event" and o.get("involvedObject", {}).get("uid") == uid]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 interval: float = 0.02) -> Any:
        """Poll `predicate` until it returns something truthy; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            time.sleep(interval)

    # ------------------------------------------------------------------ storage

    @staticmethod
    def _key(rt: ResourceType, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, namespace or "", name)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _out(self, rt: ResourceType, obj: Obj) -> Obj:
        out = _clone(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def _list_item(self, rt: ResourceType, key: tuple[str, str, str, str], obj: Obj) -> bytes:
        """`obj` as an item of a list answer, JSON-encoded once per stored version (as the
        real watch cache keeps each object's serialization, cachingObject): a list of
        thousands of objects joins bytes instead of copying and encoding every object on
        every request. Every write stores a new dict through _store, whose _unindex drops
        the entry (stored objects are never changed in place). Call with the lock held."""
        cached = self._encoded.get(key)
        if cached is not None and cached[0] == rt.api_version:
            return cached[1]
        item = dict(obj)  # what _out gives, without copying what json.dumps only reads
        item["apiVersion"] = rt.api_version
        item["kind"] = rt.kind
        if rt.builtin:  # typed lists carry no per-item kind/apiVersion
            del item["kind"], item["apiVersion"]
        encoded = json.dumps(item).encode()
        self._encoded[key] = (rt.api_version, encoded)
        return encoded

    def _select(self, rt: ResourceType, flt: Filter) -> builtins.list[Obj]:
        return [o for _, o in self._select_keyed(rt, flt)]

    def _select_keyed(self, rt: ResourceType, flt: Filter
                      ) -> builtins.list[tuple[tuple[str, str, str, str], Obj]]:
        """(key, object) of what `flt` selects, by namespace and name (the keys of one
        type differ only there)."""
        keys = sorted(k for k in self._by_type.get(rt.key, ())
                      if flt.namespace is None or k[2] == flt.namespace)
        return [(k, o) for k, o in ((k, self._objects[k]) for k in keys) if flt.matches(o)]

    def _publish(self, type_: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        self.hub.publish(WatchEvent(int(obj["metadata"]["resourceVersion"]), type_, rt.key,
                                    _clone(obj), _clone(old) if old else None))

    def _ensure_namespace(self, rt: ResourceType, ns: str | None) -> None:
        if rt.namespaced:
            if not ns:
                raise ApiError(400, "BadRequest", "the server could not find the requested "
                               "resource (namespace required)")
            if ("", "namespaces", "", ns) not in self._objects:
                raise namespace_not_found(ns)

    def _validate(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        name = meta.get("name", "")
        causes: builtins.list[tuple[str, str]] = []
        check = _LABEL_NAME_RE if rt.key == ("", "namespaces") else _NAME_RE
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif len(name) > 253 or not check.match(name):
            causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                           "subdomain must consist of lower case alphanumeric characters, "
                           "'-' or '.', and must start and end with an alphanumeric character"))
        for label, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63:
                causes.append((f"metadata.labels[{label}]", "Invalid value: must be no more "
                               "than 63 characters"))
        if rt.key in (("", "secrets"), ("", "configmaps")):
            for section in ("data", "binaryData"):
                for data_key, value in (obj.get(section) or {}).items():
                    if not _DATA_KEY_RE.match(data_key):
                        causes.append((f"{section}[{data_key}]", "Invalid value: a valid config "
                                       "key must consist of alphanumeric characters, '-', '_' "
                                       "or '.'"))
                    if rt.key == ("", "secrets") or section == "binaryData":
                        try:
                            base64.b64decode(value or "", validate=True)
                        except (binascii.Error, TypeError):
                            causes.append((f"{section}[{data_key}]",
                                           "Invalid value: illegal base64 data"))
        if causes:
            raise invalid(rt, name, causes)

    def _normalise(self, rt: ResourceType, obj: Obj) -> None:
        """What the real registry strategies do to every written object."""
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if rt.key == ("", "secrets"):
            # pkg/apis/core/v1/conversion.go: stringData is merged into data on write
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.setdefault("data", {}) or {}
                obj["data"] = data
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        if rt.key in _REPLICAS_DEFAULTED and isinstance(obj.get("spec"), dict):
            obj["spec"].setdefault("replicas", 1)
        if rt.key == ("", "namespaces"):
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {})["phase"] = "Active"
            obj["metadata"].setdefault("labels", {})[
                "kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        if not rt.builtin and rt.schema:
            _apply_schema_defaults(obj, rt.schema)

    def _create(self, rt: ResourceType, ns: str | None, obj: Obj, *, manager: str,
                keep_status: bool = False, dry_run: bool = False) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and ns and body_ns != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does "
                               "not match the namespace sent on the request")
            ns = ns or body_ns
            self._ensure_namespace(rt, ns)
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not keep_status and rt.has_status:
            obj.pop("status", None)
        self._normalise(rt, obj)
        self._validate(rt, obj)
        key = self._key(rt, ns, meta["name"])
        if key in self._objects:
            raise already_exists(rt, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        for dropped in ("resourceVersion", "managedFields", "selfLink", "deletionTimestamp"):
            meta.pop(dropped, None)
        if rt.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        owners: dict[tuple[str, str, str], set[FieldPath]] = {}
        paths = {p for p, _ in kube_patch.leaves(obj) if _owned(p, rt.has_status)}
        if paths:
            owners[(manager, "Update", "")] = paths
        if dry_run:
            meta["resourceVersion"] = str(self._rv)
            return self._out(rt, obj)
        meta["resourceVersion"] = str(self._next_rv())
        self._render_managed(obj, owners, rt)
        self._store(key, obj)
        self._owners[key] = owners
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.registry.add_crd(obj)
        self._publish("ADDED", rt, obj, None)
        return self._out(rt, obj)

    def _render_managed(self, obj: Obj, owners: dict[tuple[str, str, str], set[FieldPath]],
                        rt: ResourceType) -> None:
        entries = []
        for (manager, operation, sub), paths in owners.items():
            if not paths:
                continue
            entry: Obj = {"manager": manager, "operation": operation,
                          "apiVersion": rt.api_version, "time": _now(),
                          "fieldsType": "FieldsV1", "fieldsV1": kube_patch.fields_v1(paths)}
            if sub:
                entry["subresource"] = sub
            entries.append(entry)
        if entries:
            obj["metadata"]["managedFields"] = entries
        else:
            obj["metadata"].pop("managedFields", None)

    def _merge_subresource(self, rt: ResourceType, old: Obj, new: Obj,
                           subresource: str | None, keep_status: bool) -> Obj:
        if subresource == "status":
            merged = _clone(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if rt.has_status and not keep_status:
            if "status" in old:
                new["status"] = _clone(old["status"])
            else:
                new.pop("status", None)
        return new

    def _update(self, rt: ResourceType, ns: str | None, name: str, new: Obj, *, manager: str,
                subresource: str | None, check_rv: bool = True, keep_status: bool = False,
                dry_run: bool = False, owners: dict[tuple[str, str, str], set[FieldPath]]
                | None = None) -> Obj:
        key = self._key(rt, ns, name)
        old = self._objects.get(key)
        if old is None:
            raise not_found(rt, name)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object "
                           f"({meta.get('name')}) does not match the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        sent_rv = meta.get("resourceVersion")
        if check_rv and sent_rv and str(sent_rv) != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new = self._merge_subresource(rt, old, new, subresource, keep_status)
        meta = new.setdefault("metadata", {})
        for frozen in ("uid", "creationTimestamp", "generation"):
            if frozen in old["metadata"]:
                meta[frozen] = old["metadata"][frozen]
            else:
                meta.pop(frozen, None)
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        self._normalise(rt, new)
        self._validate(rt, new)
        if rt.key == ("", "secrets") and old.get("immutable") and (
                new.get("data") != old.get("data") or new.get("immutable") is not True):
            raise invalid(rt, name, [("data", "Forbidden: field is immutable when "
                                          "`immutable` is set")])
        if rt.tracks_generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if owners is None:
            owners = self._owners_after_update(key, rt, old, new, manager, subresource)
        if (_strip_for_compare(new) == _strip_for_compare(old)
                and owners == self._owners.get(key, {})):
            return self._out(rt, old)  # nothing changed: no write, no new resourceVersion
        if dry_run:
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self._out(rt, new)
        meta["resourceVersion"] = str(self._next_rv())
        self._render_managed(new, owners, rt)
        self._store(key, new)
        self._owners[key] = owners
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.registry.add_crd(new)
        self._publish("MODIFIED", rt, new, old)
        return self._out(rt, new)

    def _owners_after_update(self, key: tuple[str, str, str, str], rt: ResourceType,
                             old: Obj, new: Obj, manager: str, subresource: str | None
                             ) -> dict[tuple[str, str, str], set[FieldPath]]:
        has_status = rt.has_status and subresource != "status"
        old_leaves = {p: v for p, v in kube_patch.leaves(old) if _owned(p, False)}
        new_leaves = {p: v for p, v in kube_patch.leaves(new) if _owned(p, False)}
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, object()) != v}
        removed = set(old_leaves) - set(new_leaves)
        if has_status:
            changed = {p for p in changed if p[:1] != ("status",)}
        owners = {k: set(v) for k, v in self._owners.get(key, {}).items()}
        for paths in owners.values():
            paths -= changed
            paths -= removed
        if changed:
            owners.setdefault((manager, "Update", subresource or ""), set()).update(changed)
        return {k: v for k, v in owners.items() if v}

    def _delete_object(self, rt: ResourceType, key: tuple[str, str, str, str],
                       propagation: str = "Background") -> Obj:
        obj = self._objects.pop(key)
        self._unindex(key, obj)
        self._owners.pop(key, None)
        meta = obj["metadata"]
        deleted = _clone(obj)
        deleted["metadata"]["resourceVersion"] = str(self._next_rv())
        self._publish("DELETED", rt, deleted, obj)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            spec = obj.get("spec") or {}
            plural = (spec.get("names") or {}).get("plural", "")
            for crt in self.registry.by_group_resource(spec.get("group", ""), plural)[:1]:
                for okey in [k for k in self._objects if k[:2] == crt.key]:
                    self._delete_object(crt, okey)
            self.registry.remove_group_resource(spec.get("group", ""), plural)
        if rt.key == ("", "namespaces"):
            for okey in [k for k in self._objects if k[2] == meta["name"]]:
                if okey in self._objects:
                    self._delete_object(self._rt_for_key(okey), okey)
        self._collect_garbage(meta.get("uid"), propagation)
        return deleted

    def _rt_for_key(self, key: tuple[str, str, str, str]) -> ResourceType:
        return self.registry.by_group_resource(key[0], key[1])[0]

    def _store(self, key: tuple[str, str, str, str], obj: Obj) -> None:
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self._objects[key] = obj
        self._by_type.setdefault(key[:2], set()).add(key)
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(key)
        if obj.get("kind") == "Event":
            self._events[_event_key(obj)] = key

    def _unindex(self, key: tuple[str, str, str, str], obj: Obj) -> None:
        self._by_type.get(key[:2], set()).discard(key)
        self._encoded.pop(key, None)  # written or deleted: its encoding is stale
        for ref in obj["metadata"].get("ownerReferences") or []:
            keys = self._dependents.get(ref.get("uid", ""))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._dependents[ref.get("uid", "")]
        if obj.get("kind") == "Event":
            self._events.pop(_event_key(obj), None)

    def owned_by(self, uid: str, api_version: str | None = None,
                 kind: str | None = None) -> builtins.list[Obj]:
        """Objects with an ownerReference to `uid` (an index: no scan of the store)."""
        with self._lock:
            out = []
            for key in sorted(self._dependents.get(uid, ())):
                obj = self._objects.get(key)
                if obj is None or (kind is not None and obj.get("kind") != kind):
                    continue
                rt = self._rt_for_key(key)
                if api_version is None or rt.api_version == api_version:
                    out.append(self._out(rt, obj))
            return out

    def owned_versions(self, uid: str) -> builtins.list[tuple[str, str]]:
        """(uid, resourceVersion) of the objects owned by `uid`, without copying them."""
        with self._lock:
            out = []
            for key in sorted(self._dependents.get(uid, ())):
                meta = (self._objects.get(key) or {}).get("metadata")
                if meta:
                    out.append((meta["uid"], meta["resourceVersion"]))
            return out

    def _collect_garbage(self, owner_uid: str | None, propagation: str) -> None:
        """Dependents of a deleted owner (k8s.io/kubernetes pkg/controller/garbagecollector):
        deleted when no owner remains, else the dangling reference is dropped; Orphan
        propagation only drops the reference."""
        if not owner_uid:
            return
        dependents = sorted(self._dependents.get(owner_uid, ()))
        if not dependents:
            return
        live_uids = {o["metadata"].get("uid") for o in self._objects.values()}
        for key in dependents:
            obj = self._objects.get(key)
            if obj is None:
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != owner_uid]
            if propagation == "Orphan" or any(r.get("uid") in live_uids for r in remaining):
                updated = _clone(obj)
                if remaining:
                    updated["metadata"]["ownerReferences"] = remaining
                else:
                    updated["metadata"].pop("ownerReferences", None)
                rt = self._rt_for_key(key)
                self._update(rt, key[2] or None, key[3], updated, manager="garbage-collector",
                             subresource=None, check_rv=False, keep_status=True)
            else:
                self._delete_object(self._rt_for_key(key), key, propagation)

    # ------------------------------------------------------------------ server-side apply

    def _apply(self, rt: ResourceType, ns: str | None, name: str, applied: Obj, manager: str,
               force: bool, subresource: str | None, dry_run: bool) -> tuple[int, Obj]:
        if not isinstance(applied, dict):
            raise ApiError(400, "BadRequest", "apply patch must be an object")
        if not manager:
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                           "fieldManager: Required value: is required for apply patch")
        api_version, kind = applied.get("apiVersion"), applied.get("kind")
        if api_version != rt.api_version or kind != rt.kind:
            raise ApiError(400, "BadRequest", f"apply patch apiVersion/kind ({api_version}/"
                           f"{kind}) does not match the URL ({rt.api_version}/{rt.kind})")
        meta = applied.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        key = self._key(rt, ns, name)
        live = self._objects.get(key)
        status_only = subresource == "status"
        # through /status only status is applied; on the main resource of a kind with a
        # status subresource, status is ignored
        applied_paths = {p for p, _ in kube_patch.leaves(applied)
                         if _owned(p, False)
                         and ((p[:1] == ("status",)) if status_only
                              else (p[:1] != ("status",) or not rt.has_status))}
        me = (manager, "Apply", subresource or "")
        if live is None:
            if status_only:
                raise not_found(rt, name)
            meta["name"] = name
            created = self._create(rt, ns, _clone(applied), manager=manager,
                                   dry_run=dry_run)
            if not dry_run:
                self._owners[key] = {me: applied_paths}
                stored = _clone(self._objects[key])  # stored objects are replaced, never
                self._render_managed(stored, self._owners[key], rt)  # changed (_list_item)
                self._store(key, stored)
                created = self._out(rt, stored)
            return 201, created
        owners = {k: set(v) for k, v in self._owners.get(key, {}).items()}
        conflicts: builtins.list[tuple[str, FieldPath]] = []
        for other, paths in owners.items():
            if other == me:
                continue
            for path in applied_paths & paths:
                found, live_value = kube_patch.get_path(live, path)
                _, new_value = kube_patch.get_path(applied, path)
                if found and live_value != new_value:
                    conflicts.append((other[0], path))
        if conflicts and not force:
            lines = [f'conflict with "{m}": .{_dotted(p)}' for m, p in conflicts]
            plural = "conflict" if len(conflicts) == 1 else "conflicts"
            raise ApiError(409, "Conflict",
                           f"Apply failed with {len(conflicts)} {plural}: " + "\n".join(lines),
                           details={"name": name, "group": rt.group, "kind": rt.plural,
                                    "causes": [{"reason": "FieldManagerConflict",
                                                "message": f'conflict with "{m}"',
                                                "field": "." + _dotted(p)}
                                               for m, p in conflicts]})
        for other_manager, path in conflicts:  # force: the field changes hands
            for k, paths in owners.items():
                if k[0] == other_manager:
                    paths.discard(path)
        previous = owners.get(me, set())
        others_paths = set().union(*(v for k, v in owners.items() if k != me)) if owners else set()
        new = kube_patch.apply_merge(live, {k: v for k, v in applied.items()
                                            if k not in ("apiVersion", "kind")})
        new.setdefault("metadata", {})
        for stale in sorted(previous - applied_paths - others_paths, key=len, reverse=True):
            kube_patch.remove_path(new, stale)
        owners[me] = applied_paths
        owners = {k: v for k, v in owners.items() if v}
        new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        out = self._update(rt, ns, name, new, manager=manager, subresource=subresource,
                           check_rv=False, dry_run=dry_run, owners=owners)
        return 200, out

    # ------------------------------------------------------------------ HTTP entry point

    def _handle(self, method: str, target: str, headers: Any, body: bytes) -> _Response:
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        user_agent = headers.get("User-Agent") or ""
        verb = method.lower()
        with self._lock:
            delay = self._delay
        if delay:
            time.sleep(delay)
        try:
            auth = headers.get("Authorization") or ""
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or token.strip() != self.token:
                verb = _http_verb(method)
                raise ApiError(401, "Unauthorized", "Unauthorized")
            route = self._route(method, path, query)
            if isinstance(route, _Response):
                verb = "get"
                resp = route
            else:
                verb = route.verb
                resp = self._serve(route, query, headers, body, content_type, user_agent)
        except ApiError as err:
            resp = _Response(err.code, err.status())
            if err.code == 429:
                resp.headers["Retry-After"] = "1"
        except PatchError as err:
            code = err.status
            resp = _Response(code, ApiError(code, "Invalid" if code == 422 else "BadRequest",
                                            str(err)).status())
        except Exception:  # pragma: no cover - a bug in the fake: make it loud
            traceback.print_exc(file=sys.stderr)
            resp = _Response(500, ApiError(500, "InternalError",
                                           traceback.format_exc()).status())
        self._log.append(ApiRequest(verb, split.path, split.query, resp.status,
                                    content_type, user_agent))
        return resp

    def _route(self, method: str, path: str, query: dict[str, str]) -> _Route | _Response:
        parts = [p for p in path.split("/") if p]
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self._openapi_v3(path)
        if path == "/version":
            return _Response(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake",
                                   "gitCommit": "0" * 40, "gitTreeState": "clean",
                                   "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25",
                                   "compiler": "gc", "platform": "linux/amd64"})
        if path in ("/healthz", "/readyz", "/livez"):
            return _Response(200, None)
        if path == "/api":
            return _Response(200, {"kind": "APIVersions", "versions": ["v1"],
                                   "serverAddressByClientCIDRs": [
                                       {"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": f"127.0.0.1:{self.port}"}]})
        if path == "/apis":
            with self._lock:
                groups = [self._api_group(g, vs) for g, vs in sorted(self.registry.groups()
                                                                     .items())]
            return _Response(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                   "groups": groups})
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
            if version != "v1":
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource")
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            group = parts[1]
            with self._lock:
                versions = self.registry.groups().get(group)
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource")
            if len(parts) == 2:
                return _Response(200, self._api_group(group, versions) | {
                    "kind": "APIGroup", "apiVersion": "v1"})
            version, rest = parts[2], parts[3:]
            if version not in versions:
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource")
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            with self._lock:
                resources = [d for rt in self.registry.in_group_version(group, version)
                             for d in rt.discovery()]
            return _Response(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                   "groupVersion": f"{group}/{version}" if group else version,
                                   "resources": resources})
        return self._resource_route(method, group, version, rest, query)

    def _openapi_v3(self, path: str) -> _Response:
        """Just enough OpenAPI v3 for kubectl to see that every kind takes the
        ``fieldValidation`` query parameter (k8s.io/cli-runtime resource
        QueryParamVerifierV3): kubectl then validates on the server (fieldValidation=Strict)
        instead of downloading schemas. No schemas are served."""
        with self._lock:
            gvs = sorted({(rt.group, rt.version) for rt in self.registry._types.values()})
            if path == "/openapi/v3":
                paths = {}
                for group, version in gvs:
                    name = f"apis/{group}/{version}" if group else f"api/{version}"
                    paths[name] = {"serverRelativeURL": f"/openapi/v3/{name}?hash=fake"}
                return _Response(200, {"paths": paths})
            parts = path[len("/openapi/v3/"):].split("/")
            group, version = (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 \
                else ("", parts[1] if len(parts) == 2 else "")
            types = self.registry.in_group_version(group, version)
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        doc_paths: Obj = {}
        for rt in types:
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            scope = "/namespaces/{namespace}" if rt.namespaced else ""
            doc_paths[f"{prefix}{scope}/{rt.plural}/{{name}}"] = {"patch": {
                "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                    "kind": rt.kind},
                "parameters": [{"name": "fieldValidation", "in": "query",
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}}}}
        return _Response(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes (fake)",
                                                             "version": "v1.37.0"},
                               "paths": doc_paths, "components": {"schemas": {}}})

    def _api_group(self, group: str, versions: builtins.list[str]) -> Obj:
        ordered = sorted(versions, key=lambda v: (v != "v1", v))
        return {"name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered],
                "preferredVersion": {"groupVersion": f"{group}/{ordered[0]}",
                                     "version": ordered[0]}}

    def _resource_route(self, method: str, group: str, version: str, rest: builtins.list[str],
                        query: dict[str, str]) -> _Route:
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        with self._lock:
            rt = self.registry.find(group, version, rest[0])
        if rt is None or (ns is not None and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) >= 3 else None
        if len(rest) > 3 or (sub is not None and (sub != "status" or not rt.has_status)):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is not None and rt.namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            if name is not None:
                verb = "get"
            else:
                verb = "watch" if query.get("watch") in ("true", "1") else "list"
        elif method == "POST" and name is None:
            verb = "create"
        elif method == "PUT" and name is not None:
            verb = "update"
        elif method == "PATCH" and name is not None:
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name is not None else "deletecollection"
        else:
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        return _Route(verb, rt, ns, name, sub)

    def _check_faults(self, route: _Route) -> None:
        resource = route.rt.plural + (f"/{route.sub}" if route.sub else "")
        with self._lock:
            for verb, res, ns in self._denied:
                if (verb in ("*", route.verb) and res in ("*", resource, route.rt.plural)
                        and (ns is None or ns == route.ns)):
                    raise forbidden(self.user, route.verb, resource, route.rt.group, route.ns,
                                    route.name)
            for fault in self._faults:
                if (fault.verb in ("*", route.verb) and fault.resource in ("*", resource)
                        and (fault.namespace is None or fault.namespace == route.ns)):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    raise _fault_error(fault.status, route)

    def _serve(self, route: _Route, query: dict[str, str], headers: Any, body: bytes,
               content_type: str, user_agent: str) -> _Response:
        self._check_faults(route)
        rt, ns, name = route.rt, route.ns, route.name
        dry_run = query.get("dryRun") == "All"
        manager = query.get("fieldManager") or _default_manager(user_agent)
        if route.verb == "get":
            with self._lock:
                obj = self._objects.get(self._key(rt, ns, name or ""))
                if obj is None:
                    raise not_found(rt, name or "")
                return _Response(200, self._out(rt, obj))
        if route.verb == "list":
            return self._list_response(rt, ns, query, headers)
        if route.verb == "watch":
            flt = Filter(rt, ns, query)
            return _Response(200, stream=self._watch(rt, flt, query))
        payload = _parse_body(body, content_type) if route.verb != "delete" else (
            _parse_body(body, "application/json") if body else None)
        with self._lock:
            if route.verb == "create":
                if not isinstance(payload, dict):
                    raise ApiError(400, "BadRequest", "the request body must be an object")
                warnings = _field_validation(rt, payload, query)
                return _warn(_Response(201, self._create(rt, ns, payload, manager=manager,
                                                         dry_run=dry_run)), warnings)
            if route.verb == "update":
                if not isinstance(payload, dict):
                    raise ApiError(400, "BadRequest", "the request body must be an object")
                warnings = _field_validation(rt, payload, query)
                return _warn(_Response(200, self._update(
                    rt, ns, name or "", payload, manager=manager, subresource=route.sub,
                    dry_run=dry_run)), warnings)
            if route.verb == "patch":
                return self._patch(route, payload, content_type, query, manager, dry_run)
            if route.verb == "delete":
                return self._delete_request(route, payload, query, dry_run)
            if route.verb == "deletecollection":
                flt = Filter(rt, ns, query)
                victims = self._select(rt, flt)
                out = []
                for obj in victims:
                    key = self._key(rt, ns if rt.namespaced else None, obj["metadata"]["name"])
                    if key in self._objects and not dry_run:
                        out.append(self._out(rt, self._delete_object(rt, key)))
                return _Response(200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                                       "metadata": {"resourceVersion": str(self._rv)},
                                       "items": out})
        raise ApiError(405, "MethodNotAllowed", "method not allowed")

    def _patch(self, route: _Route, patch: Any, content_type: str, query: dict[str, str],
               manager: str, dry_run: bool) -> _Response:
        rt, ns, name = route.rt, route.ns, route.name or ""
        if content_type == "application/apply-patch+yaml":
            force = query.get("force") in ("true", "1")
            warnings = _field_validation(rt, patch, query) if isinstance(patch, dict) else []
            code, out = self._apply(rt, ns, name, patch, query.get("fieldManager", ""), force,
                                    route.sub, dry_run)
            return _warn(_Response(code, out), warnings)
        key = self._key(rt, ns, name)
        live = self._objects.get(key)
        if live is None:
            raise not_found(rt, name)
        current = self._out(rt, live)
        if content_type == "application/merge-patch+json":
            new = kube_patch.json_merge_patch(current, patch)
        elif content_type == "application/json-patch+json":
            new = kube_patch.json_patch(current, patch)
        elif content_type == "application/strategic-merge-patch+json":
            if not rt.builtin:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted "
                               "media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/apply-patch+yaml")
            new = kube_patch.strategic_merge_patch(current, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: application/json-patch+json, application/merge-"
                           "patch+json, application/apply-patch+yaml, "
                           "application/strategic-merge-patch+json")
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        warnings = _field_validation(rt, new, query)
        new_meta = new.get("metadata") or {}
        if not isinstance(new_meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        # a resourceVersion in the patch is a precondition
        patch_meta = patch.get("metadata") if isinstance(patch, dict) else None
        check_rv = isinstance(patch_meta, dict) and "resourceVersion" in patch_meta
        if not check_rv:
            new_meta["resourceVersion"] = live["metadata"]["resourceVersion"]
        return _warn(_Response(200, self._update(rt, ns, name, new, manager=manager,
                                                 subresource=route.sub, check_rv=True,
                                                 dry_run=dry_run)), warnings)

    def _delete_request(self, route: _Route, options: Any, query: dict[str, str],
                        dry_run: bool) -> _Response:
        rt, ns, name = route.rt, route.ns, route.name or ""
        key = self._key(rt, ns, name)
        obj = self._objects.get(key)
        if obj is None:
            raise not_found(rt, name)
        options = options if isinstance(options, dict) else {}
        pre = options.get("preconditions") or {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"][
                "resourceVersion"]:
            raise conflict(rt, name)
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise conflict(rt, name)
        propagation = (options.get("propagationPolicy") or query.get("propagationPolicy")
                       or ("Orphan" if options.get("orphanDependents") else "Background"))
        if dry_run or options.get("dryRun") == ["All"]:
            return _Response(200, self._out(rt, obj))
        deleted = self._delete_object(rt, key, propagation)
        if not rt.builtin:
            return _Response(200, self._out(rt, deleted))
        return _Response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Success",
                               "details": {"name": name, "group": rt.group, "kind": rt.plural,
                                           "uid": obj["metadata"]["uid"]}})

    # ------------------------------------------------------------------ list / table / watch

    def _list_response(self, rt: ResourceType, ns: str | None, query: dict[str, str],
                       headers: Any) -> _Response:
        flt = Filter(rt, ns, query)
        start = 0
        token = query.get("continue")
        if token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
            except (ValueError, KeyError, binascii.Error) as exc:
                raise ApiError(400, "BadRequest", "invalid continue token") from exc
        limit = int(query.get("limit") or 0)
        table = "as=Table" in (headers.get("Accept") or "")
        with self._lock:
            items = self._select_keyed(rt, flt)
            rv = str(self._rv)
            page = items[start:start + limit] if limit > 0 else items[start:]
            encoded = [] if table else [self._list_item(rt, k, o) for k, o in page]
        meta: Obj = {"resourceVersion": rv}
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        if table:
            return _Response(200, self._table(rt, [o for _, o in page], meta,
                                              query.get("includeObject", "Metadata")))
        # byte for byte what json.dumps gives for the whole list, items included
        head = json.dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                           "metadata": meta}).encode()
        return _Response(200, raw=head[:-1] + b', "items": [' + b", ".join(encoded) + b"]}")

    def _table(self, rt: ResourceType, objs: builtins.list[Obj], meta: Obj, include: str) -> Obj:
        columns: builtins.list[Obj] = [{"name": "Name", "type": "string", "format": "name",
                               "description": "Name", "priority": 0}]
        builtin = BUILTIN_COLUMNS.get(rt.key, ()) if rt.builtin else ()
        columns += [{"name": name, "type": "string", "format": "", "description": name,
                     "priority": 0} for name, _ in builtin]
        columns += [{"name": c["name"], "type": c.get("type", "string"), "format": "",
                     "description": c.get("description", ""), "priority": c.get("priority", 0)}
                    for c in rt.printer_columns]
        columns.append({"name": "Age", "type": "string", "format": "",
                        "description": "Age", "priority": 0})
        rows = []
        for obj in objs:
            cells: builtins.list[Any] = [obj["metadata"]["name"]]
            cells += [cell(obj) for _, cell in builtin]
            cells += [_jsonpath(obj, c.get("jsonPath", "")) for c in rt.printer_columns]
            cells.append(_age(obj["metadata"].get("creationTimestamp")))
            if include == "Object":
                row_obj = self._out(rt, obj)
            elif include == "None":
                row_obj = None
            else:
                row_obj = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": _clone(obj["metadata"])}
            rows.append({"cells": cells, "object": row_obj})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": columns, "rows": rows}

    def _watch(self, rt: ResourceType, flt: Filter, query: dict[str, str]) -> Iterator[bytes]:
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial = query.get("sendInitialEvents") in ("true", "1")
        rv_param = query.get("resourceVersion", "")
        with self._lock:
            current = self._rv
            snapshot = [self._out(rt, o) for o in self._select(rt, flt)]
        deadline = time.monotonic() + timeout

        def line(type_: str, obj: Obj) -> bytes:
            return json.dumps({"type": type_, "object": obj}).encode() + b"\n"

        def bookmark(rv: int, initial_end: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return line("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                     "metadata": meta})

        def stream() -> Iterator[bytes]:
            last = current
            if initial or rv_param in ("", "0"):
                for obj in snapshot:
                    yield line("ADDED", obj)
                if initial and bookmarks:
                    yield bookmark(current, initial_end=True)
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    yield line("ERROR", ApiError(400, "BadRequest",
                                                 "invalid resourceVersion").status())
                    return
                if last < self.hub.first_rv:
                    yield line("ERROR", ApiError(
                        410, "Expired", f"too old resource version: {last} "
                        f"({self.hub.first_rv})").status())
                    return
            last_bookmark = time.monotonic()
            while not self._stopping.is_set() and time.monotonic() < deadline:
                events = self.hub.since(last)
                for ev in events:
                    last = ev.rv
                    if ev.key != rt.key:
                        continue
                    now_match = ev.type != "DELETED" and flt.matches(ev.obj)
                    was_match = flt.matches(ev.old) if ev.old is not None else False
                    if ev.type == "DELETED":
                        if was_match:
                            yield line("DELETED", self._out(rt, ev.obj))
                    elif now_match and (was_match or ev.type == "ADDED"):
                        yield line(ev.type, self._out(rt, ev.obj))
                    elif now_match:
                        yield line("ADDED", self._out(rt, ev.obj))
                    elif was_match:
                        yield line("DELETED", self._out(rt, ev.obj))
                if events:
                    continue
                if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval:
                    last_bookmark = time.monotonic()
                    yield bookmark(last)
                with self.hub.cond:
                    if not self.hub.since(last) and not self._stopping.is_set():
                        self.hub.cond.wait(timeout=0.1)

        return stream()


@dataclass
class _Route:
    verb: str
    rt: ResourceType
    ns: str | None
    name: str | None
    sub: str | None


def _unknown_fields(obj: Any, schema: Obj | None, path: str) -> list[str]:
    """Remove from `obj` the fields its structural schema does not declare; return their
    paths (apiextensions-apiserver pkg/apiserver/schema/pruning). The project's derived
    schemas mark closed objects with ``additionalProperties: false`` (their
    ``x-kubernetes-preserve-unknown-fields`` objects have none)."""
    if not schema:
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        closed = schema.get("additionalProperties") is False and not schema.get(
            "x-kubernetes-preserve-unknown-fields")
        for name in list(obj):
            sub = f"{path}.{name}" if path else name
            if name in props:
                found += _unknown_fields(obj[name], props[name], sub)
            elif closed:
                del obj[name]
                found.append(sub)
            elif isinstance(schema.get("additionalProperties"), dict):
                found += _unknown_fields(obj[name], schema["additionalProperties"], sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def _field_validation(rt: ResourceType, obj: Obj, query: dict[str, str]) -> list[str]:
    """Pruning of unknown fields of a custom resource and the ``fieldValidation`` query
    parameter: Strict answers 400, Warn (the default) prunes with a warning, Ignore prunes."""
    if rt.builtin or not rt.schema:
        return []
    schema = {**rt.schema, "properties": {k: v for k, v in (rt.schema.get("properties") or {})
                                          .items() if k != "metadata"}}
    unknown = sorted(_unknown_fields({k: v for k, v in obj.items() if k != "metadata"},
                                     schema, ""))
    for field_path in unknown:  # the copy above shares the nested dicts: prune obj itself
        top = field_path.split(".")[0].split("[")[0]
        if "." not in field_path and "[" not in field_path:
            obj.pop(top, None)
    mode = query.get("fieldValidation") or "Warn"
    if unknown and mode == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise ApiError(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be '
                       f"handled as a {rt.kind}: strict decoding error: {listed}")
    return [f'unknown field "{f}"' for f in unknown] if mode == "Warn" else []


def _warn(resp: _Response, warnings: list[str]) -> _Response:
    if warnings:
        resp.headers["Warning"] = ", ".join(
            '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
    return resp


def _event_key(event: Obj) -> tuple[str, str, str, str, str]:
    return (event["metadata"].get("namespace", ""),
            (event.get("involvedObject") or {}).get("uid") or "", event.get("reason", ""),
            event.get("message", ""), event.get("type", ""))


def _http_verb(method: str) -> str:
    return {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}.get(method, method.lower())


def _default_manager(user_agent: str) -> str:
    # k8s.io/apiserver pkg/endpoints/handlers/rest.go: the user agent up to the first "/"
    match = _USER_AGENT_MANAGER.match(user_agent)
    return match.group(1)[:128] if match else "unknown"


def _fault_error(status: int, route: _Route) -> ApiError:
    rt, name = route.rt, route.name or ""
    if status == 409:
        return conflict(rt, name)
    if status == 404:
        return not_found(rt, name)
    if status == 403:
        return ApiError(403, "Forbidden", "injected 403")
    if status == 429:
        return ApiError(429, "TooManyRequests", "the server has received too many requests "
                        "and has asked us to try again later")
    if status == 503:
        return ApiError(503, "ServiceUnavailable", "the server is currently unable to handle "
                        "the request")
    if status == 504:
        return ApiError(504, "Timeout", "the server was unable to return a response in the "
                        "time allotted, but may still be processing the request")
    return ApiError(status, "InternalError", "an error on the server (\"injected fault\") has "
                    "prevented the request from succeeding")


def _dotted(path: FieldPath) -> str:
    out = []
    for seg in path:
        if isinstance(seg, tuple):
            out.append("[" + ",".join(f"{k}=\"{v}\"" for k, v in seg[1]) + "]")
        else:
            out.append(seg)
    return ".".join(out).replace(".[", "[")


def _jsonpath(obj: Obj, expr: str) -> Any:
    """The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`."""
    cur: list[Any] = [obj]
    for token in re.findall(r'\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.(\w+)=="([^"]*)"\)\]', expr):
        name, index, fkey, fvalue = token
        nxt: list[Any] = []
        for value in cur:
            if name and isinstance(value, dict) and name in value:
                nxt.append(value[name])
            elif index and isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
            elif fkey and isinstance(value, list):
                nxt += [i for i in value if isinstance(i, dict) and str(i.get(fkey)) == fvalue]
        cur = nxt
    if not cur:
        return None
    return cur[0] if not isinstance(cur[0], (dict, list)) else json.dumps(cur[0])
