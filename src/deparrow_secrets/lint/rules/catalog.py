"""What the catalog says each environment needs: azure-name-underscore,
catalog-key-missing, ha-key-missing, target-not-consumed."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from deparrow_secrets.findings import ERROR, WARNING, Finding, Rule, declare
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import Document, SourceFile
from deparrow_secrets.lint.rules.embedded import pod_specs
from deparrow_secrets.lint.rules.stores import STORE_KINDS, providers, remote_keys
from deparrow_secrets.lint.scopes import deployment_scopes
from deparrow_secrets.providers.azure.settings import secret_name as azure_name
from deparrow_secrets.render.validate import ESO_GROUP

RULES = declare(
    Rule("azure-name-underscore", ERROR,
         "An Azure Key Vault remote name with an underscore; Key Vault names allow only "
         "0-9, a-z, A-Z and -.",
         "Use dashes for underscores (DEPARROW_JWT_SECRET is DEPARROW-JWT-SECRET)."),
    Rule("catalog-key-missing", ERROR,
         "A catalog key an environment needs that none of its ExternalSecrets provides.",
         "Add it to the ExternalSecret (or run `deparrow-secrets render`)."),
    Rule("ha-key-missing", ERROR,
         "A key required in HA environments (POSTGRES_REPLICATION_PASSWORD) missing from "
         "an HA environment's ExternalSecrets.",
         "Add it to the ExternalSecret (or run `deparrow-secrets render`)."),
    Rule("target-not-consumed", WARNING,
         "An ExternalSecret whose target Secret no workload deployed with it references "
         "(one kustomization's build, with its name prefix and suffix, or one file; "
         "silent when no workload is in scope).",
         "Reference the Secret from the workload (envFrom, secretKeyRef, volume) or remove "
         "the ExternalSecret; check the target name for typos."),
)

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


def check_targets_consumed(ctx: LintContext) -> Iterator[Finding]:
    """Judged within what is deployed together (`lint.scopes`): each top-level
    kustomization's build, or the file itself for an ExternalSecret no kustomization
    includes. Silent where no workload is in scope (ESO's examples have none)."""
    externals = list(ctx.manifests(["ExternalSecret"], group=ESO_GROUP))
    if not externals:
        return
    scopes = deployment_scopes(ctx)
    for doc in externals:
        judged = [(workloads, scope.prefix, scope.suffix) for scope in scopes.of(doc)
                  if (workloads := [d for d in scope.docs if list(pod_specs(d))])]
        if not judged:
            continue
        explicit = doc.get(("spec", "target", "name"))
        raw = explicit if isinstance(explicit, str) and explicit else doc.name
        if any({raw, f"{prefix}{raw}{suffix}"} & set().union(*(_consumed(w) for w in workloads))
               for workloads, prefix, suffix in judged):
            continue
        count = max(len(w) for w, _, _ in judged)
        path = ("spec", "target", "name") if explicit else ("metadata", "name")
        yield ctx.finding(
            "target-not-consumed", doc, path,
            f"{doc.describe()}: no workload deployed with it references its target Secret "
            f"{raw} ({count} workload(s) checked)")
