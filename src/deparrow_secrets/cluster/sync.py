"""Where each of an environment's Secrets stands: store <-> ExternalSecret <-> Secret.

Compared by hash only (ESO's data hash for the whole Secret, per-process digests per
key); nothing here holds or prints a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deparrow_secrets.cluster.datahash import DATA_HASH_ANNOTATION, hashes_equal
from deparrow_secrets.cluster.expected import ExpectedSecret
from deparrow_secrets.cluster.state import ClusterState, condition

UPDATE_FAILED = "UpdateFailed"


@dataclass
class SecretSync:
    name: str
    external_secret: str | None
    keys: list[str]
    store_missing: list[str] = field(default_factory=list)
    es_present: bool = False
    es_ready: bool = False
    es_reason: str = ""
    es_message: str = ""
    es_error: str = ""  # newest UpdateFailed Warning Event: ESO's real error
    last_sync: str = ""  # status.refreshTime
    synced_resource_version: str = ""
    generation: int = 0
    refresh_interval: str = ""
    refresh_policy: str = ""
    secret_present: bool = False
    missing_keys: list[str] = field(default_factory=list)  # catalog keys not in the Secret
    differing_keys: list[str] = field(default_factory=list)  # present, value differs
    in_sync: bool = False  # the Secret's data hash equals the store's
    edited_in_cluster: bool = False  # data no longer matches ESO's own data-hash annotation

    @property
    def synced_current_spec(self) -> bool:
        """Ready for the current generation: ESO writes `<generation>-<meta hash>`."""
        head = self.synced_resource_version.split("-", 1)[0]
        return self.es_ready and head == str(self.generation)

    @property
    def converged(self) -> bool:
        if self.external_secret is None:  # dev: no ESO, the data is the proof
            return self.in_sync
        return self.in_sync and self.synced_current_spec

    def reason(self) -> str:
        """Why it has not converged, in one line (empty when it has)."""
        if self.converged:
            return ""
        if self.store_missing:
            return "missing in the store: " + ", ".join(self.store_missing)
        if self.external_secret is not None and not self.es_present:
            return f"ExternalSecret {self.external_secret} does not exist"
        if self.external_secret is not None and not self.es_ready:
            why = self.es_error or self.es_message or "not synced yet"
            return f"ExternalSecret {self.external_secret} not Ready" \
                   + (f" ({self.es_reason})" if self.es_reason else "") + f": {why}"
        if not self.secret_present:
            return f"Secret {self.name} does not exist"
        if self.missing_keys:
            return f"Secret {self.name} lacks " + ", ".join(self.missing_keys)
        if not self.in_sync:
            which = ", ".join(self.differing_keys) or "its data"
            return f"Secret {self.name}: {which} differ(s) from the store"
        return f"ExternalSecret {self.external_secret} has not synced its current spec yet"


def compare(expected: dict[str, ExpectedSecret], state: ClusterState) -> list[SecretSync]:
    out = []
    for exp in expected.values():
        s = SecretSync(exp.name, exp.external_secret, list(exp.keys),
                       store_missing=list(exp.missing_in_store))
        if exp.external_secret is not None:
            es = state.external_secrets.get(exp.external_secret)
            s.es_present = es is not None
            if es is not None:
                meta = es.get("metadata") or {}
                spec = es.get("spec") or {}
                status = es.get("status") or {}
                cond = condition(es) or {}
                s.es_ready = cond.get("status") == "True"
                s.es_reason = str(cond.get("reason") or "")
                s.es_message = str(cond.get("message") or "")
                s.last_sync = str(status.get("refreshTime") or "")
                s.synced_resource_version = str(status.get("syncedResourceVersion") or "")
                s.generation = int(meta.get("generation") or 0)
                s.refresh_interval = str(spec.get("refreshInterval") or "")
                s.refresh_policy = str(spec.get("refreshPolicy") or "")
                failed = [] if s.es_ready else state.events_for(
                    "ExternalSecret", exp.external_secret, reason=UPDATE_FAILED,
                    type_="Warning")
                if failed:
                    s.es_error = str(failed[0].get("message") or "")
        live = state.secrets.get(exp.name)
        s.secret_present = live is not None
        if live is not None:
            s.missing_keys = [k for k in exp.keys if k not in live.keys]
            s.differing_keys = [k for k in exp.keys if k in live.keys and k in exp.key_digests
                                and not hashes_equal(live.key_digests.get(k),
                                                     exp.key_digests[k])]
            s.in_sync = hashes_equal(live.data_hash, exp.data_hash)
            annotated = live.annotations.get(DATA_HASH_ANNOTATION)
            s.edited_in_cluster = annotated is not None and not hashes_equal(
                annotated, live.data_hash)
        out.append(s)
    return out
