"""Guards of the posture checks, each with the case that fails without it: the version
walk's bound and its stop at deleted versions (lower bounds), selectors that are not
"every pod", trails of another region, management events read-only/write-only."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.posture import rotation
from deparrow_secrets.posture.audit import _management_scope, _trail_covers
from deparrow_secrets.posture.network import default_deny
from deparrow_secrets.project import Project
from deparrow_secrets.providers.vault.settings import VaultSettings
from deparrow_secrets.record import replace
from deparrow_secrets.secret import SecretValue


def _vault_project(openbao, monkeypatch) -> tuple[Project, EnvironmentConfig, str]:
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    path = f"deparrow-{secrets.token_hex(4)}/staging"
    env = EnvironmentConfig("staging", VaultSettings(server=openbao.addr, path=path))
    base = load_catalog()
    values = dict(base.values)
    values["REDIS_PASSWORD"] = replace(values["REDIS_PASSWORD"], max_age="1h")
    project = Project(Config(Path.cwd(), None, environments={"staging": env}),
                      replace(base, values=values))
    return project, env, path


def _three_versions(store, path: str) -> tuple[list[str], SecretValue]:
    """REDIS_PASSWORD unchanged over three versions (another key changes each time)."""
    redis = SecretValue(secrets.token_urlsafe(24))
    versions: list[str] = []
    expected = None
    for _ in range(3):
        expected = store.write(path, {"REDIS_PASSWORD": redis, "OTHER": SecretValue(
            secrets.token_urlsafe(24))}, expected)
        versions.append(expected)
    return versions, redis


def test_walk_bound_gives_a_lower_bound(openbao, monkeypatch) -> None:
    from deparrow_secrets.providers.vault.store import VaultStore

    project, env, path = _vault_project(openbao, monkeypatch)
    with VaultStore.from_config(project.config, env) as store:
        versions, _ = _three_versions(store, path)
        created = {v.version: v.created for v in store.history(path)}
        full = rotation.value_ages(project, env, store, ["REDIS_PASSWORD"])["REDIS_PASSWORD"]
        assert full.since == created[versions[0]] and not full.lower_bound
        assert full.age_text is not None and not full.age_text.startswith(">=")
        monkeypatch.setattr(rotation, "MAX_VERSIONS_READ", 1)
        bounded = rotation.value_ages(project, env, store, ["REDIS_PASSWORD"])["REDIS_PASSWORD"]
        assert bounded.since == created[versions[1]] and bounded.lower_bound
        assert bounded.age_text is not None and bounded.age_text.startswith(">=")


def test_walk_stops_at_a_deleted_version(openbao, monkeypatch) -> None:
    from deparrow_secrets.providers.vault.store import VaultStore

    project, env, path = _vault_project(openbao, monkeypatch)
    with VaultStore.from_config(project.config, env) as store:
        versions, _ = _three_versions(store, path)
        status, _ = openbao.api("POST", f"secret/delete/{path}",
                                {"versions": [int(versions[1])]})
        assert status in (200, 204)
        created = {v.version: v.created for v in store.history(path)}
        age = rotation.value_ages(project, env, store, ["REDIS_PASSWORD"])["REDIS_PASSWORD"]
        assert age.since == created[versions[2]] and age.lower_bound


def test_a_changed_value_ends_the_run(openbao, monkeypatch) -> None:
    from deparrow_secrets.providers.vault.store import VaultStore

    project, env, path = _vault_project(openbao, monkeypatch)
    with VaultStore.from_config(project.config, env) as store:
        v1 = store.write(path, {"REDIS_PASSWORD": SecretValue(secrets.token_urlsafe(24))},
                         None)
        v2 = store.write(path, {"REDIS_PASSWORD": SecretValue(secrets.token_urlsafe(24))}, v1)
        created = {v.version: v.created for v in store.history(path)}
        age = rotation.value_ages(project, env, store, ["REDIS_PASSWORD"])["REDIS_PASSWORD"]
        assert age.since == created[v2] and not age.lower_bound


def _np(selector: dict, types: list[str], **rules: list) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"podSelector": selector,
                                                "policyTypes": types, **rules}}


def test_default_deny_needs_every_pod_and_no_rule() -> None:
    assert default_deny([_np({}, ["Ingress"])], "Ingress") == ["p"]
    assert default_deny([_np({"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                             ["Ingress"])], "Ingress") == []
    assert default_deny([_np({"matchLabels": {"a": "b"}}, ["Ingress"])], "Ingress") == []
    assert default_deny([_np({}, ["Ingress"], ingress=[{}])], "Ingress") == []
    assert default_deny([_np({}, ["Ingress"])], "Egress") == []
    # policyTypes omitted: Ingress, plus Egress only when egress rules are given
    no_types = {"metadata": {"name": "q"}, "spec": {"podSelector": {}}}
    assert default_deny([no_types], "Ingress") == ["q"]
    assert default_deny([no_types], "Egress") == []


def test_trail_region_and_management_scope() -> None:
    assert _trail_covers({"IsMultiRegionTrail": True, "HomeRegion": "eu-west-1"}, "us-east-1")
    assert not _trail_covers({"IsMultiRegionTrail": False, "HomeRegion": "eu-west-1"},
                             "us-east-1")
    assert _trail_covers({"HomeRegion": "us-east-1"}, "us-east-1")
    assert _management_scope({"EventSelectors": [{"ReadWriteType": "All"}]}) == "All"
    assert _management_scope({"EventSelectors": [], "AdvancedEventSelectors": []}) == "All"
    assert _management_scope({"EventSelectors": [
        {"ReadWriteType": "All", "IncludeManagementEvents": False}]}) is None
    assert _management_scope({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}) == \
        "WriteOnly"
    assert _management_scope({"EventSelectors": [{"ReadWriteType": "WriteOnly"},
                                                 {"ReadWriteType": "ReadOnly"}]}) == "All"
    advanced = {"AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "readOnly", "Equals": ["false"]}]}]}
    assert _management_scope(advanced) == "WriteOnly"
    data_only = {"AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}]}]}
    assert _management_scope(data_only) is None


@pytest.mark.parametrize("region,verdict", [("us-east-1", "pass"), ("eu-west-1", "fail")])
def test_single_region_trail_counts_only_in_its_region(project: Path, cli, aws_env,
                                                      monkeypatch, region: str,
                                                      verdict: str) -> None:
    from helpers import write_config

    bucket = f"trail-{secrets.token_hex(4)}"
    aws_env.client("s3").create_bucket(Bucket=bucket)
    trails = aws_env.client("cloudtrail")  # us-east-1
    trails.create_trail(Name="local-only", S3BucketName=bucket, IsMultiRegionTrail=False)
    trails.start_logging(Name="local-only")
    monkeypatch.setenv("AWS_REGION", region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    write_config(project, "environments:\n  production:\n    store: {provider: aws, "
                 f"region: {region}, accountId: '123456789012'}}\n")
    run = cli("posture", "--env", "production", "-o", "json", "--ignore", "nothing-committed",
              "--ignore", "least-privilege", "--ignore", "separate-stores", "--ignore",
              "network-isolation", "--ignore", "rotation-age", "--ignore",
              "encryption-at-rest")
    audit = next(f for f in run.json()["findings"] if f["rule"] == "audit-logging")
    assert audit["verdict"] == verdict, run.text
