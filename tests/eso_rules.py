"""ESO's own rules for the objects we render, beyond the CRD schemas (which pass them all).

Ported from External Secrets Operator v2.9 (github.com/external-secrets/external-secrets):
- `build_path`: providers/v1/vault/client_get.go, `(*client).buildPath`: the Vault path
  ESO reads for a `remoteRef.key` given the store's `path` (mount) and `version`;
- one tenant for Azure workload identity: providers/v1/azure/keyvault/keyvault.go
  ("multiple tenantID found" when the SecretStore's tenantId and the ServiceAccount's
  azure.workload.identity/tenant-id annotation are both set; test "duplicated tenantId");
- `identityId` is a client id (a GUID) in both of ESO's Azure SDK paths (same file);
- Vault kubernetes auth review modes (DESIGN.md): system:auth-delegator for ESO's
  ServiceAccount exactly when Vault reviews ESO's token with that token, whose
  audience must then be the API server's (not `vault`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
AZURE_TENANT = "azure.workload.identity/tenant-id"
AZURE_CLIENT = "azure.workload.identity/client-id"


def build_path(mount: str | None, version: str, key: str) -> str:
    """Port of ESO's buildPath (providers/v1/vault/client_get.go), line for line."""
    out = key
    if mount is not None:
        cut = mount + "/"
        if out.startswith(cut):
            # ESO's own comment: "This current logic induces a bug when the actual secret
            # resides on same path names as the mount path."
            out = out.split(cut, 1)[1]
            if out.startswith("data/") and version == "v2":
                out = out.split("data/", 1)[1]
        build_mount = mount.split("/")
        if version == "v2":
            build_mount.append("data")
        return "/".join([*build_mount, *out.split("/")])
    if "/data/" not in out and version == "v2":
        parts = out.split("/")
        return "/".join([parts[0], "data", *parts[1:]])
    return out


def _by_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def problems(objects: list[dict[str, Any]], *, vault_data_path: str | None = None,
             token_review: str | None = None) -> list[str]:
    """What ESO would do wrong with one environment's objects (empty: nothing).

    `vault_data_path`: the KV v2 data path the store writes (`<mount>/data/<path>`);
    `token_review`: the configured Vault review mode.
    """
    found: list[str] = []
    accounts = {o["metadata"]["name"]: o for o in _by_kind(objects, "ServiceAccount")}
    bindings = [b for b in _by_kind(objects, "ClusterRoleBinding")
                if b["roleRef"]["name"] == "system:auth-delegator"]
    for store in _by_kind(objects, "SecretStore"):
        provider = store["spec"]["provider"]
        if "azurekv" in provider:
            block = provider["azurekv"]
            if block.get("authType") == "WorkloadIdentity":
                sa = accounts.get(block.get("serviceAccountRef", {}).get("name"), {})
                notes = sa.get("metadata", {}).get("annotations", {})
                tenants = int(bool(block.get("tenantId"))) + int(bool(notes.get(AZURE_TENANT)))
                if tenants != 1:
                    found.append(f"azure workload identity: tenant given {tenants} times")
                if not (block.get("clientId") or notes.get(AZURE_CLIENT)):
                    found.append("azure workload identity: no client id")
            if block.get("authType") == "ManagedIdentity" and block.get("identityId") \
                    and not GUID.fullmatch(block["identityId"]):
                found.append("azure managed identity: identityId is not a client id (GUID)")
        if "vault" in provider:
            block = provider["vault"]
            kube = block.get("auth", {}).get("kubernetes", {})
            sa_ref = kube.get("serviceAccountRef", {})
            if not sa_ref.get("name"):
                found.append("vault: no serviceAccountRef")
            eso_bound = [b for b in bindings
                         if any(s.get("name") == sa_ref.get("name") for s in b["subjects"])]
            wants_binding = token_review == "client-token"
            if bool(eso_bound) != wants_binding:
                found.append(f"vault {token_review}: system:auth-delegator binding for ESO's "
                             f"ServiceAccount {'missing' if wants_binding else 'not needed'}")
            audiences = sa_ref.get("audiences") or []
            if token_review == "client-token" and audiences and all(
                    "vault" in a.lower() for a in audiences):
                found.append("vault client-token: ESO's token has only a vault audience (403)")
            if vault_data_path is not None:
                for ext in _by_kind(objects, "ExternalSecret"):
                    for item in ext["spec"].get("data", []):
                        read = build_path(block.get("path"), block.get("version", "v2"),
                                          item["remoteRef"]["key"])
                        if read != vault_data_path:
                            found.append(f"vault: key {item['remoteRef']['key']} reads {read}, "
                                         f"the store writes {vault_data_path}")
    return found
