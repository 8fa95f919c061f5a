"""What ESO does with the objects we render, beyond the CRD schemas: the Vault key
(a port of ESO's buildPath), the Azure tenant given once, a GUID identityId and the
Vault review mode's pieces; and that the rule checks themselves catch each mistake."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import eso_rules
from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.providers import load_config
from deparrow_secrets.providers.vault import PROVIDER as VAULT
from deparrow_secrets.render.manifests import eso_objects


# ESO's own examples, from the comment above buildPath (providers/v1/vault/client_get.go).
@pytest.mark.parametrize("mount, version, key, read", [
    ("secret/path", "v2", "foo", "secret/path/data/foo"),
    ("secret/path", "v1", "foo", "secret/path/foo"),
    ("secret/path", "v2", "secret/path/foo", "secret/path/data/foo"),
    ("secret/path", "v2", "secret/path/data/foo", "secret/path/data/foo"),
    ("secret/path", "v1", "secret/path/foo", "secret/path/foo"),
    (None, "v2", "secret/path/foo", "secret/data/path/foo"),
    (None, "v2", "secret/path/data/foo", "secret/path/data/foo"),
    (None, "v1", "secret/path/foo", "secret/path/foo"),
])
def test_build_path_port_follows_esos_examples(mount: str | None, version: str, key: str,
                                               read: str) -> None:
    assert eso_rules.build_path(mount, version, key) == read


def project(tmp_path: Path, store: str) -> tuple[list[dict], str]:  # type: ignore[type-arg]
    (tmp_path / "deparrow-secrets.yaml").write_text(
        "environments:\n  staging:\n    store:\n" + store, encoding="utf-8")
    config = load_config(cwd=tmp_path)
    env = config.environment("staging")
    return eso_objects(config, load_catalog(), env), getattr(env.store, "token_review", "")


@pytest.mark.parametrize("mount, path", [
    ("deparrow", "deparrow/staging"),  # the case: a bare key read deparrow/data/staging
    ("secret", "deparrow/staging"),
    ("kv/apps", "kv/apps/deparrow"),
    ("secret", "secret/deparrow"),
    ("secret", "data/deparrow"),  # buildPath strips a leading data/ after the mount
    ("data", "data/x"),
])
def test_rendered_vault_keys_resolve_to_the_written_path(tmp_path: Path, mount: str,
                                                        path: str) -> None:
    objects, review = project(tmp_path, "      provider: vault\n      server: https://v.test\n"
                              f"      mount: {mount}\n      path: {path}\n")
    keys = {d["remoteRef"]["key"] for o in objects if o["kind"] == "ExternalSecret"
            for d in o["spec"]["data"]}
    assert keys, objects
    assert eso_rules.problems(objects, vault_data_path=f"{mount}/data/{path}",
                              token_review=review) == []
    if not path.startswith("data/"):
        assert keys == {f"{mount}/{path}"}


def test_a_bare_key_under_a_mount_of_the_same_name_reads_the_wrong_path() -> None:
    # What the tree held before: the key without its mount.
    assert eso_rules.build_path("deparrow", "v2", "deparrow/staging") == "deparrow/data/staging"
    assert eso_rules.build_path("deparrow", "v2", "deparrow/deparrow/staging") == \
        "deparrow/data/deparrow/staging"


def test_vault_remote_key_is_mount_then_path(tmp_path: Path) -> None:
    (tmp_path / "deparrow-secrets.yaml").write_text(
        "environments:\n  staging:\n    store: {provider: vault, server: https://v.test, "
        "mount: deparrow}\n", encoding="utf-8")
    env = load_config(cwd=tmp_path).environment("staging")
    assert VAULT.eso_remote_key(env, "deparrow/staging") == "deparrow/deparrow/staging"


@pytest.mark.parametrize("review, binding", [("in-cluster", False), ("reviewer-jwt", False),
                                             ("client-token", True)])
def test_vault_review_mode_pieces(tmp_path: Path, review: str, binding: bool) -> None:
    objects, got = project(tmp_path, "      provider: vault\n      server: https://v.test\n"
                           f"      tokenReview: {review}\n")
    assert got == review
    kinds = [o["kind"] for o in objects]
    assert ("ClusterRoleBinding" in kinds) is binding
    assert eso_rules.problems(objects, vault_data_path="secret/data/deparrow/staging",
                              token_review=review) == []


def test_the_rule_checks_catch_each_mistake(tmp_path: Path) -> None:
    wi, _ = project(tmp_path, "      provider: azure\n      vaultUrl: https://kv.vault.azure.net\n"
                    "      tenantId: 5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8\n"
                    "      clientId: 7d8cdf74-1c6a-4b3e-9d2f-274d963d358b\n")
    assert eso_rules.problems(wi) == []
    twice = copy.deepcopy(wi)
    store = next(o for o in twice if o["kind"] == "SecretStore")
    store["spec"]["provider"]["azurekv"]["tenantId"] = "5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8"
    assert eso_rules.problems(twice) == ["azure workload identity: tenant given 2 times"]

    mi, _ = project(tmp_path, "      provider: azure\n      vaultUrl: https://kv.vault.azure.net\n"
                    "      tenantId: 5a02a20e-8f1e-4f4b-a6b1-0ad5b634c5d8\n"
                    "      auth: managed-identity\n"
                    "      identityId: 7d8cdf74-1c6a-4b3e-9d2f-274d963d358b\n")
    assert eso_rules.problems(mi) == []
    store = next(o for o in mi if o["kind"] == "SecretStore")
    store["spec"]["provider"]["azurekv"]["identityId"] = "/subscriptions/x/identity"
    assert eso_rules.problems(mi) == [
        "azure managed identity: identityId is not a client id (GUID)"]

    vault, _ = project(tmp_path, "      provider: vault\n      server: https://v.test\n"
                       "      tokenReview: client-token\n")
    path = "secret/data/deparrow/staging"
    without = [o for o in vault if o["kind"] != "ClusterRoleBinding"]
    assert eso_rules.problems(without, vault_data_path=path, token_review="client-token")
    assert eso_rules.problems(vault, vault_data_path=path, token_review="in-cluster")
    bare = copy.deepcopy(vault)
    for o in bare:
        for d in o.get("spec", {}).get("data", []):
            d["remoteRef"]["key"] = "secret/data"
    assert eso_rules.problems(bare, vault_data_path=path, token_review="client-token")
