"""SecretStores and ExternalSecrets: missing-service-account-ref, refresh-disabled,
store-shared-between-envs (manifest side; the configuration side is in `config`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deparrow_secrets.config.yamlfile import KeyPath
from deparrow_secrets.findings import ERROR, WARNING, Finding, Rule, declare
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import Document
from deparrow_secrets.render.validate import ESO_GROUP

REFRESH_DISABLED = Rule(
    "refresh-disabled", WARNING,
    "An ExternalSecret (or environment) that never refreshes: `refreshInterval: 0` or "
    "`refreshPolicy: CreatedOnce`; rotated values never reach the cluster and "
    "force-sync annotations are ignored.",
    "Use `refreshPolicy: Periodic` (the default) with an interval such as 1h.")

RULES = declare(
    Rule("store-shared-between-envs", ERROR,
         "Two environments that use the same store location (configuration), the same "
         "SecretStore target or the same remote paths (manifests), or an environment "
         "that reads another environment's path.",
         "Give each environment its own store location (path, prefix or Key Vault)."),
    Rule("missing-service-account-ref", ERROR,
         "A SecretStore whose provider's auth needs a `serviceAccountRef` and lacks it: AWS "
         "(IRSA: auth.jwt.serviceAccountRef), Azure workload identity, Vault kubernetes auth. "
         "Without it ESO authenticates as its own controller.",
         "Add the serviceAccountRef naming the ServiceAccount that carries the identity "
         "(`deparrow-secrets render` writes it)."),
    REFRESH_DISABLED,
    Rule("azure-tenant-twice", ERROR,
         "An Azure workload identity SecretStore with `tenantId` whose ServiceAccount also "
         "carries the `azure.workload.identity/tenant-id` annotation: ESO refuses it "
         "(\"multiple tenantID found\", providers/v1/azure/keyvault/keyvault.go), so the "
         "store is never Ready.",
         "Give the tenant once: drop `tenantId` from the SecretStore and keep the "
         "ServiceAccount annotation, as ESO's workload identity example does."),
)

STORE_KINDS = ("SecretStore", "ClusterSecretStore")
VAULT_PROVIDERS = ("vault", "openBao")
_ZERO_DURATIONS = {"0", "0s", "0m", "0h", "0ms", "0ns", "0us", "0h0m0s", "0m0s"}


def providers(doc: Document) -> Iterator[tuple[str, Mapping[str, Any]]]:
    provider = doc.get(("spec", "provider"))
    if isinstance(provider, Mapping):
        for name, block in provider.items():
            if isinstance(block, Mapping):
                yield str(name), block


def remote_keys(doc: Document) -> Iterator[tuple[KeyPath, str]]:
    """Remote object names an ExternalSecret reads, with their key paths."""
    spec = doc.get(("spec",))
    if not isinstance(spec, Mapping):
        return
    for i, item in enumerate(spec.get("data") or []):
        key = item.get("remoteRef", {}).get("key") if isinstance(item, Mapping) else None
        if isinstance(key, str):
            yield ("spec", "data", i, "remoteRef", "key"), key
    for i, item in enumerate(spec.get("dataFrom") or []):
        if not isinstance(item, Mapping):
            continue
        extract = item.get("extract")
        if isinstance(extract, Mapping) and isinstance(extract.get("key"), str):
            yield ("spec", "dataFrom", i, "extract", "key"), extract["key"]
        find = item.get("find")
        if isinstance(find, Mapping) and isinstance(find.get("path"), str):
            yield ("spec", "dataFrom", i, "find", "path"), find["path"]


def _sa_finding(ctx: LintContext, doc: Document, path: KeyPath, what: str) -> Finding:
    sa = ctx.project.config.service_account if ctx.project else "deparrow-external-secrets-sa"
    return ctx.finding("missing-service-account-ref", doc, path, f"{doc.describe()}: {what}",
                       fix=f"Add `serviceAccountRef: {{name: {sa}}}` here (the ServiceAccount "
                       "carrying the identity); `deparrow-secrets render` writes it")


def check_service_account_ref(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.manifests(STORE_KINDS, group=ESO_GROUP):
        for name, block in providers(doc):
            base: KeyPath = ("spec", "provider", name)
            auth = block.get("auth")
            if name == "aws":
                if not isinstance(auth, Mapping) or not auth:
                    yield _sa_finding(ctx, doc, base,
                                      "the aws provider has no `auth`, so ESO authenticates as "
                                      "its own controller instead of the IRSA ServiceAccount; "
                                      "add auth.jwt.serviceAccountRef")
                elif "jwt" in auth and not (isinstance(auth["jwt"], Mapping)
                                            and auth["jwt"].get("serviceAccountRef")):
                    yield _sa_finding(ctx, doc, (*base, "auth", "jwt"),
                                      "auth.jwt has no serviceAccountRef (IRSA needs it)")
            elif name == "azurekv":
                auth_type = block.get("authType", "ServicePrincipal")
                if auth_type == "WorkloadIdentity" and not block.get("serviceAccountRef"):
                    yield _sa_finding(ctx, doc, (*base, "authType"),
                                      "authType WorkloadIdentity without serviceAccountRef")
                elif auth_type == "ServicePrincipal" and not block.get("authSecretRef"):
                    yield _sa_finding(ctx, doc, base,
                                      "the azurekv provider has neither authType nor "
                                      "authSecretRef, so ESO has no usable credentials; for "
                                      "workload identity set `authType: WorkloadIdentity` and "
                                      "serviceAccountRef")
            elif name in VAULT_PROVIDERS and isinstance(auth, Mapping):
                kube = auth.get("kubernetes")
                if isinstance(kube, Mapping) and not (kube.get("serviceAccountRef")
                                                      or kube.get("secretRef")):
                    yield _sa_finding(ctx, doc, (*base, "auth", "kubernetes"),
                                      "kubernetes auth without serviceAccountRef: the Vault "
                                      "role is bound to a ServiceAccount ESO does not use")


AZURE_TENANT_ANNOTATION = "azure.workload.identity/tenant-id"


def check_azure_tenant(ctx: LintContext) -> Iterator[Finding]:
    """Workload identity with the tenant in the store and on the ServiceAccount deployed
    with it (`lint.scopes`): ESO's default path refuses it, "multiple tenantID found"
    (providers/v1/azure/keyvault/keyvault.go; its test "duplicated tenantId")."""
    from deparrow_secrets.lint.scopes import deployment_scopes

    scopes = None
    for doc in ctx.manifests(STORE_KINDS, group=ESO_GROUP):
        for name, block in providers(doc):
            if name != "azurekv" or block.get("authType") != "WorkloadIdentity":
                continue
            ref = block.get("serviceAccountRef")
            sa_name = ref.get("name") if isinstance(ref, Mapping) else None
            if not block.get("tenantId") or not isinstance(sa_name, str):
                continue
            scopes = scopes or deployment_scopes(ctx)
            annotated = [d for scope in scopes.of(doc) for d in scope.docs
                         if d.kind == "ServiceAccount" and d.name == sa_name
                         and _annotation(d, AZURE_TENANT_ANNOTATION)]
            if not annotated:
                continue
            yield ctx.finding(
                "azure-tenant-twice", doc, ("spec", "provider", name, "tenantId"),
                f"{doc.describe()}: tenantId is set and ServiceAccount {sa_name} "
                f"({annotated[0].file.display}) carries {AZURE_TENANT_ANNOTATION}: ESO fails "
                "with \"multiple tenantID found\" and the store is never Ready")


def _annotation(doc: Document, name: str) -> object:
    annotations = doc.get(("metadata", "annotations"))
    return annotations.get(name) if isinstance(annotations, Mapping) else None


def check_refresh(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.manifests(["ExternalSecret"], group=ESO_GROUP):
        interval = doc.get(("spec", "refreshInterval"))
        if interval == 0 or (isinstance(interval, str) and interval.strip() in _ZERO_DURATIONS):
            yield ctx.finding("refresh-disabled", doc, ("spec", "refreshInterval"),
                              f"{doc.describe()}: refreshInterval 0 never refreshes: rotated "
                              "values never reach the Secret",
                              fix="Set refreshInterval to a duration such as 1h")
        if doc.get(("spec", "refreshPolicy")) == "CreatedOnce":
            yield ctx.finding("refresh-disabled", doc, ("spec", "refreshPolicy"),
                              f"{doc.describe()}: refreshPolicy CreatedOnce syncs once and "
                              "never again, force-sync annotations included",
                              fix="Remove refreshPolicy (Periodic is the default) or set "
                              "Periodic with a refreshInterval such as 1h")


def check_shared_paths(ctx: LintContext) -> Iterator[Finding]:
    """An ExternalSecret of one environment that reads another environment's path."""
    names = ctx.env_names
    for doc in ctx.manifests(["ExternalSecret"], group=ESO_GROUP):
        env = doc.file.env
        if env is None:
            continue
        for path, key in remote_keys(doc):
            others = [s for s in key.split("/") if s in names and s != env]
            if others:
                yield ctx.finding(
                    "store-shared-between-envs", doc, path,
                    f"{doc.describe()} in the {env} overlay reads a remote path of the "
                    f"{others[0]} environment",
                    fix=f"Read {env}'s own path (deparrow/{env}/...); each environment keeps "
                    "its values apart")


def store_target(block_name: str, block: Mapping[str, Any]) -> tuple[str, ...] | None:
    def text(key: str) -> str:
        value = block.get(key)
        return str(value).rstrip("/").lower() if value is not None else ""

    if block_name == "azurekv":
        return ("azure", text("vaultUrl")) if block.get("vaultUrl") else None
    if block_name in VAULT_PROVIDERS:
        return ("vault", text("server"), text("namespace"), text("path"))
    if block_name == "aws":
        return ("aws", text("service"), text("region"))
    return None


def check_shared_stores(ctx: LintContext) -> Iterator[Finding]:
    """Two overlays whose SecretStores point at the same place and read the same paths."""
    stores: dict[tuple[str, ...], list[Document]] = {}
    keys_by_env: dict[str, set[str]] = {}
    for doc in ctx.manifests(["ExternalSecret"], group=ESO_GROUP):
        if doc.file.env:
            keys_by_env.setdefault(doc.file.env, set()).update(k for _, k in remote_keys(doc))
    for doc in ctx.manifests(STORE_KINDS, group=ESO_GROUP):
        if doc.file.env is None:
            continue
        for name, block in providers(doc):
            target = store_target(name, block)
            if target is not None:
                stores.setdefault(target, []).append(doc)
    for target, docs in stores.items():
        first = docs[0]
        for doc in docs[1:]:
            env, other = doc.file.env, first.file.env
            if env == other or env is None or other is None:
                continue
            if target[0] == "azure":
                shared = "the same Key Vault"
            else:
                common = keys_by_env.get(env, set()) & keys_by_env.get(other, set())
                if not common:
                    continue
                shared = (f"the same {target[0]} store and {len(common)} identical remote "
                          "path(s)")
            yield ctx.finding(
                "store-shared-between-envs", doc, ("spec", "provider"),
                f"{doc.describe()}: the {other} and {env} overlays use {shared}",
                fix="Use a separate store location per environment (Key Vault per "
                "environment; path or prefix deparrow/<env>)")
