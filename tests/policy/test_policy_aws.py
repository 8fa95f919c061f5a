"""AWS: IAM policy grammar, one environment only, and `setup` against moto."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from jsonschema import Draft7Validator
from policy_configs import ACCOUNT, AWS_CONFIG

from deparrow_secrets.config.catalog import load_catalog
from deparrow_secrets.policy import build_plan, run_setup
from deparrow_secrets.providers.aws.connection import AwsConnection
from deparrow_secrets.providers.aws.identity import iam_policy_document, policy_name
from deparrow_secrets.providers.identity_plan import Options
from deparrow_secrets.stores.layout import Layout

SCHEMA = json.loads((Path(__file__).parent / "iam_policy.schema.json").read_text())
OIDC = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
ENVS = ("staging", "production")


def identity_validator() -> Draft7Validator:
    return Draft7Validator(SCHEMA)


def trust_validator() -> Draft7Validator:
    return Draft7Validator({**SCHEMA["definitions"]["trustPolicy"],
                            "definitions": SCHEMA["definitions"]})


def iam_match(pattern: str, value: str) -> bool:
    """IAM resource matching: `*` any run of characters (slashes too), `?` exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def resources(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for statement in document["Statement"]:
        res = statement["Resource"]
        out += [res] if isinstance(res, str) else res
    return out


def secret_arn(env: str, obj: str = "secrets") -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deparrow/{env}/{obj}-AbCdEf"


@pytest.fixture
def config(write_config, load):  # type: ignore[no-untyped-def]
    return load(write_config(AWS_CONFIG))


# --------------------------------------------------------------------------- static


def test_schema_rejects_what_it_should() -> None:
    good = iam_policy_document(_env("production"), ACCOUNT)
    assert not list(identity_validator().iter_errors(good))
    for mutate in (lambda d: d.update(Version="2008-10-17"),
                   lambda d: d["Statement"][0].update(Effect="allow"),
                   lambda d: d["Statement"][0].pop("Resource"),
                   lambda d: d["Statement"][0].update(Principal="*"),
                   lambda d: d["Statement"][0].update(Actions=["s3:GetObject"]),
                   lambda d: d["Statement"][0].update(Action="GetSecretValue")):
        bad = copy.deepcopy(good)
        mutate(bad)
        assert list(identity_validator().iter_errors(bad)), bad


KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


def test_metadata_and_kms_key_only_when_configured(write_config, load) -> None:  # type: ignore[no-untyped-def]
    text = AWS_CONFIG.replace(
        "      roleArn: arn:aws:iam::123456789012:role/eso/deparrow-external-secrets\n",
        "      roleArn: arn:aws:iam::123456789012:role/eso/deparrow-external-secrets\n"
        f"      fetchMetadata: true\n      kmsKeyArn: {KMS_KEY}\n")
    assert text != AWS_CONFIG
    config = load(write_config(text))
    document = build_plan(config, config.environment("production"),
                          Options(oidc_provider=OIDC)).piece("iamPolicy").data["document"]
    assert not list(identity_validator().iter_errors(json.loads(json.dumps(document))))
    read, decrypt = document["Statement"]
    assert read["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    assert decrypt == {
        "Sid": "DecryptDeparrowSecretsProduction", "Effect": "Allow", "Action": "kms:Decrypt",
        "Resource": KMS_KEY,
        "Condition": {"StringEquals": {"kms:ViaService":
                                       "secretsmanager.us-east-1.amazonaws.com"}}}
    # staging asked for neither
    staging = build_plan(config, config.environment("staging"), Options(oidc_provider=OIDC))
    assert len(staging.piece("iamPolicy").data["document"]["Statement"]) == 1


@pytest.mark.parametrize("bad", ["arn:aws:kms:us-east-1:123456789012:alias/deparrow",
                                 "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"])
def test_kms_key_must_be_a_key_arn(write_config, run_cli, bad) -> None:  # type: ignore[no-untyped-def]
    text = AWS_CONFIG.replace("      region: us-east-1\n",
                              f'      region: us-east-1\n      kmsKeyArn: "{bad}"\n', 1)
    result = run_cli("--config", str(write_config(text)), "policy", "--env", "staging")
    assert result.code == 2 and "kmsKeyArn" in result.err, result.err


def _env(name: str):  # type: ignore[no-untyped-def]
    from deparrow_secrets.config.settings import EnvironmentConfig
    from deparrow_secrets.providers.aws.settings import AwsSettings

    return EnvironmentConfig(name, AwsSettings(region="us-east-1", account_id=ACCOUNT))


@pytest.mark.parametrize("env_name", ENVS)
def test_policy_grammar_one_action_one_environment(config, env_name) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment(env_name), Options(oidc_provider=OIDC))
    document = plan.piece("iamPolicy").data["document"]
    # valid JSON of the IAM policy grammar (round trip through text as AWS receives it)
    document = json.loads(json.dumps(document))
    assert not list(identity_validator().iter_errors(document))
    assert len(document["Statement"]) == 1
    statement = document["Statement"][0]
    assert statement["Effect"] == "Allow"
    actions = statement["Action"]
    # ESO's data[].remoteRef calls GetSecretValue only (DescribeSecret: metadataPolicy
    # Fetch and PushSecret, which the rendered ExternalSecrets do not use).
    assert actions == ["secretsmanager:GetSecretValue"]
    assert not any("*" in a for a in actions)
    assert resources(document) == [
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deparrow/{env_name}/*"]
    other = next(e for e in ENVS if e != env_name)
    assert other not in json.dumps(document)
    trust = plan.piece("trustPolicy").data["document"]
    assert not list(trust_validator().iter_errors(trust))
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {
        f"{OIDC}:sub": "system:serviceaccount:deparrow:deparrow-external-secrets-sa",
        f"{OIDC}:aud": "sts.amazonaws.com"}
    assert trust["Statement"][0]["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC}"}


def test_production_cannot_read_staging(config) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog(None)
    patterns = {name: resources(build_plan(config, config.environment(name))
                                .piece("iamPolicy").data["document"]) for name in ENVS}
    # the example of the issue
    assert not any(iam_match(p, secret_arn("staging")) for p in patterns["production"])
    assert any(iam_match(p, secret_arn("production")) for p in patterns["production"])
    # every object of each environment's layout: readable by its own policy only
    for name in ENVS:
        for obj in Layout(catalog, config.environment(name)).objects():
            arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{obj}-Xy12Zw"
            for owner in ENVS:
                assert any(iam_match(p, arn) for p in patterns[owner]) == (owner == name), \
                    (obj, owner)
    # nor anything outside deparrow/<env>/: the guide's wildcard is gone
    for arn in (f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deparrow/production-AbCdEf",
                f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deparrow/productionx/a-AbCdEf",
                f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:deparrow/production/s-AbCdEf",
                "arn:aws:secretsmanager:us-east-1:210987654321:secret:deparrow/production/s-AbCdEf"):
        assert not any(iam_match(p, arn) for p in patterns["production"]), arn


def test_prefix_and_partition(write_config, load) -> None:  # type: ignore[no-untyped-def]
    config = load(write_config(AWS_CONFIG.replace(
        "region: us-east-1\n      accountId: \"123456789012\"\n      roleArn: arn:aws:iam::"
        "123456789012:role/eso/",
        "region: cn-north-1\n      accountId: \"123456789012\"\n      prefix: apps/deparrow-prod"
        "\n      roleArn: arn:aws-cn:iam::123456789012:role/eso/")))
    plan = build_plan(config, config.environment("production"))
    assert resources(plan.piece("iamPolicy").data["document"]) == [
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:apps/deparrow-prod/*"]
    assert plan.piece("iamPolicy").data["arn"] == \
        "arn:aws-cn:iam::123456789012:policy/DeparrowSecrets-production"
    assert plan.piece("trustPolicy").data["rolePath"] == "/eso/"


def test_placeholders_are_marked(config) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment("production"))
    trust = json.dumps(plan.piece("trustPolicy").data["document"])
    assert "<OIDC_PROVIDER>:sub" in trust
    assert any("--oidc-provider not given" in w for w in plan.warnings)
    assert any("<CLUSTER_NAME>" in line for line in plan.piece("commands").data)


def test_eksctl_command(config) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment("production"),
                      Options(oidc_provider="https://" + OIDC + "/", cluster="prod-eks"))
    assert plan.piece("trustPolicy").data["oidcProvider"] == OIDC  # https:// and / dropped
    eksctl = " ".join(plan.piece("commands").data[-1].replace("\\\n", " ").split())
    assert eksctl == (
        "eksctl create iamserviceaccount --cluster prod-eks --region us-east-1 "
        "--namespace deparrow --name deparrow-external-secrets-sa "
        "--role-name deparrow-external-secrets "
        f"--attach-policy-arn arn:aws:iam::{ACCOUNT}:policy/DeparrowSecrets-production "
        "--role-only --approve")
    sa = plan.piece("serviceAccount").data[0]
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/eso/deparrow-external-secrets"}


# --------------------------------------------------------------------------- setup (moto)


def test_setup_creates_policy_once(aws_env, config) -> None:  # type: ignore[no-untyped-def]
    env = config.environment("production")
    iam = aws_env.client("iam")
    first = run_setup(config, env)
    assert [(c.item, c.action) for c in first.changes][0] == \
        ("policy DeparrowSecrets-production", "created")
    second = run_setup(config, env)
    assert not second.changed
    assert [c.action for c in second.changes] == ["unchanged", "skipped"]
    policies = [p for p in iam.list_policies(Scope="Local")["Policies"]
                if p["PolicyName"] == policy_name(env)]
    assert len(policies) == 1
    arn = policies[0]["Arn"]
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policies[0]["DefaultVersionId"])
    assert document["PolicyVersion"]["Document"] == iam_policy_document(env, ACCOUNT)
    # staging's policy is a different one, and setting it up leaves production's alone
    run_setup(config, config.environment("staging"))
    names = sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"])
    assert names == ["DeparrowSecrets-production", "DeparrowSecrets-staging"]
    assert not run_setup(config, env).changed


def test_setup_repairs_a_changed_policy(aws_env, config) -> None:  # type: ignore[no-untyped-def]
    env = config.environment("production")
    iam = aws_env.client("iam")
    wide = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:*",
        "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deparrow/*"}]}
    arn = iam.create_policy(PolicyName="DeparrowSecrets-production",
                            PolicyDocument=json.dumps(wide))["Policy"]["Arn"]
    for _ in range(4):  # five versions: the maximum
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(wide),
                                  SetAsDefault=True)
    dry = run_setup(config, env, Options(dry_run=True))
    assert dry.changes[0].action == "would update"
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 5
    report = run_setup(config, env)
    assert report.changes[0].action == "updated"
    assert "deleted the oldest version v1" in report.changes[0].detail
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == 5
    default = next(v for v in versions if v["IsDefaultVersion"])
    got = iam.get_policy_version(PolicyArn=arn, VersionId=default["VersionId"])
    assert got["PolicyVersion"]["Document"] == iam_policy_document(env, ACCOUNT)
    assert not run_setup(config, env).changed


def test_setup_role(aws_env, config) -> None:  # type: ignore[no-untyped-def]
    env = config.environment("production")
    iam = aws_env.client("iam")
    iam.create_open_id_connect_provider(Url=f"https://{OIDC}", ClientIDList=["sts.amazonaws.com"],
                                        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    options = Options(create_role=True, oidc_provider=OIDC)
    first = run_setup(config, env, options)
    assert [c.action for c in first.changes] == ["created", "created", "attached"]
    assert not first.warnings
    role = iam.get_role(RoleName="deparrow-external-secrets")["Role"]
    assert role["Path"] == "/eso/"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"][
        f"{OIDC}:sub"] == "system:serviceaccount:deparrow:deparrow-external-secrets-sa"
    attached = iam.list_attached_role_policies(RoleName="deparrow-external-secrets")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["DeparrowSecrets-production"]
    second = run_setup(config, env, options)
    assert not second.changed, second.changes
    # more than least privilege on the role is reported, never removed
    iam.put_role_policy(RoleName="deparrow-external-secrets", PolicyName="extra",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    third = run_setup(config, env, options)
    assert not third.changed
    assert any("inline:extra" in w for w in third.warnings)


def test_setup_role_warns_about_missing_oidc_provider(aws_env, config) -> None:  # type: ignore[no-untyped-def]
    report = run_setup(config, config.environment("staging"),
                       Options(create_role=True, oidc_provider=OIDC))
    assert any("not registered in IAM" in w for w in report.warnings)


def test_setup_refuses_another_account(aws_env, write_config, load) -> None:  # type: ignore[no-untyped-def]
    from deparrow_secrets.errors import ConfigError

    config = load(write_config(AWS_CONFIG.replace(ACCOUNT, "210987654321")))
    with pytest.raises(ConfigError, match="belong to account 123456789012"):
        run_setup(config, config.environment("production"))
    assert not aws_env.client("iam").list_policies(Scope="Local")["Policies"]


def service_error(code: str, operation: str, message: str, status: int = 400
                  ) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def on_setup_calls(monkeypatch: pytest.MonkeyPatch, event: str,
                   make: Callable[[], BaseException], times: int = 99) -> list[int]:
    """Raise `make()` from botocore handler `event` (e.g. before-call.iam.CreatePolicy) of
    the clients setup's connection opens, the first `times` calls; returns a counter."""
    seen = [0]
    hooked: set[int] = set()
    original = AwsConnection.client

    def handler(**_: Any) -> None:
        seen[0] += 1
        if seen[0] <= times:
            raise make()

    def client(self: AwsConnection, service: str) -> Any:
        made = original(self, service)
        if id(made) not in hooked:
            hooked.add(id(made))
            made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(AwsConnection, "client", client)
    return seen


def test_dry_run_fails_where_the_real_run_fails(aws_env, config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """issue 9.14: credentials that may not list policy versions fail the dry run too."""
    from deparrow_secrets.errors import AccessDeniedError

    env = config.environment("production")
    run_setup(config, env)
    aws_env.client("iam").create_policy_version(
        PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/DeparrowSecrets-production",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}),
        SetAsDefault=True)
    on_setup_calls(monkeypatch, "before-call.iam.ListPolicyVersions",
                   lambda: service_error("AccessDenied", "ListPolicyVersions", "not allowed"))
    for dry in (True, False):
        with pytest.raises(AccessDeniedError):
            run_setup(config, env, Options(dry_run=dry))


# ------------------------------------------------- setup shares the store's connection


PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/deparrow-ci"


def setup_cli(run_cli, write_config) -> Any:  # type: ignore[no-untyped-def]
    return run_cli("--config", str(write_config(AWS_CONFIG)), "setup", "--env",
                   "production")


@pytest.mark.parametrize(("message", "principal"), [
    (f"User: {PRINCIPAL} is not authorized to perform: iam:CreatePolicy on resource: "
     "policy DeparrowSecrets-production {canary}", PRINCIPAL),
    ("not authorized {canary}", f"arn:aws:sts::{ACCOUNT}:"),  # principal asked of STS
])
def test_setup_denied_is_translated_never_the_aws_message(  # type: ignore[no-untyped-def]
        aws_env, write_config, run_cli, monkeypatch, message: str, principal: str) -> None:
    canary = secrets.token_urlsafe(12)
    seen = on_setup_calls(monkeypatch, "before-call.iam.CreatePolicy", lambda: service_error(
        "AccessDenied", "CreatePolicy", message.format(canary=canary)))
    result = setup_cli(run_cli, write_config)
    assert result.code == 4, result.err
    assert seen[0] == 1  # a denial is not retried
    assert f"access denied as {principal}" in result.err and "iam create-policy" in result.err
    assert "grant iam:CreatePolicy on arn:aws:iam::" in result.err  # the IAM grant hint
    assert canary not in result.out + result.err
    assert "Traceback" not in result.err


def test_setup_refusal_never_copies_the_aws_message(  # type: ignore[no-untyped-def]
        aws_env, write_config, run_cli, monkeypatch) -> None:
    canary = secrets.token_urlsafe(12)
    on_setup_calls(monkeypatch, "before-call.iam.CreatePolicy", lambda: service_error(
        "MalformedPolicyDocument", "CreatePolicy", f"Syntax errors in policy {canary}"))
    result = setup_cli(run_cli, write_config)
    assert result.code == 3, result.err
    assert "IAM refused the iam create-policy (MalformedPolicyDocument, HTTP 400)" \
        in result.err
    assert canary not in result.out + result.err


def test_setup_throttling_is_retried(aws_env, config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "20")
    seen = on_setup_calls(monkeypatch, "before-call.iam.GetPolicy", lambda: service_error(
        "Throttling", "GetPolicy", "Rate exceeded"), times=2)
    report = run_setup(config, config.environment("production"))
    assert seen[0] == 3
    assert report.changes[0].action == "created"


def test_setup_server_error_is_retried(aws_env, config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = on_setup_calls(monkeypatch, "before-call.sts.GetCallerIdentity",
                          lambda: service_error("ServiceUnavailable", "GetCallerIdentity",
                                                "try again", status=503), times=1)
    report = run_setup(config, config.environment("production"))
    assert seen[0] == 2 and report.changes[0].action == "created"


def test_setup_throttled_beyond_the_attempts_is_unavailable(  # type: ignore[no-untyped-def]
        aws_env, write_config, run_cli, monkeypatch) -> None:
    canary = secrets.token_urlsafe(12)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    seen = on_setup_calls(monkeypatch, "before-call.iam.GetPolicy", lambda: service_error(
        "Throttling", "GetPolicy", f"Rate exceeded {canary}"))
    result = setup_cli(run_cli, write_config)
    assert result.code == 3, result.err
    assert seen[0] == 2  # DEPARROW_SECRETS_RETRIES attempts, botocore adds none
    assert "throttled by IAM (Throttling)" in result.err
    assert "request quota" in result.err and "DEPARROW_SECRETS_RETRIES" in result.err
    assert canary not in result.out + result.err


def test_setup_slow_iam_times_out_in_bounded_time(  # type: ignore[no-untyped-def]
        aws_env, config, monkeypatch, fault_proxy) -> None:
    from deparrow_secrets.errors import StoreUnavailableError

    proxy = fault_proxy(aws_env.port, mode="delay", delay_seconds=4.0)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", proxy.url)
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1")
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="timed out") as info:
        run_setup(config, config.environment("production"))
    assert time.monotonic() - began < 8
    assert proxy.url in str(info.value) and "iam get-policy" in str(info.value)
    proxy.mode = "pass"
    assert run_setup(config, config.environment("production")).changes[0].action == "created"


def test_setup_create_retried_after_a_lost_answer_is_a_conflict_then_converges(  # type: ignore[no-untyped-def]
        aws_env, config, monkeypatch) -> None:
    """The retry of a create whose answer was lost finds the policy there: setup says so
    (exit 5, run it again) instead of an opaque refusal, and the rerun has nothing to do."""
    from deparrow_secrets.errors import ConflictError

    env = config.environment("production")
    seen = on_setup_calls(monkeypatch, "after-call.iam.CreatePolicy",
                          lambda: ReadTimeoutError(endpoint_url="http://lost.invalid/"),
                          times=1)
    with pytest.raises(ConflictError, match="changed while setup ran") as info:
        run_setup(config, env)
    assert seen[0] == 2 and "run setup again" in str(info.value.hint)
    assert info.value.exit_code == 5
    assert [c.action for c in run_setup(config, env).changes] == ["unchanged", "skipped"]
