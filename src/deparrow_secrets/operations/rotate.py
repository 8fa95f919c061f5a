"""Rotation: new values into the store, proven to have reached the cluster, consumers rolled,
and the old value made current again by itself when any step after the write fails.

Steps (each one first checks whether it already happened, so a rerun after a killed run
resumes where it stopped; the record is `operations/rotation_state.py`):

1. plan: new values per the catalog (generated, or supplied for `user`/`default` keys),
   the remote objects written (one write each), the ExternalSecrets holding the keys
   (refused when they cannot be forced: CLUSTER.md, `shouldRefresh`), the workloads that
   consume their Secrets and how (cluster/consumers.py);
2. write: one check-and-set write per remote object (a concurrent writer: ConflictError,
   exit 5, nothing restarted);
3. sync: annotate each ExternalSecret `force-sync=<unix time>` and wait until its
   `syncedResourceVersion` moved with Ready=True (an `UpdateFailed` Warning Event after
   the annotation fails the step at once) and its Secret's data hash equals the hash of
   the store's values (CLUSTER.md: Ready alone can be the previous sync). Dev: rewrite the
   export and, with a cluster, apply the dev overlay's Secrets;
4. restart: the `restartedAt` patch kubectl uses, except workloads Stakater Reloader
   restarts by itself (waited for instead) and paused Deployments (reported);
5. wait: kubectl's rollout-status rules (cluster/rollout.py);
6. the result: keys (never values), versions, hashes verified yes/no (never a hash),
   workloads rolled, seconds per step.

Undo: a failure after the write makes the previous content current again (check-and-set on
the version written), force-syncs, waits, restarts what was already restarted. Exit codes:
0 on the new value, 8 rolled back to the old value, 9 needs a person.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import EXTERNAL_SECRET, WORKLOAD_KINDS, KubeClient, Obj
from deparrow_secrets.cluster.consumers import IMAGE_PULL, workloads_from
from deparrow_secrets.cluster.datahash import hashes_equal
from deparrow_secrets.cluster.expected import ExpectedSecret, environment_secrets
from deparrow_secrets.cluster.rollout import (
    KINDS_BY_NAME,
    RELOADER_MATCH,
    RELOADER_SEARCH,
    is_paused,
    restart_patch,
    restart_time,
    restarted_at,
    rollout_status,
)
from deparrow_secrets.cluster.state import by_name, condition, event_time, parse_time
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import (
    EXIT_OK,
    ConflictError,
    DeparrowError,
    InputError,
    NotConvergedError,
    UncertainWriteError,
)
from deparrow_secrets.operations import rotation_state
from deparrow_secrets.operations.rotation_state import ObjectRecord, RotationRecord, WorkloadRecord
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore

EXIT_ROLLED_BACK = 8  # a step after the write failed; the old value is current again
EXIT_NEEDS_PERSON = 9  # neither: the environment is between the two (the message says how)
KILL_HOOK = "DEPARROW_SECRETS_TEST_KILL_AFTER"  # tests only: SIGKILL after the named step
FORCE_SYNC_ANNOTATION = "force-sync"  # the documented idiom (CLUSTER.md)
UPDATE_FAILED = "UpdateFailed"
UNDO_MIN_TIMEOUT = 120.0  # an undo given up half-way is worse than a slow one

Progress = Callable[[str, bool], None]
_KEY_LIKE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class StepFailed(DeparrowError):
    """A step after the write failed; `step` names it (sync, restart, wait)."""

    def __init__(self, step: str, message: str, *, hint: str | None = None,
                 workloads: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.workloads = workloads or []


# --------------------------------------------------------------------------- results


@dataclass
class ObjectChange:
    remote_key: str
    keys: list[str]
    version_before: str | None
    version_after: str | None = None
    restored_version: str | None = None  # the undo's write


@dataclass
class SecretTarget:
    name: str
    external_secret: str | None
    keys: list[str]  # the rotated keys it carries
    hash_verified: bool = False
    restored_verified: bool = False


@dataclass
class Consumer:
    kind: str
    name: str
    secrets: list[str]
    ways: list[str]
    action: str  # restart | reloader | paused | on-delete
    restarted: bool = False
    rolled_out: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class StepReport:
    name: str
    status: str  # done | already-done | skipped | failed
    seconds: float
    detail: str = ""


@dataclass
class RotationPlan:
    kind: str  # rotate | rollback
    environment: str
    provider: str
    namespace: str
    keys: list[str]
    sources: dict[str, str]  # key -> generated | supplied | restored
    objects: list[ObjectChange]
    secrets: list[SecretTarget]
    consumers: list[Consumer]
    resumed_after: str | None = None  # the step a killed run had completed
    # The new values: written once, never shown, never in JSON.
    new_values: dict[str, SecretValue] = field(default_factory=dict, repr=False)


@dataclass
class RotationResult:
    plan: RotationPlan
    outcome: str  # planned | rotated | rolled-back | needs-person
    steps: list[StepReport] = field(default_factory=list)
    undo: list[StepReport] = field(default_factory=list)
    failed_step: str | None = None
    message: str = ""
    hint: str = ""
    api_calls: int = 0
    store_writes: int = 0
    seconds: float = 0.0
    waited: float = 0.0  # of `seconds`, asleep waiting for controllers (ESO, rollouts)

    @property
    def exit_code(self) -> int:
        return {"rolled-back": EXIT_ROLLED_BACK,
                "needs-person": EXIT_NEEDS_PERSON}.get(self.outcome, EXIT_OK)

    def to_json(self) -> dict[str, Any]:
        """Everything the report says, JSON-ready: names, versions, yes/no; no value, no hash."""
        p = self.plan
        return {
            "kind": p.kind, "environment": p.environment, "provider": p.provider,
            "namespace": p.namespace, "keys": p.keys, "sources": p.sources,
            "outcome": self.outcome, "exitCode": self.exit_code,
            "failedStep": self.failed_step, "message": self.message or None,
            "hint": self.hint or None, "resumedAfter": p.resumed_after,
            "objects": [{"remoteKey": o.remote_key, "keys": o.keys,
                         "versionBefore": o.version_before, "versionAfter": o.version_after,
                         "restoredVersion": o.restored_version} for o in p.objects],
            "secrets": [{"name": s.name, "externalSecret": s.external_secret, "keys": s.keys,
                         "hashVerified": s.hash_verified,
                         "restoredVerified": s.restored_verified} for s in p.secrets],
            "workloads": [{"kind": c.kind, "name": c.name, "secrets": c.secrets,
                           "ways": c.ways, "action": c.action, "restarted": c.restarted,
                           "rolledOut": c.rolled_out} for c in p.consumers],
            "steps": [_step_json(s) for s in self.steps],
            "undo": [_step_json(s) for s in self.undo],
            "storeWrites": self.store_writes, "apiCalls": self.api_calls,
            "seconds": round(self.seconds, 3), "waitedSeconds": round(self.waited, 3),
        }

    def report_lines(self) -> list[tuple[str, bool]]:
        """The text report, line by line, each with whether it goes to stderr."""
        p = self.plan
        out: list[tuple[str, bool]] = []
        verb = {"planned": "would rotate", "rotated": "rotated", "rolled-back": "rolled back",
                "needs-person": "needs a person:"}[self.outcome]
        if p.kind == "rollback" and self.outcome == "rotated":
            verb = "rolled back and synced"
        out.append((f"{p.environment} ({p.provider}): {verb} {', '.join(p.keys)}"
                    + (f" (resumed after step {p.resumed_after})" if p.resumed_after else ""),
                    False))
        planned = self.outcome == "planned"
        for o in p.objects:
            line = f"  store   {o.remote_key}: version {o.version_before} -> " \
                   f"{'a new version' if planned else o.version_after or '(not written)'}"
            if o.restored_version:
                line += f", restored as {o.restored_version}"
            out.append((line, False))
        for sec in p.secrets:
            via = f" via ExternalSecret/{sec.external_secret}" if sec.external_secret else ""
            line = f"  secret  {sec.name}{via}: " + (
                "force-sync and verify by hash" if planned
                else "hash verified " + ("yes" if sec.hash_verified else "no"))
            if self.undo:
                line += f"; old value verified {'yes' if sec.restored_verified else 'no'}"
            out.append((line, False))
        how = {"paused": "paused: not touched", "reloader": "left to Stakater Reloader",
               "on-delete": "updateStrategy OnDelete: not rolled, delete its pods"}
        for c in p.consumers:
            action = ("restarted" if c.restarted else "restart") if c.action == "restart" \
                else how[c.action]
            out.append((f"  {c.kind.lower():<11} {c.name}: {action}"
                        + (", rolled out" if c.rolled_out else "")
                        + f" ({','.join(c.secrets)}{'; ' + ','.join(c.ways) if c.ways else ''})",
                        False))
        for label, steps in (("step", self.steps), ("undo", self.undo)):
            for step in steps:
                out.append((f"  {label:<7} {step.name:<8} {step.status:<12} "
                            f"{step.seconds:6.2f}s" + (f"  {step.detail}" if step.detail else ""),
                            False))
        if self.outcome != "planned":
            out.append((f"  {self.store_writes} store write(s), {self.api_calls} API call(s), "
                        f"{self.seconds:.1f}s ({self.waited:.1f}s waiting for controllers)",
                        False))
        if self.message:
            out.append((f"error: {self.message}", True))
        if self.hint:
            out.append((f"  hint: {self.hint}", True))
        if self.outcome == "rolled-back":
            out.append((f"{p.environment}: the old value is current again (exit 8)", True))
        return out


def _step_json(s: StepReport) -> dict[str, Any]:
    return {"step": s.name, "status": s.status, "seconds": round(s.seconds, 3),
            "detail": s.detail or None}


@dataclass
class RotateOptions:
    dry_run: bool = False
    restart: bool = True
    rollback: bool = True
    timeout: float = 120.0
    poll: float = 0.2


# --------------------------------------------------------------------------- selection


def due_keys(project: Project, env: EnvironmentConfig) -> list[str]:
    """The keys of `env` older than their catalog `maxAge` (`rotate --due`), read from the
    store without changing it; values without a maxAge are never due."""
    from deparrow_secrets.posture.rotation import overdue_keys

    with project.open_store(env, create=False, writable=False) as store:
        return [age.key for age in overdue_keys(project, env, store)]


def select_keys(project: Project, env: EnvironmentConfig, keys: list[str],
                secret: str | None, all_keys: bool) -> list[str]:
    """The keys to rotate, groups (`rotateWith`) included; InputError (exit 2) for a key
    that is unknown or not used in `env`. `--secret`/`--all` skip `default` keys (a fixed
    value), which can still be named with a value supplied."""
    catalog = project.catalog
    needed = {v.name for v in catalog.needed(env.ha, env.optional_keys)}
    chosen = sum(bool(x) for x in (keys, secret, all_keys))
    if chosen != 1:
        raise InputError("name the keys to rotate: KEY..., --secret NAME or --all (one of them)",
                         hint="e.g. `deparrow-secrets rotate --env staging DEPARROW_JWT_SECRET`")
    if secret is not None:
        found = next((s for s in catalog.secrets if s.name == secret), None)
        if found is None:
            raise InputError(f"'{secret}' is not a Kubernetes Secret of the catalog",
                             hint="catalog Secrets: " + ", ".join(s.name for s in catalog.secrets))
        keys = [k for k in catalog.secret_keys(found, env.ha, env.optional_keys)
                if catalog.values[k].source != "default"]
    elif all_keys:
        keys = [v.name for v in catalog.needed(env.ha, env.optional_keys)
                if v.source != "default"]
    for key in keys:
        if key not in catalog.values:
            # An argument that does not look like a key name may be a value typed on the
            # command line by mistake: not echoed.
            shown = f"'{key}'" if _KEY_LIKE.fullmatch(key) else "an argument (not shown: it " \
                "may be a value; values are never given on the command line)"
            raise InputError(f"{shown} is not in the catalog",
                             hint="known keys: " + ", ".join(catalog.values))
        if key not in needed:
            value = catalog.values[key]
            why = ("ha: true" if value.requirement == "ha"
                   else f"{key} in its optionalKeys")
            raise InputError(f"environment {env.name} does not use {key} "
                             f"(requirement {value.requirement})",
                             hint=f"rotate only the keys {env.name} uses; it would need {why} "
                                  "in deparrow-secrets.yaml; nothing was written")
    out: list[str] = []
    for key in keys:
        for member in catalog.rotation_group(key):
            if member not in out and member in needed:
                out.append(member)
    if not out:
        raise InputError("nothing to rotate: the selection holds only fixed (default) values",
                         hint="name such a key explicitly and supply its new value")
    return [k for k in catalog.values if k in out]


def keys_needing_input(project: Project, keys: list[str],
                       supplied: Mapping[str, SecretValue]) -> list[str]:
    """Keys whose new value must come from the user (not generated, not supplied)."""
    return [k for k in keys if project.catalog.values[k].source != "generated"
            and k not in supplied]


def new_values(project: Project, keys: list[str],
               supplied: Mapping[str, SecretValue]) -> tuple[dict[str, SecretValue],
                                                             dict[str, str]]:
    from deparrow_secrets.operations.provision import check_supplied, generate

    extra = sorted(set(supplied) - set(keys))
    if extra:
        raise InputError("values were given for keys not being rotated: " + ", ".join(extra),
                         hint="name them on the command line too, or leave them out; "
                              "nothing was written")
    check_supplied(project, supplied)
    missing = keys_needing_input(project, keys, supplied)
    if missing:
        raise InputError("no new value given for: " + ", ".join(missing),
                         hint="their catalog source is not `generated`: supply them with "
                              "--values-file FILE or --stdin (KEY=VALUE lines), or run on a "
                              "terminal to be asked; nothing was written")
    values: dict[str, SecretValue] = {}
    sources: dict[str, str] = {}
    for key in keys:
        if key in supplied:
            values[key], sources[key] = supplied[key], "supplied"
        else:
            policy = project.catalog.values[key].generate
            assert policy is not None
            values[key], sources[key] = generate(policy), "generated"
    return values, sources


# --------------------------------------------------------------------------- the plan


def _affected_secrets(project: Project, env: EnvironmentConfig,
                      keys: list[str]) -> list[SecretTarget]:
    from deparrow_secrets.render.manifests import external_secret_name

    out = []
    for secret in environment_secrets(project, env):
        held = [k for k in project.catalog.secret_keys(secret, env.ha, env.optional_keys)
                if k in keys]
        if held:
            out.append(SecretTarget(secret.name, external_secret_name(secret)
                                    if env.uses_eso else None, held))
    return out


def check_forcible(es: Obj, env: EnvironmentConfig, namespace: str) -> str | None:
    """Why force-sync cannot refresh this ExternalSecret (None when it can).

    ESO v2.9 `shouldRefresh` (pkg/controllers/externalsecret/externalsecret_controller.go):
    CreatedOnce syncs only before the first sync; Periodic with refreshInterval 0 never
    again; an immutable target cannot take changed data (SecretSyncedError).
    """
    spec = es.get("spec") or {}
    name = (es.get("metadata") or {}).get("name")
    fix = (f"set it in the rendered tree (`deparrow-secrets render` writes refreshPolicy "
           f"Periodic with a refreshInterval and a mutable target), then `deparrow-secrets "
           f"deploy --env {env.name}`")
    if spec.get("refreshPolicy") == "CreatedOnce":
        return f"ExternalSecret {name} has refreshPolicy CreatedOnce: ESO never re-reads it; {fix}"
    if spec.get("refreshPolicy") in (None, "", "Periodic") and \
            str(spec.get("refreshInterval", "1h")) in ("0", "0s", "0m", "0h"):
        return f"ExternalSecret {name} has refreshInterval 0: ESO never re-reads it; {fix}"
    if (spec.get("target") or {}).get("immutable"):
        return (f"ExternalSecret {name} has an immutable target: ESO cannot change its "
                f"Secret's data; {fix} (an immutable Secret must be deleted to change: "
                f"kubectl -n {namespace} delete secret ...)")
    return None


def _pinned(es: Obj, keys: list[str], env: EnvironmentConfig) -> str | None:
    """A `remoteRef.version` pin on a rotated key: ESO would keep syncing the pinned
    version, so the new value would never arrive (CLUSTER.md)."""
    name = (es.get("metadata") or {}).get("name")
    for item in (es.get("spec") or {}).get("data") or []:
        ref = item.get("remoteRef") or {}
        if item.get("secretKey") in keys and ref.get("version"):
            return (f"ExternalSecret {name} pins {item.get('secretKey')} to version "
                    f"{ref['version']}: the new value would never reach its Secret; remove "
                    f"the pin (`deparrow-secrets render`, then `deparrow-secrets deploy --env "
                    f"{env.name}`)")
    return None


def _consumers(client: KubeClient, namespace: str, targets: list[SecretTarget],
               labels_of: Mapping[str, Mapping[str, str]]) -> tuple[list[Consumer], dict[str, Obj]]:
    names = {t.name for t in targets}
    objs = [o for kind in WORKLOAD_KINDS for o in client.list_objects(kind, namespace)]
    live = {f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}": o for o in objs}
    out = []
    for w in workloads_from(objs):
        uses = [u for u in w.uses if u.secret in names and u.how != IMAGE_PULL]
        if not uses:
            continue
        secrets_ = sorted({u.secret for u in uses})
        reloader = any(w.reloader_watches(s) or (
            w.annotations.get(RELOADER_SEARCH) == "true"
            and labels_of.get(s, {}).get(RELOADER_MATCH) == "true") for s in secrets_)
        obj = live[w.ref]
        on_delete = ((obj.get("spec") or {}).get("updateStrategy") or {}).get(
            "type") == "OnDelete"
        # OnDelete: a template change rolls nothing (kubectl rollout status refuses it);
        # reported like a paused Deployment, with the pods to delete.
        action = "paused" if is_paused(obj) else "on-delete" if on_delete else (
            "reloader" if reloader else "restart")
        out.append(Consumer(w.kind, w.name, secrets_, sorted({u.how for u in uses}), action))
    return out, live


def plan_rotation(project: Project, env: EnvironmentConfig, store: SecretStore,
                  client: KubeClient | None, keys: list[str],
                  values: dict[str, SecretValue], sources: dict[str, str],
                  kind: str = "rotate") -> tuple[RotationPlan, RotationRecord]:
    """Step 1. Reads each remote object once and the cluster once; writes nothing."""
    layout = project.layout(env)
    objects = []
    for remote_key, held in layout.objects(keys).items():
        snap = store.read(remote_key)
        absent = [k for k in held if snap is None
                  or snap.values.get(layout.ref(k).property) is None]
        if absent:
            raise InputError(f"{', '.join(absent)} not set in {env.name} ({remote_key}): "
                             "nothing to rotate",
                             hint=f"create it with `deparrow-secrets provision --env {env.name}`")
        assert snap is not None
        objects.append(ObjectChange(remote_key, held, snap.version))
    targets = _affected_secrets(project, env, keys)
    consumers: list[Consumer] = []
    namespace = project.config.namespace
    if client is not None:
        from deparrow_secrets.cluster.state import require_namespace

        require_namespace(client, namespace, env)
        if env.uses_eso:
            from deparrow_secrets.operations.deploy import _require_eso

            _require_eso(client, env)
            live = by_name(client.list_objects(EXTERNAL_SECRET, namespace))
            for t in targets:
                es = live.get(t.external_secret or "")
                if es is None:
                    raise InputError(f"ExternalSecret {t.external_secret} does not exist in "
                                     f"namespace {namespace}",
                                     hint=f"run `deparrow-secrets deploy --env {env.name}` "
                                          "first; nothing was written")
                why = check_forcible(es, env, namespace) or _pinned(es, t.keys, env)
                if why:
                    raise InputError(why + "; nothing was written")
        digests = {d.name: {**d.labels, **d.annotations}
                   for d in client.secret_digests(namespace)}
        consumers, _ = _consumers(client, namespace, targets, digests)
    plan = RotationPlan(kind, env.name, env.provider, namespace, keys, sources, objects,
                        targets, consumers, new_values=values)
    record = RotationRecord(kind, env.name, keys, restart_time(),
                            objects={o.remote_key: ObjectRecord(o.keys, o.version_before)
                                     for o in objects})
    return plan, record


def _plan_from_record(project: Project, env: EnvironmentConfig, client: KubeClient | None,
                      record: RotationRecord) -> RotationPlan:
    """The plan of a killed run, rebuilt from its record and the cluster (no values)."""
    targets = _affected_secrets(project, env, record.keys)
    consumers: list[Consumer] = []
    for ref, w in record.workloads.items():
        kind, _, name = ref.partition("/")
        consumers.append(Consumer(kind, name, w.secrets, [], w.action, w.restarted))
    if client is not None and not record.workloads:
        digests = {d.name: {**d.labels, **d.annotations}
                   for d in client.secret_digests(project.config.namespace)}
        consumers, _ = _consumers(client, project.config.namespace, targets, digests)
    objects = [ObjectChange(rk, o.keys, o.before, o.after) for rk, o in record.objects.items()]
    return RotationPlan(record.kind, env.name, env.provider, project.config.namespace,
                        record.keys, {k: "resumed" for k in record.keys}, objects, targets,
                        consumers, resumed_after=record.step)


def pending(project: Project, env: EnvironmentConfig) -> RotationRecord | None:
    """A killed rotation's record, if one is waiting to be finished."""
    return rotation_state.load(project, env.name)


# --------------------------------------------------------------------------- the run


class _Run:
    """One execution of the steps; keeps the record current after every action."""

    def __init__(self, project: Project, env: EnvironmentConfig, store: SecretStore,
                 client: KubeClient | None, plan: RotationPlan, record: RotationRecord,
                 options: RotateOptions, progress: Progress | None) -> None:
        self.project, self.env, self.store, self.client = project, env, store, client
        self.plan, self.record, self.options = plan, record, options
        self.progress = progress or (lambda line, final: None)
        self.result = RotationResult(plan, "rotated")
        self.namespace = project.config.namespace
        self.calls_before = client.calls if client else 0
        self.seen_failures: set[tuple[str, str, str]] = set()
        self.plan_seconds = 0.0  # planning happens before the run; reported as its step
        self.started_at = _iso_now()
        # Contents before/after each write, kept only until the ledger record is made
        # (it stores keyed hashes of them, never the values).
        self.contents: dict[str, tuple[Mapping[str, SecretValue] | None,
                                       Mapping[str, SecretValue] | None]] = {}
        self.sync_times: dict[str, dict[str, dict[str, str]]] = {"forward": {}, "undo": {}}
        self.extra_facts: dict[str, Any] = {}

    # -------------------------------------------------------------- helpers

    def save(self) -> None:
        rotation_state.save(self.project, self.record)

    def say(self, line: str, final: bool = True) -> None:
        self.progress(line, final)

    def sleep(self, seconds: float) -> None:
        started = time.monotonic()
        time.sleep(seconds)
        self.result.waited += time.monotonic() - started

    def kill_hook(self, step: str) -> None:
        # Tests only: prove that a rerun resumes after a kill at this point.
        if os.environ.get(KILL_HOOK) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def timed(self, name: str, target: list[StepReport], fn: Callable[[], str],
              already: bool = False) -> None:
        started = time.monotonic()
        if already:
            target.append(StepReport(name, "already-done", 0.0,
                                     "done by the interrupted run"))
            return
        try:
            detail = fn()
        except BaseException as exc:
            target.append(StepReport(name, "failed", time.monotonic() - started,
                                     str(getattr(exc, "message", "") or type(exc).__name__)))
            raise
        target.append(StepReport(name, "done", time.monotonic() - started, detail))

    # -------------------------------------------------------------- step 2: write

    def write(self) -> str:
        layout = self.project.layout(self.env)
        written = 0
        for obj in self.plan.objects:
            rec = self.record.objects[obj.remote_key]
            current = self.store.read(obj.remote_key)
            current_version = current.version if current else None
            if rec.after is not None and current_version == rec.after:
                obj.version_after = rec.after
                continue  # written by the killed run
            if rec.writing and current_version not in (rec.before, None):
                # Killed between sending the write and recording its version: the object
                # moved on by exactly our write if its history has one version after ours.
                history: Any = self.store.history(obj.remote_key)
                versions = [v.version for v in history]
                if rec.before in versions and versions[-1] == current_version and \
                        versions.index(rec.before) == len(versions) - 2:
                    rec.after = obj.version_after = current_version
                    rec.writing = False
                    self.save()
                    continue
            if current is None or current_version != obj.version_before:
                raise ConflictError(
                    "another writer changed the object between plan and write",
                    environment=self.env.name, provider=self.env.provider,
                    remote_key=obj.remote_key,
                    hint="nothing was restarted; check `deparrow-secrets history KEY "
                         f"--env {self.env.name}`, then rerun the rotation")
            if not self.plan.new_values:
                raise InputError("the interrupted rotation stopped before its write and its "
                                 "new values are gone (they are never saved)",
                                 hint="rerun the same command; it plans afresh")
            values = dict(current.values)
            for key in obj.keys:
                values[layout.ref(key).property] = self.plan.new_values[key]
            rec.writing = True
            self.save()
            after = self.store.write(obj.remote_key, values, obj.version_before)
            self.contents[obj.remote_key] = (current.values, values)
            self.result.store_writes += 1
            written += 1
            self.kill_hook("write-sent")
            rec.after, rec.writing = after, False
            obj.version_after = after
            self.save()
        self.plan.new_values.clear()
        return f"{written} remote object(s) written"

    def restore_objects(self) -> str:
        """Undo of step 2: the previous content, check-and-set on the version written."""
        restored = 0
        for obj in self.plan.objects:
            rec = self.record.objects[obj.remote_key]
            if rec.after is None:
                continue
            current = self.store.read(obj.remote_key)
            if current is None or current.version != rec.after:
                raise ConflictError(
                    "changed by another writer since the rotation's write: not restored",
                    environment=self.env.name, provider=self.env.provider,
                    remote_key=obj.remote_key,
                    hint="decide which value is right, then `deparrow-secrets rollback KEY "
                         f"--env {self.env.name} --sync` or rotate again")
            old = self.store.read(obj.remote_key, rec.before) if rec.before else None
            if old is None:
                raise NotConvergedError(f"version {rec.before} of {obj.remote_key} is gone")
            obj.restored_version = self.store.write(obj.remote_key, old.values, rec.after)
            self.result.store_writes += 1
            restored += 1
        return f"{restored} remote object(s) restored to their previous content"

    # -------------------------------------------------------------- step 3: sync

    def expected(self) -> dict[str, ExpectedSecret]:
        from deparrow_secrets.cluster.expected import expected_secrets

        names = {t.name for t in self.plan.secrets}
        return {k: v for k, v in expected_secrets(self.project, self.env, self.store).items()
                if k in names}

    def sync(self, undo: bool = False) -> str:
        if not self.env.uses_eso:
            return self.sync_dev(undo)
        assert self.client is not None
        client, ns = self.client, self.namespace
        expected = self.expected()
        live = by_name(client.list_objects(EXTERNAL_SECRET, ns))
        digests = {d.name: d for d in client.secret_digests(ns)}
        waiting: dict[str, tuple[str, float]] = {}  # ES -> (syncedResourceVersion, forced at)
        verified = 0
        # Events have one-second times: failures already reported before the force are
        # told apart by identity, not by time.
        self.seen_failures = {_event_id(e) for e in client.events(
            ns, involved_kind="ExternalSecret") if e.get("reason") == UPDATE_FAILED}
        for t in self.plan.secrets:
            es_name = t.external_secret or ""
            exp = expected[t.name]
            es = live.get(es_name) or {}
            live_secret = digests.get(t.name)
            if not undo and es_name in self.record.synced:
                t.hash_verified = True
                verified += 1
                continue
            if live_secret is not None and hashes_equal(live_secret.data_hash, exp.data_hash) \
                    and (condition(es) or {}).get("status") == "True":
                self._mark_synced(t, undo, es)
                verified += 1
                continue  # already there (an earlier run's force-sync landed)
            srv = str((es.get("status") or {}).get("syncedResourceVersion") or "")
            forced_at = time.time()
            client.patch(EXTERNAL_SECRET, es_name, {"metadata": {"annotations": {
                FORCE_SYNC_ANNOTATION: _force_value(es, forced_at)}}}, ns)
            waiting[es_name] = (srv, forced_at)
        if waiting:
            self._wait_synced(expected, waiting, undo)
        return (f"{len(self.plan.secrets)} ExternalSecret(s) synced, each Secret's data hash "
                "equals the store's" + (f" ({verified} already)" if verified else ""))

    def _mark_synced(self, t: SecretTarget, undo: bool, es: Obj | None = None) -> None:
        if es is not None and t.external_secret:
            status = es.get("status") or {}
            self.sync_times["undo" if undo else "forward"][t.external_secret] = {
                "refreshTime": str(status.get("refreshTime") or ""),
                "syncedResourceVersion": str(status.get("syncedResourceVersion") or "")}
        if undo:
            t.restored_verified = True
            return
        t.hash_verified = True
        if t.external_secret and t.external_secret not in self.record.synced:
            self.record.synced.append(t.external_secret)
            self.save()

    def _wait_synced(self, expected: dict[str, ExpectedSecret],
                     waiting: dict[str, tuple[str, float]], undo: bool) -> None:
        assert self.client is not None
        client, ns = self.client, self.namespace
        timeout = max(self.options.timeout, UNDO_MIN_TIMEOUT) if undo else self.options.timeout
        deadline = time.monotonic() + timeout
        by_es = {t.external_secret: t for t in self.plan.secrets}
        last = ""
        while True:
            live = by_name(client.list_objects(EXTERNAL_SECRET, ns))
            digests = {d.name: d for d in client.secret_digests(ns)}
            events: list[Obj] | None = None
            pending_reasons = []
            for es_name, (srv, forced_at) in list(waiting.items()):
                t = by_es[es_name]
                es = live.get(es_name) or {}
                status = es.get("status") or {}
                ready = (condition(es) or {}).get("status") == "True"
                moved = str(status.get("syncedResourceVersion") or "") != srv
                live_secret = digests.get(t.name)
                same = live_secret is not None and hashes_equal(
                    live_secret.data_hash, expected[t.name].data_hash)
                if ready and moved and same:
                    self._mark_synced(t, undo, es)
                    del waiting[es_name]
                    continue
                if not ready:
                    if events is None:
                        events = client.events(ns, involved_kind="ExternalSecret")
                    failed = _update_failed_since(events, es_name, forced_at,
                                                  self.seen_failures)
                    if failed is not None:
                        raise StepFailed("sync", f"ESO could not sync ExternalSecret {es_name}: "
                                                 f"{failed}",
                                         hint=f"`deparrow-secrets doctor --env {self.env.name}` "
                                              "names the cause")
                if ready and moved and not same:
                    pending_reasons.append(f"{t.name}: data differs from the store after the "
                                           "sync")
                else:
                    pending_reasons.append(f"{es_name}: waiting for ESO")
            line = (f"sync: {len(self.plan.secrets) - len(waiting)}/{len(self.plan.secrets)} "
                    "Secret(s) verified")
            if not waiting:
                self.say(line)
                return
            if line != last:
                self.say(line, final=False)
                last = line
            if time.monotonic() >= deadline:
                mismatch = [r for r in pending_reasons if "differs" in r]
                raise StepFailed("sync", (f"hash mismatch after {timeout:g}s: " if mismatch
                                          else f"ESO did not sync within {timeout:g}s: ")
                                 + "; ".join(pending_reasons),
                                 hint="ESO may be slow or down: `deparrow-secrets doctor "
                                      f"--env {self.env.name}`; a longer --timeout waits more")
            self.sleep(min(self.options.poll, max(0.0, deadline - time.monotonic())))

    def sync_dev(self, undo: bool) -> str:
        """Dev: rewrite the export; with a cluster, apply the overlay's Secrets and verify."""
        from deparrow_secrets.operations.export import export

        files = export(self.project, self.env, self.store).files
        detail = f"export rewritten ({len(files)} file(s))"
        if self.client is None:
            return detail + "; no cluster given"
        from deparrow_secrets.operations.deploy import _apply_all, dev_objects

        with dev_objects(self.project, self.env, self.store) as objs:
            _apply_all(self.client, objs, dry_run=False)
        expected = self.expected()
        digests = {d.name: d for d in self.client.secret_digests(self.namespace)}
        for t in self.plan.secrets:
            live = digests.get(t.name)
            if live is None or not hashes_equal(live.data_hash, expected[t.name].data_hash):
                raise StepFailed("sync", f"Secret {t.name} does not hold the store's values "
                                         "after the apply")
            self._mark_synced(t, undo)
        return detail + f"; {len(self.plan.secrets)} Secret(s) applied and verified by hash"

    # -------------------------------------------------------------- steps 4-5

    def record_workloads(self) -> None:
        """Generations before anything changes: Reloader's rollout is a later generation."""
        if self.client is None or self.record.workloads:
            return
        live = self._live_workloads()
        for c in self.plan.consumers:
            obj = live.get(c.ref) or {}
            self.record.workloads[c.ref] = WorkloadRecord(
                c.secrets, c.action, int((obj.get("metadata") or {}).get("generation") or 0))

    def _live_workloads(self) -> dict[str, Obj]:
        assert self.client is not None
        kinds = sorted({c.kind for c in self.plan.consumers})
        out = {}
        for kind in kinds:
            for obj in self.client.list_objects(KINDS_BY_NAME[kind], self.namespace):
                out[f"{kind}/{obj['metadata']['name']}"] = obj
        return out

    def restart(self, at: str, which: list[Consumer] | None = None) -> str:
        assert self.client is not None
        live = self._live_workloads()
        patched = already = 0
        for c in which if which is not None else self.plan.consumers:
            if c.action != "restart":
                continue
            obj = live.get(c.ref)
            if obj is None:
                continue  # deleted meanwhile: nothing to roll
            if restarted_at(obj) == at:
                already += 1  # the killed run's patch landed
            else:
                self.client.patch(KINDS_BY_NAME[c.kind], c.name, restart_patch(at),
                                  self.namespace)
                patched += 1
                self.kill_hook("restart-sent")
            c.restarted = True
            if which is None:
                self.record.workloads[c.ref].restarted = True
        if which is None:
            self.save()
        paused = [c.ref for c in self.plan.consumers if c.action == "paused"]
        on_delete = [c.ref for c in self.plan.consumers if c.action == "on-delete"]
        reloader = [c.ref for c in self.plan.consumers if c.action == "reloader"]
        detail = f"{patched} restarted" + (f" ({already} already)" if already else "")
        if reloader:
            detail += f"; {len(reloader)} left to Stakater Reloader"
        if paused:
            detail += "; paused, not touched: " + ", ".join(paused)
        if on_delete:
            detail += ("; updateStrategy OnDelete, not rolled: delete the pods of "
                       + ", ".join(on_delete) + " one at a time to load the new value")
        return detail

    def wait_rollouts(self, at: str, which: list[Consumer] | None = None,
                      undo: bool = False, excused: tuple[str, ...] = ()) -> str:
        assert self.client is not None
        targets = [c for c in (which if which is not None else self.plan.consumers)
                   if c.action in ("restart", "reloader")]
        timeout = max(self.options.timeout, UNDO_MIN_TIMEOUT) if undo else self.options.timeout
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            live = self._live_workloads()
            waiting, failed = [], []
            for c in targets:
                obj = live.get(c.ref)
                if obj is None:
                    continue
                if c.action == "restart":
                    started = restarted_at(obj) == at
                else:  # Reloader's own change of the pod template
                    before = self.record.workloads.get(c.ref)
                    started = int((obj.get("metadata") or {}).get("generation") or 0) > (
                        before.generation if before else 0)
                status = rollout_status(obj)
                if started and status.done:
                    c.rolled_out = True
                    continue
                if started and status.failed:
                    failed.append(c.ref)
                waiting.append((c, status.message if started else
                                f"{c.ref}: waiting for Stakater Reloader's rollout"))
            done = len(targets) - len(waiting)
            line = f"wait: {done}/{len(targets)} workload(s) rolled out"
            if waiting:
                line += f"; {waiting[0][1]}"
            blocking = [w for w in waiting if w[0].ref not in excused]
            if not blocking:
                self.say(line)
                return f"{done} workload(s) rolled out" + (
                    f"; not completed: {', '.join(excused)}" if waiting else "")
            if line != last:
                self.say(line, final=False)
                last = line
            stuck = [r for r in failed if r not in excused]
            if stuck or time.monotonic() >= deadline:
                why = ("rollout failed (ProgressDeadlineExceeded): " + ", ".join(stuck)
                       if stuck else f"rollouts not complete after {timeout:g}s: "
                       + "; ".join(m for _, m in blocking))
                raise StepFailed("wait", why, workloads=stuck or [w[0].ref for w in blocking],
                                 hint="; ".join(f"kubectl -n {self.namespace} rollout status "
                                                f"{w[0].kind.lower()}/{w[0].name}"
                                                for w in blocking[:3]))
            self.sleep(min(self.options.poll, max(0.0, deadline - time.monotonic())))

    # -------------------------------------------------------------- the whole

    def run(self) -> RotationResult:
        started = time.monotonic() - self.plan_seconds
        rec, res = self.record, self.result
        try:
            if rec.step:
                self.timed("plan", res.steps, lambda: "", already=True)
            else:
                res.steps.append(StepReport("plan", "done", self.plan_seconds, (
                    f"{len(self.plan.keys)} key(s), {len(self.plan.objects)} remote "
                    f"object(s), {len(self.plan.secrets)} Secret(s), "
                    f"{len(self.plan.consumers)} workload(s)")))
            if not rec.step:
                self.record_workloads()
                rec.step = "plan"
                self.save()
                self.kill_hook("plan")
            try:
                self.timed("write", res.steps, self.write, already=rec.done("write"))
            except UncertainWriteError as exc:
                self.record_ledger(exc)
                raise  # the record keeps `writing`: a rerun finds out whether it landed
            except ConflictError as exc:
                try:
                    self._undo_partial_write()
                finally:
                    self.record_ledger(exc)
                raise
            rec.step = "write"
            self.save()
            self.kill_hook("write")
            try:
                self._forward()
            except StepFailed as exc:
                self._failed(exc)
            except DeparrowError as exc:  # API down, denied... after the write
                self._failed(StepFailed(_current_step(rec), exc.message, hint=exc.hint))
        finally:
            res.seconds = time.monotonic() - started
            res.api_calls = (self.client.calls - self.calls_before) if self.client else 0
        self.record_ledger()
        if res.outcome in ("rotated", "rolled-back"):
            rotation_state.clear(self.project, self.env.name)
        return res

    def _content(self, remote_key: str, version: str | None) -> Mapping[str, SecretValue] | None:
        if version is None:
            return None
        try:
            snap = self.store.read(remote_key, version)
        except DeparrowError:
            return None  # a version gone or unreadable: recorded without its hash
        return snap.values if snap else None

    def record_ledger(self, error: DeparrowError | None = None) -> None:
        """One change-ledger record for this run: the writes (with keyed hashes of the
        contents, never values), ESO sync times, workloads rolled, the outcome."""
        from deparrow_secrets import ledger

        res, plan = self.result, self.plan
        objects = []
        for o in plan.objects:
            rec = self.record.objects.get(o.remote_key)
            if o.version_after is None and not (rec and rec.writing):
                continue
            before, after = self.contents.get(o.remote_key) or (
                self._content(o.remote_key, o.version_before),
                self._content(o.remote_key, o.version_after))
            objects.append(ledger.ObjectChange(o.remote_key, o.version_before,
                                               o.version_after, before, after, o.keys))
            if o.restored_version:
                objects.append(ledger.ObjectChange(
                    o.remote_key, o.version_after, o.restored_version, after,
                    self._content(o.remote_key, o.restored_version), o.keys))
        if error is not None:
            outcome = ledger.outcome_of(error)
        elif res.outcome == "rotated":
            outcome = {"status": "ok"}
        else:
            outcome = {"status": "failed", "error": "StepFailed", "exitCode": res.exit_code}
        facts: dict[str, Any] = {
            "rotation": self.record.id, "result": "conflict" if error else res.outcome,
            "sources": plan.sources,
            "esoSync": self.sync_times["forward"],
            "secretsVerified": {t.name: t.hash_verified for t in plan.secrets},
            "workloadsRestarted": [c.ref for c in plan.consumers if c.restarted],
            "workloadsRolled": [c.ref for c in plan.consumers if c.rolled_out],
            "workloadsLeftToReloader": [c.ref for c in plan.consumers
                                        if c.action == "reloader"],
            "workloadsPaused": [c.ref for c in plan.consumers if c.action == "paused"],
            "workloadsOnDelete": [c.ref for c in plan.consumers if c.action == "on-delete"],
            "steps": {s.name: {"status": s.status, "seconds": round(s.seconds, 3)}
                      for s in res.steps}}
        facts.update(self.extra_facts)
        if plan.resumed_after:
            facts["resumedAfter"] = plan.resumed_after
        if res.failed_step:
            facts["failedStep"] = res.failed_step
        if res.undo:
            facts["undo"] = {s.name: {"status": s.status, "seconds": round(s.seconds, 3)}
                             for s in res.undo}
            facts["esoSyncUndo"] = self.sync_times["undo"]
            facts["secretsRestoredVerified"] = {t.name: t.restored_verified
                                                for t in plan.secrets}
        try:
            ledger.record(self.project, self.env, plan.kind, keys=plan.keys, objects=objects,
                          outcome=outcome, facts=facts, started=self.started_at)
        finally:
            for _before, after in self.contents.values():
                if isinstance(after, dict):
                    after.clear()
            self.contents.clear()

    def _forward(self) -> None:
        rec, res = self.record, self.result
        cluster = self.client is not None or not self.env.uses_eso
        if cluster:
            self.timed("sync", res.steps, self.sync, already=rec.done("sync"))
        if rec.done("sync"):  # verified by the interrupted run
            for t in self.plan.secrets:
                t.hash_verified = t.external_secret is None or t.external_secret in rec.synced
        rec.step = "sync"
        self.save()
        self.kill_hook("sync")
        if self.client is None or not self.options.restart:
            why = "no cluster given" if self.client is None else "--no-restart"
            res.steps.append(StepReport("restart", "skipped", 0.0, why))
            res.steps.append(StepReport("wait", "skipped", 0.0, why))
            return
        self.timed("restart", res.steps, lambda: self.restart(rec.restart_at),
                   already=rec.done("restart"))
        if rec.done("restart"):
            for c in self.plan.consumers:
                c.restarted = c.action == "restart"
        rec.step = "restart"
        self.save()
        self.kill_hook("restart")
        self.timed("wait", res.steps, lambda: self.wait_rollouts(rec.restart_at))
        rec.step = "wait"
        self.save()
        self.kill_hook("wait")

    def _undo_partial_write(self) -> None:
        """A conflict on the second object: the first is restored, so nothing changed."""
        if any(o.after for o in self.record.objects.values()):
            self.restore_objects()
        rotation_state.clear(self.project, self.env.name)

    def _failed(self, exc: StepFailed) -> None:
        res = self.result
        res.failed_step = exc.step
        res.message = f"step {exc.step} failed: {exc.message}"
        if self.plan.kind == "rollback":
            res.outcome = "needs-person"
            res.hint = (f"the store holds the restored value; fix the cause "
                        f"({exc.hint or 'see the message'}), then rerun the same command: "
                        f"it resumes at step {exc.step}")
            return
        if not self.options.rollback:
            res.outcome = "needs-person"
            res.hint = (f"--no-rollback: the store holds the new value. Fix the cause "
                        f"({exc.hint or 'see the message'}), then rerun the same command: it "
                        f"resumes at step {exc.step}. Or undo it: `deparrow-secrets rollback "
                        f"{self.plan.keys[0]} --env {self.env.name} --sync`")
            return
        self.record.undoing = True
        self.save()
        try:
            self._undo(exc)
            res.outcome = "rolled-back"
            res.hint = exc.hint or ""
        except DeparrowError as undo_exc:
            res.outcome = "needs-person"
            res.message += f"; the undo failed too: {undo_exc.message}"
            where = rotation_state.record_path(self.project, self.env.name)
            res.hint = (undo_exc.hint or "") + (
                f"; the record of what happened is {where}; "
                f"`deparrow-secrets drift --env {self.env.name}` shows where each key stands")

    def _undo(self, cause: StepFailed) -> None:
        undo = self.result.undo
        self.timed("restore", undo, self.restore_objects)
        cluster = self.client is not None or not self.env.uses_eso
        if cluster:
            self.timed("sync", undo, lambda: self.sync(undo=True))
        restarted = [c for c in self.plan.consumers if c.restarted]
        if self.client is None or not restarted:
            return
        at = restart_time()
        self.timed("restart", undo, lambda: self.restart(at, restarted))
        self.timed("wait", undo, lambda: self.wait_rollouts(
            at, restarted, undo=True, excused=tuple(cause.workloads)))


def _iso_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _force_value(es: Obj, now: float) -> str:
    """`<unix time>`, made to differ from the annotation already there: the same value
    twice within a second changes no metadata, and ESO would not reconcile."""
    value = int(now)
    previous = ((es.get("metadata") or {}).get("annotations") or {}).get(FORCE_SYNC_ANNOTATION)
    if previous is not None and previous.isdigit() and int(previous) >= value:
        value = int(previous) + 1
    return str(value)


def _current_step(record: RotationRecord) -> str:
    order = ("write", "sync", "restart", "wait")
    if not record.step:
        return "write"
    idx = rotation_state.STEPS.index(record.step)
    return order[min(idx, len(order) - 1)]


def _event_id(event: Obj) -> tuple[str, str, str]:
    return (str((event.get("metadata") or {}).get("name")), str(event.get("count")),
            event_time(event))


def _update_failed_since(events: list[Obj], es_name: str, since: float,
                         seen: set[tuple[str, str, str]]) -> str | None:
    """The message of a Warning UpdateFailed Event about `es_name` at or after `since`
    that was not there before (`seen`)."""
    for event in sorted(events, key=event_time, reverse=True):
        involved = event.get("involvedObject") or {}
        if involved.get("name") != es_name or event.get("reason") != UPDATE_FAILED \
                or event.get("type") != "Warning" or _event_id(event) in seen:
            continue
        when = parse_time(event_time(event))
        if when is not None and when.timestamp() >= int(since):
            return str(event.get("message") or "UpdateFailed")
    return None


# --------------------------------------------------------------------------- entry points


def rotate(project: Project, env: EnvironmentConfig, store: SecretStore,
           client: KubeClient | None, keys: list[str], supplied: Mapping[str, SecretValue],
           options: RotateOptions, progress: Progress | None = None) -> RotationResult:
    """Plan, then (unless a dry run) run the steps; resume a killed run of the same keys."""
    record = pending(project, env)
    if record is not None:
        if record.undoing:
            raise InputError(f"an earlier rotation of {env.name} failed during its undo",
                             file=str(rotation_state.record_path(project, env.name)),
                             hint=f"check `deparrow-secrets drift --env {env.name}`, settle "
                                  "each key by hand, then remove that file")
        if record.kind != "rotate" or record.keys != keys:
            raise InputError(
                f"an interrupted {record.kind} of {', '.join(record.keys)} in {env.name} has "
                f"not finished (it stopped after step {record.step or 'plan'})",
                file=str(rotation_state.record_path(project, env.name)),
                hint=f"finish it first: rerun `deparrow-secrets rotate --env {env.name} "
                     f"{' '.join(record.keys)}` (it resumes); nothing was written")
        started_writing = any(o.after or o.writing for o in record.objects.values())
        if record.done("write") or started_writing:
            plan = _plan_from_record(project, env, client, record)
            if options.dry_run:
                return RotationResult(plan, "planned")
            if not record.done("write"):
                # Killed inside the write: objects not yet written get new values now.
                plan.new_values, _ = new_values(project, keys, supplied)
            return _Run(project, env, store, client, plan, record, options, progress).run()
        rotation_state.clear(project, env.name)  # stopped before its write: plan afresh
    planning = time.monotonic()
    values, sources = new_values(project, keys, supplied)
    plan, record = plan_rotation(project, env, store, client, keys, values, sources)
    if options.dry_run:
        plan.new_values.clear()
        return RotationResult(plan, "planned")
    run = _Run(project, env, store, client, plan, record, options, progress)
    run.plan_seconds = time.monotonic() - planning
    return run.run()


def rollback_sync(project: Project, env: EnvironmentConfig, store: SecretStore,
                  client: KubeClient | None, key: str, version: str | None,
                  options: RotateOptions,
                  progress: Progress | None = None) -> tuple[Any, RotationResult]:
    """`rollback KEY --sync`: restore KEY's previous (or `version`'s) value as a new version
    (operations/history.py), then steps 3-5 of a rotation. A failure there is not undone
    (that would rotate again): exit 9 with the state of each step."""
    from deparrow_secrets.operations.history import rollback_key

    record = pending(project, env)
    if record is not None and not (record.kind == "rollback" and record.keys == [key]):
        raise InputError(f"an interrupted {record.kind} of {', '.join(record.keys)} in "
                         f"{env.name} has not finished",
                         file=str(rotation_state.record_path(project, env.name)),
                         hint=f"finish it first: rerun `deparrow-secrets {record.kind} ...`")
    options = RotateOptions(options.dry_run, options.restart, False, options.timeout,
                            options.poll)
    plan_only, _ = plan_rotation(project, env, store, client, [key], {}, {key: "restored"},
                                 kind="rollback") if record is None else (None, None)
    rolled = None
    if record is None:
        assert plan_only is not None
        try:
            rolled = rollback_key(project, env, store, key, version, record=False)
        except ConflictError as exc:  # the write was tried: the ledger says how it ended
            from deparrow_secrets import ledger

            ledger.record(project, env, "rollback", keys=[key],
                          outcome=ledger.outcome_of(exc), facts={"sync": True})
            raise
        record = RotationRecord("rollback", env.name, [key], restart_time(), objects={
            rolled.remote_key: ObjectRecord([key], rolled.previous_version, rolled.version)})
        plan_only.objects = [ObjectChange(rolled.remote_key, [key], rolled.previous_version,
                                          rolled.version)]
        run = _Run(project, env, store, client, plan_only, record, options, progress)
        run.result.store_writes = 1
        run.extra_facts = {"sync": True, "restoredFrom": rolled.restored_from,
                           **({"requestedVersion": version} if version else {})}
        run.record_workloads()
        record.step = "write"
        run.save()
        plan = plan_only
    else:
        plan = _plan_from_record(project, env, client, record)
        run = _Run(project, env, store, client, plan, record, options, progress)
        run.extra_facts = {"sync": True}
    run.result.steps.append(StepReport("write", "done" if rolled else "already-done", 0.0,
                                       f"{key} restored as a new version"))
    started = time.monotonic()
    try:
        run._forward()
    except StepFailed as exc:
        run._failed(exc)
    except DeparrowError as exc:
        run._failed(StepFailed(_current_step(record), exc.message, hint=exc.hint))
    finally:
        run.result.seconds = time.monotonic() - started
        run.result.api_calls = (client.calls - run.calls_before) if client else 0
    run.record_ledger()
    if run.result.outcome == "rotated":
        rotation_state.clear(project, env.name)
    return rolled, run.result
