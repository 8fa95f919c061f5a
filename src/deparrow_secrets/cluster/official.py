"""`KubeClient` over the official `kubernetes` client (the `k8s` extra).

Only its configuration loading (kubeconfig, exec plugins, in-cluster), authentication
and HTTP layer are used; requests are plain paths with JSON, so every kind, CRDs
included, goes the same way. Retries and timeouts follow the stores' policy
(stores/retry.py: DEPARROW_SECRETS_RETRIES attempts, DEPARROW_SECRETS_TIMEOUT for one
whole call, retries included).
"""

from __future__ import annotations

import json
from typing import Any

from deparrow_secrets.cluster.api import ESO_GROUP, SECRET, Kind, Obj, SecretDigest, kind_of
from deparrow_secrets.cluster.collector import collector_paused
from deparrow_secrets.cluster.datahash import digest_secret
from deparrow_secrets.cluster.kubeconfig import ResolvedConfig, load_client_configuration
from deparrow_secrets.errors import (
    ClusterConfigError,
    ClusterConflictError,
    ClusterDeniedError,
    ClusterError,
    ClusterUnavailableError,
)
from deparrow_secrets.stores.retry import RetryPolicy, call_with_retry

FIELD_MANAGER = "deparrow-secrets"
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class _HttpError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.reason = reason
        self.message = message


def _status_message(body: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("reason") or ""), str(doc.get("message") or "")


def rbac_rule(verb: str, kind: Kind, namespace: str | None) -> str:
    """The RBAC rule a 403 says is missing, in the form a Role takes it."""
    scope = f"a Role in namespace {namespace}" if kind.namespaced and namespace \
        else "a ClusterRole"
    return (f'{scope} with rule {{apiGroups: ["{kind.group}"], resources: '
            f'["{kind.plural}"], verbs: ["{verb}"]}}, bound to the identity of this context')


class OfficialKubeClient:
    """The official client's configuration and HTTP layer behind `KubeClient`."""

    def __init__(self, resolved: ResolvedConfig, policy: RetryPolicy | None = None) -> None:
        from kubernetes import client

        self._resolved = resolved
        self.policy = policy or RetryPolicy.from_env()
        self._api = client.ApiClient(load_client_configuration(resolved))
        self._calls = 0

    @property
    def context(self) -> str:
        return self._resolved.context

    @property
    def calls(self) -> int:
        return self._calls

    def close(self) -> None:
        self._api.close()

    # ------------------------------------------------------------------ transport

    def _request(self, method: str, path: str, *, verb: str, kind: Kind | None,
                 namespace: str | None, query: list[tuple[str, str]] | None = None,
                 body: Any = None, content_type: str | None = None,
                 missing_ok: bool = False, resource: str | None = None) -> Obj | None:
        resource = resource or (kind.resource if kind else path)
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        payload = body  # the REST layer serializes JSON (and YAML, as JSON) bodies

        def once() -> Obj | None:
            self._calls += 1
            method_, url, hdrs, _, _ = self._api.param_serialize(
                method=method, resource_path=path, query_params=query or [],
                header_params=headers, auth_settings=["BearerToken"])
            response = self._api.call_api(method_, url, header_params=hdrs, body=payload,
                                          _request_timeout=self.policy.timeout)
            data = response.read()
            if response.status == 404 and missing_ok:
                return None
            if response.status >= 400:
                reason, message = _status_message(data)
                raise _HttpError(response.status, reason, message)
            doc = decode_json(data) if data else {}
            return doc if isinstance(doc, dict) else {}

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, _HttpError):
                # 409 is a lost race on resourceVersion or ownership: read-modify-write
                # again (apply sends no resourceVersion, so a retry re-applies).
                return exc.status in TRANSIENT_STATUS or exc.status == 409
            return _is_network_error(exc)

        def give_up(exc: BaseException, attempts: int) -> BaseException:
            return self._error(exc, verb, kind, resource, namespace, attempts)

        try:
            return call_with_retry(once, transient, self.policy, give_up)
        except _HttpError as exc:
            raise self._error(exc, verb, kind, resource, namespace, 1) from None
        except ClusterError:
            raise
        except Exception as exc:
            from kubernetes.config.config_exception import ConfigException

            if isinstance(exc, ConfigException):  # exec plugin or token refresh
                raise ClusterConfigError(
                    f"credentials of context {self.context} failed: "
                    f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
                    verb=verb, resource=resource, namespace=namespace, context=self.context,
                    hint="check the user entry of the context (exec plugin, token)") from None
            raise

    def _error(self, exc: BaseException, verb: str, kind: Kind | None, resource: str,
               namespace: str | None, attempts: int) -> ClusterError:
        where: dict[str, Any] = {"verb": verb, "resource": resource, "namespace": namespace,
                                 "context": self.context}
        if not isinstance(exc, _HttpError):
            what = "timed out" if _is_timeout(exc) else "unreachable"
            return ClusterUnavailableError(
                f"Kubernetes API server {what} after {attempts} attempt(s) "
                f"within {self.policy.timeout:g}s", **where,
                hint="check that the cluster is up and reachable (kubectl cluster-info); "
                     "DEPARROW_SECRETS_TIMEOUT and DEPARROW_SECRETS_RETRIES raise the "
                     "limits")
        # The server's message can echo submitted data: never for Secrets.
        detail = "" if (kind is SECRET or not exc.message) else f": {exc.message[:300]}"
        if exc.status in (401, 403):
            if exc.status == 401:
                return ClusterDeniedError(
                    f"the API server rejected the credentials (401){detail}", **where,
                    hint=f"refresh the login of context {self.context} "
                         "(kubectl auth whoami shows who you are)")
            hint = rbac_rule(verb, kind, namespace) if kind else "grant access to " + resource
            return ClusterDeniedError(f"forbidden (403){detail}", **where,
                                      hint=f"missing RBAC permission; add {hint}")
        if exc.status == 409:
            return ClusterConflictError(
                f"conflict (409) after {attempts} attempt(s){detail}", **where,
                hint="another writer or field manager owns these fields; rerun the command "
                     "(it converges), or remove the other manager's fields "
                     "(kubectl get -o yaml --show-managed-fields shows them)")
        if exc.status in TRANSIENT_STATUS:
            return ClusterUnavailableError(
                f"API server error {exc.status} after {attempts} attempt(s){detail}", **where,
                hint="the API server is overloaded or failing; rerun later")
        if exc.status == 404:
            return ClusterConfigError(
                f"not found (404){detail}", **where,
                hint="the resource type or namespace does not exist in this cluster")
        return ClusterConfigError(f"rejected ({exc.status} {exc.reason}){detail}", **where,
                                  hint="the object does not match what this cluster accepts")

    # ------------------------------------------------------------------ operations

    def served_versions(self, group: str) -> list[str] | None:
        doc = self._request("GET", f"/apis/{group}", verb="get", kind=None, namespace=None,
                            missing_ok=True, resource=f"discovery of {group}")
        if doc is None:
            return None
        return [str(v.get("version")) for v in doc.get("versions") or []
                if isinstance(v, dict)]

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        return self._request("GET", kind.path(namespace, name), verb="get", kind=kind,
                             namespace=namespace, missing_ok=True)

    def list_objects(self, kind: Kind, namespace: str | None = None, *,
                     label_selector: str | None = None,
                     field_selector: str | None = None) -> list[Obj]:
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        doc = self._request("GET", kind.path(namespace), verb="list", kind=kind,
                            namespace=namespace, query=query) or {}
        items = doc.get("items") or []
        for item in items:  # list items carry no kind/apiVersion
            item.setdefault("kind", kind.kind)
            item.setdefault("apiVersion", kind.api_version)
        return items

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if kind.namespaced else None
        query = [("fieldManager", FIELD_MANAGER), ("force", "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._request("PATCH", kind.path(namespace, meta["name"]), verb="patch",
                             kind=kind, namespace=namespace, query=query, body=obj,
                             content_type="application/apply-patch+yaml") or {}

    def patch(self, kind: Kind, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        # Custom resources have no strategic merge (the API server answers 415): JSON
        # merge patch, which is the same for the metadata maps patched here.
        content_type = "application/merge-patch+json" if kind.group == ESO_GROUP \
            else "application/strategic-merge-patch+json"
        return self._request("PATCH", kind.path(namespace, name), verb="patch", kind=kind,
                             namespace=namespace, query=[("fieldManager", FIELD_MANAGER)],
                             body=patch, content_type=content_type) or {}

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               orphan_dependents: bool = False) -> bool:
        # Background propagation by default, as kubectl delete: dependents go by garbage
        # collection unless they are orphaned.
        query = [("propagationPolicy", "Orphan")] if orphan_dependents else None
        doc = self._request("DELETE", kind.path(namespace, name), verb="delete", kind=kind,
                            namespace=namespace, query=query, missing_ok=True)
        if doc is not None:
            doc.clear()  # a deleted Secret comes back whole: never kept
        return doc is not None

    def events(self, namespace: str, *, involved_kind: str | None = None) -> list[Obj]:
        from deparrow_secrets.cluster.api import EVENT

        selector = f"involvedObject.kind={involved_kind}" if involved_kind else None
        return self.list_objects(EVENT, namespace, field_selector=selector)

    def secret_digests(self, namespace: str, *,
                       label_selector: str | None = None) -> list[SecretDigest]:
        # The only place Secret data is handled: hashed here, dropped with the response.
        out = []
        for item in self.list_objects(SECRET, namespace, label_selector=label_selector):
            out.append(digest_secret(item))
            item.clear()
        return out


def decode_json(data: bytes) -> Any:
    """An answer's JSON without the objects' managedFields (the larger part of most
    objects, read by no command; kubectl hides them too), decoded with the cycle
    collector paused (cluster/collector.py), so they go before it counts them."""
    with collector_paused():
        doc = json.loads(data)
        if isinstance(doc, dict):
            items = doc.get("items")
            for obj in [doc, *(items if isinstance(items, list) else ())]:
                meta = obj.get("metadata") if isinstance(obj, dict) else None
                if isinstance(meta, dict):
                    meta.pop("managedFields", None)
        return doc


def _is_network_error(exc: BaseException) -> bool:
    import urllib3.exceptions
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status == 0:  # the client's wrapped SSL error
        return True
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError,
                            OSError))


def _is_timeout(exc: BaseException) -> bool:
    import urllib3.exceptions

    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # refused: a subclass of
        return False                                           # ConnectTimeoutError
    return isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError))


def connect(kubeconfig: str | None = None, context: str | None = None,
            policy: RetryPolicy | None = None) -> OfficialKubeClient:
    from deparrow_secrets.cluster.kubeconfig import KubeTarget, resolve
    from deparrow_secrets.deps import require

    require("kubernetes", "k8s")
    return OfficialKubeClient(resolve(KubeTarget(kubeconfig, context)), policy)
