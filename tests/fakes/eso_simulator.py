"""A test-side External Secrets Operator controller for the fake Kubernetes API server.

It implements the sync rules of /work/shared/CLUSTER.md as ESO v2.9.0 does them (paths are
relative to the root of github.com/external-secrets/external-secrets at tag v2.9.0, commit
378bdb622ed9712ef4a58370f6a17af033b7d343; ``EC`` below is
pkg/controllers/externalsecret/externalsecret_controller.go), and reads the REAL stores through
the project's own store classes: the test passes ``store_for(secretstore_obj) -> SecretStore``
(a ``deparrow_secrets.stores.interface.SecretStore``, e.g. a ``VaultStore`` on the test's
OpenBao or an ``AwsStore`` on moto).

What it does, in a background thread every ``interval`` seconds (or by ``reconcile_once()``):

* SecretStores / ClusterSecretStores (pkg/controllers/secretstore/common.go ``reconcile``,
  ``validateStore``): skipped when ``spec.controller`` names another class
  (``ShouldProcessStore``); a store whose client cannot be built gets Ready=False
  ``InvalidProviderConfig`` "unable to create client", one that fails validation Ready=False
  ``InvalidProviderConfig`` "unable to validate store", each with a Warning Event carrying the
  real error; otherwise Ready=True ``Valid`` "store validated" and a Normal ``Valid`` Event.
  Validation is the store's ``health()`` for Vault and AWS; Azure's validation always passes
  (CLUSTER.md). Stores are validated when created or changed, and when a knob changes.
  ``ValidationUnknown`` (Ready stays True) comes from the :meth:`validation_unknown` knob.
  The reasons ``InvalidStoreConfiguration`` and ``ValidationFailed`` are declared in
  apis/externalsecrets/v1/secretstore_types.go but set by no v2.9 controller, so the
  simulator never sets them either.
* ExternalSecrets (EC ``Reconcile``): an ExternalSecret is reconciled when it appears, when its
  generation, labels, annotations or finalizers change (EC ``shouldEnqueueExternalSecretUpdate``),
  when its target Secret changes (EC ``SetupWithManager`` watches managed Secrets), when its
  requeue time comes (EC ``getRequeueResult``), and after a failure with controller-runtime's
  exponential backoff (5 ms doubling, capped at 1000 s). A reconcile: adds the finalizer; skips
  stores of another controller class with no status update (EC ``shouldSkipUnmanagedStore``);
  labels an unmanaged target Secret ``reconcile.external-secrets.io/managed: "true"`` first and
  requeues; returns early when neither EC ``shouldRefresh`` nor an invalid target (EC
  ``isSecretValid``) asks for a read; else reads the provider (EC ``GetProviderSecretData``,
  externalsecret_controller_secret.go) and writes the Secret as EC's ``mutationFunc``,
  ``createSecret`` and ``updateSecret`` do (ExternalSecret labels/annotations copied, data
  replaced - or merged for ``Merge``/``CreateOrMerge`` -, ``immutable``, controller
  ownerReference and ``reconcile.external-secrets.io/created-by`` for ``Owner``,
  ``reconcile.external-secrets.io/managed`` and ``reconcile.external-secrets.io/data-hash``),
  deletes Secrets orphaned by a target rename (EC ``deleteOrphanedSecrets``), and sets status
  (EC ``markAsDone``/``markAsFailed``: ``refreshTime``, ``syncedResourceVersion`` =
  ``<generation>-<ObjectHash of labels+annotations>``, ``binding``, condition Ready with
  ``SecretSynced``/``SecretSyncedError``/``SecretDeleted``/``SecretMissing``) and Events
  (Normal ``Created``/``Updated``/``Deleted``, Warning ``UpdateFailed`` with the real error).
* Providers (how ``remoteRef.key``/``property``/``version`` resolve):
  Vault KV v2 - ``buildPath`` of providers/v1/vault/client_get.go, then ``getSecretValue``
  (no property: the JSON object of the data; a property: that key, else a gjson path);
  AWS - providers/v1/aws/secretsmanager/secretsmanager.go ``fetch``/``GetSecret`` (version
  ``uuid/<VersionId>`` or a stage, default ``AWSCURRENT``; no property: the SecretString;
  a property: that JSON key, dotted gjson path otherwise); Azure - the whole value (a property
  picks a key of a JSON value); the project's ``local`` store - like AWS.
  ``dataFrom[].extract`` returns every property of the object.

Not simulated: templates (``target.template``), ``dataFrom.find``, generators, PushSecrets,
ClusterExternalSecrets, sync windows, ``decodingStrategy`` other than None/Base64, the
admission webhook, finalizer-driven cleanup (the fake API server deletes at once; with
``deletionPolicy: Delete`` the Secret of a deleted ExternalSecret is deleted by garbage
collection only when it is owned).

Knobs: :meth:`fail_auth`, :meth:`fail_key`, :meth:`lag`, :meth:`never_sync`, :meth:`pause` /
:meth:`resume`. Counters: :attr:`reconciles`, :attr:`store_reads`, :attr:`writes`,
:attr:`failures` (and ``store_validations``). The simulator works through the server's Python
API, so it never shows in ``request_log``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eso_rules import build_path  # the one port of ESO's Vault buildPath
from fakes.kube_apiserver import ApiError, FakeKubeApiServer

Obj = dict[str, Any]

ESO_API = "external-secrets.io/v1"
LABEL_MANAGED = "reconcile.external-secrets.io/managed"
LABEL_OWNER = "reconcile.external-secrets.io/created-by"
ANNOTATION_DATA_HASH = "reconcile.external-secrets.io/data-hash"
ANNOTATION_FORCE_SYNC = "external-secrets.io/force-sync"
FINALIZER = "externalsecrets.external-secrets.io/externalsecret-cleanup"
COMPONENT = "external-secrets"
DEFAULT_CLASS = ""
WHOLE = ""  # deparrow_secrets.stores.interface.WHOLE

# condition messages (EC constants)
MSG_SYNCED = "secret synced"
MSG_SYNCED_RETAIN = "secret retained due to DeletionPolicy=Retain"
MSG_DELETED = "secret deleted due to DeletionPolicy=Delete"
MSG_MISSING = "secret will not be created due to CreationPolicy=Merge"
MSG_ERROR_GET_DATA = "could not get secret data from provider"
MSG_ERROR_UPDATE = "could not update secret"
MSG_ERROR_IMMUTABLE = "could not update secret, target is immutable"
MSG_ERROR_IS_OWNED = "target is owned by another ExternalSecret"
MSG_ERROR_DELETE = "could not delete secret"
# store conditions (pkg/controllers/secretstore/common.go)
MSG_STORE_VALIDATED = "store validated"
MSG_UNABLE_CREATE_CLIENT = "unable to create client"
MSG_UNABLE_VALIDATE = "unable to validate store"


# --------------------------------------------------------------------------- hashes


def go_format(value: Any) -> str:
    """Go's ``fmt.Sprintf("%+v", value)`` for the shapes ESO hashes: maps (keys sorted, as fmt
    prints them since Go 1.12), ``[]byte`` (decimal bytes), strings, and ``None`` for a nil
    map."""
    if value is None:
        return "map[]"
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, Mapping):
        inner = " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    return str(value)


def object_hash(value: Any) -> str:
    """ESO's ``esutils.ObjectHash`` (runtime/esutils/utils.go): SHA3-224 over ``%+v``."""
    text = value if isinstance(value, str) else go_format(value)
    return hashlib.sha3_224(text.encode()).hexdigest()


def data_hash(data: Mapping[str, bytes]) -> str:
    """The ``reconcile.external-secrets.io/data-hash`` of a Secret's decoded data."""
    return object_hash(dict(data))


def meta_hash(meta: Obj) -> str:
    """pkg/controllers/util/util.go ``HashMeta``: ObjectHash of an unexported struct
    ``{annotations, labels}``, printed by ``%+v`` as ``{annotations:map[..] labels:map[..]}``."""
    text = (f"{{annotations:{go_format(meta.get('annotations'))} "
            f"labels:{go_format(meta.get('labels'))}}}")
    return object_hash(text)


def synced_resource_version(es: Obj) -> str:
    """pkg/controllers/util/util.go ``GetResourceVersion``: ``<generation>-<HashMeta>``."""
    meta = es["metadata"]
    return f"{meta.get('generation', 0)}-{meta_hash(meta)}"


def decode_data(secret: Obj | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v or "") for k, v in ((secret or {}).get("data") or {}).items()}


# --------------------------------------------------------------------------- time helpers

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None, default: float = 3600.0) -> float:
    """Go's ``time.ParseDuration`` (``1h0m0s``, ``90s``, ``0``)."""
    if text is None or text == "":
        return default
    if text in ("0", "-0"):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    parts = _DURATION.findall(text.lstrip("+-"))
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+-"):
        raise ValueError(f"time: invalid duration {text!r}")
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- provider errors


class NoSecretError(Exception):
    """apis/externalsecrets/v1/provider.go ``NoSecretError``."""

    def __str__(self) -> str:
        return "Secret does not exist"


class ReconcileError(Exception):
    """A failed reconcile: `message` is the condition message, str() the Event's text."""

    def __init__(self, message: str, error: str, reason: str = "SecretSyncedError",
                 requeue: bool = True) -> None:
        super().__init__(error)
        self.message = message
        self.reason = reason
        self.requeue = requeue


def _gjson(payload: str, path: str) -> str | None:
    """The gjson subset ESO relies on here: a dotted path into a JSON object; strings come
    back raw, other values as JSON."""
    try:
        cur: Any = json.loads(payload)
    except ValueError:
        return None
    for part in re.split(r"(?<!\\)\.", path):
        part = part.replace("\\.", ".")
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur if isinstance(cur, str) else json.dumps(cur, separators=(",", ":"))


# --------------------------------------------------------------------------- the simulator


@dataclass
class _EsState:
    """What the controller remembers about one ExternalSecret (its work queue entry)."""

    seen_meta: tuple[Any, ...] | None = None
    es_rv: str | None = None
    target: str = ""
    secret_rv: str | None = None
    due: float = 0.0  # monotonic time the next reconcile may run
    failures: int = 0
    managed_data_keys: set[str] = field(default_factory=set)
    managed_meta_keys: tuple[set[str], set[str]] = field(
        default_factory=lambda: (set(), set()))


def _rv(obj: Obj) -> str:
    return str(obj["metadata"]["resourceVersion"])


def _condition(type_: str, status: str, reason: str, message: str) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": rfc3339(time.time())}


def _set_condition(status: Obj, cond: Obj) -> None:
    """SetExternalSecretCondition: replace the condition of that type, keeping
    lastTransitionTime when status, reason and message are unchanged."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]]
    prev = next((c for c in status.get("conditions") or [] if c.get("type") == cond["type"]),
                None)
    if prev and all(prev.get(k) == cond[k] for k in ("status", "reason", "message")):
        cond = dict(cond, lastTransitionTime=prev.get("lastTransitionTime"))
    status["conditions"] = [*conditions, cond]


class EsoSimulator:
    """ESO's ExternalSecret and SecretStore controllers against a :class:`FakeKubeApiServer`."""

    def __init__(self, api: FakeKubeApiServer, store_for: Callable[[Obj], Any], *,
                 interval: float = 0.05, controller_class: str = DEFAULT_CLASS,
                 max_backoff: float = 1000.0) -> None:
        self.api = api
        self.store_for = store_for
        self.interval = interval
        self.controller_class = controller_class
        self.max_backoff = max_backoff
        # counters of the simulator's own work
        self.reconciles = 0
        self.store_reads = 0
        self.writes = 0
        self.failures = 0
        self.store_validations = 0
        self.busy_seconds = 0.0  # time spent in passes of the loop (benchmarks report it)
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._states: dict[str, _EsState] = {}
        self._store_seen: dict[str, tuple[Any, ...]] = {}
        self._clients: dict[tuple[str, int], Any] = {}
        self._auth_failures: dict[str, str] = {}
        self._unknown_validation: dict[str, str] = {}
        self._missing_keys: set[str] = set()
        self._lag = 0.0
        self._never = False
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._knob_generation = 0
        self._idle: tuple[Any, ...] = ()
        self._next_due = 0.0

    # ------------------------------------------------------------------ lifecycle and knobs

    def start(self) -> EsoSimulator:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="EsoSimulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()

    def __enter__(self) -> EsoSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pause(self) -> None:
        """Stop reconciling (ESO's controller pod is gone) until resume()."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def never_sync(self, never: bool = True) -> None:
        """ExternalSecrets are never reconciled (stores still are): an ESO that is up but
        never gets to the work, e.g. watching another namespace."""
        self._never = never

    def lag(self, seconds: float) -> None:
        """Every ExternalSecret reconcile waits `seconds` after it became due."""
        self._lag = seconds

    def fail_auth(self, store_name: str, message: str | None = None) -> None:
        """The provider rejects ESO's credentials for SecretStore `store_name`: validation
        fails (except Azure, whose validation always passes) and every read fails."""
        with self._lock:
            self._auth_failures[store_name] = message or (
                f"authentication failed for SecretStore {store_name!r}: permission denied "
                "(simulated)")
            self._knob_generation += 1

    def fix_auth(self, store_name: str) -> None:
        with self._lock:
            self._auth_failures.pop(store_name, None)
            self._unknown_validation.pop(store_name, None)
            self._knob_generation += 1

    def validation_unknown(self, store_name: str, message: str = "validation status unknown "
                           "(simulated)") -> None:
        """The provider's Validate answers ValidationResultUnknown for `store_name`: Ready
        stays True with reason ValidationUnknown, the detail goes to a Warning Event
        (secretstore/common.go ``validateStore``); reads still work."""
        with self._lock:
            self._unknown_validation[store_name] = message
            self._knob_generation += 1

    def fail_key(self, remote_key: str) -> None:
        """`remoteRef.key` `remote_key` does not exist at the provider (NoSecretError)."""
        with self._lock:
            self._missing_keys.add(remote_key)

    def restore_key(self, remote_key: str) -> None:
        with self._lock:
            self._missing_keys.discard(remote_key)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._paused.is_set():
                began = time.perf_counter()
                try:
                    self.reconcile_once()
                except Exception as exc:  # pragma: no cover - a bug in the simulator
                    self.errors.append(repr(exc))
                finally:
                    self.busy_seconds += time.perf_counter() - began
            self._stop.wait(self.interval)

    def reconcile_once(self) -> None:
        """One pass over stores and due ExternalSecrets (nothing to do: returns at once)."""
        with self._lock:
            rv = self.api.resource_version
            now = time.monotonic()
            idle = (rv, self._knob_generation, self._never, self._lag)
            if idle == self._idle and now < self._next_due:
                return
            self._reconcile_stores()
            if self._never:
                self._idle, self._next_due = idle, float("inf")
                return
            secrets = self.api.versions("v1", "Secret")
            live: set[str] = set()
            for (ns, name), (uid, es_rv) in self.api.versions(ESO_API,
                                                              "ExternalSecret").items():
                live.add(uid)
                state = self._states.setdefault(uid, _EsState(due=now + self._lag))
                if state.es_rv != es_rv:
                    es = self.api.get(ESO_API, "ExternalSecret", name, ns)
                    if es is None:
                        continue
                    self._observe(es, state, now)
                secret_rv = secrets.get((ns, state.target), ("", None))[1]
                if state.secret_rv is not None and secret_rv != state.secret_rv:
                    state.due = min(state.due, now + self._lag)  # a managed Secret changed
                state.secret_rv = secret_rv
                if now < state.due:
                    continue
                es = self.api.get(ESO_API, "ExternalSecret", name, ns)
                if es is None:
                    continue
                self._observe(es, state, now)
                secret = self.api.get("v1", "Secret", state.target, ns)
                state.secret_rv = secret["metadata"]["resourceVersion"] if secret else None
                # the reconcile records the versions its own writes make (state.secret_rv,
                # state.seen_meta); anything else that changes meanwhile is seen next pass
                self._reconcile(es, state, secret)
                state.es_rv = None
            for uid in list(self._states):
                if uid not in live:
                    del self._states[uid]
            # the version read before the pass: a change made during it gets its own pass
            self._idle = idle
            self._next_due = min((s.due for s in self._states.values()),
                                 default=float("inf"))

    def _observe(self, es: Obj, state: _EsState, now: float, *, enqueue: bool = True) -> None:
        """EC ``shouldEnqueueExternalSecretUpdate``: generation, labels, annotations or
        finalizers changed (a status-only change does not enqueue)."""
        meta = es["metadata"]
        seen = (meta.get("generation"), json.dumps(meta.get("labels"), sort_keys=True),
                json.dumps(meta.get("annotations"), sort_keys=True),
                tuple(meta.get("finalizers") or ()))
        if enqueue and state.seen_meta is not None and seen != state.seen_meta:
            state.due = min(state.due, now + self._lag)
        state.seen_meta = seen
        state.es_rv = meta["resourceVersion"]
        state.target = self._target_name(es)

    # ------------------------------------------------------------------ stores

    def _stores(self) -> list[Obj]:
        return (self.api.list(ESO_API, "SecretStore")
                + self.api.list(ESO_API, "ClusterSecretStore"))

    def _reconcile_stores(self) -> None:
        for store in self._stores():
            spec = store.get("spec") or {}
            if spec.get("controller") not in (None, "", self.controller_class):
                continue  # ShouldProcessStore
            meta = store["metadata"]
            seen = (meta["uid"], meta.get("generation"), self._knob_generation)
            if self._store_seen.get(meta["uid"]) == seen:
                continue
            self._store_seen[meta["uid"]] = seen
            self._validate_store(store)

    def _provider(self, store: Obj) -> str:
        provider = (store.get("spec") or {}).get("provider") or {}
        return next(iter(provider), "")

    def _client(self, store: Obj) -> Any:
        key = (store["metadata"]["uid"], int(store["metadata"].get("generation", 1)))
        if key not in self._clients:
            self._clients[key] = self.store_for(store)
        return self._clients[key]

    def _validate_store(self, store: Obj) -> None:
        self.store_validations += 1
        status = copy.deepcopy(store.get("status") or {})
        name = store["metadata"]["name"]
        try:
            client = self._client(store)
        except Exception as exc:
            _set_condition(status, _condition("Ready", "False", "InvalidProviderConfig",
                                              MSG_UNABLE_CREATE_CLIENT))
            self.api.event(store, "InvalidProviderConfig", str(exc), type_="Warning",
                           component=COMPONENT)
            self._write_status(store, status)
            return
        error: str | None = None
        if self._provider(store) != "azurekv":  # Azure's Validate always passes
            error = self._auth_failures.get(name)
            if error is None:
                health = client.health()
                error = None if health.ok else health.detail
        if error is not None:
            _set_condition(status, _condition("Ready", "False", "InvalidProviderConfig",
                                              MSG_UNABLE_VALIDATE))
            self.api.event(store, "InvalidProviderConfig", error, type_="Warning",
                           component=COMPONENT)
        elif name in self._unknown_validation:
            _set_condition(status, _condition("Ready", "True", "ValidationUnknown",
                                              "could not determine validation status"))
            self.api.event(store, "ValidationUnknown", self._unknown_validation[name],
                           type_="Warning", component=COMPONENT)
        else:
            status["capabilities"] = "ReadWrite"
            self.api.event(store, "Valid", MSG_STORE_VALIDATED, component=COMPONENT)
            _set_condition(status, _condition("Ready", "True", "Valid", MSG_STORE_VALIDATED))
        self._write_status(store, status)

    def _write_status(self, obj: Obj, status: Obj) -> None:
        if (obj.get("status") or {}) == status:
            return
        with contextlib.suppress(ApiError):  # deleted meanwhile
            self.api.update_status({**obj, "status": status})

    def _store_for_ref(self, es: Obj, ref: Obj | None) -> Obj:
        """secretstore.Manager.Get (pkg/controllers/secretstore/client_manager.go): the
        referenced store, which must exist and be Ready (``assertStoreIsUsable``)."""
        ref = ref or (es.get("spec") or {}).get("secretStoreRef") or {}
        kind = ref.get("kind") or "SecretStore"
        ns = es["metadata"]["namespace"] if kind == "SecretStore" else None
        store = self.api.get(ESO_API, kind, ref.get("name", ""), ns)
        if store is None:
            raise ReconcileError(MSG_ERROR_GET_DATA,
                                 f'{kind.lower()}s.external-secrets.io "{ref.get("name")}" '
                                 "not found")
        ready = next((c for c in (store.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            raise ReconcileError(MSG_ERROR_GET_DATA,
                                 f'{kind} "{store["metadata"]["name"]}" is not ready')
        return store

    # ------------------------------------------------------------------ provider reads

    def _read_object(self, store: Obj, key: str, version: str | None) -> Any:
        """The project's Snapshot of the object `key` names, or NoSecretError."""
        name = store["metadata"]["name"]
        if name in self._auth_failures:
            raise ReconcileError(MSG_ERROR_GET_DATA, self._auth_failures[name])
        client = self._client(store)
        provider = self._provider(store)
        remote = key
        if provider == "vault":
            spec = store["spec"]["provider"]["vault"]
            mount = spec.get("path")
            kv = spec.get("version", "v2")
            data_path = build_path(mount, kv, key)
            prefix = f"{client.mount}/data/"
            if kv != "v2" or not data_path.startswith(prefix):
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"cannot read secret data from Vault: {data_path} is "
                                     f"outside the store's KV v2 mount {client.mount}/")
            remote = data_path[len(prefix):]
        if key in self._missing_keys or remote in self._missing_keys:
            raise NoSecretError()
        self.store_reads += 1
        if provider == "aws" and version:
            version = self._aws_version(client, remote, version)
        try:
            snapshot = client.read(remote, version or None)
        except Exception as exc:
            if type(exc).__name__ == "NotFoundError":
                raise NoSecretError() from exc
            raise ReconcileError(MSG_ERROR_GET_DATA, str(exc)) from exc
        if snapshot is None:
            raise NoSecretError()
        return snapshot

    @staticmethod
    def _aws_version(client: Any, key: str, version: str) -> str | None:
        """secretsmanager.go ``constructSecretValue``: ``uuid/<id>`` or a stage."""
        if version.startswith("uuid/"):
            return version[len("uuid/"):]
        if version == "AWSCURRENT":
            return None
        for info in client.history(key):
            if version in info.labels:
                return str(info.version)
        raise NoSecretError()

    def _get_secret(self, store: Obj, ref: Obj) -> bytes:
        """SecretsClient.GetSecret for one ``remoteRef``."""
        snapshot = self._read_object(store, ref.get("key", ""), ref.get("version"))
        values = {k: v.reveal() for k, v in snapshot.values.items()}
        prop = ref.get("property") or ""
        provider = self._provider(store)
        if provider == "vault":
            # providers/v1/vault/client_get.go getSecretValue: Go's json.Marshal sorts keys
            payload = json.dumps(values, sort_keys=True, separators=(",", ":"))
            if not prop:
                return payload.encode()
            if prop in values:
                return values[prop].encode()
            found = _gjson(payload, prop)
            if found is None:
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f'cannot find secret data for key: "{prop}"')
            return found.encode()
        if set(values) == {WHOLE}:
            payload = values[WHOLE]
        else:  # the SecretString the project wrote (providers/aws/store.py write)
            payload = json.dumps(values, ensure_ascii=False)
        if not prop:
            return payload.encode()
        if provider == "azurekv":
            found = _gjson(payload, prop)
            if found is None:
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"property {prop} does not exist in key {ref.get('key')}")
            return found.encode()
        if prop in values:
            return values[prop].encode()
        found = _gjson(payload, prop)
        if found is None:
            # secretsmanager.go GetSecret
            raise ReconcileError(MSG_ERROR_GET_DATA,
                                 f"key {prop} does not exist in secret {ref.get('key')}")
        return found.encode()

    def _get_secret_map(self, store: Obj, ref: Obj) -> dict[str, bytes]:
        """SecretsClient.GetSecretMap for ``dataFrom[].extract``: every property."""
        snapshot = self._read_object(store, ref.get("key", ""), ref.get("version"))
        values = {k: v.reveal() for k, v in snapshot.values.items()}
        if set(values) == {WHOLE}:
            try:
                decoded = json.loads(values[WHOLE])
            except ValueError as exc:
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"unable to unmarshal secret {ref.get('key')}: {exc}") \
                    from exc
            if not isinstance(decoded, dict):
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"unable to unmarshal secret {ref.get('key')}")
            return {k: (v if isinstance(v, str) else json.dumps(v)).encode()
                    for k, v in decoded.items()}
        return {k: v.encode() for k, v in values.items()}

    def _provider_data(self, es: Obj) -> dict[str, bytes]:
        """externalsecret_controller_secret.go ``GetProviderSecretData``."""
        spec = es.get("spec") or {}
        target = spec.get("target") or {}
        retain = target.get("deletionPolicy", "Retain") == "Retain"
        data: dict[str, bytes] = {}
        for i, item in enumerate(spec.get("dataFrom") or []):
            if "extract" not in item:
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"error processing spec.dataFrom[{i}]: only extract is "
                                     "simulated")
            store = self._store_for_ref(es, (item.get("sourceRef") or {}).get("storeRef"))
            try:
                data.update(self._get_secret_map(store, item["extract"]))
            except NoSecretError as exc:
                if not retain:
                    self.api.event(es, "MissingProviderSecret",
                                   f"secret does not exist at provider using spec.dataFrom[{i}]",
                                   component=COMPONENT)
                    continue
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"error processing spec.dataFrom[{i}].extract, err: "
                                     f"{exc}") from exc
            except ReconcileError as exc:
                raise ReconcileError(exc.message, f"error processing spec.dataFrom[{i}]"
                                     f".extract, err: {exc}") from exc
        for i, item in enumerate(spec.get("data") or []):
            ref = item.get("remoteRef") or {}
            try:
                store = self._store_for_ref(es, (item.get("sourceRef") or {}).get("storeRef"))
                value = self._get_secret(store, ref)
                strategy = ref.get("decodingStrategy", "None")
                if strategy == "Base64":
                    value = base64.b64decode(value)
                elif strategy == "Base64URL":
                    value = base64.urlsafe_b64decode(value)
                data[item["secretKey"]] = value
            except NoSecretError as exc:
                if not retain:
                    self.api.event(es, "MissingProviderSecret",
                                   f"secret does not exist at provider using spec.data[{i}] "
                                   f"(key={ref.get('key')})", component=COMPONENT)
                    continue
                raise ReconcileError(MSG_ERROR_GET_DATA,
                                     f"error processing spec.data[{i}] (key: {ref.get('key')}), "
                                     f"err: {exc}") from exc
            except ReconcileError as exc:
                raise ReconcileError(exc.message,
                                     f"error processing spec.data[{i}] (key: {ref.get('key')}), "
                                     f"err: {exc}") from exc
        return data

    # ------------------------------------------------------------------ ExternalSecret

    @staticmethod
    def _target_name(es: Obj) -> str:
        return ((es.get("spec") or {}).get("target") or {}).get("name") or es["metadata"]["name"]

    def _should_skip_store(self, es: Obj) -> bool:
        """EC ``shouldSkipUnmanagedStore``: a referenced store of another controller class."""
        spec = es.get("spec") or {}
        refs = [spec.get("secretStoreRef")] + [
            (i.get("sourceRef") or {}).get("storeRef") for i in
            (spec.get("data") or []) + (spec.get("dataFrom") or [])]
        for ref in refs:
            if not ref or not ref.get("name"):
                continue
            kind = ref.get("kind") or "SecretStore"
            ns = es["metadata"]["namespace"] if kind == "SecretStore" else None
            store = self.api.get(ESO_API, kind, ref["name"], ns)
            cls = ((store or {}).get("spec") or {}).get("controller")
            if store is not None and cls and cls != self.controller_class:
                return True
        return False

    @staticmethod
    def should_refresh(es: Obj, now: float | None = None) -> bool:
        """EC ``shouldRefresh`` / ``shouldRefreshPeriodic`` (sync windows not simulated)."""
        spec, status = es.get("spec") or {}, es.get("status") or {}
        synced = status.get("syncedResourceVersion") or ""
        refresh_time = parse_rfc3339(status.get("refreshTime"))
        policy = spec.get("refreshPolicy") or "Periodic"
        if policy == "CreatedOnce":
            return not synced or refresh_time is None
        if policy == "OnChange":
            if not synced or refresh_time is None:
                return True
            return synced != synced_resource_version(es)
        interval = parse_duration(spec.get("refreshInterval"))
        if interval <= 0 and synced:
            return False
        if synced != synced_resource_version(es):
            return True
        if refresh_time is None:
            return True
        now = time.time() if now is None else now
        if refresh_time > now:
            return True
        return refresh_time + interval < now

    @staticmethod
    def is_secret_valid(secret: Obj | None, es: Obj) -> bool:
        """EC ``isSecretValid``."""
        target = (es.get("spec") or {}).get("target") or {}
        if target.get("creationPolicy", "Owner") == "Orphan":
            return True
        if secret is None:
            return False
        meta = secret["metadata"]
        if (meta.get("labels") or {}).get(LABEL_MANAGED) != "true":
            return False
        return (meta.get("annotations") or {}).get(ANNOTATION_DATA_HASH) == data_hash(
            decode_data(secret))

    def _requeue_after(self, es: Obj) -> float | None:
        """EC ``getRequeueResult``: seconds until the next periodic reconcile (None: never)."""
        interval = parse_duration((es.get("spec") or {}).get("refreshInterval"))
        if interval <= 0:
            return None
        refresh_time = parse_rfc3339((es.get("status") or {}).get("refreshTime"))
        if refresh_time is None:
            return interval
        since = time.time() - refresh_time
        if since < 0:
            return 0.0
        # refreshTime has whole seconds: one more second so that shouldRefresh agrees
        return max(0.0, interval - since) + (1.0 if since < interval else 0.0)

    def _reconcile(self, es: Obj, state: _EsState, secret: Obj | None) -> None:
        self.reconciles += 1
        start = time.time()
        meta = es["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            with contextlib.suppress(ApiError):
                es = self.api.patch(ESO_API, "ExternalSecret", meta["name"], meta["namespace"],
                                    {"metadata": {"finalizers": [
                                        *(meta.get("finalizers") or []), FINALIZER]}},
                                    manager=COMPONENT)
                meta = es["metadata"]
                self._observe(es, state, time.monotonic(), enqueue=False)
        if self._should_skip_store(es):
            state.due = float("inf")
            return
        name = self._target_name(es)
        ns = meta["namespace"]
        if secret is not None and (secret["metadata"].get("labels") or {}).get(
                LABEL_MANAGED) != "true":
            state.secret_rv = _rv(self.api.patch(
                "v1", "Secret", name, ns, {"metadata": {"labels": {LABEL_MANAGED: "true"}}},
                manager=f"externalsecrets.external-secrets.io/{meta['name']}"))
            state.due = time.monotonic()  # Requeue: true
            return
        if not self.should_refresh(es) and self.is_secret_valid(secret, es):
            self._schedule(es, state)
            return
        status = copy.deepcopy(es.get("status") or {})
        try:
            data = self._provider_data(es)
            reason, message = self._write_target(es, state, secret, data, status)
        except ReconcileError as exc:
            self.failures += 1
            self.api.event(es, "UpdateFailed", str(exc), type_="Warning", component=COMPONENT)
            _set_condition(status, _condition("Ready", "False", exc.reason, exc.message))
            self._write_status(es, status)
            state.failures += 1
            backoff = min(0.005 * 2 ** (state.failures - 1), self.max_backoff)
            state.due = (time.monotonic() + max(backoff, self.interval)) if exc.requeue \
                else float("inf")
            return
        state.failures = 0
        # EC markAsDone
        _set_condition(status, _condition("Ready", "True", reason, message))
        status["refreshTime"] = rfc3339(start)
        status["syncedResourceVersion"] = synced_resource_version(es)
        self._write_status(es, status)
        es = dict(es, status=status)
        self._schedule(es, state)

    def _schedule(self, es: Obj, state: _EsState) -> None:
        after = self._requeue_after(es)
        state.due = float("inf") if after is None else time.monotonic() + after

    def _write_target(self, es: Obj, state: _EsState, existing: Obj | None,
                      data: dict[str, bytes], status: Obj) -> tuple[str, str]:
        meta = es["metadata"]
        spec = es.get("spec") or {}
        target = spec.get("target") or {}
        policy = target.get("creationPolicy", "Owner")
        name = self._target_name(es)
        ns = meta["namespace"]
        if target.get("template") is not None:
            raise ReconcileError(MSG_ERROR_UPDATE, "spec.target.template is not simulated",
                                 requeue=False)
        if not data:
            deletion = target.get("deletionPolicy", "Retain")
            if deletion == "Delete":
                if policy != "Owner":
                    raise ReconcileError(MSG_ERROR_DELETE, f"unable to delete secret {name}: "
                                         f"creationPolicy={policy} is not Owner", requeue=False)
                if existing is not None:
                    self.api.delete("v1", "Secret", name, ns)
                    state.secret_rv = None
                    self.api.event(es, "Deleted", MSG_DELETED, component=COMPONENT)
                return "SecretDeleted", MSG_DELETED
            if deletion == "Retain":
                return "SecretSynced", MSG_SYNCED_RETAIN
        if policy == "None":
            return "SecretSynced", MSG_SYNCED
        if policy == "Merge" and existing is None:
            return "SecretMissing", MSG_MISSING
        bound = ((es.get("status") or {}).get("binding") or {}).get("name")
        if policy == "Owner" and bound and bound != name:
            # orphans appear when the target is renamed: the old name is still the binding
            # (the list ESO runs on every reconcile finds nothing otherwise)
            self._delete_orphans(es, name)
        secret = copy.deepcopy(existing) if existing is not None else {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "labels": {}, "annotations": {}},
            "data": {}, "type": "Opaque"}
        self._mutate(es, state, secret, data, existing is None)
        manager = f"externalsecrets.external-secrets.io/{meta['name']}"
        status["binding"] = {"name": name}
        if existing is None:
            try:
                state.secret_rv = _rv(self.api.put(secret, manager=manager, check_rv=True))
            except ApiError as exc:
                raise ReconcileError(MSG_ERROR_UPDATE, exc.message) from exc
            self.writes += 1
            self.api.event(es, "Created", "secret created", component=COMPONENT)
            return "SecretSynced", MSG_SYNCED
        if secret == existing:
            return "SecretSynced", MSG_SYNCED
        if existing.get("immutable"):
            # EC updateSecret: only metadata may change on an immutable Secret
            meta_only = dict(copy.deepcopy(existing), metadata=secret["metadata"])
            if meta_only != existing:
                state.secret_rv = _rv(self.api.put(meta_only, manager=manager, check_rv=True))
            if {k: v for k, v in secret.items() if k != "metadata"} != {
                    k: v for k, v in existing.items() if k != "metadata"}:
                raise ReconcileError(MSG_ERROR_IMMUTABLE, f"unable to update secret {name}: "
                                     "secret is immutable", requeue=False)
            return "SecretSynced", MSG_SYNCED
        try:
            state.secret_rv = _rv(self.api.put(secret, manager=manager, check_rv=True))
        except ApiError as exc:
            if exc.code == 409:  # requeue at once, as EC does on a conflict
                raise ReconcileError(MSG_ERROR_UPDATE, exc.message) from exc
            raise ReconcileError(MSG_ERROR_UPDATE,
                                 f"unable to update secret {name}: {exc.message}") from exc
        self.writes += 1
        self.api.event(es, "Updated", "secret updated", component=COMPONENT)
        return "SecretSynced", MSG_SYNCED

    def _mutate(self, es: Obj, state: _EsState, secret: Obj, data: dict[str, bytes],
                new: bool) -> None:
        """EC ``mutationFunc`` + ApplyTemplate/setMetadata (no template) + applyOwnership."""
        meta = es["metadata"]
        target = (es.get("spec") or {}).get("target") or {}
        policy = target.get("creationPolicy", "Owner")
        smeta = secret["metadata"]
        labels = smeta.setdefault("labels", {}) or {}
        annotations = smeta.setdefault("annotations", {}) or {}
        smeta["labels"], smeta["annotations"] = labels, annotations
        if target.get("immutable"):
            secret["immutable"] = True
        if new or not target.get("immutable"):
            current = decode_data(secret)
            for key in state.managed_data_keys:
                current.pop(key, None)
            # setMetadata: drop what this ExternalSecret put there before, copy its own
            old_labels, old_annotations = state.managed_meta_keys
            for key in old_labels:
                labels.pop(key, None)
            for key in old_annotations:
                annotations.pop(key, None)
            labels.update(meta.get("labels") or {})
            annotations.update(meta.get("annotations") or {})
            state.managed_meta_keys = (set(meta.get("labels") or {}),
                                       set(meta.get("annotations") or {}))
            if policy not in ("Merge", "CreateOrMerge"):
                current = {}
            current.update(data)
            state.managed_data_keys = set(data)
            secret["data"] = {k: base64.b64encode(v).decode() for k, v in current.items()}
        # applyOwnership
        refs = smeta.get("ownerReferences") or []
        controller = next((r for r in refs if r.get("controller")), None)
        if controller and controller.get("kind") == "ExternalSecret" and controller.get(
                "name") != meta["name"]:
            raise ReconcileError(MSG_ERROR_IS_OWNED, "secret is owned by another "
                                 f"ExternalSecret: {controller.get('name')}", requeue=False)
        mine = {"apiVersion": ESO_API, "kind": "ExternalSecret", "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}
        others = [r for r in refs if not (r.get("kind") == "ExternalSecret"
                                          and r.get("name") == meta["name"])]
        if policy == "Owner":
            smeta["ownerReferences"] = [*others, mine]
            labels[LABEL_OWNER] = object_hash(f"{meta['namespace']}/{meta['name']}")
        else:
            if others:
                smeta["ownerReferences"] = others
            else:
                smeta.pop("ownerReferences", None)
            labels.pop(LABEL_OWNER, None)
        labels[LABEL_MANAGED] = "true"
        annotations[ANNOTATION_DATA_HASH] = data_hash(decode_data(secret))

    def _delete_orphans(self, es: Obj, keep: str) -> None:
        """EC ``deleteOrphanedSecrets``: Secrets this ExternalSecret created under an old
        target name."""
        meta = es["metadata"]
        owner = object_hash(f"{meta['namespace']}/{meta['name']}")
        for secret in self.api.list("v1", "Secret", meta["namespace"],
                                    label_selector=f"{LABEL_OWNER}={owner}"):
            if secret["metadata"]["name"] != keep:
                self.api.delete("v1", "Secret", secret["metadata"]["name"], meta["namespace"])
                self.api.event(es, "Deleted", "secret deleted because it was orphaned",
                               component=COMPONENT)
