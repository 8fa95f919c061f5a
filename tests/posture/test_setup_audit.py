"""setup --audit: a Vault-like server that allows audit devices through the API gets
one (then posture passes, and a second run changes nothing); OpenBao, which refuses
that, gets the configuration stanza printed; AWS and Azure get the commands."""

from __future__ import annotations

import secrets
from pathlib import Path

from helpers import write_config
from servers import OpenBaoServer

VAULT_LIKE = "unsafe_allow_api_audit_creation = true\n"  # Vault's behaviour: API enables


def _vault(project: Path, monkeypatch, server) -> None:
    monkeypatch.setenv("VAULT_ADDR", server.addr)
    monkeypatch.setenv("VAULT_TOKEN", server.token)
    write_config(project, "environments:\n  staging:\n    store: {provider: vault, "
                 f"server: 'https://vault.example.com', path: deparrow-{secrets.token_hex(3)}"
                 "/staging}\n")


def _audit_verdict(cli) -> str:
    run = cli("posture", "--env", "staging", "-o", "json", "--ignore", "nothing-committed",
              "--ignore", "least-privilege", "--ignore", "separate-stores", "--ignore",
              "network-isolation", "--ignore", "rotation-age", "--ignore",
              "encryption-at-rest")
    return next(f["verdict"] for f in run.json()["findings"] if f["rule"] == "audit-logging")


def test_setup_audit_enables_a_file_device_where_the_api_allows(project: Path, cli,
                                                                monkeypatch,
                                                                tmp_path: Path) -> None:
    with OpenBaoServer(tmp_path / "bao", audit=False, extra_config=VAULT_LIKE) as server:
        _vault(project, monkeypatch, server)
        assert _audit_verdict(cli) == "fail"
        log = tmp_path / "bao" / "deparrow-audit.log"
        dry = cli("setup", "--env", "staging", "--audit", "--audit-file", str(log),
                  "--dry-run")
        assert dry.code == 0 and "would enable" in dry.out, dry.text
        assert _audit_verdict(cli) == "fail"  # a dry run enables nothing
        run = cli("setup", "--env", "staging", "--audit", "--audit-file", str(log))
        assert run.code == 0 and "enabled" in run.out, run.text
        status, body = server.api("GET", "sys/audit")
        assert body["data"]["deparrow/"]["options"]["file_path"] == str(log)
        assert _audit_verdict(cli) == "pass"
        again = cli("setup", "--env", "staging", "--audit", "-o", "json")
        assert again.json()["changed"] is False, again.text


def test_setup_audit_on_openbao_prints_the_stanza(project: Path, cli, monkeypatch,
                                                  tmp_path: Path) -> None:
    with OpenBaoServer(tmp_path / "bao", audit=False) as server:
        _vault(project, monkeypatch, server)
        run = cli("setup", "--env", "staging", "--audit", "--audit-socket", "127.0.0.1:9090")
        assert run.code == 0, run.text
        assert 'audit "socket" "deparrow" {' in run.out
        assert 'address = "127.0.0.1:9090"' in run.out
        assert "commands printed, nothing applied" in run.out
        assert server.api("GET", "sys/audit")[1]["data"] == {}


def test_setup_audit_on_openbao_with_a_device_changes_nothing(project: Path, cli, openbao,
                                                              monkeypatch) -> None:
    _vault(project, monkeypatch, openbao)
    run = cli("setup", "--env", "staging", "--audit")
    assert run.code == 0 and "unchanged" in run.out and "file/" in run.out, run.text


def test_setup_audit_prints_for_aws_and_azure(project: Path, cli) -> None:
    write_config(project, "environments:\n  production:\n    store: {provider: aws, "
                 "region: eu-west-1, accountId: '123456789012'}\n  staging:\n    store: "
                 "{provider: azure, vaultUrl: 'https://kv-staging.vault.azure.net', tenantId: "
                 "'00000000-0000-0000-0000-000000000001', clientId: "
                 "'00000000-0000-0000-0000-000000000002'}\n")
    run = cli("setup", "--env", "production", "--audit")
    assert run.code == 0 and "aws cloudtrail create-trail" in run.out, run.text
    assert "--region eu-west-1" in run.out
    run = cli("setup", "--env", "staging", "--audit")
    assert "az monitor diagnostic-settings create" in run.out and "AuditEvent" in run.out


def test_setup_audit_options_bad_input(project: Path, cli) -> None:
    write_config(project, "environments:\n  production:\n    store: {provider: aws, "
                 "region: eu-west-1}\n")
    run = cli("setup", "--env", "production", "--audit-file", "/x")
    assert run.code == 2 and "go with --audit" in run.err, run.text
    run = cli("setup", "--env", "production", "--audit", "--audit-file", "/x",
              "--audit-socket", "h:1")
    assert run.code == 2 and "not both" in run.err, run.text
    run = cli("setup", "--env", "production", "--audit", "--audit-file", "/x")
    assert run.code == 2 and "are for vault" in run.err, run.text
