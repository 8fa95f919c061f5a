"""AWS: the IAM policy, the IRSA role trust policy and the ServiceAccount annotation.

Least privilege for one environment: the policy allows only
`secretsmanager:GetSecretValue`, only on
`arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>/*` where `<prefix>`
is the environment's prefix (default `deparrow/<env>`). The `*` is needed because
AWS appends `-XXXXXX` (six random characters) to every secret ARN, so the
environment's objects (`<prefix>/secrets`, `<prefix>/database`, `<prefix>/redis`)
can only be named with a wildcard; it stays inside the environment's prefix. ESO's
`data[].remoteRef` and `dataFrom.extract` need only GetSecretValue
(providers/v1/aws/secretsmanager/secretsmanager.go); it calls DescribeSecret only for
`metadataPolicy: Fetch` and PushSecret, so that is granted only with
`fetchMetadata: true`. Secrets encrypted with a customer-managed KMS key
(`kmsKeyArn`) also need `kms:Decrypt` on that key, through Secrets Manager only
(`kms:ViaService`).

The guide's policy (`secret:deparrow/*`) lets staging read production; its eksctl
command attaches a policy nobody created under that name.

`setup` creates the policy `DeparrowSecrets-<env>` (or a new default version when the
document differs, deleting the oldest non-default version when five exist) and, with
`--create-role`, the role with the trust policy, attaching the policy. Its IAM and STS
calls go through the store's connection (`connection.py`: credential chain, region,
AWS_ENDPOINT_URL_IAM / _STS, retries, time bound) and error translator (`errors.py`:
IAM grant hints, the principal, never AWS's own message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from deparrow_secrets.errors import ConfigError, ConflictError, InputError
from deparrow_secrets.providers import service_account
from deparrow_secrets.providers.aws.connection import AwsConnection
from deparrow_secrets.providers.aws.errors import AwsCode, Operation
from deparrow_secrets.providers.aws.settings import settings_of
from deparrow_secrets.providers.identity_plan import (
    PLACEHOLDER_NOTE,
    Options,
    Piece,
    Plan,
    SetupReport,
    heredoc,
    json_text,
    printed_audit_setup,
    shell_line,
)
from deparrow_secrets.record import record

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

T = TypeVar("T")

IAM_VERSION = "2012-10-17"
READ_ACTION = "secretsmanager:GetSecretValue"
METADATA_ACTION = "secretsmanager:DescribeSecret"
KMS_ACTION = "kms:Decrypt"
STS_AUDIENCE = "sts.amazonaws.com"
OIDC_PLACEHOLDER = "<OIDC_PROVIDER>"
CLUSTER_PLACEHOLDER = "<CLUSTER_NAME>"
DEFAULT_ROLE = "DeparrowExternalSecrets-{env}"
OIDC_PROVIDER = re.compile(r"[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~-]+)*")
MAX_POLICY_VERSIONS = 5
TAGS = [{"Key": "app.kubernetes.io/managed-by", "Value": "deparrow-secrets"}]


@record
class AwsIdentityOptions:
    """The options of AWS's identity (declared in its `PROVIDER.identity_options`),
    read from `Options` with `Options.read`, typed."""

    oidc_provider: str | None = None
    cluster: str | None = None
    create_role: bool = False
    dry_run: bool = False


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def env_partition(env: EnvironmentConfig) -> str:
    return partition(settings_of(env).region or "")


def policy_name(env: EnvironmentConfig) -> str:
    return f"DeparrowSecrets-{env.name}"


def account_id(config: Config, env: EnvironmentConfig) -> str:
    account = settings_of(env).account_id
    if account:
        return account
    path = ("environments", env.name, "store")
    message = f"no AWS account id: set accountId under environments.{env.name}.store"
    hint = ("the IAM policy names arn:aws:secretsmanager:<region>:<account>:secret:...; "
            "`aws sts get-caller-identity --query Account --output text` prints it "
            "(quote it in YAML: accountId: \"123456789012\")")
    role_arn = settings_of(env).role_arn
    if role_arn:
        hint += f"; the configured roleArn is in account {role_arn.split(':')[4]}"
    if config.source is not None:
        raise config.source.error(ConfigError, path, message, hint)
    raise ConfigError(message, key_path=".".join(path), hint=hint)


def secret_arn_pattern(env: EnvironmentConfig, account: str) -> str:
    region = settings_of(env).region or ""
    return (f"arn:{partition(region)}:secretsmanager:{region}:{account}:secret:"
            f"{env.remote_path}/*")


def policy_arn(env: EnvironmentConfig, account: str) -> str:
    return f"arn:{env_partition(env)}:iam::{account}:policy/{policy_name(env)}"


def actions(env: EnvironmentConfig) -> list[str]:
    """What ESO calls for this environment's ExternalSecrets (and metadata if asked)."""
    return [READ_ACTION, METADATA_ACTION] if settings_of(env).fetch_metadata else [READ_ACTION]


def iam_policy_document(env: EnvironmentConfig, account: str) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [{
        "Sid": f"ReadDeparrowSecrets{env.name.capitalize()}",
        "Effect": "Allow",
        "Action": actions(env),
        "Resource": secret_arn_pattern(env, account),
    }]
    if settings_of(env).kms_key_arn:
        statements.append({
            "Sid": f"DecryptDeparrowSecrets{env.name.capitalize()}",
            "Effect": "Allow",
            "Action": KMS_ACTION,
            "Resource": settings_of(env).kms_key_arn,
            "Condition": {"StringEquals": {
                "kms:ViaService": f"secretsmanager.{settings_of(env).region}.amazonaws.com"}},
        })
    return {"Version": IAM_VERSION, "Statement": statements}


def normalize_oidc_provider(raw: str | None) -> str | None:
    """`https://oidc.eks.../id/X/` -> `oidc.eks.../id/X` (IAM's form); None stays None."""
    if raw is None:
        return None
    value = raw.strip()
    value = re.sub(r"^https://", "", value).rstrip("/")
    if not OIDC_PROVIDER.fullmatch(value):
        raise InputError(f"--oidc-provider {raw!r} is not an OIDC provider host and path",
                         hint="use the cluster's issuer without https://, e.g. "
                         "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B7"
                         "1EXAMPLE (aws eks describe-cluster --name CLUSTER --query "
                         "cluster.identity.oidc.issuer --output text)")
    return value


def role_identity(env: EnvironmentConfig, account: str) -> tuple[str, str, str]:
    """(name, path, ARN) of the IRSA role: from roleArn, else the default name."""
    arn = settings_of(env).role_arn
    if arn:
        resource = arn.split(":", 5)[5]  # role/path/name
        parts = resource.split("/")
        name = parts[-1]
        path = "/" + "/".join(parts[1:-1]) + "/" if len(parts) > 2 else "/"
        return name, path, arn
    name = DEFAULT_ROLE.format(env=env.name)
    return name, "/", f"arn:{env_partition(env)}:iam::{account}:role/{name}"


def trust_policy_document(config: Config, env: EnvironmentConfig, account: str,
                          oidc_provider: str | None) -> dict[str, Any]:
    oidc = oidc_provider or OIDC_PLACEHOLDER
    return {
        "Version": IAM_VERSION,
        "Statement": [{
            "Sid": "ExternalSecretsServiceAccount",
            "Effect": "Allow",
            "Principal": {
                "Federated": f"arn:{env_partition(env)}:iam::{account}:"
                             f"oidc-provider/{oidc}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{oidc}:sub": f"system:serviceaccount:{config.namespace}:"
                               f"{config.service_account}",
                f"{oidc}:aud": STS_AUDIENCE,
            }},
        }],
    }


# --------------------------------------------------------------------------- policy


def plan(config: Config, env: EnvironmentConfig, options: Options) -> Plan:
    given = options.read(AwsIdentityOptions)
    account = account_id(config, env)
    oidc = normalize_oidc_provider(given.oidc_provider)
    result = Plan(env.name, env.provider)
    name = policy_name(env)
    p_arn = policy_arn(env, account)
    document = iam_policy_document(env, account)
    role_name, role_path, role_arn = role_identity(env, account)
    trust = trust_policy_document(config, env, account, oidc)
    sa = service_account(config, env)
    subject = f"system:serviceaccount:{config.namespace}:{config.service_account}"

    result.pieces.append(Piece(
        "iamPolicy", f"IAM policy {name}", "json",
        {"name": name, "arn": p_arn, "document": document},
        notes=(f"Only this environment's secrets: {env.remote_path}/* (AWS appends "
               "-XXXXXX to every secret ARN, hence the *). GetSecretValue is all the "
               "rendered ExternalSecrets need"
               + ("; DescribeSecret because fetchMetadata is set" if settings_of(env).fetch_metadata
                  else " (set fetchMetadata: true for metadataPolicy: Fetch or PushSecret)")
               + ("; kms:Decrypt on the configured key, only via Secrets Manager."
                  if settings_of(env).kms_key_arn else "."),)))
    result.pieces.append(Piece(
        "trustPolicy", f"IRSA role {role_name}: trust policy", "json",
        {"roleName": role_name, "rolePath": role_path, "roleArn": role_arn,
         "oidcProvider": oidc or OIDC_PLACEHOLDER, "subject": subject,
         "audience": STS_AUDIENCE, "document": trust},
        notes=(f"Only the ServiceAccount {subject} may assume the role, with audience "
               f"{STS_AUDIENCE}. Attach the policy {name} to it.",)))
    result.pieces.append(Piece(
        "serviceAccount", "ServiceAccount (IRSA annotation)", "yaml", [sa],
        notes=("The SecretStore names it in auth.jwt.serviceAccountRef; without that ESO "
               "authenticates as its own controller.",)))

    policy_file = f"{name}.json"
    commands = [
        heredoc(f"cat > {policy_file}", json_text(document)),
        shell_line("aws", "iam", "create-policy", "--policy-name", name,
                   "--policy-document", f"file://{policy_file}",
                   "--description", _policy_description(env)),
        shell_line("eksctl", "create", "iamserviceaccount",
                   "--cluster", given.cluster or CLUSTER_PLACEHOLDER,
                   "--region", settings_of(env).region or "",
                   "--namespace", config.namespace, "--name", config.service_account,
                   "--role-name", role_name, "--attach-policy-arn", p_arn,
                   "--role-only", "--approve"),
    ]
    result.pieces.append(Piece(
        "commands", "Commands (aws CLI and eksctl)", "shell", commands,
        notes=("`--role-only`: the ServiceAccount comes from the rendered manifests, "
               "annotated with the role ARN.",
               f"Idempotent alternative: deparrow-secrets setup --env {env.name} "
               f"--create-role --oidc-provider {oidc or OIDC_PLACEHOLDER}")))

    if oidc is None:
        result.warnings.append(
            f"--oidc-provider not given: the trust policy contains the placeholder "
            f"{OIDC_PLACEHOLDER}; the cluster's issuer without https:// is printed by "
            "`aws eks describe-cluster --name CLUSTER --query cluster.identity.oidc.issuer "
            "--output text`")
    if not given.cluster:
        result.warnings.append(f"--cluster not given: the eksctl command contains the "
                               f"placeholder {CLUSTER_PLACEHOLDER}")
    configured_role = settings_of(env).role_arn
    if not configured_role:
        result.warnings.append(
            f"roleArn is not set under environments.{env.name}.store: the rendered "
            f"ServiceAccount has no eks.amazonaws.com/role-arn annotation, so ESO cannot "
            f"assume a role; set roleArn: {role_arn} (or your role's ARN) and re-render")
    elif configured_role.split(":")[4] != account:
        result.warnings.append(
            f"roleArn is in account {configured_role.split(':')[4]} but accountId is "
            f"{account}: the policy can only be attached to a role of its own account")
    if oidc is None or not given.cluster:
        result.warnings.append(PLACEHOLDER_NOTE)
    return result


def _policy_description(env: EnvironmentConfig) -> str:
    return (f"External Secrets Operator: read the secrets of environment {env.name} "
            f"({env.remote_path}/*); managed by deparrow-secrets")


# --------------------------------------------------------------------------- setup


IAM_SERVICE = "IAM"
STS_SERVICE = "STS"
POLICY_ACTIONS = ("iam:GetPolicy", "iam:CreatePolicy", "iam:GetPolicyVersion",
                  "iam:ListPolicyVersions", "iam:CreatePolicyVersion",
                  "iam:DeletePolicyVersion")
ROLE_ACTIONS = ("iam:ListOpenIDConnectProviders", "iam:GetRole", "iam:CreateRole",
                "iam:UpdateAssumeRolePolicy", "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies", "iam:AttachRolePolicy")
_CHANGES = frozenset({"iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion",
                      "iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy"})


_RACED = frozenset({"EntityAlreadyExists", "ConcurrentModification"})
"""IAM's answers to a change that another request made first."""


class _Identity:
    """setup's IAM and STS calls, through the store's connection and error translator:
    the same retries, time bound, throttling back-off, principal lookup and hints."""

    def __init__(self, env: EnvironmentConfig) -> None:
        self.env = env
        self.connection = AwsConnection.from_config(env)  # profile, region and their errors
        self.iam = self.connection.client("iam")
        self.sts = self.connection.client("sts")

    def close(self) -> None:
        self.connection.close()

    def call(self, action: str, target: str, fn: Callable[[], T],
             missing_ok: bool = False) -> T | None:
        """Run one IAM/STS call (`action` as IAM names it, e.g. iam:GetPolicy); None for
        NoSuchEntity when `missing_ok`."""
        service, name = action.split(":")
        client = self.sts if service == "sts" else self.iam
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", name.replace("OpenID", "OpenId")).lower()
        grant = (f"grant {action} on {target} to this principal (IAM policy); setup needs "
                 f"{', '.join(POLICY_ACTIONS)}, and with --create-role "
                 f"{', '.join(ROLE_ACTIONS)}") if service == "iam" else \
            f"{action} needs no permission: check the credentials and AWS_ENDPOINT_URL"
        unsure = ("the change may or may not have been applied: run setup again (it "
                  "compares and updates what exists)") if action in _CHANGES else None
        op = Operation(STS_SERVICE if service == "sts" else IAM_SERVICE,
                       client.meta.endpoint_url, f"{service} {words}", target, grant,
                       unsure=unsure, missing=f"{target} does not exist")
        handle = {"NoSuchEntity"} if missing_ok else set()
        if action in _CHANGES:
            handle |= _RACED
        try:
            return self.connection.call(fn, op, handle=frozenset(handle))
        except AwsCode as refused:
            if refused.code == "NoSuchEntity" and missing_ok:
                return None
            code = refused.code
        # A retried create whose first answer was lost, or another run of setup at once.
        raise ConflictError(f"{target} changed while setup ran ({op.what}: "
                            f"{code})", environment=self.env.name, provider="aws",
                            remote_key=target, hint="run setup again (it compares and updates "
                            "what exists)")

    def need(self, action: str, target: str, fn: Callable[[], T]) -> T:
        result = self.call(action, target, fn)
        assert result is not None  # only a missing_ok call answers None
        return result


def _document(raw: Any) -> Any:
    """IAM returns documents URL-encoded; boto3 usually decodes them already."""
    if isinstance(raw, str):
        return json.loads(unquote(raw))
    return raw


def setup(config: Config, env: EnvironmentConfig, options: Options) -> SetupReport:
    given = options.read(AwsIdentityOptions)
    account = account_id(config, env)
    oidc = normalize_oidc_provider(given.oidc_provider)
    if given.create_role and oidc is None:
        raise InputError("--create-role needs --oidc-provider (the role's trust policy "
                         "names the cluster's OIDC provider)",
                         hint="aws eks describe-cluster --name CLUSTER --query "
                         "cluster.identity.oidc.issuer --output text (drop https://)")
    report = SetupReport(env.name, env.provider, dry_run=given.dry_run)
    aws = _Identity(env)
    try:
        caller = aws.need("sts:GetCallerIdentity", "sts", aws.sts.get_caller_identity)
        if str(caller.get("Account")) != account:
            raise ConfigError(
                f"the AWS credentials belong to account {caller.get('Account')}, but "
                f"environments.{env.name}.store.accountId is {account}",
                file=str(config.file) if config.file else None,
                hint="use credentials of the configured account (AWS_PROFILE) or fix "
                "accountId")
        _setup_policy(aws, env, account, report)
        if given.create_role:
            assert oidc is not None
            _setup_role(aws, config, env, account, oidc, report)
        else:
            report.add(f"role {role_identity(env, account)[0]}", "skipped",
                       "pass --create-role --oidc-provider ... to manage it here")
    finally:
        aws.close()
    return report


def _setup_policy(aws: _Identity, env: EnvironmentConfig, account: str,
                  report: SetupReport) -> None:
    iam = aws.iam
    name = policy_name(env)
    arn = policy_arn(env, account)
    item = f"policy {name}"
    desired = iam_policy_document(env, account)
    existing = aws.call("iam:GetPolicy", arn, lambda: iam.get_policy(PolicyArn=arn),
                        missing_ok=True)
    if existing is None:
        if not report.dry_run:
            aws.need("iam:CreatePolicy", arn, lambda: iam.create_policy(
                PolicyName=name, PolicyDocument=json.dumps(desired),
                Description=_policy_description(env), Tags=TAGS))
        report.add(item, "created", arn)
        return
    default_id = existing["Policy"]["DefaultVersionId"]
    version = aws.need("iam:GetPolicyVersion", arn, lambda: iam.get_policy_version(
        PolicyArn=arn, VersionId=default_id))
    if _document(version["PolicyVersion"]["Document"]) == desired:
        report.add(item, "unchanged", f"{arn} (default version {default_id})")
        return
    # Read-only, so a dry run makes this call too and fails where the real run would.
    versions = aws.need("iam:ListPolicyVersions", arn, lambda: iam.list_policy_versions(
        PolicyArn=arn))["Versions"]
    oldest = min((v for v in versions if not v["IsDefaultVersion"]),
                 key=lambda v: v["CreateDate"]) if len(versions) >= MAX_POLICY_VERSIONS \
        else None
    if report.dry_run:
        report.add(item, "updated", f"{arn}: a new default version would replace "
                   f"{default_id}" + (f"; the oldest version {oldest['VersionId']} would be "
                                      "deleted" if oldest else ""))
        return
    deleted = ""
    if oldest is not None:
        aws.need("iam:DeletePolicyVersion", arn, lambda: iam.delete_policy_version(
            PolicyArn=arn, VersionId=oldest["VersionId"]))
        deleted = f"; deleted the oldest version {oldest['VersionId']}"
    new = aws.need("iam:CreatePolicyVersion", arn, lambda: iam.create_policy_version(
        PolicyArn=arn, PolicyDocument=json.dumps(desired), SetAsDefault=True))
    report.add(item, "updated", f"{arn}: new default version "
               f"{new['PolicyVersion']['VersionId']} (was {default_id}){deleted}")


def _setup_role(aws: _Identity, config: Config, env: EnvironmentConfig, account: str,
                oidc: str, report: SetupReport) -> None:
    iam = aws.iam
    name, path, arn = role_identity(env, account)
    item = f"role {name}"
    trust = trust_policy_document(config, env, account, oidc)
    provider_arn = f"arn:{env_partition(env)}:iam::{account}:oidc-provider/{oidc}"
    providers = aws.need("iam:ListOpenIDConnectProviders", "oidc-provider",
                         iam.list_open_id_connect_providers)
    if provider_arn not in {p["Arn"] for p in providers.get("OpenIDConnectProviderList", [])}:
        report.warnings.append(
            f"the OIDC provider {oidc} is not registered in IAM: the role cannot be "
            "assumed until it is (eksctl utils associate-iam-oidc-provider --cluster "
            "CLUSTER --approve)")
    existing = aws.call("iam:GetRole", arn, lambda: iam.get_role(RoleName=name),
                        missing_ok=True)
    if existing is None:
        if not report.dry_run:
            aws.need("iam:CreateRole", arn, lambda: iam.create_role(
                RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"External Secrets Operator in {config.namespace}, "
                f"environment {env.name}; managed by deparrow-secrets", Tags=TAGS))
        report.add(item, "created", arn)
    else:
        role = existing["Role"]
        if role.get("Path", "/") != path:
            report.warnings.append(f"role {name} exists with path {role.get('Path')}, not "
                                   f"{path} as roleArn says")
        if _document(role["AssumeRolePolicyDocument"]) == trust:
            report.add(item, "unchanged", f"{arn}: trust policy")
        else:
            if not report.dry_run:
                aws.need("iam:UpdateAssumeRolePolicy", arn,
                         lambda: iam.update_assume_role_policy(
                             RoleName=name, PolicyDocument=json.dumps(trust)))
            report.add(item, "updated", f"{arn}: trust policy")
    p_arn = policy_arn(env, account)
    attached: list[str] = []
    inline: list[str] = []
    if existing is not None:
        attached = [p["PolicyArn"] for p in aws.need(
            "iam:ListAttachedRolePolicies", arn,
            lambda: iam.list_attached_role_policies(RoleName=name))["AttachedPolicies"]]
        inline = list(aws.need("iam:ListRolePolicies", arn, lambda: iam.list_role_policies(
            RoleName=name))["PolicyNames"])
    attach_item = f"attachment {policy_name(env)} -> {name}"
    if p_arn in attached:
        report.add(attach_item, "unchanged")
    else:
        if not report.dry_run:
            aws.need("iam:AttachRolePolicy", arn, lambda: iam.attach_role_policy(
                RoleName=name, PolicyArn=p_arn))
        report.add(attach_item, "attached", p_arn)
    others = [a for a in attached if a != p_arn] + [f"inline:{n}" for n in inline]
    if others:
        report.warnings.append(
            f"role {name} has other policies too ({', '.join(sorted(others))}): ESO gets "
            "more than this environment's secrets; remove them unless intended (setup "
            "never detaches anything)")


# --------------------------------------------------------------------------- audit


def aws_trail_command(region: str) -> str:
    return ("aws cloudtrail create-trail --name deparrow-audit --s3-bucket-name BUCKET "
            f"--is-multi-region-trail --region {region} && aws cloudtrail start-logging "
            f"--name deparrow-audit --region {region}")


def setup_audit(config: Config, env: EnvironmentConfig, *, file_path: str | None = None,
                socket_address: str | None = None, dry_run: bool = False) -> SetupReport:
    """CloudTrail is configured by hand: the commands, printed."""
    region = settings_of(env).region or "REGION"
    return printed_audit_setup(
        env, file_path=file_path, socket_address=socket_address, dry_run=dry_run,
        item="CloudTrail trail deparrow-audit", detail="a multi-region trail records "
        "Secrets Manager management events (reads and writes) by default", commands=[
            "# a bucket for the trail's logs, with the bucket policy CloudTrail needs: "
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/"
            "create-s3-bucket-policy-for-cloudtrail.html",
            aws_trail_command(region)])
