"""Writes tests/fixtures/lint/eso-upstream/valid/: valid external-secrets.io/v1 manifests
the way people write them from ESO's documentation, for every provider of the v2.9
SecretStore schema: fields with a CRD default left out (the API server fills them in),
`null`s present (the API server drops them). Hand-written stores for the providers the
documentation shows most; a minimal store derived from the schema's required fields for
every other one. Run `python tests/lint/make_eso_corpus.py` and review the diff.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from deparrow_secrets.render.yamlout import dump_documents

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "eso-upstream" / "valid"
HEADER = "# ESO documentation style: defaulted fields left out, nulls as people leave them.\n"
SELECTOR = {"name": "store-credentials", "key": "token"}


def _schema() -> dict[str, Any]:
    ref = resources.files("deparrow_secrets.render").joinpath("schemas", "eso.json")
    doc = json.loads(ref.read_text(encoding="utf-8"))
    return doc["kinds"]["SecretStore"]["versions"]["v1"]["schema"]


def _string(name: str, schema: dict[str, Any]) -> str:
    if schema.get("enum"):
        return str(schema["enum"][0])
    lowered = name.lower()
    if "url" in lowered or "host" in lowered or "server" in lowered or "domain" in lowered:
        return "https://secrets.corp.internal"
    if "region" in lowered:
        return "eu-central-1"
    return "team-a"


def minimal(name: str, schema: dict[str, Any]) -> Any:
    """A value for `schema` with only what is required (defaults left out)."""
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if {"name", "key"} <= set(props) and "type" not in props:
            return dict(SELECTOR)
        wanted = [k for k in schema.get("required", []) if "default" not in props.get(k, {})]
        if not wanted and schema.get("minProperties") and props:
            wanted = [next(iter(props))]
        return {k: minimal(k, props.get(k, {})) for k in wanted}
    if kind == "array":
        return [minimal(name, schema.get("items", {}))]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    return _string(name, schema)


def store(name: str, provider: dict[str, Any], kind: str = "SecretStore") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if kind == "SecretStore":
        meta["namespace"] = "team-a"
    return {"apiVersion": "external-secrets.io/v1", "kind": kind, "metadata": meta,
            "spec": {"provider": provider, "refreshInterval": None, "conditions": None}}


def external_secret(name: str, store_name: str, key: str, kind: str = "SecretStore",
                    extract: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "refreshInterval": None,
        "secretStoreRef": {"name": store_name, "kind": kind},
        "target": {"name": f"{name}-secret", "template": None},
    }
    if extract:
        spec["dataFrom"] = [{"extract": {"key": key}}]
    else:
        spec["data"] = [{"secretKey": "password", "remoteRef": {"key": key, "property": None}}]
    return {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": "team-a", "labels": None}, "spec": spec}


SA = {"name": "eso-reader"}
HAND: dict[str, dict[str, Any]] = {
    "aws-secretsmanager-irsa": {"aws": {"service": "SecretsManager", "region": "eu-central-1",
                                        "auth": {"jwt": {"serviceAccountRef": SA}}}},
    "aws-parameterstore-keys": {"aws": {
        "service": "ParameterStore", "region": "us-east-2",
        "role": "arn:aws:iam::381492097654:role/team-a-reader",
        "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
            "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}},
    "azurekv-workload-identity": {"azurekv": {
        "authType": "WorkloadIdentity", "vaultUrl": "https://team-a.vault.azure.net",
        "serviceAccountRef": SA, "environmentType": None}},
    "azurekv-managed-identity": {"azurekv": {
        "authType": "ManagedIdentity", "vaultUrl": "https://team-a.vault.azure.net",
        "identityId": "7d8cdf74-1c6a-4b3e-9d2f-274d963d358b"}},
    "azurekv-service-principal": {"azurekv": {
        "tenantId": "5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8",
        "vaultUrl": "https://team-a.vault.azure.net",
        "authSecretRef": {"clientId": {"name": "azure-secret-sp", "key": "ClientID"},
                          "clientSecret": {"name": "azure-secret-sp", "key": "ClientSecret"}}}},
    "gcpsm-workload-identity": {"gcpsm": {
        "projectID": "team-a-prod",
        "auth": {"workloadIdentity": {"clusterLocation": "europe-west1",
                                      "clusterName": "prod", "serviceAccountRef": SA}}}},
    "vault-kubernetes": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret", "version": "v2",
        "caBundle": None,
        "auth": {"kubernetes": {"role": "team-a", "serviceAccountRef": SA}}}},
    "vault-approle": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret", "version": "v2",
        "auth": {"appRole": {"roleId": "db02de05-fa39-4855-059b-67221c5c2f63",
                             "secretRef": {"name": "vault-approle", "key": "secret-id"}}}}},
    "vault-jwt": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret",
        "auth": {"jwt": {"role": "team-a",
                         "kubernetesServiceAccountToken": {"serviceAccountRef": SA}}}}},
    "vault-ldap": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret",
        "auth": {"ldap": {"username": "eso",
                          "secretRef": {"name": "vault-ldap", "key": "password"}}}}},
    "vault-userpass": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret",
        "auth": {"userPass": {"username": "eso",
                              "secretRef": {"name": "vault-userpass", "key": "password"}}}}},
    "vault-token": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret", "version": "v1",
        "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}},
    "vault-cert": {"vault": {
        "server": "https://vault.corp.internal:8200", "path": "secret",
        "auth": {"cert": {"clientCert": {"name": "vault-client", "key": "tls.crt"},
                          "secretRef": {"name": "vault-client", "key": "tls.key"}}}}},
    "kubernetes-serviceaccount": {"kubernetes": {
        "remoteNamespace": "team-b",
        "server": {"caProvider": {"type": "ConfigMap", "name": "kube-root-ca.crt",
                                  "key": "ca.crt"}},
        "auth": {"serviceAccount": SA}}},
    "fake": {"fake": {"data": [{"key": "/team-a/db", "value": "not-a-secret-fixture"}]}},
    "webhook": {"webhook": {"url": "https://secrets.corp.internal/api/{{ .remoteRef.key }}",
                            "result": {"jsonPath": "$.value"}, "headers": None}},
}


def main() -> None:
    schema = _schema()
    providers = schema["properties"]["spec"]["properties"]["provider"]["properties"]
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.yaml"):
        old.unlink()
    covered = {next(iter(block)) for block in HAND.values()}
    files: dict[str, list[dict[str, Any]]] = {}
    for name, block in HAND.items():
        files[name] = [block]
    for provider in sorted(set(providers) - covered):
        files[provider] = [{provider: minimal(provider, providers[provider])}]
    for provider_name, (block,) in sorted(files.items()):
        name = provider_name.lower()
        kind = "ClusterSecretStore" if name.startswith("kubernetes") else "SecretStore"
        docs = [store(name, block, kind),
                external_secret(f"{name}-data", name, "team-a/db", kind),
                external_secret(f"{name}-all", name, "team-a/app", kind, extract=True)]
        (OUT / f"{name}.yaml").write_text(dump_documents(docs, header=HEADER),
                                          encoding="utf-8")


if __name__ == "__main__":
    main()
