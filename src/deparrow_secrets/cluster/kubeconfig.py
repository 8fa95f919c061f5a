"""Which cluster to talk to: kubeconfig files, context and in-cluster configuration.

Follows kubectl: `--kubeconfig FILE`, else `$KUBECONFIG` (a list of files, merged),
else `~/.kube/config`; `--context` or the files' current-context. Inside a pod with no
kubeconfig, the in-cluster configuration (ServiceAccount token) is used. A kubeconfig
holds credentials, so messages about it name the file and line, never its text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets.errors import ClusterConfigError

IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class KubeTarget:
    """What the user chose on the command line (both optional)."""

    kubeconfig: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class ResolvedConfig:
    """The kubeconfig files to load and the context to use (`in_cluster` otherwise)."""

    files: tuple[Path, ...]
    context: str
    in_cluster: bool = False
    contexts: tuple[str, ...] = field(default_factory=tuple)


def candidate_files(target: KubeTarget) -> tuple[list[Path], bool]:
    """Kubeconfig paths in kubectl's order, and whether the user named them explicitly."""
    if target.kubeconfig:
        return [Path(target.kubeconfig).expanduser()], True
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p], True
    return [Path("~/.kube/config").expanduser()], False


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    fix = "point --kubeconfig (or $KUBECONFIG) at a readable kubeconfig file"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClusterConfigError(f"kubeconfig {path} does not exist", hint=fix) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ClusterConfigError(f"cannot read kubeconfig {path}: {reason}", hint=fix) from None
    try:
        doc = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = exc.problem_mark if isinstance(exc, MarkedYAMLError) else None
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        # The text may hold tokens or keys: only the position is reported.
        raise ClusterConfigError(f"kubeconfig {where}: not valid YAML", hint=fix) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ClusterConfigError(f"kubeconfig {path}: not a kubeconfig (expected a mapping)",
                                 hint=fix)
    return doc


def resolve(target: KubeTarget) -> ResolvedConfig:
    paths, explicit = candidate_files(target)
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if not existing:
        if not explicit and os.environ.get("KUBERNETES_SERVICE_HOST") and not target.context:
            return ResolvedConfig((), IN_CLUSTER, in_cluster=True)
        named = ", ".join(str(p) for p in paths)
        raise ClusterConfigError(
            f"no kubeconfig: {named} does not exist",
            hint="pass --kubeconfig FILE or set $KUBECONFIG (kubectl's configuration), "
                 "or run inside the cluster")
    contexts: list[str] = []
    current: str | None = None
    for path in existing:
        doc = _read_kubeconfig(path)
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                    and entry["name"] not in contexts:
                contexts.append(entry["name"])
        if current is None and isinstance(doc.get("current-context"), str) \
                and doc["current-context"]:
            current = doc["current-context"]  # the first file that sets it wins (kubectl)
    files = ", ".join(str(p) for p in existing)
    context = target.context or current
    if not context:
        raise ClusterConfigError(
            f"no context chosen: {files} has no current-context",
            hint="pass --context NAME (contexts: " + (", ".join(contexts) or "none") + ")")
    if context not in contexts:
        raise ClusterConfigError(
            f"context '{context}' is not in {files}",
            hint="pass --context with one of: " + (", ".join(contexts) or "(no contexts)")
                 + " (kubectl config get-contexts lists them)")
    return ResolvedConfig(tuple(existing), context, contexts=tuple(contexts))


def load_client_configuration(resolved: ResolvedConfig) -> Any:
    """A `kubernetes.client.Configuration` for `resolved` (official client, lazily)."""
    from deparrow_secrets.deps import require

    require("kubernetes", "k8s")
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if resolved.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=os.pathsep.join(str(p) for p in resolved.files),
                context=resolved.context, client_configuration=configuration,
                persist_config=False)
    except ConfigException as exc:
        where = "in-cluster configuration" if resolved.in_cluster \
            else f"context {resolved.context}"
        raise ClusterConfigError(f"cannot use {where}: {_config_reason(exc)}",
                                 hint="check the context's cluster, user and certificate "
                                      "entries (kubectl config view --minify)") from None
    # Our bounded retries (stores/retry.py) replace urllib3's own.
    configuration.retries = False
    return configuration


def _config_reason(exc: Exception) -> str:
    # The client's messages name entries and files; keep the first line only, in case
    # a future version echoes a field's content.
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
