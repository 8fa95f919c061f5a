"""Drift: catalog <-> store <-> cluster, key by key, by hash (never a value).

For each key the environment needs: is it in the store (and at which version), is it
in its Kubernetes Secret, and does the Secret hold the store's value (keyed digests
compared in memory). Says which side is behind and the command that brings it level;
as findings, each drifted key is one of doctor's rules (the same problem doctor finds
Secret by Secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deparrow_secrets.cluster.api import KubeClient
from deparrow_secrets.cluster.expected import expected_secrets
from deparrow_secrets.cluster.state import read_state, require_namespace
from deparrow_secrets.cluster.sync import SecretSync, compare
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.findings import Finding, Rule
from deparrow_secrets.operations.doctor import DOCTOR_RULES
from deparrow_secrets.project import Project
from deparrow_secrets.stores.interface import SecretStore

IN_SYNC = "in-sync"
STORE_BEHIND = "store-behind"  # the catalog needs a key the store lacks
CLUSTER_BEHIND = "cluster-behind"  # the store changed since ESO's last refresh
CLUSTER_EDITED = "cluster-edited"  # the Secret was changed in the cluster, not by ESO
CLUSTER_MISSING = "cluster-missing"  # the Secret or the key is absent in the cluster

_STATE_RULES = {STORE_BEHIND: "store-key-missing", CLUSTER_BEHIND: "secret-out-of-sync",
                CLUSTER_EDITED: "secret-edited-in-cluster"}
_DRIFT_RULE_IDS = ("store-key-missing", "secret-missing", "secret-key-missing",
                   "secret-out-of-sync", "secret-edited-in-cluster")
DRIFT_RULES: tuple[Rule, ...] = tuple(r for r in DOCTOR_RULES if r.id in _DRIFT_RULE_IDS)
"""doctor's rules a drifted key is reported under, for drift's SARIF rule table."""
_BY_ID = {r.id: r for r in DRIFT_RULES}


@dataclass
class KeyDrift:
    key: str
    secret: str
    external_secret: str | None
    in_store: bool
    store_version: str | None
    secret_present: bool
    in_secret: bool
    equal: bool | None  # None when one side lacks the key
    last_sync: str
    state: str
    fix: str


@dataclass
class DriftReport:
    environment: str
    namespace: str
    context: str
    keys: list[KeyDrift] = field(default_factory=list)
    api_calls: int = 0

    @property
    def drifted(self) -> list[KeyDrift]:
        return [k for k in self.keys if k.state != IN_SYNC]

    def to_json(self) -> dict[str, Any]:
        from deparrow_secrets.operations.reports import camel_dict

        return {"environment": self.environment, "namespace": self.namespace,
                "context": self.context, "drifted": len(self.drifted),
                "keys": [camel_dict(k) for k in self.keys], "apiCalls": self.api_calls}

    def table_rows(self) -> list[tuple[object, ...]]:
        return [(k.key, k.secret, "yes" if k.in_store else "no", k.store_version,
                 "equal" if k.equal else ("differs" if k.equal is False else
                                          ("present" if k.in_secret else "absent")),
                 k.last_sync or None, k.state) for k in self.keys]

    def summary_lines(self) -> list[str]:
        """The verdict when nothing drifted, else one fix per distinct fix."""
        if not self.drifted:
            return [f"{self.environment}: catalog, store and cluster agree "
                    f"({len(self.keys)} keys)"]
        return [f"fix: {fix}" for fix in dict.fromkeys(k.fix for k in self.drifted)]

    def findings(self) -> list[Finding]:
        """One finding per drifted key, named by key and Secret (never a value)."""
        out = []
        for k in self.drifted:
            if k.state == CLUSTER_MISSING:
                rule_id = "secret-key-missing" if k.secret_present else "secret-missing"
                what = (f"Secret {k.secret} lacks {k.key}" if k.secret_present
                        else f"Secret {k.secret} (holding {k.key}) does not exist")
            else:
                rule_id = _STATE_RULES[k.state]
                what = {STORE_BEHIND: f"{k.key} (Secret {k.secret}) is missing in the store",
                        CLUSTER_BEHIND: f"Secret {k.secret}: {k.key} differs from the store",
                        CLUSTER_EDITED: f"Secret {k.secret}: {k.key} was edited in the "
                                        "cluster"}[k.state]
            if k.last_sync and k.state == CLUSTER_BEHIND:
                what += f" (last sync {k.last_sync})"
            out.append(_BY_ID[rule_id].finding(
                what, fix=k.fix, resource=f"Secret {self.namespace}/{k.secret}",
                properties={"environment": self.environment, "key": k.key,
                            "state": k.state}))
        return out


def _verdict(env: EnvironmentConfig, s: SecretSync, key: str, in_store: bool,
             in_secret: bool, equal: bool | None, namespace: str) -> tuple[str, str]:
    e = env.name
    if not in_store:
        return STORE_BEHIND, f"deparrow-secrets provision --env {e}"
    if not s.secret_present or not in_secret:
        return CLUSTER_MISSING, f"deparrow-secrets deploy --env {e}"
    if equal:
        return IN_SYNC, ""
    if s.edited_in_cluster:
        return CLUSTER_EDITED, (
            "ESO restores the store's value on its next sync; to keep the cluster's value, "
            f"put it in the store (deparrow-secrets set {key} --env {e}), then "
            f"deparrow-secrets deploy --env {e}")
    if s.external_secret:
        return CLUSTER_BEHIND, (f"deparrow-secrets deploy --env {e} (forces ESO to refresh "
                                f"{s.external_secret} and verifies)")
    return CLUSTER_BEHIND, f"deparrow-secrets deploy --env {e}"


def drift(project: Project, env: EnvironmentConfig, client: KubeClient,
          store: SecretStore) -> DriftReport:
    calls = client.calls
    ns = project.config.namespace
    require_namespace(client, ns, env)
    expected = expected_secrets(project, env, store)
    state = read_state(client, project.config, env, workloads=False)
    report = DriftReport(env.name, ns, client.context)
    for s in compare(expected, state):
        exp = expected[s.name]
        live = state.secrets.get(s.name)
        for key in exp.keys:
            in_store = key not in exp.missing_in_store
            in_secret = live is not None and key in live.keys
            equal = None
            if in_store and in_secret and live is not None:
                equal = live.key_digests.get(key) == exp.key_digests.get(key)
            verdict, fix = _verdict(env, s, key, in_store, in_secret, equal, ns)
            report.keys.append(KeyDrift(
                key, s.name, s.external_secret, in_store, exp.versions.get(key),
                s.secret_present, in_secret, equal, s.last_sync, verdict, fix))
    report.api_calls = client.calls - calls
    return report
