"""`policy` and `setup` on the command line: outputs, exit codes, bad input."""

from __future__ import annotations

import json

import pytest
from policy_configs import AWS_CONFIG, AZURE_CONFIG, VAULT_CLIENT_TOKEN_CONFIG, VAULT_CONFIG
from ruamel.yaml import YAML

from deparrow_secrets.render.validate import validate_object


def test_unknown_environment(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    config = str(write_config(VAULT_CONFIG))
    result = run_cli("--config", config, "policy", "--env", "dev")
    assert result.code == 2
    assert "unknown environment 'dev'" in result.err and "staging, production" in result.err
    result = run_cli("--config", config, "policy", "--env", "qa")
    assert result.code == 2 and "unknown environment 'qa'" in result.err


def test_local_environment_has_nothing_to_set_up(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    for command in ("policy", "setup"):
        result = run_cli("--config", str(write_config(AWS_CONFIG)), command, "--env", "dev")
        assert result.code == 2 and "embedded local store" in result.err


def test_aws_without_account_id(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write_config(AWS_CONFIG.replace('      accountId: "123456789012"\n', ""))
    result = run_cli("--config", str(path), "policy", "--env", "production")
    assert result.code == 2
    assert "set accountId under environments.production.store" in result.err
    assert f"{path}:" in result.err  # file and line
    assert "roleArn is in account 123456789012" in result.err
    assert result.out == ""


@pytest.mark.parametrize("config, env, output, allowed", [
    (AWS_CONFIG, "production", "hcl", "text, json, yaml, shell"),
    (AZURE_CONFIG, "production", "hcl", "text, json, yaml, shell"),
])
def test_output_that_does_not_fit(write_config, run_cli, config, env, output, allowed) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(config)), "policy", "--env", env,
                     "--output", output)
    assert result.code == 2
    assert f"--output {output} does not fit environment {env}" in result.err
    assert f"use one of: {allowed}" in result.err


@pytest.mark.parametrize("args, message", [
    (["--oidc-provider", "oidc.eks.us-east-1.amazonaws.com/id/X"],
     "--oidc-provider applies to aws environments"),
    (["--cluster", "c"], "--cluster applies to aws and azure"),
    (["--kubernetes-host", "http://k8s:6443"], "is not an https:// URL"),
])
def test_bad_options(write_config, run_cli, args, message) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(VAULT_CONFIG)), "policy", "--env",
                     "production", *args)
    assert result.code == 2 and message in result.err, result.err


def test_bad_aws_options(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    config = str(write_config(AWS_CONFIG))
    result = run_cli("--config", config, "policy", "--env", "production", "--oidc-provider",
                     "not a host")
    assert result.code == 2 and "is not an OIDC provider" in result.err
    result = run_cli("--config", config, "setup", "--env", "production", "--create-role")
    assert result.code == 2 and "--create-role needs --oidc-provider" in result.err
    result = run_cli("--config", config, "setup", "--env", "production", "--kubernetes-ca-cert",
                     "/no/such/file")
    assert result.code == 2 and "does not exist" in result.err


def test_hcl_is_the_policy_alone(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(VAULT_CONFIG)), "policy", "--env",
                     "production", "-o", "hcl")
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("# deparrow-secrets-production: what External Secrets")
    assert 'path "secret/data/deparrow/production" {' in result.out
    assert "apiVersion" not in result.out


def test_yaml_manifests_validate(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    for config, env, kinds in ((VAULT_CONFIG, "production", ["ServiceAccount", "SecretStore"]),
                               (VAULT_CLIENT_TOKEN_CONFIG, "production",
                                ["ServiceAccount", "ClusterRoleBinding", "SecretStore"]),
                               (AWS_CONFIG, "production", ["ServiceAccount"]),
                               (AZURE_CONFIG, "production", ["ServiceAccount", "SecretStore"]),
                               (AZURE_CONFIG, "staging", ["SecretStore"])):
        result = run_cli("--config", str(write_config(config)), "policy", "--env", env,
                         "-o", "yaml")
        assert result.code == 0
        docs = [d for d in YAML(typ="safe").load_all(result.out) if d]
        assert [d["kind"] for d in docs] == kinds
        for doc in docs:
            assert validate_object(doc) == [], doc["kind"]


def test_warnings_go_to_stderr_outside_text(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    config = str(write_config(AWS_CONFIG))
    shell = run_cli("--config", config, "policy", "--env", "production", "-o", "shell")
    assert shell.code == 0
    assert shell.out.startswith("#!/bin/sh\n") and "warning" not in shell.out
    assert "warning: --oidc-provider not given" in shell.err
    text = run_cli("--config", config, "policy", "--env", "production")
    assert "## Warnings" in text.out and text.err == ""


def test_eso_install_guidance(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(VAULT_CONFIG)), "policy", "--env",
                     "staging", "-o", "json")
    eso = json.loads(result.out)["esoInstall"]
    lines = [c for step in eso["steps"] for c in step["commands"]]
    assert "helm repo add external-secrets https://charts.external-secrets.io" in lines
    assert any(c.startswith("helm install external-secrets external-secrets/external-secrets "
                            "--namespace external-secrets --create-namespace") for c in lines)
    assert any(c.startswith("kubectl apply --server-side -f ") and c.endswith(
        "/deploy/crds/bundle.yaml") for c in lines)
    assert "kubectl get pods --namespace external-secrets" in lines
    assert ("kubectl get crd externalsecrets.external-secrets.io -o "
            "jsonpath='{.spec.versions[?(@.served==true)].name}'") in lines
    assert eso["expectServedVersions"] == "v1"
    assert not any("external-secrets-system" in c for c in lines)
    assert not any("kubectl apply -f" in c for c in lines)  # client-side apply fails


def test_setup_vault_json_and_text(bao, write_config, run_cli, ca_file) -> None:  # type: ignore[no-untyped-def]
    base = ["--config", str(write_config(VAULT_CLIENT_TOKEN_CONFIG)), "setup", "--env",
            "production", "--kubernetes-host", "https://k8s.example:6443", "--kubernetes-ca-cert",
            str(ca_file)]
    first = run_cli(*base, "-o", "json")
    assert first.code == 0, first.err
    data = json.loads(first.out)
    assert data["changed"] is True
    assert [c["action"] for c in data["changes"]] == ["enabled", "created", "created", "created"]
    second = run_cli(*base)
    assert second.code == 0
    assert "production (vault): nothing changed" in second.out
    assert second.out.count("unchanged") == 4
    assert bao.token not in first.out + first.err + second.out + second.err


def test_setup_azure_prints_commands(write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--config", str(write_config(AZURE_CONFIG)), "setup", "--env",
                     "production", "--resource-group", "deparrow-rg")
    assert result.code == 0
    assert "az role assignment create" in result.out
    assert "az identity federated-credential create" in result.out
    assert "production (azure): commands printed, nothing applied" in result.out



def test_policy_loads_no_provider_sdk(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Printing needs no SDK: only `setup` imports hvac or boto3."""
    import subprocess
    import sys

    configs = {"vault": VAULT_CONFIG, "aws": AWS_CONFIG, "azure": AZURE_CONFIG}
    code = "\n".join([
        "import io, json, sys, contextlib",
        "from deparrow_secrets.cli import main",
        "providers = []",
        "for path in sys.argv[1:]:",
        "    out = io.StringIO()",
        "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):",
        "        main(['--config', path, 'policy', '--env', 'production', '-o', 'json'])",
        "    providers.append(json.loads(out.getvalue())['provider'])",
        "print(providers, sorted(m for m in sys.modules if m.split('.')[0] in",
        "      ('hvac', 'boto3', 'botocore', 'azure', 'requests', 'kubernetes')))",
    ])
    paths = []
    for name, text in configs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['vault', 'aws', 'azure'] []"


def test_setup_vault_unreachable_or_refused(openbao, write_config, run_cli, monkeypatch,  # type: ignore[no-untyped-def]
                                            ca_file) -> None:
    import os

    from servers import free_port

    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "1")
    base = ["--config", str(write_config(VAULT_CLIENT_TOKEN_CONFIG)), "setup", "--env",
            "production", "--kubernetes-host", "https://k8s.example:6443",
            "--kubernetes-ca-cert", str(ca_file)]
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")
    down = run_cli(*base)
    assert down.code == 3 and "VAULT_ADDR" in down.err
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    refused = run_cli(*base)
    assert refused.code == 4 and "access denied to sys/auth" in refused.err
    for result in (down, refused):
        assert "not-a-real-token" not in result.out + result.err
        assert "Traceback" not in result.err


def test_setup_aws_unreachable(aws_env, write_config, run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run_cli("--config", str(write_config(AWS_CONFIG)), "setup", "--env", "production")
    assert result.code == 3 and "cannot reach AWS" in result.err
    assert "Traceback" not in result.err


def test_setup_aws_cli(aws_env, write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    base = ["--config", str(write_config(AWS_CONFIG)), "setup", "--env", "production"]
    dry = run_cli(*base, "--dry-run")
    assert dry.code == 0 and "would create" in dry.out and "(dry run)" in dry.out
    assert not aws_env.client("iam").list_policies(Scope="Local")["Policies"]
    first = json.loads(run_cli(*base, "-o", "json").out)
    assert first["changed"] is True and first["changes"][0]["action"] == "created"
    second = run_cli(*base)
    assert "production (aws): nothing changed" in second.out


def test_setup_summary_counts_what_was_and_would_be_done() -> None:
    from deparrow_secrets.providers.identity_plan import SetupReport

    done = SetupReport("staging", "vault")
    assert done.summary() == "staging (vault): nothing changed"
    done.add("policy p", "created")
    done.add("role r", "updated")
    done.add("mount m", "unchanged")
    assert done.summary() == "staging (vault): 2 change(s)"
    dry = SetupReport("staging", "vault", dry_run=True)
    dry.add("policy p", "created")
    dry.add("mount m", "unchanged")
    assert dry.summary() == "staging (vault): 1 change(s) planned, nothing applied (dry run)"
    printed = SetupReport("production", "azure", commands=["az role assignment create"])
    printed.add("role assignment", "printed")
    assert printed.summary() == "production (azure): commands printed, nothing applied"
