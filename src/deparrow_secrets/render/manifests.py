"""The Kubernetes objects each environment needs, for the provider its store names.

Staging and production get a ServiceAccount with its identity annotations, a
SecretStore in external-secrets.io/v1 with the authentication block ESO actually
accepts, and one ExternalSecret per Kubernetes Secret of the catalog whose remote
references come from the same layout the stores use. Dev-style environments
(`local` store) get a Kustomize secretGenerator fed by exported env files.
"""

from __future__ import annotations

from typing import Any

from deparrow_secrets.config.catalog import Catalog, KubernetesSecret
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.stores.interface import WHOLE
from deparrow_secrets.stores.layout import Layout

ESO_API = "external-secrets.io/v1"
AUTH_DELEGATOR = "system:auth-delegator"

Obj = dict[str, Any]


def external_secret_name(secret: KubernetesSecret) -> str:
    return f"{secret.name}-external"


def env_file_name(secret: KubernetesSecret) -> str:
    return f"secrets/{secret.name}.env"


def _meta(name: str, namespace: str | None, **extra: Any) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {"app.kubernetes.io/part-of": "deparrow",
                      "app.kubernetes.io/managed-by": "deparrow-secrets"}
    meta.update(extra)
    return meta


def service_account(config: Config, env: EnvironmentConfig) -> Obj:
    store = env.store
    annotations: dict[str, str] = {}
    if env.provider == "aws" and store.role_arn:
        annotations["eks.amazonaws.com/role-arn"] = store.role_arn
    if env.provider == "azure" and store.auth == "workload-identity":
        if store.client_id:
            annotations["azure.workload.identity/client-id"] = store.client_id
        if store.tenant_id:
            annotations["azure.workload.identity/tenant-id"] = store.tenant_id
    meta = _meta(config.service_account, config.namespace)
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def _provider_block(config: Config, env: EnvironmentConfig) -> Obj:
    store = env.store
    sa_ref: Obj = {"name": config.service_account}
    if env.provider == "aws":
        return {"aws": {"service": "SecretsManager", "region": store.region,
                        "auth": {"jwt": {"serviceAccountRef": sa_ref}}}}
    if env.provider == "azure":
        block: Obj = {"vaultUrl": store.vault_url}
        if store.auth == "managed-identity":
            block["tenantId"] = store.tenant_id
            block["authType"] = "ManagedIdentity"
            if store.identity_id:
                block["identityId"] = store.identity_id
        else:
            # The tenant is given once, on the ServiceAccount (ESO's example): a tenantId
            # here as well fails with "multiple tenantID found"
            # (providers/v1/azure/keyvault/keyvault.go, test "duplicated tenantId").
            block["authType"] = "WorkloadIdentity"
            block["serviceAccountRef"] = sa_ref
        return {"azurekv": block}
    vault_sa: Obj = {"name": config.service_account}
    if store.audience:
        vault_sa["audiences"] = [store.audience]
    block = {"server": store.server, "path": store.mount, "version": "v2"}
    if store.vault_namespace:
        block["namespace"] = store.vault_namespace
    block["auth"] = {"kubernetes": {"mountPath": store.auth_mount, "role": store.role,
                                    "serviceAccountRef": vault_sa}}
    return {"vault": block}


def secret_store(config: Config, env: EnvironmentConfig) -> Obj:
    return {"apiVersion": ESO_API, "kind": "SecretStore",
            "metadata": _meta(config.secret_store, config.namespace),
            "spec": {"provider": _provider_block(config, env)}}


def vault_remote_key(env: EnvironmentConfig, path: str) -> str:
    """The remoteRef.key that ESO's Vault provider resolves to `<mount>/data/<path>`.

    ESO's buildPath (providers/v1/vault/client_get.go) strips a leading `<mount>/` from
    the key, then a leading `data/`, and puts `<mount>/data/` in front of the rest. A
    bare `<path>` whose first segment equals the mount name would lose that segment
    (mount `deparrow`, path `deparrow/staging` reads `deparrow/data/staging`), so the
    key always starts with the mount; a path that itself starts with `data/` needs the
    `data/` written out, or buildPath would strip it as the KV v2 infix.
    """
    mount = env.store.mount.strip("/")
    path = path.strip("/")
    if path == "data" or path.startswith("data/"):
        return f"{mount}/data/{path}"
    return f"{mount}/{path}"


def external_secret(config: Config, layout: Layout, secret: KubernetesSecret) -> Obj:
    env = layout.env
    data = []
    for key in layout.catalog.secret_keys(secret, env.ha, env.optional_keys):
        ref = layout.ref(key)
        remote: Obj = {"key": vault_remote_key(env, ref.key) if env.provider == "vault"
                       else ref.key}
        if ref.property != WHOLE:
            remote["property"] = ref.property
        data.append({"secretKey": key, "remoteRef": remote})
    return {
        "apiVersion": ESO_API, "kind": "ExternalSecret",
        "metadata": _meta(external_secret_name(secret), config.namespace),
        "spec": {
            "refreshInterval": env.refresh_interval,
            "secretStoreRef": {"name": config.secret_store, "kind": "SecretStore"},
            "target": {"name": secret.name, "creationPolicy": "Owner"},
            "data": data,
        },
    }


def auth_delegator_binding(config: Config) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": _meta(f"{config.service_account}-auth-delegator", None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": AUTH_DELEGATOR},
        "subjects": [{"kind": "ServiceAccount", "name": config.service_account,
                      "namespace": config.namespace}],
    }


def needs_auth_delegator(env: EnvironmentConfig) -> bool:
    """Only when Vault reviews ESO's token with that token itself: in the other modes the
    reviewer is Vault's pod or the reviewer JWT's account, not ESO's."""
    return env.provider == "vault" and env.store.token_review == "client-token"


def eso_objects(config: Config, catalog: Catalog, env: EnvironmentConfig) -> list[Obj]:
    """Everything ESO needs in one environment, in apply order."""
    layout = Layout(catalog, env)
    objs = [service_account(config, env)]
    if needs_auth_delegator(env):
        objs.append(auth_delegator_binding(config))
    objs.append(secret_store(config, env))
    objs += [external_secret(config, layout, s) for s in catalog.secrets
             if catalog.secret_keys(s, env.ha, env.optional_keys)]
    return objs


def namespace_object(config: Config) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(config.namespace, None)}


def generator_kustomization(config: Config, catalog: Catalog, env: EnvironmentConfig) -> Obj:
    generators = [{"name": s.name, "envs": [env_file_name(s)]} for s in catalog.secrets
                  if catalog.secret_keys(s, env.ha, env.optional_keys)]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": config.namespace,
        "resources": ["../../base"],
        # The guide's commands and ESO environments use the plain Secret names.
        "generatorOptions": {"disableNameSuffixHash": True,
                             "labels": {"app.kubernetes.io/part-of": "deparrow"}},
        "secretGenerator": generators,
    }


# --------------------------------------------------------------------------- networkPolicy

NETWORK_API = "networking.k8s.io/v1"
DEFAULT_DENY = "deparrow-default-deny"
ESO_EGRESS = "external-secrets-egress"
ESO_NAMESPACE = "external-secrets"
API_SERVER_PORTS = (443, 6443)


def _network_policy(name: str, namespace: str, spec: Obj) -> Obj:
    return {"apiVersion": NETWORK_API, "kind": "NetworkPolicy",
            "metadata": _meta(name, namespace), "spec": spec}


def _dns_egress() -> Obj:
    return {"to": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "kube-system"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def app_network_policies(config: Config) -> list[Obj]:
    """Default deny for every pod of the application namespace: ingress, and egress when
    `networkPolicy.egress` is set (then DNS stays allowed, or nothing resolves). The
    workloads' own allow policies are theirs to add."""
    policy = config.network_policy
    if policy is None:
        return []
    types = ["Ingress", "Egress"] if policy.egress else ["Ingress"]
    objs = [_network_policy(DEFAULT_DENY, config.namespace,
                            {"podSelector": {}, "policyTypes": types})]
    if policy.egress:
        objs.append(_network_policy("deparrow-allow-dns", config.namespace, {
            "podSelector": {}, "policyTypes": ["Egress"], "egress": [_dns_egress()]}))
    return objs


def store_port(config: Config, env: EnvironmentConfig) -> int:
    """The port ESO reaches the store on: networkPolicy.storePort when given, else the
    Vault server URL's port, else 443 (AWS and Azure endpoints)."""
    from urllib.parse import urlparse

    policy = config.network_policy
    if policy is not None and policy.store_port_set:
        return policy.store_port
    if env.provider == "vault" and env.store.server:
        parsed = urlparse(env.store.server)
        return parsed.port or (443 if parsed.scheme == "https" else 80)
    return 443


def eso_egress_policy(config: Config, env: EnvironmentConfig) -> Obj | None:
    """ESO's pods may reach DNS, the API server and the environment's store, nothing
    else. Without `apiServer:`/`store:` CIDRs the port is allowed to any address."""
    policy = config.network_policy
    if policy is None or not env.uses_eso:
        return None

    def to(cidrs: tuple[str, ...], ports: tuple[int, ...]) -> Obj:
        rule: Obj = {"ports": [{"protocol": "TCP", "port": p} for p in ports]}
        if cidrs:
            rule["to"] = [{"ipBlock": {"cidr": c}} for c in cidrs]
        return rule

    return _network_policy(ESO_EGRESS, ESO_NAMESPACE, {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [_dns_egress(), to(policy.api_server, API_SERVER_PORTS),
                   to(policy.store, (store_port(config, env),))]})
