"""What the catalog says each environment needs: azure-name-underscore,
catalog-key-missing, ha-key-missing, target-not-consumed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import KUSTOMIZATION_FILES, Document, SourceFile
from deparrow_secrets.lint.findings import Finding
from deparrow_secrets.lint.rules.embedded import pod_specs
from deparrow_secrets.lint.rules.stores import STORE_KINDS, providers, remote_keys
from deparrow_secrets.render.validate import ESO_GROUP
from deparrow_secrets.stores.layout import azure_name

_AZURE_OBJECT_PREFIX = re.compile(r"^(?:secret|key|cert)/")


def target_name(doc: Document) -> str:
    name = doc.get(("spec", "target", "name"))
    return name if isinstance(name, str) and name else doc.name


def _store_providers(ctx: LintContext) -> dict[tuple[str | None, str, str], str]:
    """(env, kind, name) -> provider of every SecretStore/ClusterSecretStore."""
    out: dict[tuple[str | None, str, str], str] = {}
    for doc in ctx.manifests(STORE_KINDS, group=ESO_GROUP):
        for name, _ in providers(doc):
            env = None if doc.kind == "ClusterSecretStore" else doc.file.env
            out[(env, doc.kind, doc.name)] = name
    return out


def _provider_of(ctx: LintContext, doc: Document,
                 stores: dict[tuple[str | None, str, str], str]) -> str | None:
    ref = doc.get(("spec", "secretStoreRef"))
    kind = ref.get("kind", "SecretStore") if isinstance(ref, Mapping) else "SecretStore"
    name = ref.get("name") if isinstance(ref, Mapping) else None
    env = doc.file.env
    if isinstance(name, str):
        for scope in ((env, kind, name), (None, kind, name)):
            if scope in stores:
                return stores[scope]
    configured = ctx.env_config(env)
    return configured.provider if configured is not None else None


def check_azure_names(ctx: LintContext) -> Iterator[Finding]:
    stores = _store_providers(ctx)
    for doc in ctx.manifests(["ExternalSecret"], group=ESO_GROUP):
        if _provider_of(ctx, doc, stores) not in ("azurekv", "azure"):
            continue
        for path, key in remote_keys(doc):
            name = _AZURE_OBJECT_PREFIX.sub("", key)
            if "_" in name:
                yield ctx.finding(
                    "azure-name-underscore", doc, path,
                    f"{doc.describe()}: Key Vault secret name {name} has underscores; Key "
                    "Vault names allow only 0-9, a-z, A-Z and -",
                    fix=f"Use {azure_name(name)} (underscores as dashes, as `deparrow-secrets "
                    "provision` stores them)")


# ---------------------------------------------------------------------------- catalog keys


@dataclass
class _Target:
    docs: list[Document] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    opaque: bool = False  # dataFrom: the keys cannot be known from the manifest


def _targets(docs: list[Document]) -> dict[str, _Target]:
    out: dict[str, _Target] = {}
    for doc in docs:
        target = out.setdefault(target_name(doc), _Target())
        target.docs.append(doc)
        for item in doc.get(("spec", "data")) or []:
            if isinstance(item, Mapping) and isinstance(item.get("secretKey"), str):
                target.keys.add(item["secretKey"])
        if doc.get(("spec", "dataFrom")):
            target.opaque = True
    return out


def _anchor(ctx: LintContext, env: str) -> SourceFile | None:
    """The file to report an environment-wide finding on: a linted one of the overlay,
    its kustomization first."""
    files = sorted((f for f in ctx.files if f.env == env),
                   key=lambda f: (not f.reported, not f.path.name.startswith("kustomization"),
                                  f.display))
    return files[0] if files else None


def check_catalog_keys(ctx: LintContext) -> Iterator[Finding]:
    if ctx.project is None:
        return
    catalog = ctx.project.catalog
    linted_envs = {f.env for f in ctx.files if f.env}
    for env in ctx.project.config.environments.values():
        if not env.uses_eso or env.name not in linted_envs:
            continue
        docs = [d for d in ctx.manifests(["ExternalSecret"], group=ESO_GROUP)
                if d.file.env in (env.name, None)]
        targets = _targets(docs)
        for secret in catalog.secrets:
            needed = catalog.secret_keys(secret, env.ha, env.optional_keys)
            if not needed:
                continue
            target = targets.get(secret.name)
            if target is None:
                anchor = _anchor(ctx, env.name)
                if anchor is None:
                    continue
                rule = ("ha-key-missing" if all(catalog.values[k].requirement == "ha"
                                                 for k in needed) else "catalog-key-missing")
                yield ctx.finding(
                    rule, None, (), f"no ExternalSecret in the {env.name} overlay creates the "
                    f"Secret {secret.name} (keys: {', '.join(needed)})",
                    fix=f"Add an ExternalSecret with target {secret.name} (`deparrow-secrets "
                    "render` writes it)", file=anchor, line=1)
                continue
            if target.opaque:
                continue
            doc = target.docs[0]
            for key in needed:
                if key in target.keys:
                    continue
                ha = catalog.values[key].requirement == "ha"
                why = "an HA environment needs it" if ha else "the catalog requires it"
                yield ctx.finding(
                    "ha-key-missing" if ha else "catalog-key-missing", doc, ("spec", "data"),
                    f"{doc.describe()}: {key} is missing from the Secret {secret.name} in "
                    f"{env.name} ({why})",
                    fix=f"Add a data entry with secretKey {key} (`deparrow-secrets render` "
                    "writes it)")


# ---------------------------------------------------------------------------- consumers


def _consumed(doc: Document) -> set[str]:
    names: set[str] = set()
    for _, spec in pod_specs(doc):
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for container in spec.get(group) or []:
                if not isinstance(container, Mapping):
                    continue
                for source in container.get("envFrom") or []:
                    ref = source.get("secretRef") if isinstance(source, Mapping) else None
                    if isinstance(ref, Mapping) and ref.get("name"):
                        names.add(str(ref["name"]))
                for env in container.get("env") or []:
                    value_from = env.get("valueFrom") if isinstance(env, Mapping) else None
                    ref = value_from.get("secretKeyRef") if isinstance(value_from,
                                                                        Mapping) else None
                    if isinstance(ref, Mapping) and ref.get("name"):
                        names.add(str(ref["name"]))
        for volume in spec.get("volumes") or []:
            if not isinstance(volume, Mapping):
                continue
            secret = volume.get("secret")
            if isinstance(secret, Mapping) and secret.get("secretName"):
                names.add(str(secret["secretName"]))
            projected = volume.get("projected")
            for source in (projected.get("sources") or [] if isinstance(projected, Mapping)
                           else []):
                ref = source.get("secret") if isinstance(source, Mapping) else None
                if isinstance(ref, Mapping) and ref.get("name"):
                    names.add(str(ref["name"]))
        for pull in spec.get("imagePullSecrets") or []:
            if isinstance(pull, Mapping) and pull.get("name"):
                names.add(str(pull["name"]))
    return names


@dataclass
class _Build:
    """What one kustomization builds: its documents, each with the name prefix and
    suffix kustomize gives it (outer ones wrap inner ones)."""

    docs: list[tuple[Document, str, str]] = field(default_factory=list)


def _kustomization_of(ctx: LintContext, directory: Path) -> SourceFile | None:
    for name in KUSTOMIZATION_FILES:
        for source in ctx.files:
            if source.path == directory / name:
                return source
    return None


def _entries(doc: Document) -> list[str]:
    out: list[str] = []
    for key in ("resources", "bases", "components"):
        items = doc.get((key,))
        if isinstance(items, list):
            out += [i for i in items if isinstance(i, str) and "://" not in i]
    return out


def _builds(ctx: LintContext) -> tuple[list[_Build], set[Path]]:
    """The builds of the kustomizations no other one includes (the roots), and every
    file any kustomization includes."""
    by_file: dict[Path, list[Document]] = {}
    for doc in ctx.documents:
        by_file.setdefault(doc.file.path, []).append(doc)
    kustomizations = {s.path: d for s in ctx.files if s.path.name in KUSTOMIZATION_FILES
                      for d in by_file.get(s.path, [])[:1] if d.is_kustomization}
    included: set[Path] = set()

    def files_of(path: Path, seen: frozenset[Path]) -> list[tuple[Path, str, str]]:
        doc = kustomizations.get(path)
        if doc is None or path in seen:
            return []
        prefix = doc.get(("namePrefix",)) if isinstance(doc.get(("namePrefix",)), str) else ""
        suffix = doc.get(("nameSuffix",)) if isinstance(doc.get(("nameSuffix",)), str) else ""
        out: list[tuple[Path, str, str]] = []
        for entry in _entries(doc):
            target = Path(os.path.normpath(path.parent / entry))
            inner = _kustomization_of(ctx, target)
            if inner is not None:
                included.add(inner.path)
                out += [(f, prefix + p, s + suffix)
                        for f, p, s in files_of(inner.path, seen | {path})]
            elif target in by_file or any(f.path == target for f in ctx.files):
                included.add(target)
                out.append((target, prefix, suffix))
        return out

    trees = {path: files_of(path, frozenset()) for path in kustomizations}
    builds = []
    for path, files in trees.items():
        if path in included:
            continue
        build = _Build()
        for file, prefix, suffix in files:
            build.docs += [(d, prefix, suffix) for d in by_file.get(file, [])]
        builds.append(build)
    return builds, included


def check_targets_consumed(ctx: LintContext) -> Iterator[Finding]:
    """Judged within what is deployed together: each top-level kustomization's build, or
    the file itself for an ExternalSecret no kustomization includes. Silent where no
    workload is in scope (ESO's examples have none)."""
    externals = list(ctx.manifests(["ExternalSecret"], group=ESO_GROUP))
    if not externals:
        return
    builds, included = _builds(ctx)
    scopes: dict[int, list[tuple[list[Document], str, str]]] = {}
    for build in builds:
        workloads = [d for d, _, _ in build.docs if list(pod_specs(d))]
        for doc, prefix, suffix in build.docs:
            if doc.kind == "ExternalSecret" and doc.group == ESO_GROUP:
                scopes.setdefault(id(doc), []).append((workloads, prefix, suffix))
    for doc in externals:
        found = scopes.get(id(doc))
        if found is None and doc.file.path not in included:
            same_file = [d for d in ctx.documents if d.file is doc.file and list(pod_specs(d))]
            found = [(same_file, "", "")]
        judged = [(w, p, s) for w, p, s in found or [] if w]
        if not judged:
            continue
        explicit = doc.get(("spec", "target", "name"))
        raw = explicit if isinstance(explicit, str) and explicit else doc.name
        consumed_somewhere = False
        for workloads, prefix, suffix in judged:
            consumed = set().union(*(_consumed(w) for w in workloads))
            if {raw, f"{prefix}{raw}{suffix}"} & consumed:
                consumed_somewhere = True
                break
        if consumed_somewhere:
            continue
        count = max(len(w) for w, _, _ in judged)
        path = ("spec", "target", "name") if explicit else ("metadata", "name")
        yield ctx.finding(
            "target-not-consumed", doc, path,
            f"{doc.describe()}: no workload deployed with it references its target Secret "
            f"{raw} ({count} workload(s) checked)")
