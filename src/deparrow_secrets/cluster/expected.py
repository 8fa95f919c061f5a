"""What each Kubernetes Secret of an environment should hold, as hashes of the store's values.

The catalog says which keys go into which Secret (for this environment's HA and optional
keys); the layout says where each key lives in the store. The values are read once per
remote object, hashed the way ESO hashes the Secret it writes, and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deparrow_secrets.cluster.datahash import eso_data_hash, key_digest
from deparrow_secrets.config.catalog import KubernetesSecret
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.project import Project
from deparrow_secrets.render.manifests import external_secret_name
from deparrow_secrets.stores.interface import SecretStore


@dataclass
class ExpectedSecret:
    name: str
    external_secret: str | None  # None in an environment without ESO (dev)
    keys: list[str]
    missing_in_store: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    # Hashes of the store's values: compared, never shown.
    data_hash: str | None = field(default=None, repr=False)
    key_digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return not self.missing_in_store


def environment_secrets(project: Project, env: EnvironmentConfig) -> list[KubernetesSecret]:
    """The catalog's Kubernetes Secrets this environment has (at least one needed key)."""
    catalog = project.catalog
    return [s for s in catalog.secrets if catalog.secret_keys(s, env.ha, env.optional_keys)]


def expected_secrets(project: Project, env: EnvironmentConfig,
                     store: SecretStore) -> dict[str, ExpectedSecret]:
    catalog = project.catalog
    layout = project.layout(env)
    needed = [v.name for v in layout.needed()]
    read = layout.read(store, needed)
    out: dict[str, ExpectedSecret] = {}
    for secret in catalog.secrets:
        keys = catalog.secret_keys(secret, env.ha, env.optional_keys)
        if not keys:  # not one of this environment's Secrets (environment_secrets)
            continue
        exp = ExpectedSecret(secret.name,
                             external_secret_name(secret) if env.uses_eso else None, keys)
        data: dict[str, bytes] = {}
        for key in keys:
            got = read[key]
            exp.versions[key] = got.version
            if got.value is None:
                exp.missing_in_store.append(key)
                continue
            data[key] = got.value.reveal().encode()
            exp.key_digests[key] = key_digest(key, data[key])
        if exp.complete:
            exp.data_hash = eso_data_hash(data)
        data.clear()
        out[secret.name] = exp
    return out
