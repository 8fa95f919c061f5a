"""deparrow-secrets.yaml: namespace, identities and one store per environment.

Every option defaults to the guide's names; a missing file means dev on `local`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets.config.catalog import Catalog
from deparrow_secrets.config.yamlfile import Checker, KeyPath, Located, format_path, load_yaml
from deparrow_secrets.errors import ConfigError

CONFIG_FILE = "deparrow-secrets.yaml"
ENVIRONMENTS = ["dev", "staging", "production"]
PROVIDERS = ["local", "vault", "aws", "azure"]
AZURE_AUTH = ["workload-identity", "managed-identity"]
# How Vault's kubernetes auth reviews the token ESO logs in with (TokenReview):
# - in-cluster: Vault runs in a pod of the cluster and reviews with its own pod's token
#   (that account, not ESO's, needs system:auth-delegator);
# - reviewer-jwt: Vault runs outside and reviews with a long-lived reviewer JWT (the
#   reviewer's account needs system:auth-delegator);
# - client-token: Vault runs outside and reviews each token with that token itself, so
#   ESO's ServiceAccount needs system:auth-delegator and the token must be valid for
#   the API server's own audience (a token whose only audience is `vault` gets 403).
VAULT_TOKEN_REVIEW = ["in-cluster", "reviewer-jwt", "client-token"]
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
KMS_KEY_ARN = r"arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]+"
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
# Go duration as ESO parses refreshInterval ("1h", "30m", "1h30m", "0").
DURATION = r"0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"
STORE_PATH = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
URL = r"https?://[^\s/]+(/[^\s]*)?"


@dataclass(frozen=True)
class StoreConfig:
    provider: str
    # local
    path: str | None = None
    # vault
    server: str | None = None
    mount: str = "secret"
    role: str = "deparrow-secrets"
    auth_mount: str = "kubernetes"
    audience: str | None = None
    vault_namespace: str | None = None
    policy: str = "deparrow-secrets-policy"
    token_review: str = "in-cluster"
    # aws
    region: str | None = None
    account_id: str | None = None
    role_arn: str | None = None
    prefix: str | None = None
    fetch_metadata: bool = False
    kms_key_arn: str | None = None
    # azure
    vault_url: str | None = None
    tenant_id: str | None = None
    auth: str = "workload-identity"
    client_id: str | None = None
    identity_id: str | None = None


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    store: StoreConfig
    ha: bool = False
    refresh_interval: str = "1h"
    optional_keys: frozenset[str] = frozenset()

    @property
    def provider(self) -> str:
        return self.store.provider

    @property
    def uses_eso(self) -> bool:
        return self.store.provider != "local"

    @property
    def remote_path(self) -> str:
        """Vault path, AWS prefix or local object name: default `deparrow/<env>`."""
        if self.store.provider == "aws":
            return self.store.prefix or f"deparrow/{self.name}"
        return self.store.path if self.store.provider == "vault" and self.store.path \
            else f"deparrow/{self.name}"


@dataclass(frozen=True)
class NetworkPolicyConfig:
    """`networkPolicy:`: render a default-deny NetworkPolicy for the application
    namespace (and default-deny egress with `egress: true`) and an egress policy for
    ESO's namespace allowing DNS, the API server and the store."""

    egress: bool = False
    api_server: tuple[str, ...] = ()
    """CIDRs of the API server's endpoints (kubectl get endpoints kubernetes)."""
    store: tuple[str, ...] = ()
    """CIDRs of the store's address as ESO reaches it (default: any, on storePort)."""
    store_port: int = 443
    store_port_set: bool = False
    """storePort was written (else the Vault server URL's port, or 443)."""


@dataclass(frozen=True)
class Config:
    root: Path
    file: Path | None
    namespace: str = "deparrow"
    service_account: str = "deparrow-external-secrets-sa"
    secret_store: str = "deparrow-secretstore"
    catalog: Path | None = None
    manifests: str = "deparrow/k8s"
    environments: dict[str, EnvironmentConfig] = field(default_factory=dict)
    source: Located | None = field(default=None, repr=False, compare=False)
    network_policy: NetworkPolicyConfig | None = None
    """None: no NetworkPolicy is rendered (the default, as before)."""

    def check_catalog(self, catalog: Catalog) -> None:
        """Config references to catalog keys (optionalKeys) must name optional values,
        and an environment on Azure needs keys that make distinct Key Vault names."""
        for env in self.environments.values():
            for key in sorted(env.optional_keys):
                value = catalog.values.get(key)
                if value is None or value.requirement != "optional":
                    optional = [v.name for v in catalog.values.values()
                                if v.requirement == "optional"]
                    path: KeyPath = ("environments", env.name, "optionalKeys")
                    listed = self._listed(path)
                    if key in listed:
                        path = (*path, listed.index(key))
                    message = f"'{key}' is not an optional value of the catalog"
                    hint = "optional values: " + (", ".join(optional) or "none")
                    if self.source is not None:
                        raise self.source.error(ConfigError, path, message, hint)
                    raise ConfigError(message, key_path=format_path(path), hint=hint)
        for env in self.environments.values():
            if env.provider == "azure":
                catalog.check_azure_names(env.name)

    def _listed(self, path: KeyPath) -> list[Any]:
        """The list at `path` of the configuration file as written ([] if none)."""
        node: Any = self.source.data if self.source is not None else None
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return [str(item) for item in node] if isinstance(node, list) else []

    def environment(self, name: str) -> EnvironmentConfig:
        if name not in self.environments:
            where = str(self.file) if self.file else f"{CONFIG_FILE} (not found, defaults used)"
            raise ConfigError(
                f"unknown environment '{name}'",
                file=where,
                hint="configured environments: " + ", ".join(self.environments)
                + (f"; add it under `environments:` in {CONFIG_FILE}" if name in ENVIRONMENTS
                   else f"; allowed names: {', '.join(ENVIRONMENTS)}"),
            )
        return self.environments[name]

    @property
    def manifests_dir(self) -> Path:
        return self.root / self.manifests

    @property
    def state_dir(self) -> Path:
        return self.root / ".deparrow-secrets"


def default_config(root: Path) -> Config:
    return Config(root=root, file=None,
                  environments={"dev": EnvironmentConfig("dev", StoreConfig("local"))})


def load_config(path: Path | None = None, cwd: Path | None = None) -> Config:
    """Load `path`, or deparrow-secrets.yaml in `cwd`; defaults when neither exists."""
    cwd = cwd or Path.cwd()
    if path is None:
        candidate = cwd / CONFIG_FILE
        if not candidate.exists():
            return default_config(cwd)
        path = candidate
    doc = load_yaml(path, ConfigError)
    return parse_config(doc, path.resolve().parent)


def parse_config(doc: Located, root: Path) -> Config:
    c = Checker(doc, ConfigError)
    top = c.mapping((), doc.data, ["namespace", "serviceAccount", "secretStore", "catalog",
                                   "manifests", "environments", "networkPolicy"])
    namespace = c.string(("namespace",), top.get("namespace", "deparrow"), pattern=DNS_LABEL,
                         what="Kubernetes namespace")
    sa = c.string(("serviceAccount",), top.get("serviceAccount", "deparrow-external-secrets-sa"),
                  pattern=DNS_SUBDOMAIN, what="ServiceAccount name")
    store_name = c.string(("secretStore",), top.get("secretStore", "deparrow-secretstore"),
                          pattern=DNS_SUBDOMAIN, what="SecretStore name")
    catalog = None
    if top.get("catalog") is not None:
        catalog = root / c.string(("catalog",), top["catalog"])
    manifests = c.string(("manifests",), top.get("manifests", "deparrow/k8s"))
    raw_envs = c.mapping(("environments",), top.get("environments"), ENVIRONMENTS)
    envs: dict[str, EnvironmentConfig] = {}
    for name, raw in raw_envs.items():
        envs[name] = _parse_environment(c, name, raw)
    if not envs:
        envs["dev"] = EnvironmentConfig("dev", StoreConfig("local"))
    network = None
    if "networkPolicy" in top:
        network = _parse_network_policy(c, top["networkPolicy"])
    return Config(root=root, file=Path(doc.file), namespace=namespace, service_account=sa,
                  secret_store=store_name, catalog=catalog, manifests=manifests,
                  environments=envs, source=doc, network_policy=network)


def _parse_network_policy(c: Checker, raw: Any) -> NetworkPolicyConfig:
    import ipaddress

    path: KeyPath = ("networkPolicy",)
    m = c.mapping(path, raw, ["egress", "apiServer", "store", "storePort"])
    egress = c.boolean((*path, "egress"), m.get("egress", False))
    cidrs: dict[str, tuple[str, ...]] = {}
    for key in ("apiServer", "store"):
        items = c.string_list((*path, key), m.get(key))
        for i, item in enumerate(items):
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError:
                raise c.fail((*path, key, i), f"'{item}' is not a CIDR block",
                             hint="write an address block such as 10.0.0.0/16 or "
                             "192.0.2.10/32 (host bits zero)") from None
        cidrs[key] = tuple(items)
    port = c.integer((*path, "storePort"), m.get("storePort", 443), 1, 65535)
    return NetworkPolicyConfig(egress, cidrs["apiServer"], cidrs["store"], port,
                               "storePort" in m)


_STORE_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    # provider: {"allowed": ..., "required": ...}
    "local": {"allowed": ("provider", "path"), "required": ()},
    "vault": {"allowed": ("provider", "server", "mount", "path", "role", "authMount",
                          "audience", "namespace", "policy", "tokenReview"),
              "required": ("server",)},
    "aws": {"allowed": ("provider", "region", "accountId", "roleArn", "prefix",
                        "fetchMetadata", "kmsKeyArn"),
            "required": ("region",)},
    "azure": {"allowed": ("provider", "vaultUrl", "tenantId", "auth", "clientId", "identityId"),
              "required": ("vaultUrl", "tenantId")},
}


def _parse_environment(c: Checker, name: str, raw: Any) -> EnvironmentConfig:
    path: KeyPath = ("environments", name)
    m = c.mapping(path, raw, ["store", "ha", "refreshInterval", "optionalKeys"],
                  required=("store",))
    ha = c.boolean((*path, "ha"), m.get("ha", name == "production"))
    refresh = c.string((*path, "refreshInterval"), m.get("refreshInterval", "1h"),
                       pattern=DURATION, what="duration (examples: 1h, 30m, 15s)")
    optional = frozenset(c.string_list((*path, "optionalKeys"), m.get("optionalKeys")))
    store = _parse_store(c, (*path, "store"), m["store"], name)
    return EnvironmentConfig(name, store, ha, refresh, optional)


def _parse_store(c: Checker, path: KeyPath, raw: Any, env: str) -> StoreConfig:
    m = c.mapping(path, raw, required=("provider",))
    provider = c.choice((*path, "provider"), m["provider"], PROVIDERS)
    spec = _STORE_KEYS[provider]
    c.mapping(path, m, list(spec["allowed"]), required=spec["required"])

    def s(key: str, pattern: str | None = None, what: str | None = None) -> str | None:
        if m.get(key) is None:
            return None
        return c.string((*path, key), m[key], pattern=pattern, what=what)

    if provider == "local":
        return StoreConfig(provider, path=s("path"))
    if provider == "vault":
        review = c.choice((*path, "tokenReview"), m.get("tokenReview", "in-cluster"),
                          VAULT_TOKEN_REVIEW)
        vault = StoreConfig(
            provider, server=s("server", URL, "URL"), mount=s("mount", STORE_PATH) or "secret",
            path=s("path", STORE_PATH, "Vault path"), role=s("role") or "deparrow-secrets",
            auth_mount=s("authMount", STORE_PATH) or "kubernetes", audience=s("audience"),
            vault_namespace=s("namespace"), policy=s("policy") or "deparrow-secrets-policy",
            token_review=review)
        if review == "client-token" and vault.audience and vault_only_audience(vault.audience):
            raise c.fail(
                (*path, "audience"),
                f"tokenReview: client-token with audience '{vault.audience}' cannot log in: "
                "Vault reviews ESO's token with that same token, and the API server rejects "
                "a token whose only audience is not its own (403)",
                hint="remove `audience:` (the token then carries the API server's default "
                "audience), or set it to an audience the API server accepts, or use "
                "`tokenReview: reviewer-jwt` with --token-reviewer-jwt-file")
        return vault
    if provider == "aws":
        fetch_metadata = c.boolean((*path, "fetchMetadata"), m.get("fetchMetadata", False))
        return StoreConfig(
            provider, region=s("region", r"[a-z]{2}(-[a-z]+)+-\d", "AWS region"),
            account_id=s("accountId", r"\d{12}", "AWS account id (12 digits, quoted)"),
            role_arn=s("roleArn", r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+",
                       "IAM role ARN"),
            prefix=s("prefix", STORE_PATH, "secret name prefix"),
            fetch_metadata=fetch_metadata,
            kms_key_arn=s("kmsKeyArn", KMS_KEY_ARN,
                          "KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)"))
    auth = c.choice((*path, "auth"), m.get("auth", "workload-identity"), AZURE_AUTH)
    cfg = StoreConfig(
        provider, vault_url=s("vaultUrl", r"https://[^\s/]+/?", "Key Vault URL"),
        tenant_id=s("tenantId"), auth=auth, client_id=s("clientId"),
        identity_id=s("identityId"))
    if auth == "workload-identity" and cfg.identity_id:
        raise c.fail((*path, "identityId"), "identityId goes with `auth: managed-identity`",
                     hint="use clientId for workload identity")
    if auth == "managed-identity" and cfg.client_id:
        raise c.fail((*path, "clientId"), "clientId goes with `auth: workload-identity`",
                     hint="use identityId for managed identity")
    if cfg.identity_id and not re.fullmatch(GUID, cfg.identity_id):
        # ESO passes identityId as a client id to both of its Azure SDK paths
        # (providers/v1/azure/keyvault/keyvault.go); a resource id never authenticates.
        raise c.fail((*path, "identityId"), "identityId must be the managed identity's client "
                     "id (a GUID), not a resource id or name",
                     hint="az identity show --name <IDENTITY> --resource-group <GROUP> "
                     "--query clientId --output tsv")
    return cfg


def vault_only_audience(audience: str) -> bool:
    """An audience only Vault uses (`vault`, `openbao`, `https://vault.example.com`), which
    a Kubernetes API server never accepts as its own."""
    lowered = audience.lower()
    return ("vault" in lowered or "bao" in lowered) and "kubernetes" not in lowered
