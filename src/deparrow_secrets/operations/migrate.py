"""Migrate: move embedded Secrets into the environment's store, prove the cluster serves
the same bytes through ESO, and only then remove the embedded material.

plan_migration reads the source (the cluster's Secrets, or a kustomization's
secretGenerator and plain Secret manifests), maps every value to its catalog key and
compares it with the store by hash: equal, absent, or a conflict that is never
overwritten without `force`. apply_migration then goes step by step, each step
recorded in a small state file (never a value) so that a killed run resumes:

1. stored: one check-and-set write per remote object (recorded in the change ledger);
2. applied: the environment's objects applied as `deploy` applies them; ESO adopts the
   existing Secrets (CLUSTER.md "Migration");
3. verified: every target Secret's ESO data hash equals the hash of the source values;
4. removed: the Secrets leave the kustomization and the manifests (round-trip edits),
   and with `delete_original` the cluster's value-holding leftovers go too;
5. the git history is searched for the migrated values (a migration from files leaves
   them there): each is reported by key and commit, for `rotate`.

A failure before step 4 restores the embedded state: each ExternalSecret the run
created is switched to `creationPolicy: Orphan` and deleted without taking its Secret,
and a Secret whose data ESO changed gets the source data back.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deparrow_secrets.cluster.api import EXTERNAL_SECRET, SECRET, KubeClient
from deparrow_secrets.cluster.datahash import eso_data_hash, hashes_equal, key_digest
from deparrow_secrets.cluster.expected import ExpectedSecret, environment_secrets
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import (
    EXIT_CONFLICT,
    DeparrowError,
    InputError,
)
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import SecretStore, Snapshot

STEPS = ("planned", "stored", "applied", "verified", "removed", "done")
KILL_HOOK = "DEPARROW_SECRETS_TEST_KILL_AFTER"  # tests only: SIGKILL after that step


class MigrationConflictError(DeparrowError):
    """A value in the store differs from the one being migrated (exit 5)."""

    exit_code = EXIT_CONFLICT


class RotationUnavailableError(DeparrowError):
    """--rotate-leaked without a rotate operation in this build."""


# --------------------------------------------------------------------------- results


@dataclass
class KeyPlan:
    key: str
    secrets: list[str]  # Kubernetes Secrets holding it in the source (or the catalog)
    source: str  # where the source holds it (file:line, Secret/NAME), "" when absent
    store: str  # absent | equal | differs
    action: str  # write | unchanged | conflict | overwrite | keep | generate | default |
    #              missing-user
    remote_key: str

    @property
    def writes(self) -> bool:
        return self.action in ("write", "overwrite", "generate", "default")


@dataclass
class Leak:
    keys: list[str]
    commit: str
    file: str
    line: int | None
    encoding: str


@dataclass
class MigrationPlan:
    environment: str
    namespace: str
    source: str  # cluster | files
    secrets: list[str]  # the Kubernetes Secrets migrated
    keys: list[KeyPlan] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # source Secrets not in the catalog
    removals: list[dict[str, Any]] = field(default_factory=list)  # file edits planned
    leftovers: list[str] = field(default_factory=list)  # cluster objects holding values
    versions: dict[str, str | None] = field(default_factory=dict)  # remote key -> read
    resumed_from: str | None = None
    # The values: source, kept from the store or new; never shown.
    values: dict[str, SecretValue] = field(default_factory=dict, repr=False)
    source_data: dict[str, dict[str, SecretValue]] = field(default_factory=dict, repr=False)
    snapshots: dict[str, Snapshot | None] = field(default_factory=dict, repr=False)

    @property
    def conflicts(self) -> list[KeyPlan]:
        return [k for k in self.keys if k.action == "conflict"]

    @property
    def missing_user(self) -> list[KeyPlan]:
        return [k for k in self.keys if k.action == "missing-user"]

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "namespace": self.namespace,
            "source": self.source, "secrets": self.secrets, "skipped": self.skipped,
            "keys": [{"key": k.key, "secrets": k.secrets, "source": k.source or None,
                      "store": k.store, "action": k.action, "remoteKey": k.remote_key}
                     for k in self.keys],
            "conflicts": [k.key for k in self.conflicts],
            "removals": self.removals, "leftovers": self.leftovers,
            "resumedFrom": self.resumed_from,
        }


@dataclass
class MigrationResult:
    plan: MigrationPlan
    dry_run: bool = False
    step: str = "planned"
    written: dict[str, str] = field(default_factory=dict)  # remote key -> new version
    applied: list[str] = field(default_factory=list)  # "create ExternalSecret/x", ...
    verified: list[str] = field(default_factory=list)  # Secrets verified by hash
    exported: list[str] = field(default_factory=list)  # dev: env files written
    edits: list[dict[str, Any]] = field(default_factory=list)
    cluster_removed: list[str] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    leak_note: str | None = None
    rotation: dict[str, Any] | None = None
    rotation_exit: int = 0  # rotate's exit code (8 rolled back, 9 needs a person)
    rotate_by_hand: list[str] = field(default_factory=list)  # leaked keys a person issues
    api_calls: int = 0
    waited: float = 0.0

    @property
    def leaked_keys(self) -> list[str]:
        return sorted({k for leak in self.leaks for k in leak.keys})

    def rotate_command(self) -> str | None:
        keys = self.leaked_keys
        return f"deparrow-secrets rotate --env {self.plan.environment} {' '.join(keys)}" \
            if keys else None

    def heading_lines(self) -> list[str]:
        plan = self.plan
        return [f"resuming the migration of {plan.environment} (last completed step: "
                f"{plan.resumed_from})"] if plan.resumed_from else []

    def table_rows(self) -> list[tuple[object, ...]]:
        """Per key: its Secrets, where the source holds it, the store, the action."""
        return [(k.key, ",".join(k.secrets), k.source or None, k.store, k.action)
                for k in self.plan.keys]

    def report_lines(self) -> list[str]:
        """The text report after the table: what was (or would be) done, step by step."""
        plan = self.plan
        out = [f"skipped   Secret/{name} (not in the catalog)" for name in plan.skipped]
        if self.dry_run:
            for edit in plan.removals:
                verb = "delete" if edit["action"] == "deleted" else "edit"
                out.append(f"would {verb} {edit['file']}: {', '.join(edit['what'])}")
            return [*out, f"{plan.environment}: dry run, nothing written"]
        out += [f"stored    {remote} (version {version})"
                for remote, version in self.written.items()]
        out += [f"applied   {line}" for line in self.applied]
        out += [f"verified  Secret/{name}: data hash equals the migrated values'"
                for name in self.verified]
        out += [f"exported  {path}" for path in self.exported]
        out += [f"{edit['action']:9} {edit['file']}: {', '.join(edit['what'])}"
                for edit in self.edits]
        out += [f"removed   {what}" for what in self.cluster_removed]
        out += [f"leftover  {what}: holds values; --delete-original removes it"
                for what in plan.leftovers]
        for leak in self.leaks:
            where = f"{leak.file}:{leak.line}" if leak.line else leak.file
            form = " (base64)" if leak.encoding == "base64" else ""
            out.append(f"leaked    {', '.join(leak.keys)}{form}: commit {leak.commit[:12]} "
                       f"({where})")
        if self.leak_note:
            out.append(f"note: {self.leak_note}")
        summary = (f"{plan.environment}: migrated {len(plan.secrets)} Secret(s), "
                   f"{len(self.written)} store write(s), {len(self.verified)} verified")
        out.append(summary + (f" ({self.api_calls} API calls)" if self.api_calls else ""))
        if not self.leaked_keys:
            return out
        if self.rotation is None:
            return [*out, f"{len(self.leaked_keys)} migrated value(s) remain in git history: "
                          f"rotate them with `{self.rotate_command()}` (or rerun with "
                          "--rotate-leaked)"]
        rotation = self.rotation
        if rotation:
            out.append(f"rotation  {', '.join(rotation['keys'])}: {rotation['outcome']}"
                       + (f" ({rotation['message']})" if rotation.get("message") else ""))
            out += [f"          {w['kind']}/{w['name']}: {w['action']}"
                    for w in rotation.get("workloads") or []]
        if self.rotate_by_hand:
            out.append(f"{', '.join(self.rotate_by_hand)}: issue a new value where it comes "
                       f"from, then `deparrow-secrets set KEY --env {plan.environment}`")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(), "dryRun": self.dry_run, "step": self.step,
            "written": self.written, "applied": self.applied, "verified": self.verified,
            "exported": self.exported, "edits": self.edits,
            "clusterRemoved": self.cluster_removed,
            "leaks": [{"keys": leak.keys, "commit": leak.commit, "file": leak.file,
                       "line": leak.line, "encoding": leak.encoding} for leak in self.leaks],
            "leakNote": self.leak_note, "leakedKeys": self.leaked_keys,
            "rotateCommand": self.rotate_command(), "rotation": self.rotation,
            "rotationExitCode": self.rotation_exit, "rotateByHand": self.rotate_by_hand,
            "apiCalls": self.api_calls, "waitedSeconds": round(self.waited, 2),
        }


# --------------------------------------------------------------------------- state file


def _state_path(project: Project, env: EnvironmentConfig) -> Path:
    return project.config.state_dir / f"migrate-{env.name}.json"


def load_state(project: Project, env: EnvironmentConfig) -> dict[str, Any] | None:
    from deparrow_secrets import safefiles

    path = _state_path(project, env)
    try:
        raw = safefiles.read_bytes(project.config.root, path, 1024 * 1024)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InputError("the migration state file is not JSON", file=str(path),
                         hint="remove it to start the migration over (it holds no value)") \
            from None
    return doc if isinstance(doc, dict) and doc.get("environment") == env.name else None


def save_state(project: Project, env: EnvironmentConfig, state: dict[str, Any]) -> None:
    """The state file: step, Secrets, keys, ExternalSecrets created; never a value."""
    from deparrow_secrets import gitrepo, safefiles

    config = project.config
    path = _state_path(project, env)
    if safefiles.inside(config.root, config.state_dir):
        gitrepo.ensure_ignored(path, "/" + config.state_dir.relative_to(
            config.root).as_posix() + "/", config.root / ".gitignore")
    state = {**state, "environment": env.name,
             "updated": datetime.now(UTC).isoformat(timespec="seconds")}
    safefiles.write_file(config.root, path,
                         (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(),
                         mode=safefiles.PRIVATE_FILE, private_dir=True)


def _checkpoint(step: str) -> None:
    """The tests' way to kill the process right after a step (no cleanup can run)."""
    if os.environ.get(KILL_HOOK) == step:
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- planning


@dataclass
class SourceSecret:
    name: str
    values: dict[str, SecretValue] = field(repr=False)
    where: dict[str, str]  # key -> file:line or Secret/NAME


def _check_placeholders(sources: list[SourceSecret]) -> None:
    from deparrow_secrets.lint.placeholders import placeholder_kind

    bad = []
    for secret in sources:
        for key, value in secret.values.items():
            kind = placeholder_kind(value.reveal(), secret=True)
            if kind:
                bad.append(f"{secret.name}.{key} ({secret.where.get(key, '?')}) is {kind}")
    if bad:
        raise InputError("placeholder values cannot be migrated: " + "; ".join(bad),
                         hint="put the real value there (or remove the key to have the "
                              "catalog generate it), then rerun; nothing was written")


def plan_migration(project: Project, env: EnvironmentConfig, store: SecretStore,
                   sources: list[SourceSecret], *, source: str, force: bool,
                   skipped: list[str] | None = None) -> MigrationPlan:
    """Which catalog key each source value becomes and what the store holds for it."""
    catalog = project.catalog
    layout = project.layout(env)
    env_secrets = {s.name: s for s in environment_secrets(project, env)}
    needed = [v.name for v in layout.needed()]
    plan = MigrationPlan(env.name, project.config.namespace, source,
                         sorted(s.name for s in sources), skipped=sorted(skipped or []))
    holders: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    problems = []
    for src in sources:
        secret = env_secrets.get(src.name)
        if secret is None:
            problems.append(f"Secret {src.name} is not one of the catalog's Secrets "
                            f"{env.name} uses ({', '.join(env_secrets) or 'none'})")
            continue
        allowed = set(catalog.secret_keys(secret, env.ha, env.optional_keys))
        for key, value in src.values.items():
            if key not in allowed:
                why = ("is not in the catalog for this Secret" if key not in secret.keys
                       else f"is not used in {env.name} (optionalKeys / ha)")
                problems.append(f"{src.name}.{key} ({src.where.get(key, '?')}) {why}")
                continue
            holders.setdefault(key, []).append(src.name)
            seen = plan.values.get(key)
            if seen is not None and not hashes_equal(key_digest(key, seen.reveal().encode()),
                                                     key_digest(key, value.reveal().encode())):
                problems.append(f"{key} differs between {where[key]} and "
                                f"{src.where.get(key, '?')}")
                continue
            plan.values.setdefault(key, value)
            where.setdefault(key, src.where.get(key, f"Secret/{src.name}"))
        plan.source_data[src.name] = dict(src.values)
    if problems:
        raise InputError("the source cannot be migrated without losing a value: "
                         + "; ".join(problems),
                         hint="ESO replaces a Secret's data with the catalog's keys: add the "
                              "key to the catalog or to optionalKeys (then `deparrow-secrets "
                              "render`), or remove it from the source; nothing was written")
    _check_placeholders(sources)
    for remote_key, keys in layout.objects(needed).items():
        snap = store.read(remote_key)
        plan.snapshots[remote_key] = snap
        plan.versions[remote_key] = snap.version if snap else None
        for key in keys:
            prop = layout.ref(key).property
            current = snap.values.get(prop) if snap else None
            present = current is not None and bool(current)
            secrets_ = holders.get(key) or [s.name for s in env_secrets.values()
                                            if key in s.keys]
            if key in holders:
                value = plan.values[key]
                if not present:
                    action, state = "write", "absent"
                else:
                    assert current is not None
                    same = hashes_equal(key_digest(key, current.reveal().encode()),
                                        key_digest(key, value.reveal().encode()))
                    state = "equal" if same else "differs"
                    action = "unchanged" if same else ("overwrite" if force else "conflict")
                plan.keys.append(KeyPlan(key, secrets_, where[key], state, action, remote_key))
                continue
            cat = catalog.values[key]
            if present:
                assert current is not None
                plan.values[key] = current
                action = "keep"
            elif cat.source == "generated":
                from deparrow_secrets.operations.provision import generate

                assert cat.generate is not None
                plan.values[key] = generate(cat.generate)
                action = "generate"
            elif cat.source == "default" and cat.default is not None:
                plan.values[key] = SecretValue(cat.default)
                action = "default"
            else:
                action = "missing-user"
            plan.keys.append(KeyPlan(key, secrets_, "", "present" if present else "absent",
                                     action, remote_key))
    return plan


def expected_from_values(project: Project, env: EnvironmentConfig,
                         values: Mapping[str, SecretValue]) -> dict[str, ExpectedSecret]:
    """What each Secret must hold: the hashes of the migrated values (byte for byte)."""
    from deparrow_secrets.render.manifests import external_secret_name

    out = {}
    for secret in environment_secrets(project, env):
        keys = project.catalog.secret_keys(secret, env.ha, env.optional_keys)
        exp = ExpectedSecret(secret.name,
                             external_secret_name(secret) if env.uses_eso else None, keys)
        data = {k: values[k].reveal().encode() for k in keys if k in values}
        exp.missing_in_store = [k for k in keys if k not in values]
        exp.key_digests = {k: key_digest(k, v) for k, v in data.items()}
        if exp.complete:
            exp.data_hash = eso_data_hash(data)
        data.clear()
        out[secret.name] = exp
    return out


# --------------------------------------------------------------------------- store


def write_store(project: Project, env: EnvironmentConfig, store: SecretStore,
                plan: MigrationPlan, *, force: bool) -> dict[str, str]:
    """One check-and-set write per remote object that needs one; a concurrent change is
    re-read and judged again (a differing value is still a conflict without force)."""
    from deparrow_secrets.ledger import Change
    from deparrow_secrets.operations.provision import ObjectWrite, write_checked

    layout = project.layout(env)
    by_object: dict[str, list[KeyPlan]] = {}
    for k in plan.keys:
        by_object.setdefault(k.remote_key, []).append(k)
    written: dict[str, str] = {}
    change = Change(project, env, "migrate", keys=[k.key for k in plan.keys if k.writes])
    change.fact("source", plan.source)
    change.fact("secrets", plan.secrets)
    overwritten = [k.key for k in plan.keys if k.action == "overwrite"]
    if overwritten:
        change.fact("overwritten", overwritten)
    with change:
        for remote_key, keys in by_object.items():

            def compose(snap: Snapshot | None, remote_key: str = remote_key,
                        keys: list[KeyPlan] = keys) -> ObjectWrite | None:
                """The migrated values over what the store holds now; a value changed
                in the store meanwhile is still a conflict without force."""
                existing = dict(snap.values) if snap else {}
                merged = dict(existing)
                writes = []
                for k in keys:
                    prop = layout.ref(k.key).property
                    current = existing.get(prop)
                    value = plan.values.get(k.key)
                    if value is None:
                        continue
                    if current is not None and current and hashes_equal(
                            key_digest(k.key, current.reveal().encode()),
                            key_digest(k.key, value.reveal().encode())):
                        continue
                    if current and k.action in ("keep", "unchanged"):
                        continue
                    if current and k.action not in ("overwrite",) and not force:
                        raise MigrationConflictError(
                            f"{k.key} changed in the store while migrating "
                            f"({remote_key}); nothing more was written",
                            hint="compare the two values, then rerun (with --force to "
                                 "keep the migrated one)")
                    merged[prop] = value
                    writes.append(k.key)
                if not writes:
                    return None
                return ObjectWrite(snap.version if snap else None, existing, merged, writes)

            done = write_checked(store, remote_key, change, compose,
                                 compose(plan.snapshots.get(remote_key)))
            if done.version is not None:
                written[remote_key] = done.version
    return written


# --------------------------------------------------------------------------- cluster


def _restore(client: KubeClient, project: Project, plan: MigrationPlan,
             created: list[str], preexisting: list[str]) -> list[str]:
    """Undo the adoption: see the module docstring. Returns what was done."""
    from deparrow_secrets.cluster.migration import release_target, survey_secrets
    from deparrow_secrets.render.manifests import external_secret_name

    ns = project.config.namespace
    done = []
    targets = {external_secret_name(s): s.name for s in project.catalog.secrets}
    for es in created:
        secret = targets.get(es)
        if secret is None:
            continue
        if secret in preexisting:
            release_target(client, ns, es, secret)
            done.append(f"ExternalSecret/{es} orphaned and deleted")
        else:
            client.delete(EXTERNAL_SECRET, es, ns)  # its new Secret goes with it
            done.append(f"ExternalSecret/{es} deleted")
    live = survey_secrets(client, ns)
    for name, data in plan.source_data.items():
        if name not in preexisting or name not in live:
            continue
        raw = {k: v.reveal().encode() for k, v in data.items()}
        same = hashes_equal(live[name].digest.data_hash, eso_data_hash(raw))
        if not same:
            patch: dict[str, Any] = {k: base64.b64encode(v).decode() for k, v in raw.items()}
            patch.update({k: None for k in live[name].digest.keys if k not in raw})
            client.patch(SECRET, name, {"data": patch}, ns).clear()
            patch.clear()
            done.append(f"Secret/{name} data restored")
        raw.clear()
    return done


def _remove_cluster_leftovers(client: KubeClient, project: Project, plan: MigrationPlan,
                              delete: bool) -> tuple[list[str], list[str]]:
    """(removed, left): last-applied-configuration annotations on the migrated Secrets
    and old hash-suffixed generator Secrets no workload references any more."""
    from deparrow_secrets.cluster.api import WORKLOAD_KINDS
    from deparrow_secrets.cluster.consumers import workloads_from
    from deparrow_secrets.cluster.migration import (
        drop_value_annotations,
        generator_leftovers,
        survey_secrets,
    )

    ns = project.config.namespace
    surveys = survey_secrets(client, ns)
    names = {s.name for s in environment_secrets(project, plan_env(project, plan))}
    removed: list[str] = []
    left: list[str] = []
    for name in sorted(names):
        survey = surveys.get(name)
        if survey is not None and survey.value_annotations:
            what = f"Secret/{name} annotation {', '.join(survey.value_annotations)}"
            if delete:
                drop_value_annotations(client, ns, name, survey.value_annotations)
                removed.append(what)
            else:
                left.append(what)
    old = generator_leftovers(surveys, names)
    if old:
        used = {u.secret for kind in WORKLOAD_KINDS
                for w in workloads_from(client.list_objects(kind, ns)) for u in w.uses}
        for name in old:
            if name in used:
                left.append(f"Secret/{name} (still referenced by a workload: re-apply it "
                            "with the plain Secret name first)")
            elif delete:
                client.delete(SECRET, name, ns)
                removed.append(f"Secret/{name} deleted")
            else:
                left.append(f"Secret/{name}")
    return removed, left


def plan_env(project: Project, plan: MigrationPlan) -> EnvironmentConfig:
    return project.environment(plan.environment)


# --------------------------------------------------------------------------- leak scan


def find_leaks(project: Project, values: Mapping[str, SecretValue],
               keys: list[str]) -> tuple[list[Leak], str | None]:
    """Commits whose changes added a migrated value (raw or base64), by key; only values
    that are secrets (catalog source generated or user), as `scan` does."""
    from deparrow_secrets.scan.history import search_history
    from deparrow_secrets.scan.values import SECRET_SOURCES, needles

    wanted = {k: values[k] for k in keys if k in values
              and project.catalog.values[k].source in SECRET_SOURCES}
    try:
        hits = list(search_history(project.config.root, needles(wanted)))
    except DeparrowError as exc:
        return [], f"git history not searched: {exc.message}"
    leaks = [Leak(list(n.keys), h.commit, h.file, h.line, n.encoding)
             for h in hits for n in h.needles]
    return leaks, None


def rotation_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("deparrow_secrets.operations.rotate") is not None


def rotate_keys(project: Project, env: EnvironmentConfig, keys: list[str],
                client: KubeClient | None, open_store: Callable[[], SecretStore], *,
                timeout: float, progress: Callable[[str, bool], None] | None = None
                ) -> tuple[dict[str, Any], int, list[str]]:
    """The one boundary to rotation (`operations/rotate.py`): rotate the leaked keys whose
    catalog source is `generated`. Keys whose value comes from a person (an API key) are
    returned apart: a new one must be issued where it comes from, then `set`.

    Returns (the rotation report, its exit code, the keys left to a person).
    """
    if not rotation_available():
        raise RotationUnavailableError(
            "--rotate-leaked: rotation is not available in this version",
            hint=f"run `deparrow-secrets rotate --env {env.name} {' '.join(keys)}` once "
                 "it is; nothing was rotated")
    from deparrow_secrets.operations.rotate import RotateOptions, keys_needing_input, rotate

    by_person = keys_needing_input(project, keys, {})
    generated = [k for k in keys if k not in by_person]
    if not generated:
        return {}, 0, by_person
    with open_store() as store:
        result = rotate(project, env, store, client, generated, {},
                        RotateOptions(timeout=timeout), progress)
    return result.to_json(), result.exit_code, by_person


# --------------------------------------------------------------------------- the command


@dataclass
class MigrateOptions:
    source: str  # cluster | files
    paths: list[str] = field(default_factory=list)  # files, or Secret names (cluster)
    dry_run: bool = False
    force: bool = False
    delete_original: bool = False
    rotate_leaked: bool = False
    timeout: float = 120.0
    poll: float = 0.5


def _gather(project: Project, env: EnvironmentConfig, client: KubeClient | None,
            opts: MigrateOptions) -> tuple[list[SourceSecret], list[str], Any]:
    """(source Secrets, skipped names, FileSources or None)."""
    if opts.source == "files":
        from deparrow_secrets.operations.migrate_files import collect

        if not opts.paths:
            raise InputError("--from files needs the kustomization or manifest paths",
                             hint="e.g. `deparrow-secrets migrate --env E --from files "
                                  "deparrow/k8s/overlays/E`")
        files = collect(project.config.root, [Path(p) for p in opts.paths])
        known = {s.name for s in project.catalog.secrets}
        root = project.config.root
        out = []
        skipped = []
        for secret in files.secrets.values():
            if secret.name not in known:
                skipped.append(secret.name)
                continue
            out.append(SourceSecret(
                secret.name, {k: v.value for k, v in secret.values.items()},
                {k: f"{_rel(root, v.file)}:{v.line}" if v.line else _rel(root, v.file)
                 for k, v in secret.values.items()}))
        return out, skipped, files
    from deparrow_secrets.cluster.migration import read_secret_values

    assert client is not None
    names = list(opts.paths) or [s.name for s in environment_secrets(project, env)]
    read = read_secret_values(client, project.config.namespace, names)
    if opts.paths and len(read) < len(names):
        absent = [n for n in names if n not in read]
        raise InputError("no such Secret in namespace "
                         f"{project.config.namespace}: {', '.join(absent)}",
                         hint="name Secrets that exist (kubectl get secrets)")
    return ([SourceSecret(name, s.values, {k: f"Secret/{name}" for k in s.values})
             for name, s in read.items()], [], None)


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def migrate(project: Project, env: EnvironmentConfig, client: KubeClient | None,
            open_store: Callable[..., SecretStore], opts: MigrateOptions,
            progress: Callable[[str, bool], None] | None = None) -> MigrationResult:
    if env.uses_eso and client is None:
        raise InputError(f"{env.name} syncs through ESO: migrate needs the cluster",
                         hint="pass --kubeconfig/--context (or set KUBECONFIG)")
    if opts.source == "cluster" and client is None:
        raise InputError("--from cluster needs the cluster",
                         hint="pass --kubeconfig/--context (or set KUBECONFIG)")
    if opts.rotate_leaked and not rotation_available():
        raise RotationUnavailableError(
            "--rotate-leaked: rotation is not available in this version yet; nothing was "
            "done", hint="migrate without it: the leaked keys are listed with the exact "
                         f"`deparrow-secrets rotate --env {env.name} KEY...` to run")
    calls_before = client.calls if client else 0
    state = load_state(project, env) if not opts.dry_run else None
    sources, skipped, files = _gather(project, env, client, opts)
    if not sources and state and state.get("step") in ("verified", "removed", "done"):
        # Killed after the files were edited, or run again once done: finish the
        # cluster leftovers and report the leaks again.
        return _finish_resumed(project, env, client, open_store, opts, state, calls_before)
    if state and state.get("step") == "done":
        state = None  # a new migration
    if not sources:
        raise InputError("nothing to migrate: no catalog Secret found in the source",
                         hint="name the kustomization or manifest that embeds the Secrets "
                              "(--from files PATH) or the Secrets (--from cluster NAME)")
    with open_store(create=not opts.dry_run) as store:
        plan = plan_migration(project, env, store, sources, source=opts.source,
                              force=opts.force, skipped=skipped)
        plan.resumed_from = state.get("step") if state else None
        if files is not None:
            from deparrow_secrets.operations.migrate_files import plan_removal

            plan.removals = [{"file": e.file, "action": e.action, "what": e.what}
                             for e in plan_removal(files, set(plan.secrets))]
        result = MigrationResult(plan, dry_run=opts.dry_run)
        if opts.dry_run:
            result.api_calls = client.calls - calls_before if client else 0
            return result
        if plan.conflicts:
            raise MigrationConflictError(
                "the store already holds other values for: "
                + ", ".join(f"{k.key} ({k.remote_key})" for k in plan.conflicts)
                + "; nothing was written",
                hint="compare them (`deparrow-secrets get KEY --env "
                     f"{env.name}`), then rerun with --force to replace the store's values "
                     "with the migrated ones, or change the source")
        if plan.missing_user:
            keys = [k.key for k in plan.missing_user]
            raise InputError("no value for " + ", ".join(keys)
                             + " in the source or the store, and the catalog cannot make one",
                             hint=f"`deparrow-secrets set KEY --env {env.name}` for each, "
                                  "then rerun; nothing was written")
        if env.uses_eso:
            from deparrow_secrets.operations.deploy import check_tree_current, require_eso

            assert client is not None
            check_tree_current(project)
            require_eso(client, env)
        base_state: dict[str, Any] = {
            "source": opts.source, "paths": list(opts.paths), "secrets": plan.secrets,
            "keys": sorted(plan.values), "created": list((state or {}).get("created", [])),
            "preexisting": list((state or {}).get("preexisting", [])),
        }
        save_state(project, env, {**base_state, "step": "planned"})
        result.written = write_store(project, env, store, plan, force=opts.force)
    result.step = "stored"
    save_state(project, env, {**base_state, "step": "stored"})
    _checkpoint("stored")
    try:
        _apply_and_verify(project, env, client, open_store, opts, plan, result, base_state,
                          progress)
    except BaseException as exc:  # Ctrl-C while waiting included: undo, then re-raise
        if client is not None and env.uses_eso:
            try:
                undone = _restore(client, project, plan, base_state["created"],
                                  base_state["preexisting"])
            except DeparrowError as undo_error:
                # The state file keeps what the run created: the rerun finishes the job.
                if isinstance(exc, DeparrowError):
                    exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
                        f"undoing the adoption failed too ({undo_error.message}): rerun " \
                        "migrate, which resumes and verifies again"
                raise exc from None
            if isinstance(exc, DeparrowError) and exc.hint:
                exc.hint = exc.hint.replace("rerun deploy", "rerun migrate")
            if isinstance(exc, DeparrowError) and undone:
                exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
                    "the embedded Secrets were left as they were (" + "; ".join(undone) + \
                    "); rerun migrate to resume"
            base_state["created"] = []
            save_state(project, env, {**base_state, "step": "stored"})
        raise
    result.step = "verified"
    save_state(project, env, {**base_state, "step": "verified"})
    _checkpoint("verified")
    _remove(project, env, client, opts, plan, result, files)
    save_state(project, env, {**base_state, "step": "removed"})
    _checkpoint("removed")
    _leaks_and_rotation(project, env, client, open_store, opts, plan.values, result,
                        progress)
    result.step = "done"
    save_state(project, env, {**base_state, "step": "done"})
    result.api_calls = client.calls - calls_before if client else 0
    return result


def _apply_and_verify(project: Project, env: EnvironmentConfig, client: KubeClient | None,
                      open_store: Callable[..., SecretStore], opts: MigrateOptions,
                      plan: MigrationPlan, result: MigrationResult,
                      base_state: dict[str, Any],
                      progress: Callable[[str, bool], None] | None) -> None:
    if not env.uses_eso:
        from deparrow_secrets.operations.export import export

        with open_store(create=True) as store:
            exported = export(project, env, store)
        result.exported = [_rel(project.config.root, p) for p in exported.files]
        result.step = "applied"
        return
    from deparrow_secrets.cluster.state import by_name
    from deparrow_secrets.operations.deploy import apply_objects, eso_objects, wait_for_sync

    assert client is not None
    ns = project.config.namespace
    objs = eso_objects(project, env)
    existing = set(by_name(client.list_objects(EXTERNAL_SECRET, ns)))
    secrets_before = {d.name for d in client.secret_digests(ns)}
    rendered = [o["metadata"]["name"] for o in objs if o["kind"] == "ExternalSecret"]
    new = [n for n in rendered if n not in existing and n not in base_state["created"]]
    base_state["created"] = base_state["created"] + new
    if not base_state["preexisting"]:
        base_state["preexisting"] = sorted(secrets_before)
    # Recorded before the apply: a run killed during it still knows what to undo.
    save_state(project, env, {**base_state, "step": "stored"})
    changes = apply_objects(client, objs, False)
    result.applied = [f"{c.action} {c.ref}" for c in changes]
    result.step = "applied"
    save_state(project, env, {**base_state, "step": "applied"})
    _checkpoint("applied")
    expected = expected_from_values(project, env, plan.values)
    started = time.monotonic()
    syncs, _forced = wait_for_sync(client, project, env, expected, timeout=opts.timeout,
                                   poll=opts.poll, progress=progress,
                                   changed={c.name for c in changes
                                            if c.kind == "ExternalSecret"
                                            and c.action != "unchanged"})
    result.waited = time.monotonic() - started
    result.verified = [s.name for s in syncs if s.converged]


def _remove(project: Project, env: EnvironmentConfig, client: KubeClient | None,
            opts: MigrateOptions, plan: MigrationPlan, result: MigrationResult,
            files: Any) -> None:
    if files is not None:
        from deparrow_secrets.operations.migrate_files import remove_embedded

        edits = remove_embedded(files, set(plan.secrets))
        result.edits = [{"file": e.file, "action": e.action, "what": e.what} for e in edits]
    if client is not None and env.uses_eso:
        removed, left = _remove_cluster_leftovers(client, project, plan, opts.delete_original)
        result.cluster_removed = removed
        plan.leftovers = left
    result.step = "removed"


def _leaks_and_rotation(project: Project, env: EnvironmentConfig, client: KubeClient | None,
                        open_store: Callable[..., SecretStore], opts: MigrateOptions,
                        values: Mapping[str, SecretValue], result: MigrationResult,
                        progress: Callable[[str, bool], None] | None = None) -> None:
    if opts.source == "files":
        result.leaks, result.leak_note = find_leaks(project, values, sorted(values))
    if opts.rotate_leaked and result.leaked_keys:
        result.rotation, result.rotation_exit, result.rotate_by_hand = rotate_keys(
            project, env, result.leaked_keys, client, lambda: open_store(create=False),
            timeout=opts.timeout, progress=progress)


def _finish_resumed(project: Project, env: EnvironmentConfig, client: KubeClient | None,
                    open_store: Callable[..., SecretStore], opts: MigrateOptions,
                    state: dict[str, Any], calls_before: int) -> MigrationResult:
    """A run killed after the files were edited: the source is gone, the store holds the
    values. Finish the cluster leftovers and the leak scan from the store."""
    keys = [str(k) for k in state.get("keys") or []]
    plan = MigrationPlan(env.name, project.config.namespace, str(state.get("source")),
                         [str(s) for s in state.get("secrets") or []],
                         resumed_from=str(state.get("step")))
    result = MigrationResult(plan, step="removed")
    layout = project.layout(env)
    with open_store(create=False) as store:
        read = layout.read(store, [k for k in keys if k in layout.refs])
    values: dict[str, SecretValue] = {}
    for key, got in read.items():
        if got.value is not None:
            values[key] = got.value
    if client is not None and env.uses_eso:
        result.cluster_removed, plan.leftovers = _remove_cluster_leftovers(
            client, project, plan, opts.delete_original)
    save_state(project, env, {**state, "step": "removed"})
    _leaks_and_rotation(project, env, client, open_store, opts, values, result)
    result.step = "done"
    save_state(project, env, {**state, "step": "done"})
    result.api_calls = client.calls - calls_before if client else 0
    return result
