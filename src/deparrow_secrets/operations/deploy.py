"""Deploy: apply an environment's objects to the cluster and prove that every value arrived.

plan_deploy: the objects come from the same rendering that writes the committed tree
(refused when `render --check` would fail); a dry run asks the API server what would
change (server-side apply with dryRun=All). apply_deploy: server-side apply with field
manager `deparrow-secrets`, in dependency order. wait_for_sync: polls until every
ExternalSecret is Ready for its current generation and every target Secret's data hash
equals the hash of the store's values (CLUSTER.md: Ready alone can be the previous
sync). In dev (no ESO) the Secrets of the secretGenerator are applied directly.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import (
    ESO_GROUP,
    EXTERNAL_SECRET,
    NAMESPACE,
    SECRET,
    KubeClient,
    Obj,
    SecretDigest,
    kind_of,
)
from deparrow_secrets.cluster.expected import ExpectedSecret, environment_secrets
from deparrow_secrets.cluster.state import ClusterState, by_name, is_ready, require_namespace
from deparrow_secrets.cluster.sync import SecretSync, compare
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import DeparrowError, NotConvergedError
from deparrow_secrets.project import Project
from deparrow_secrets.stores.interface import SecretStore

FORCE_SYNC_ANNOTATION = "force-sync"  # the documented idiom (CLUSTER.md)
VOLATILE_META = ("resourceVersion", "managedFields", "generation", "uid",
                 "creationTimestamp", "selfLink")


class TreeOutOfDateError(DeparrowError):
    """The committed tree differs from the configuration: deploy would apply other objects."""


@dataclass
class ObjectChange:
    kind: str
    name: str
    action: str  # create | update | unchanged
    fields: list[str] = field(default_factory=list)  # changed field paths (never values)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class DeployPlan:
    environment: str
    namespace: str
    dry_run: bool
    refs: list[tuple[str, str]]  # (kind, name) of what will be applied, in order
    changes: list[ObjectChange] = field(default_factory=list)


@dataclass
class DeployResult:
    plan: DeployPlan
    changes: list[ObjectChange] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # ExternalSecrets annotated force-sync
    secrets: list[SecretSync] = field(default_factory=list)
    converged: bool = False
    waited: float = 0.0
    api_calls: int = 0

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes) or bool(self.forced)

    def to_json(self, context: str, applied: bool) -> dict[str, Any]:
        from deparrow_secrets.operations.reports import camel_dict

        return {"environment": self.plan.environment, "namespace": self.plan.namespace,
                "context": context, "dryRun": self.plan.dry_run, "applied": applied,
                "changes": [camel_dict(c) for c in self.changes],
                "forcedSync": self.forced, "converged": self.converged,
                "secrets": [{"name": s.name, "externalSecret": s.external_secret,
                             "synced": s.converged, "lastSync": s.last_sync or None}
                            for s in self.secrets],
                "waitedSeconds": round(self.waited, 2), "apiCalls": self.api_calls}

    def text_lines(self, context: str, applied: bool, waited: bool) -> list[str]:
        """What `deploy` prints: each object's change, each forced sync, a summary."""
        lines = []
        for c in self.changes:
            fields = f" ({', '.join(c.fields[:6])}{', ...' if len(c.fields) > 6 else ''})" \
                if c.fields else ""
            lines.append(f"{c.action:9} {c.ref}{fields}")
        lines += [f"force-sync ExternalSecret/{name}" for name in self.forced]
        changed = sum(1 for c in self.changes if c.action != "unchanged")
        verb = "would change" if self.plan.dry_run else "changed"
        summary = f"{self.plan.environment} ({context}, namespace {self.plan.namespace}): "
        if applied:
            summary += f"{verb} {changed} of {len(self.changes)} object(s)"
        if waited and not self.plan.dry_run:
            summary += ("; " if applied else "") + \
                f"{len(self.secrets)} Secret(s) synced and verified by hash in " \
                f"{self.waited:.1f}s"
        return [*lines, summary + f" ({self.api_calls} API calls)"]


# --------------------------------------------------------------------------- objects


def check_tree_current(project: Project) -> None:
    from deparrow_secrets.render.tree import check_tree, render_tree

    diff = check_tree(project.config.manifests_dir, render_tree(project.config,
                                                                 project.catalog))
    if not diff.clean:
        paths = diff.missing + diff.changed + diff.stale
        raise TreeOutOfDateError(
            f"{project.config.manifests_dir} is out of date with the configuration "
            f"({len(paths)} file(s): {', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})",
            hint="run `deparrow-secrets render` and commit the result; deploy applies "
                 "exactly what the committed tree holds")


def eso_objects(project: Project, env: EnvironmentConfig) -> list[Obj]:
    """The objects of the environment's overlay, as `render` writes them, namespace first."""
    from deparrow_secrets.render import manifests

    return ([manifests.namespace_object(project.config)]
            + manifests.eso_objects(project.config, project.catalog, env))


@contextmanager
def dev_objects(project: Project, env: EnvironmentConfig,
                store: SecretStore) -> Iterator[list[Obj]]:
    """The dev overlay's output (namespace + secretGenerator Secrets) from the store.

    Same objects `kubectl kustomize overlays/dev` builds from the exported env files
    (names without hash suffix, generatorOptions labels, Opaque), made in memory so no
    value is written to disk; the data is wiped when the block ends.
    """
    from deparrow_secrets.render import manifests

    config = project.config
    layout = project.layout(env)
    read = layout.read(store, [v.name for v in layout.needed()])
    missing = sorted(k for k, r in read.items() if r.value is None)
    if missing:
        raise NotConvergedError(
            "the store lacks " + ", ".join(missing),
            hint=f"run `deparrow-secrets provision --env {env.name}` first")
    generator = manifests.generator_kustomization(config, project.catalog, env)
    labels = dict(generator["generatorOptions"]["labels"])
    objs: list[Obj] = [manifests.namespace_object(config)]
    for secret in environment_secrets(project, env):
        keys = project.catalog.secret_keys(secret, env.ha, env.optional_keys)
        data = {}
        for k in keys:
            value = read[k].value
            assert value is not None
            data[k] = base64.b64encode(value.reveal().encode()).decode()
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": secret.name, "namespace": config.namespace,
                                  "labels": dict(labels)},
                     "data": data})
    try:
        yield objs
    finally:
        for obj in objs:
            obj.pop("data", None)


# --------------------------------------------------------------------------- plan / apply


def _current(client: KubeClient, objs: list[Obj]) -> dict[tuple[str, str], Obj]:
    """The live version of every object about to be applied: one list per kind."""
    out: dict[tuple[str, str], Obj] = {}
    seen: set[tuple[str, str | None]] = set()
    for obj in objs:
        kind = kind_of(obj)
        meta = obj["metadata"]
        ns = meta.get("namespace") if kind.namespaced else None
        if (kind.kind, ns) in seen:
            continue
        seen.add((kind.kind, ns))
        if kind is NAMESPACE or not kind.namespaced:
            # Cluster-scoped: one get each (a fixed number: namespace, binding).
            for o in objs:
                if o["kind"] == kind.kind:
                    got = client.get(kind, o["metadata"]["name"])
                    if got is not None:
                        out[(kind.kind, o["metadata"]["name"])] = got
            continue
        if kind is SECRET:
            continue  # compared by digest in apply, never listed with data here
        for live in client.list_objects(kind, ns):
            out[(kind.kind, live["metadata"]["name"])] = live
    return out


def _normalized(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in VOLATILE_META}
    return {**{k: v for k, v in obj.items() if k not in ("status", "metadata")},
            "metadata": meta}


def changed_fields(before: Any, after: Any, path: str = "") -> list[str]:
    """Field paths whose content differs (paths only: never a value)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                out.append(sub)
            else:
                out += changed_fields(before[key], after[key], sub)
        return out
    return [] if before == after else [path or "."]


def _secret_change(client: KubeClient, obj: Obj, live: dict[str, SecretDigest],
                   dry_run: bool) -> ObjectChange:
    """Apply (or dry-run) a Secret; compare by digest, so no value is kept or shown."""
    from deparrow_secrets.cluster.datahash import digest_secret

    name = obj["metadata"]["name"]
    before = live.get(name)
    result = client.apply(obj, dry_run=dry_run)
    after = digest_secret(result)
    result.clear()
    if before is None:
        return ObjectChange("Secret", name, "create")
    fields = [f"data.{k}" for k in sorted(set(before.keys) | set(after.keys))
              if before.key_digests.get(k) != after.key_digests.get(k)]
    fields += [f"metadata.labels.{k}" for k in sorted(set(before.labels) | set(after.labels))
               if before.labels.get(k) != after.labels.get(k)]
    return ObjectChange("Secret", name, "update" if fields else "unchanged", fields)


def _apply_all(client: KubeClient, objs: list[Obj], dry_run: bool) -> list[ObjectChange]:
    current = _current(client, objs)
    namespaces = {o["metadata"]["namespace"] for o in objs if o["kind"] == "Secret"}
    live = {d.name: d for ns in sorted(namespaces) for d in client.secret_digests(ns)}
    changes: list[ObjectChange] = []
    for obj in objs:
        if dry_run and changes and changes[0].kind == "Namespace" and \
                changes[0].action == "create" and kind_of(obj).namespaced:
            # A dry run does not create the namespace, so the server cannot dry-run
            # what goes into it: everything in it is new.
            changes.append(ObjectChange(obj["kind"], obj["metadata"]["name"], "create"))
            continue
        if obj["kind"] == "Secret":
            changes.append(_secret_change(client, obj, live, dry_run))
            continue
        name = obj["metadata"]["name"]
        before = current.get((obj["kind"], name))
        after = client.apply(obj, dry_run=dry_run)
        if before is None:
            changes.append(ObjectChange(obj["kind"], name, "create"))
            continue
        # An apply that changes nothing keeps the resourceVersion; a dry run may keep it
        # even when it would change something, so it is always compared.
        same_version = not dry_run and (after.get("metadata") or {}).get(
            "resourceVersion") == (before.get("metadata") or {}).get("resourceVersion")
        fields = [] if same_version else changed_fields(_normalized(before), _normalized(after))
        changes.append(ObjectChange(obj["kind"], name, "update" if fields else "unchanged",
                                    fields))
    return changes


def apply_objects(client: KubeClient, objs: list[Obj], dry_run: bool = False
                  ) -> list[ObjectChange]:
    """Server-side apply of `objs` in order, as deploy does (for migrate)."""
    return _apply_all(client, objs, dry_run)


def require_eso(client: KubeClient, env: EnvironmentConfig) -> None:
    """Exit 1 naming the install when ESO's v1 API is not served (for migrate)."""
    _require_eso(client, env)


def _require_eso(client: KubeClient, env: EnvironmentConfig) -> None:
    versions = client.served_versions(ESO_GROUP)
    if not versions or "v1" not in versions:
        found = f"serves {', '.join(versions)}" if versions else "is not installed"
        raise NotConvergedError(
            f"External Secrets Operator {found}: {ESO_GROUP}/v1 is not served",
            context=client.context,
            hint="install or upgrade ESO (>= 0.17 serves v1): helm upgrade --install "
                 "external-secrets external-secrets/external-secrets -n external-secrets "
                 f"--create-namespace; then rerun `deparrow-secrets deploy --env {env.name}`")


def deploy(project: Project, env: EnvironmentConfig, client: KubeClient,
           open_store: Callable[[], SecretStore], *, dry_run: bool = False,
           apply: bool = True,
           wait: bool = True, timeout: float = 120.0, poll: float = 1.0,
           progress: Callable[[str, bool], None] | None = None) -> DeployResult:
    """The whole command: check the tree, apply (or dry-run), then wait and verify.

    The store is opened only when its values are needed (dev's Secrets, the wait), so a
    dry run or --no-wait of an ESO environment needs no store credentials.
    """
    check_tree_current(project)
    if not apply:
        require_namespace(client, project.config.namespace, env)
    if env.uses_eso:
        _require_eso(client, env)
    calls_before = client.calls
    plan = DeployPlan(env.name, project.config.namespace, dry_run, [])
    result = DeployResult(plan)
    if env.uses_eso:
        objs = eso_objects(project, env)
        plan.refs = [(o["kind"], o["metadata"]["name"]) for o in objs]
        if apply:
            result.changes = _apply_all(client, objs, dry_run)
    elif apply:
        with open_store() as store, dev_objects(project, env, store) as objs:
            plan.refs = [(o["kind"], o["metadata"]["name"]) for o in objs]
            result.changes = _apply_all(client, objs, dry_run)
    plan.changes = result.changes
    if dry_run or not wait:
        result.api_calls = client.calls - calls_before
        return result
    from deparrow_secrets.cluster.expected import expected_secrets

    with open_store() as store:
        expected = expected_secrets(project, env, store)
    started = time.monotonic()
    result.secrets, result.forced = wait_for_sync(
        client, project, env, expected, timeout=timeout, poll=poll, progress=progress,
        changed={c.name for c in result.changes if c.kind == "ExternalSecret"
                 and c.action != "unchanged"},
        force=apply)  # --no-apply writes nothing, not even a force-sync annotation
    result.waited = time.monotonic() - started
    result.converged = all(s.converged for s in result.secrets)
    result.api_calls = client.calls - calls_before
    return result


# --------------------------------------------------------------------------- waiting


def _read(client: KubeClient, project: Project, env: EnvironmentConfig) -> ClusterState:
    """What one poll needs: ExternalSecrets, Secret digests, and Events only while an
    ExternalSecret is not Ready (for its UpdateFailed error): 2-3 requests a poll."""
    ns = project.config.namespace
    state = ClusterState(ns, ["v1"] if env.uses_eso else None)
    if env.uses_eso:
        state.external_secrets = by_name(client.list_objects(EXTERNAL_SECRET, ns))
    state.secrets = {d.name: d for d in client.secret_digests(ns)}
    if any(not is_ready(es) for es in state.external_secrets.values()):
        state.events = client.events(ns)
    return state


def force_sync(client: KubeClient, namespace: str, name: str) -> None:
    """ESO re-reads the provider on a metadata change (shouldEnqueueExternalSecretUpdate)."""
    client.patch(EXTERNAL_SECRET, name,
                 {"metadata": {"annotations": {FORCE_SYNC_ANNOTATION: str(int(time.time()))}}},
                 namespace)


def wait_for_sync(client: KubeClient, project: Project, env: EnvironmentConfig,
                  expected: dict[str, ExpectedSecret], *, timeout: float, poll: float = 1.0,
                  progress: Callable[[str, bool], None] | None = None,
                  changed: set[str] | None = None,
                  force: bool = True) -> tuple[list[SecretSync], list[str]]:
    """Poll until every Secret converged or `timeout` passed; NotConvergedError then.

    An ExternalSecret that is Ready for its current spec but whose Secret differs from
    the store (the store changed since the last refresh) is annotated force-sync once.
    """
    missing = sorted({k for e in expected.values() for k in e.missing_in_store})
    if missing:
        raise NotConvergedError(
            "the store lacks " + ", ".join(missing) + ": ESO cannot sync "
            + ", ".join(e.external_secret or e.name for e in expected.values()
                        if e.missing_in_store),
            context=client.context, namespace=project.config.namespace,
            hint=f"run `deparrow-secrets provision --env {env.name}`, then deploy again")
    deadline = time.monotonic() + timeout
    forced: list[str] = []
    last_line = ""
    while True:
        syncs = compare(expected, _read(client, project, env))
        done = [s for s in syncs if s.converged]
        line = f"{env.name}: {len(done)}/{len(syncs)} Secret(s) synced and verified"
        pending = [s for s in syncs if not s.converged]
        if pending:
            line += f"; waiting for {pending[0].name}: {pending[0].reason()}"
        if progress and line != last_line:
            progress(line, not pending)
            last_line = line
        if not pending:
            return syncs, forced
        if force and env.uses_eso:
            for s in pending:
                if (s.external_secret and s.synced_current_spec and not s.in_sync
                        and s.external_secret not in forced
                        and s.external_secret not in (changed or set())):
                    force_sync(client, project.config.namespace, s.external_secret)
                    forced.append(s.external_secret)
        if time.monotonic() >= deadline:
            raise NotConvergedError(
                f"not converged after {timeout:g}s: "
                + "; ".join(s.reason() for s in pending),
                context=client.context, namespace=project.config.namespace,
                hint=_not_converged_hint(env, pending, project.config.namespace, force))
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def _not_converged_hint(env: EnvironmentConfig, pending: list[SecretSync], namespace: str,
                        forced: bool) -> str:
    stale = [s for s in pending if s.external_secret and s.es_present
             and s.synced_current_spec and not s.in_sync]
    if any(s.refresh_interval in ("0", "0s") or s.refresh_policy == "CreatedOnce"
           for s in stale):
        return ("ESO never refreshes an ExternalSecret with refreshInterval 0 or "
                "refreshPolicy CreatedOnce: set a refresh interval (render writes one) and "
                f"rerun `deparrow-secrets deploy --env {env.name}`")
    if stale and not forced:
        return ("the store changed since ESO's last refresh; ESO refreshes at its "
                "refreshInterval, or now with: " + "; ".join(
                    f"kubectl -n {namespace} annotate externalsecret {s.external_secret} "
                    "force-sync=$(date +%s) --overwrite" for s in stale))
    return (f"`deparrow-secrets doctor --env {env.name}` names the cause and the fix; "
            "rerun deploy with a longer --timeout if ESO is only slow")
