"""Impact: which workloads and pods consume a Secret (or one key of the catalog), how,
and which pods still hold a copy older than the Secret's last change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import KubeClient
from deparrow_secrets.cluster.consumers import ENV_FROM, FROZEN, IMAGE_PULL, SecretUse
from deparrow_secrets.cluster.state import (
    last_data_change,
    parse_time,
    read_state,
    require_namespace,
)
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import InputError
from deparrow_secrets.project import Project
from deparrow_secrets.render.manifests import external_secret_name


@dataclass
class Consumer:
    kind: str
    name: str
    ways: list[str]  # env, envFrom, volume, projected, subPath, imagePullSecrets
    secrets: list[str]
    containers: list[str]
    keys: list[str]  # the keys referenced one by one (env, items, subPath)
    owner: str | None = None  # pods: the workload that owns them
    started: str | None = None
    stale: bool = False  # pods: started before the Secret last changed, value frozen
    reloader: bool = False  # workloads: Stakater Reloader restarts it on a change


@dataclass
class ImpactReport:
    target: str
    environment: str
    namespace: str
    secrets: list[str]
    key: str | None
    workloads: list[Consumer] = field(default_factory=list)
    pods: list[Consumer] = field(default_factory=list)
    last_change: str | None = None
    api_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        from deparrow_secrets.operations.reports import camel_dict

        return {"target": self.target, "environment": self.environment,
                "namespace": self.namespace, "secrets": self.secrets, "key": self.key,
                "lastChange": self.last_change,
                "workloads": [camel_dict(c) for c in self.workloads],
                "pods": [camel_dict(c) for c in self.pods], "apiCalls": self.api_calls}

    def heading(self) -> str:
        what = f"key {self.key} (in {', '.join(self.secrets)})" if self.key \
            else f"Secret {self.target}"
        return (f"{what}, environment {self.environment}, namespace {self.namespace}"
                + (f"; data last changed {self.last_change}" if self.last_change else ""))

    def workload_rows(self) -> list[tuple[object, ...]]:
        return [(f"{c.kind}/{c.name}", ",".join(c.ways), ",".join(c.containers) or None,
                 ",".join(c.keys) or "all", "yes" if c.reloader else "no")
                for c in self.workloads]

    def pod_rows(self) -> list[tuple[object, ...]]:
        return [(c.name, c.owner, ",".join(c.ways), c.started, "yes" if c.stale else "no")
                for c in self.pods]

    def stale_line(self) -> str | None:
        """How many pods hold an old copy, and the restarts that refresh them."""
        stale = [c for c in self.pods if c.stale]
        if not stale:
            return None
        owners = sorted({c.owner for c in stale if c.owner})
        return (f"{len(stale)} pod(s) hold a copy older than the Secret; restart: "
                + "; ".join(f"kubectl -n {self.namespace} rollout restart {o.lower()}"
                            for o in owners))


def _targets(project: Project, env: EnvironmentConfig, target: str) -> tuple[list[str],
                                                                             str | None]:
    catalog = project.catalog
    if target in catalog.values:
        return ([s.name for s in catalog.secrets if target in s.keys
                 and target in catalog.secret_keys(s, env.ha, env.optional_keys)], target)
    return [target], None


def _relevant(use: SecretUse, secrets: list[str], key: str | None) -> bool:
    """Whether `use` reads `key` of one of `secrets` (any key when `key` is None)."""
    if use.secret not in secrets:
        return False
    if key is None:
        return True
    if use.how == IMAGE_PULL:
        return False
    # envFrom and whole-volume mounts take every key; env, items and subPath name theirs.
    return use.how == ENV_FROM or use.key is None or use.key == key


def _consumer(kind: str, name: str, uses: list[SecretUse]) -> Consumer:
    return Consumer(kind, name, sorted({u.how for u in uses}), sorted({u.secret for u in uses}),
                    sorted({u.container for u in uses if u.container}),
                    sorted({u.key for u in uses if u.key}))


def impact(project: Project, env: EnvironmentConfig, client: KubeClient,
           target: str) -> ImpactReport:
    calls = client.calls
    ns = project.config.namespace
    secrets, key = _targets(project, env, target)
    if not secrets:
        raise InputError(f"'{target}' is a catalog key that environment {env.name} does not "
                         "use", hint="impact takes a Kubernetes Secret name or a key the "
                         "environment needs")
    require_namespace(client, ns, env)
    state = read_state(client, project.config, env)
    if key is None and target not in state.secrets and \
            target not in {s.name for s in project.catalog.secrets} and \
            not any(u.secret == target for w in state.workloads for u in w.uses):
        raise InputError(f"'{target}' is neither a catalog key nor a Secret in namespace {ns}",
                         hint="catalog keys: " + ", ".join(project.catalog.values)
                         + "; Secrets: " + (", ".join(sorted(state.secrets)) or "none"))
    changes = [last_data_change(state, external_secret_name(s))
               for s in project.catalog.secrets if s.name in secrets and env.uses_eso]
    last = max((c for c in changes if c is not None), default=None)
    report = ImpactReport(target, env.name, ns, secrets, key,
                          last_change=last.isoformat() if last else None)
    for w in state.workloads:
        uses = [u for u in w.uses if _relevant(u, secrets, key)]
        if uses:
            c = _consumer(w.kind, w.name, uses)
            c.reloader = any(w.reloader_watches(s) for s in c.secrets)
            report.workloads.append(c)
    for pod in state.pods:
        uses = [u for u in pod.uses if _relevant(u, secrets, key)]
        if not uses:
            continue
        c = _consumer("Pod", pod.name, uses)
        c.owner, c.started = pod.owner, pod.started
        started = parse_time(pod.started)
        c.stale = bool(last and started and started < last
                       and any(u.how in FROZEN for u in uses))
        report.pods.append(c)
    report.api_calls = client.calls - calls
    return report
