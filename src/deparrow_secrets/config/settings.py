"""deparrow-secrets.yaml: namespace, identities and one store per environment.

Every option defaults to the guide's names; a missing file means dev on `local`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from deparrow_secrets.config.catalog import Catalog, CatalogValue
from deparrow_secrets.config.yamlfile import Checker, KeyPath, Located, format_path, load_yaml
from deparrow_secrets.errors import ConfigError
from deparrow_secrets.record import field, record

CONFIG_FILE = "deparrow-secrets.yaml"
ENVIRONMENTS = ["dev", "staging", "production"]
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
# Go duration as ESO parses refreshInterval ("1h", "30m", "1h30m", "0").
DURATION = r"0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"
STORE_PATH = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
URL = r"https?://[^\s/]+(/[^\s]*)?"


@record
class RemoteRef:
    """Where one catalog value lives in a store: remote object (ESO's `remoteRef.key`)
    and property (`remoteRef.property`; "" for an object that is one value)."""

    key: str
    property: str


@record
class StoreSettings:
    """The `store:` block of one environment, as its provider parsed it.

    Each provider (`deparrow_secrets.providers.<name>`) subclasses this with its own
    frozen fields; what is derived from the settings alone (where values live) is
    answered here so that the layout, render and verify never ask which provider it is.
    It has no fields of its own, so a provider from another distribution may subclass
    it with `@dataclass(frozen=True)` as well as with `@record`.
    """

    provider: ClassVar[str]
    uses_eso: ClassVar[bool] = True
    """False for a store ESO cannot read (the embedded one): the environment then gets
    a secretGenerator instead of ExternalSecrets."""

    def remote_path(self, environment: str) -> str:
        """The store's name for the environment's values: default `deparrow/<env>`."""
        return f"deparrow/{environment}"

    def remote_ref(self, environment: str, value: CatalogValue) -> RemoteRef:
        """Default: one object per environment, one property per key."""
        return RemoteRef(self.remote_path(environment), value.name)

    def check_catalog(self, catalog: Catalog, environment: str) -> None:
        """Raise CatalogError when the catalog's keys cannot be stored here."""

    def location(self, environment: str) -> tuple[str, ...]:
        """What identifies where the values live, to find environments sharing a store."""
        return (self.provider, self.remote_path(environment))


class StoreParsers(Protocol):
    """What parsing needs from the provider registry (`deparrow_secrets.providers`)."""

    def names(self) -> list[str]: ...

    def known(self, name: str) -> bool: ...

    def parse_store(self, name: str, checker: Checker, path: KeyPath,
                    block: Mapping[str, Any], environment: str) -> StoreSettings: ...


@record
class EnvironmentConfig:
    name: str
    store: StoreSettings
    ha: bool = False
    refresh_interval: str = "1h"
    optional_keys: frozenset[str] = frozenset()

    @property
    def provider(self) -> str:
        return self.store.provider

    @property
    def uses_eso(self) -> bool:
        return self.store.uses_eso

    @property
    def remote_path(self) -> str:
        """Vault path, AWS prefix or local object name: default `deparrow/<env>`."""
        return self.store.remote_path(self.name)


@record
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


@record
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
        and every environment's store must be able to hold the catalog's keys."""
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
            env.store.check_catalog(catalog, env.name)

    def shared_store_locations(self) -> list[str]:
        """A line per environment whose store location another environment uses too."""
        seen: dict[tuple[str, ...], str] = {}
        out = []
        for env in self.environments.values():
            loc = env.store.location(env.name)
            if loc in seen:
                out.append(f"environments {seen[loc]} and {env.name} use the same store "
                           f"location ({env.provider}: {' '.join(p for p in loc[1:] if p)}); "
                           "use a separate store per environment")
            else:
                seen[loc] = env.name
        return out

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


def default_config(root: Path, dev_store: StoreSettings) -> Config:
    return Config(root=root, file=None,
                  environments={"dev": EnvironmentConfig("dev", dev_store)})


def load_config(providers: StoreParsers, path: Path | None = None,
                cwd: Path | None = None) -> Config:
    """Load `path`, or deparrow-secrets.yaml in `cwd`; defaults when neither exists.

    Use `deparrow_secrets.providers.load_config`, which passes the provider registry.
    """
    cwd = cwd or Path.cwd()
    if path is None:
        candidate = cwd / CONFIG_FILE
        if not candidate.exists():
            return default_config(cwd, _dev_store(providers))
        path = candidate
    doc = load_yaml(path, ConfigError)
    return parse_config(doc, path.resolve().parent, providers)


def _dev_store(providers: StoreParsers) -> StoreSettings:
    """The embedded store with its defaults, for a configuration without environments."""
    empty = Located({"provider": "local"}, "<defaults>")
    return providers.parse_store("local", Checker(empty, ConfigError), (), {}, "dev")


def parse_config(doc: Located, root: Path, providers: StoreParsers) -> Config:
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
        envs[name] = _parse_environment(c, name, raw, providers)
    if not envs:
        envs["dev"] = EnvironmentConfig("dev", _dev_store(providers))
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


def _parse_environment(c: Checker, name: str, raw: Any,
                       providers: StoreParsers) -> EnvironmentConfig:
    path: KeyPath = ("environments", name)
    m = c.mapping(path, raw, ["store", "ha", "refreshInterval", "optionalKeys"],
                  required=("store",))
    ha = c.boolean((*path, "ha"), m.get("ha", name == "production"))
    refresh = c.string((*path, "refreshInterval"), m.get("refreshInterval", "1h"),
                       pattern=DURATION, what="duration (examples: 1h, 30m, 15s)")
    optional = frozenset(c.string_list((*path, "optionalKeys"), m.get("optionalKeys")))
    store_path: KeyPath = (*path, "store")
    block = c.mapping(store_path, m["store"], required=("provider",))
    provider = block["provider"]
    if not (isinstance(provider, str) and providers.known(provider)):
        # the list of every provider only for the error: it reads installed metadata
        provider = c.choice((*store_path, "provider"), provider, providers.names())
    store = providers.parse_store(provider, c, store_path, block, name)
    return EnvironmentConfig(name, store, ha, refresh, optional)
