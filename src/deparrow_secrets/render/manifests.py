"""The Kubernetes objects each environment needs, for the provider its store names.

Staging and production get a ServiceAccount with its identity annotations, a
SecretStore in external-secrets.io/v1 with the authentication block ESO actually
accepts, and one ExternalSecret per Kubernetes Secret of the catalog whose remote
references come from the same layout the stores use. Dev-style environments
(`local` store) get a Kustomize secretGenerator fed by exported env files.
"""

from __future__ import annotations

from deparrow_secrets import providers
from deparrow_secrets.config.catalog import Catalog, KubernetesSecret
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.k8sobjects import (
    AUTH_DELEGATOR,
    ESO_API,
    Obj,
    auth_delegator_binding,
)
from deparrow_secrets.k8sobjects import meta as _meta
from deparrow_secrets.providers import secret_store, service_account
from deparrow_secrets.stores.interface import WHOLE
from deparrow_secrets.stores.layout import Layout

__all__ = ["AUTH_DELEGATOR", "ESO_API", "auth_delegator_binding", "eso_objects",
           "external_secret", "needs_auth_delegator", "secret_store", "service_account"]


def external_secret_name(secret: KubernetesSecret) -> str:
    return f"{secret.name}-external"


def env_file_name(secret: KubernetesSecret) -> str:
    return f"secrets/{secret.name}.env"


def external_secret(config: Config, layout: Layout, secret: KubernetesSecret) -> Obj:
    env = layout.env
    provider = providers.of(env)
    data = []
    for key in layout.catalog.secret_keys(secret, env.ha, env.optional_keys):
        ref = layout.ref(key)
        remote: Obj = {"key": provider.eso_remote_key(env, ref.key)}
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


def needs_auth_delegator(env: EnvironmentConfig) -> bool:
    """Whether ESO's own ServiceAccount reviews tokens (the provider knows)."""
    return providers.of(env).needs_auth_delegator(env)


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
    provider's (the Vault server URL's port; 443 for AWS and Azure endpoints)."""
    policy = config.network_policy
    if policy is not None and policy.store_port_set:
        return policy.store_port
    return providers.of(env).store_port(env)


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
