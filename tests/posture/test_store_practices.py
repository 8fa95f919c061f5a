"""Audit logging and encryption at rest on real servers: OpenBao with and without an
audit device declared in its configuration file, a token not allowed to read sys/audit,
OpenBao with in-memory (dev) and raft storage; moto with and without a CloudTrail trail,
secrets under the AWS managed key and under a customer-managed KMS key; the printed az
commands for Azure; the embedded store's key file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from helpers import git, git_init, write_config
from servers import OpenBaoServer, RaftOpenBao


def _finding(run, rule: str, provider: str | None = None) -> dict:
    found = [f for f in run.json()["findings"] if f["rule"] == rule
             and (provider is None or f["provider"] == provider)]
    assert len(found) == 1, run.text
    return found[0]


ONLY = ("--ignore", "nothing-committed", "--ignore", "least-privilege",
        "--ignore", "separate-stores", "--ignore", "network-isolation",
        "--ignore", "rotation-age")


def _vault_project(project: Path, monkeypatch, server, token: str) -> None:
    monkeypatch.setenv("VAULT_ADDR", server.addr)
    monkeypatch.setenv("VAULT_TOKEN", token)
    write_config(project, "environments:\n  staging:\n    store: {provider: vault, "
                 f"server: 'https://vault.example.com', path: deparrow-{secrets.token_hex(3)}"
                 "/staging}\n")


def test_openbao_with_audit_device_passes(project: Path, cli, openbao, monkeypatch) -> None:
    _vault_project(project, monkeypatch, openbao, openbao.token)
    run = cli("posture", "--env", "staging", "-o", "json", *ONLY)
    audit = _finding(run, "audit-logging")
    assert audit["verdict"] == "pass", run.text
    assert any("file/ (file)" in e for e in audit["evidence"])


def test_openbao_without_audit_device_fails_with_setup_audit(project: Path, cli, monkeypatch,
                                                            tmp_path: Path) -> None:
    with OpenBaoServer(tmp_path / "bao", audit=False) as server:
        _vault_project(project, monkeypatch, server, server.token)
        run = cli("posture", "--env", "staging", "-o", "json", *ONLY)
        audit = _finding(run, "audit-logging")
        assert run.code == 1, run.text
        assert audit["verdict"] == "fail" and audit["severity"] == "error"
        assert "setup --env staging --audit" in audit["fix"]
        # the dev server keeps everything in memory: nothing is at rest
        enc = _finding(run, "encryption-at-rest", "vault")
        assert enc["verdict"] == "fail" and "storage inmem" in enc["evidence"][0]


def test_token_not_allowed_to_read_sys_audit_is_unknown_naming_the_grant(
        project: Path, cli, openbao, monkeypatch) -> None:
    name = f"reader-{secrets.token_hex(3)}"
    status, _ = openbao.api("PUT", f"sys/policies/acl/{name}",
                            {"policy": 'path "secret/*" { capabilities = ["read"] }'})
    assert status in (200, 204)
    status, body = openbao.api("POST", "auth/token/create",
                               {"policies": [name], "no_default_policy": True})
    token = body["auth"]["client_token"]
    _vault_project(project, monkeypatch, openbao, token)
    run = cli("posture", "--env", "staging", "-o", "json", "--ignore", "encryption-at-rest",
              *ONLY)
    audit = _finding(run, "audit-logging")
    assert audit["verdict"] == "unknown", run.text
    assert "sudo" in audit["reason"] and 'path "sys/audit"' in audit["fix"]
    assert run.code == 0  # unknown is not a failure


def test_raft_openbao_encrypts_at_rest(project: Path, cli, monkeypatch,
                                       tmp_path: Path) -> None:
    with RaftOpenBao(tmp_path / "raft") as server:
        server.initialize()
        _vault_project(project, monkeypatch, server, server.token)
        run = cli("posture", "--env", "staging", "-o", "json", "--ignore", "audit-logging",
                  *ONLY)
        enc = _finding(run, "encryption-at-rest", "vault")
        assert enc["verdict"] == "pass", run.text
        assert "storage raft" in enc["evidence"][0] and "shamir" in enc["evidence"][0]
        cluster = _finding(run, "encryption-at-rest", "cluster")
        assert cluster["verdict"] == "unknown" and "GKE" in cluster["fix"]


# --------------------------------------------------------------------------- AWS


def _aws_project(project: Path, kms: str | None = None) -> None:
    extra = f", kmsKeyArn: '{kms}'" if kms else ""
    write_config(project, "environments:\n  production:\n    store: {provider: aws, "
                 f"region: us-east-1, accountId: '123456789012'{extra}}}\n")


def test_moto_without_trail_fails_and_with_trail_passes(project: Path, cli,
                                                       aws_env) -> None:
    _aws_project(project)
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    audit = _finding(run, "audit-logging")
    assert audit["verdict"] == "fail", run.text
    assert "aws cloudtrail create-trail" in audit["fix"]
    s3 = aws_env.client("s3")
    bucket = f"trail-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    trails = aws_env.client("cloudtrail")
    trails.create_trail(Name="audit", S3BucketName=bucket, IsMultiRegionTrail=True)
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    assert _finding(run, "audit-logging")["evidence"] == ["trail " + trails.describe_trails()[
        "trailList"][0]["TrailARN"] + ": not logging"], run.text
    trails.start_logging(Name="audit")
    trails.put_event_selectors(TrailName="audit", EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    audit = _finding(run, "audit-logging")
    assert audit["verdict"] == "fail" and "put-event-selectors" in audit["fix"], run.text
    trails.put_event_selectors(TrailName="audit", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    assert _finding(run, "audit-logging")["verdict"] == "pass", run.text


def test_aws_managed_key_passes_customer_key_needs_kms_key_arn(project: Path, cli,
                                                              aws_env) -> None:
    _aws_project(project)
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    assert _finding(run, "encryption-at-rest", "aws")["verdict"] == "unknown"  # no secrets
    assert cli("provision", "--env", "production").code == 0
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    enc = _finding(run, "encryption-at-rest", "aws")
    assert enc["verdict"] == "pass" and "aws/secretsmanager" in enc["message"], run.text
    key = aws_env.client("kms").create_key(Description="deparrow test")["KeyMetadata"]
    sm = aws_env.client("secretsmanager")
    sm.update_secret(SecretId="deparrow/production/redis", KmsKeyId=key["Arn"])
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    enc = _finding(run, "encryption-at-rest", "aws")
    assert enc["verdict"] == "fail" and run.code == 1, run.text
    assert f"kmsKeyArn: {key['Arn']}" in enc["fix"]
    assert any(key["Arn"] in e or key["KeyId"] in e for e in enc["evidence"])
    _aws_project(project, key["Arn"])
    run = cli("posture", "--env", "production", "-o", "json", *ONLY)
    assert _finding(run, "encryption-at-rest", "aws")["verdict"] == "pass", run.text


# --------------------------------------------------------------------------- Azure


def test_azure_prints_the_az_checks(project: Path, cli) -> None:
    write_config(project, "environments:\n  production:\n    store: {provider: azure, "
                 "vaultUrl: 'https://deparrow-kv.vault.azure.net', tenantId: "
                 "'00000000-0000-0000-0000-000000000001', clientId: "
                 "'00000000-0000-0000-0000-000000000002'}\n")
    run = cli("posture", "--env", "production", *ONLY)
    assert run.code == 0, run.text
    assert "az monitor diagnostic-settings list --resource $(az keyvault show --name " \
           "deparrow-kv --query id --output tsv)" in run.out
    assert "az monitor diagnostic-settings create" in run.out and "AuditEvent" in run.out
    assert "az keyvault show --name deparrow-kv --query properties.sku.name" in run.out
    assert "AKS: az aks show" in run.out


# --------------------------------------------------------------------------- local


def test_embedded_store_key_file_mode_and_git(project: Path, cli) -> None:
    git_init(project)
    assert cli("provision", "--env", "dev").code == 0
    run = cli("posture", "--env", "dev", "-o", "json", *ONLY)
    enc = _finding(run, "encryption-at-rest", "local")
    assert enc["verdict"] == "pass", run.text
    key = project / ".deparrow-secrets" / "store.key"
    for mode in (0o644, 0o640):  # readable by the group is readable by others too
        os.chmod(key, mode)
        run = cli("posture", "--env", "dev", "-o", "json", *ONLY)
        enc = _finding(run, "encryption-at-rest", "local")
        assert enc["verdict"] == "fail" and "chmod 600" in enc["fix"], run.text
    os.chmod(key, 0o600)
    git(project, "add", "-f", str(key))
    run = cli("posture", "--env", "dev", "-o", "json", *ONLY)
    enc = _finding(run, "encryption-at-rest", "local")
    assert enc["verdict"] == "fail" and "git rm --cached" in enc["fix"], run.text


def test_every_practice_once_per_provider_on_moto(project: Path, cli, aws_env) -> None:
    write_config(project, "environments:\n  dev:\n    store: {provider: local}\n"
                 "  production:\n    store: {provider: aws, region: us-east-1, "
                 "accountId: '381492097654'}\n")
    assert cli("provision", "--env", "production").code == 0
    run = cli("posture", "--env", "production", "-o", "json")
    found = [(f["rule"], f["provider"], f["verdict"]) for f in run.json()["findings"]]
    assert found == [
        ("audit-logging", "aws", "fail"),  # no trail
        ("rotation-age", "aws", "unknown"),  # no maxAge in the catalog
        ("encryption-at-rest", "aws", "pass"),
        ("encryption-at-rest", "cluster", "unknown"),
        ("network-isolation", "cluster", "unknown"),
        ("nothing-committed", "repository", "pass"),
        ("least-privilege", "aws", "pass"),
        ("separate-stores", "aws", "pass"),
    ], run.text
    assert run.code == 1
    # AWS's documentation account is a placeholder: lint's rule makes it a failure here
    write_config(project, (project / "deparrow-secrets.yaml").read_text().replace(
        "381492097654", "123456789012"))
    placeholder = cli("posture", "--env", "production", "-o", "json", "--ignore",
                      "audit-logging")
    committed = next(f for f in placeholder.json()["findings"]
                     if f["rule"] == "nothing-committed")
    assert committed["verdict"] == "fail" and any(
        "[placeholder-value] at environments.production.store.accountId" in e
        for e in committed["evidence"]), placeholder.text
    evidence = {f["rule"]: f["evidence"] for f in run.json()["findings"]}
    assert any("secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:"
               "381492097654:secret:deparrow/production/*" in e
               for e in evidence["least-privilege"])
    assert any("value(s) of production searched" in e for e in evidence["nothing-committed"])
