"""Schema validation of ESO, built-in Kubernetes and kustomize objects."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from deparrow_secrets.errors import MissingDependencyError
from deparrow_secrets.render.validate import SchemaProblem, is_eso_kind, validate_object

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE_SECRETSTORES = REPO_ROOT / "tests" / "fixtures" / "guide" / "secretstores.yaml"
ESO_JSON = REPO_ROOT / "src" / "deparrow_secrets" / "render" / "schemas" / "eso.json"
# ../shared from the main checkout, ../../shared from a worktree under /work/wt/<name>
CRD_DIR = next((d for d in (REPO_ROOT.parent / "shared" / "eso-crds",
                            REPO_ROOT.parent.parent / "shared" / "eso-crds") if d.is_dir()),
               REPO_ROOT.parent / "shared" / "eso-crds")
DERIVE_SCRIPT = REPO_ROOT / "tools" / "derive_eso_schemas.py"

V1BETA1_MESSAGE = (
    "external-secrets.io/v1beta1 is not served by ESO >= 0.17; use external-secrets.io/v1"
)
META = {"name": "deparrow-secretstore", "namespace": "deparrow"}


def secret_store(provider: dict[str, Any], kind: str = "SecretStore") -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": kind,
        "metadata": dict(META),
        "spec": {"provider": provider},
    }


def external_secret() -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "deparrow-db", "namespace": "deparrow",
                     "labels": {"app.kubernetes.io/part-of": "deparrow"}},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "deparrow-secretstore", "kind": "SecretStore"},
            "target": {"name": "deparrow-db", "creationPolicy": "Owner"},
            "data": [
                {"secretKey": "password",
                 "remoteRef": {"key": "deparrow/prod/db", "property": "password"}},
                {"secretKey": "username",
                 "remoteRef": {"key": "deparrow/prod/db", "property": "username"}},
            ],
        },
    }


def load_guide() -> list[dict[str, Any]]:
    return list(YAML(typ="safe").load_all(GUIDE_SECRETSTORES.read_text(encoding="utf-8")))


def rules(problems: list[SchemaProblem]) -> list[tuple[str, str]]:
    return [(p.rule, p.path) for p in problems]


# ----------------------------------------------------------------------------- valid ESO

VALID_PROVIDERS = {
    "aws-secretsmanager-irsa": {
        "aws": {
            "service": "SecretsManager",
            "region": "eu-central-1",
            "auth": {"jwt": {"serviceAccountRef": {"name": "deparrow-eso"}}},
        }
    },
    "azure-workload-identity": {
        "azurekv": {
            "authType": "WorkloadIdentity",
            "vaultUrl": "https://deparrow-kv.vault.azure.net",
            "serviceAccountRef": {"name": "deparrow-eso"},
        }
    },
    "azure-managed-identity": {
        "azurekv": {
            "authType": "ManagedIdentity",
            "vaultUrl": "https://deparrow-kv.vault.azure.net",
            "identityId": "00000000-0000-0000-0000-000000000000",
        }
    },
    "vault-kv2-kubernetes": {
        "vault": {
            "server": "https://vault.example.com",
            "path": "secret",
            "version": "v2",
            "auth": {
                "kubernetes": {
                    "mountPath": "kubernetes",
                    "role": "deparrow-secrets",
                    "serviceAccountRef": {"name": "deparrow-eso", "audiences": ["vault"]},
                }
            },
        }
    },
}


@pytest.mark.parametrize("provider", VALID_PROVIDERS.values(), ids=VALID_PROVIDERS.keys())
def test_valid_v1_secretstore_per_provider(provider: dict[str, Any]) -> None:
    obj = secret_store(provider)
    assert is_eso_kind(obj)
    assert validate_object(obj) == []


def test_valid_cluster_secret_store_with_namespaced_service_account() -> None:
    provider = copy.deepcopy(VALID_PROVIDERS["aws-secretsmanager-irsa"])
    provider["aws"]["auth"]["jwt"]["serviceAccountRef"]["namespace"] = "external-secrets"
    obj = secret_store(provider, kind="ClusterSecretStore")
    del obj["metadata"]["namespace"]
    assert validate_object(obj) == []


def test_valid_v1_external_secret() -> None:
    obj = external_secret()
    assert is_eso_kind(obj)
    assert validate_object(obj) == []


def test_nullable_and_preserve_unknown_fields_are_honoured() -> None:
    es = external_secret()
    es["status"] = {"refreshTime": None}  # `nullable: true` in the CRD
    assert validate_object(es) == []
    push = {
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": "push"},
        "spec": {
            "secretStoreRefs": [{"name": "deparrow-secretstore", "kind": "SecretStore"}],
            "selector": {"secret": {"name": "source"}},
            "data": [{
                "match": {"secretKey": "k", "remoteRef": {"remoteKey": "r"}},
                # x-kubernetes-preserve-unknown-fields: anything goes here
                "metadata": {"anything": {"nested": [1, 2]}},
            }],
        },
    }
    assert validate_object(push) == []


# ----------------------------------------------------------------------------- the guide


def test_guide_fixture_is_the_three_v1beta1_secretstores() -> None:
    docs = load_guide()
    assert [d["kind"] for d in docs] == ["SecretStore"] * 3
    assert [next(iter(d["spec"]["provider"])) for d in docs] == ["aws", "azurekv", "vault"]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["aws", "azurekv", "vault"])
def test_guide_v1beta1_secretstores_fail(index: int) -> None:
    problems = validate_object(load_guide()[index])
    assert problems == [SchemaProblem(path="apiVersion", message=V1BETA1_MESSAGE,
                                      rule="eso-v1beta1")]


def test_guide_azure_store_as_v1_has_unknown_auth_managed_identity() -> None:
    doc = load_guide()[1]
    doc["apiVersion"] = "external-secrets.io/v1"
    problems = validate_object(doc)
    assert rules(problems) == [("unknown-field", "spec.provider.azurekv.authManagedIdentity")]
    message = problems[0].message
    assert message.startswith("unknown field 'authManagedIdentity'")
    assert "allowed here: authSecretRef, authType," in message
    assert "identityId" in message and "\n" not in message


@pytest.mark.parametrize("index", [0, 2], ids=["aws", "vault"])
def test_guide_aws_and_vault_stores_as_v1_are_schema_valid(index: int) -> None:
    doc = load_guide()[index]
    doc["apiVersion"] = "external-secrets.io/v1"
    assert validate_object(doc) == []


# ----------------------------------------------------------------------------- ESO errors


def test_wrong_type_is_a_schema_problem() -> None:
    obj = external_secret()
    obj["spec"]["data"] = "x"
    problems = validate_object(obj)
    assert rules(problems) == [("schema", "spec.data")]
    assert "expected array, got string" in problems[0].message


def test_int_or_string_is_accepted_where_the_crd_says_so() -> None:
    # SecretStore.spec.refreshInterval is x-kubernetes-int-or-string ...
    store = secret_store(VALID_PROVIDERS["vault-kv2-kubernetes"])
    for interval in (300, "5m"):
        store["spec"]["refreshInterval"] = interval
        assert validate_object(store) == []
    store["spec"]["refreshInterval"] = True
    assert rules(validate_object(store)) == [("schema", "spec.refreshInterval")]
    # ... but ExternalSecret.spec.refreshInterval is a plain string (Go duration).
    es = external_secret()
    es["spec"]["refreshInterval"] = 5
    assert rules(validate_object(es)) == [("schema", "spec.refreshInterval")]


def test_enum_required_and_nested_unknown_fields() -> None:
    es = external_secret()
    es["spec"]["target"]["creationPolicy"] = "Own"
    del es["spec"]["data"][1]["remoteRef"]
    es["spec"]["data"][0]["remoteRef"]["proprety"] = "password"
    problems = validate_object(es)
    assert sorted(rules(problems)) == [
        ("schema", "spec.data[1].remoteRef"),
        ("schema", "spec.target.creationPolicy"),
        ("unknown-field", "spec.data[0].remoteRef.proprety"),
    ]
    by_path = {p.path: p.message for p in problems}
    assert "Owner, Orphan, Merge" in by_path["spec.target.creationPolicy"]
    assert by_path["spec.data[1].remoteRef"] == "missing required field 'remoteRef'; add it"
    assert "did you mean 'property'?" in by_path["spec.data[0].remoteRef.proprety"]


def test_unknown_provider_name_suggests_the_right_one() -> None:
    problems = validate_object(secret_store({"azure": {"vaultUrl": "https://x"}}))
    assert rules(problems) == [("unknown-field", "spec.provider.azure")]
    assert "did you mean 'azurekv'?" in problems[0].message


def test_metadata_accepts_object_meta_but_checks_its_types() -> None:
    store = secret_store(VALID_PROVIDERS["vault-kv2-kubernetes"])
    store["metadata"].update(labels={"a": "b"}, annotations={"c": "d"}, finalizers=["x"])
    assert validate_object(store) == []
    store["metadata"]["labels"] = {"replicas": 3}
    assert rules(validate_object(store)) == [("schema", "metadata.labels.replicas")]


def test_unserved_versions_of_other_eso_kinds() -> None:
    push = {"apiVersion": "external-secrets.io/v1", "kind": "PushSecret",
            "metadata": {"name": "p"}, "spec": {}}
    problems = validate_object(push)
    assert rules(problems) == [("eso-v1beta1", "apiVersion")]
    assert problems[0].message.endswith("use external-secrets.io/v1alpha1")
    es = external_secret()
    es["apiVersion"] = "external-secrets.io/v1beta1"
    assert validate_object(es)[0].message == V1BETA1_MESSAGE


def test_is_eso_kind() -> None:
    assert is_eso_kind({"apiVersion": "external-secrets.io/v1beta1", "kind": "SecretStore"})
    assert not is_eso_kind({"apiVersion": "v1", "kind": "Secret"})
    assert not is_eso_kind({"apiVersion": "generators.external-secrets.io/v1alpha1",
                            "kind": "Password"})
    assert not is_eso_kind({"kind": "SecretStore"})
    assert not is_eso_kind(["not", "a", "mapping"])


# ----------------------------------------------------------------------------- core kinds

SERVICE_ACCOUNT = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "deparrow-eso", "namespace": "deparrow"},
}
CLUSTER_ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "vault-auth-delegator"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "system:auth-delegator"},
    "subjects": [{"kind": "ServiceAccount", "name": "vault", "namespace": "vault"}],
}


def test_valid_core_kinds_pass() -> None:
    assert validate_object(SERVICE_ACCOUNT) == []
    assert validate_object(CLUSTER_ROLE_BINDING) == []
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "deparrow"}}
    assert validate_object(namespace) == []


def test_service_account_with_spec_fails() -> None:
    obj = {**SERVICE_ACCOUNT, "spec": {}}
    problems = validate_object(obj)
    assert rules(problems) == [("unknown-field", "spec")]
    assert "automountServiceAccountToken" in problems[0].message


def test_core_kind_missing_required_field() -> None:
    obj = {k: v for k, v in CLUSTER_ROLE_BINDING.items() if k != "roleRef"}
    assert rules(validate_object(obj)) == [("schema", "roleRef")]


def test_secret_values_never_appear_in_messages() -> None:
    cases = [
        {"stringData": {"password": 987654321}},  # wrong type inside stringData
        {"data": "c3VwZXJzZWNyZXQtdmFsdWU="},  # data must be a mapping
        {"stringData": {"password": "supersecret-value"}, "strinData": {"k": "hunter2-x"}},
    ]
    for extra in cases:
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **extra}
        problems = validate_object(obj)
        assert problems, extra
        text = " ".join(p.message + " " + p.path for p in problems)
        for secret in ("987654321", "c3VwZXJzZWNyZXQtdmFsdWU=", "supersecret", "hunter2"):
            assert secret not in text


def test_missing_kubernetes_validate_raises_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)  # makes import fail
    with pytest.raises(MissingDependencyError) as info:
        validate_object(SERVICE_ACCOUNT)
    assert "kubernetes-validate" in str(info.value)
    assert "deparrow-secrets[test]" in str(info.value)
    # ESO kinds do not need it
    assert validate_object(external_secret()) == []


# ----------------------------------------------------------------------------- other kinds


def test_missing_api_version_or_kind_is_unknown_kind() -> None:
    assert rules(validate_object({"kind": "SecretStore"})) == [("unknown-kind", "")]
    assert rules(validate_object({"apiVersion": "v1"})) == [("unknown-kind", "")]
    assert "apiVersion and kind" in validate_object({})[0].message


def test_other_operators_kinds_are_not_checked() -> None:
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "c"}, "spec": {"whatever": 1}}
    assert validate_object(cert) == []
    snapshot = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": "s"}}
    assert validate_object(snapshot) == []


def test_builtin_group_with_unknown_kind_or_removed_version() -> None:
    typo = {"apiVersion": "v1", "kind": "ServiceAcount", "metadata": {"name": "x"}}
    assert rules(validate_object(typo)) == [("unknown-kind", "")]
    removed = {**CLUSTER_ROLE_BINDING, "apiVersion": "rbac.authorization.k8s.io/v1beta1"}
    assert rules(validate_object(removed)) == [("unknown-kind", "")]


def test_v1_list_is_validated_item_by_item() -> None:
    obj = {"apiVersion": "v1", "kind": "List",
           "items": [SERVICE_ACCOUNT, {**SERVICE_ACCOUNT, "spec": {}}]}
    assert rules(validate_object(obj)) == [("unknown-field", "items[1].spec")]


def test_kustomization_shape() -> None:
    good = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": "deparrow", "resources": ["secretstore.yaml", "externalsecret.yaml"],
            "commonLabels": {"app": "deparrow"}}
    assert validate_object(good) == []
    bad = {**good, "resourcess": ["x.yaml"], "resources": "secretstore.yaml",
           "commonLabels": {"replicas": 3}}
    problems = validate_object(bad)
    assert sorted(rules(problems)) == [
        ("schema", "commonLabels"), ("schema", "resources"), ("unknown-field", "resourcess"),
    ]
    assert "did you mean 'resources'?" in {p.path: p.message for p in problems}["resourcess"]


def test_non_mapping_object() -> None:
    assert rules(validate_object(["a"])) == [("schema", "")]  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- derived data


def test_derived_schema_document_shape() -> None:
    doc = json.loads(ESO_JSON.read_text(encoding="utf-8"))
    served = {
        (kind, version)
        for kind, info in doc["kinds"].items()
        for version, data in info["versions"].items()
        if data["served"]
    }
    assert served == {("SecretStore", "v1"), ("ClusterSecretStore", "v1"),
                      ("ExternalSecret", "v1"), ("PushSecret", "v1alpha1")}
    assert not doc["kinds"]["SecretStore"]["versions"]["v1beta1"]["served"]
    for info in doc["kinds"].values():
        assert info["group"] == "external-secrets.io"
        for data in info["versions"].values():
            jsonschema.Draft7Validator.check_schema(data["schema"])
    text = ESO_JSON.read_text(encoding="utf-8")
    assert '"description"' not in text and "x-kubernetes-" not in text
    assert len(text.encode()) < 500_000


@pytest.mark.slow  # derives every ESO schema from the CRDs again: 4 s
def test_derived_schema_matches_fresh_derivation() -> None:
    if not CRD_DIR.is_dir():
        pytest.skip(f"ESO CRD sources not present at {CRD_DIR}")
    spec = importlib.util.spec_from_file_location("derive_eso_schemas", DERIVE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.derive(CRD_DIR)
    assert fresh == ESO_JSON.read_text(encoding="utf-8"), (
        "eso.json is stale: run `python tools/derive_eso_schemas.py`"
    )

