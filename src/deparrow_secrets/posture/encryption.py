"""Encryption at rest: the store's, and the cluster's (etcd) for the Secrets ESO writes.

- local: every version sealed with AES-GCM (providers/local/store.py); what can go wrong is the
  key: a key file readable by others, or tracked by git.
- aws: Secrets Manager always encrypts, with the AWS managed key aws/secretsmanager or
  a customer-managed KMS key (DescribeSecret `KmsKeyId`, no value read). With a
  customer-managed key ESO also needs kms:Decrypt on it, which the IAM policy the tool
  renders grants only when the store's `kmsKeyArn` names that key.
- azure: Key Vault always encrypts; the SKU (standard: software keys, premium: HSM)
  is on the management plane: printed `az keyvault show` check.
- vault: the barrier encrypts storage; `sys/seal-status` (unauthenticated) gives the seal
  type and the storage type; in-memory storage is a dev server, which keeps nothing.
- cluster: whether Secrets are encrypted in etcd is not readable through the API; the
  check per provider is printed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, assert_never

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import StoreError
from deparrow_secrets.findings import ERROR, Rule, declare
from deparrow_secrets.posture.model import FAIL, PASS, UNKNOWN, Verdict, not_checked
from deparrow_secrets.project import Project
from deparrow_secrets.providers import builtin_settings
from deparrow_secrets.providers.aws.settings import AwsSettings
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.local.settings import LocalSettings
from deparrow_secrets.providers.vault.settings import VaultSettings

(RULE,) = declare(
    Rule("encryption-at-rest", ERROR,
         "Secrets are encrypted at rest: the embedded store's AEAD and key file, the AWS "
         "secrets' KMS key and the IAM policy covering it, Key Vault's SKU, Vault's seal "
         "and storage, and etcd encryption of the cluster's Secrets.",
         "Follow the fix of the finding (it names the command).", tool="posture"),
)

PRACTICE = RULE.id
AWS_MANAGED_ALIAS = "alias/aws/secretsmanager"
ETCD_CHECKS = [
    "EKS: aws eks describe-cluster --name CLUSTER --query cluster.encryptionConfig "
    "(empty: aws eks associate-encryption-config --cluster-name CLUSTER "
    "--encryption-config '[{\"resources\":[\"secrets\"],\"provider\":{\"keyArn\":"
    "\"KMS_KEY_ARN\"}}]')",
    "AKS: az aks show --name CLUSTER --resource-group GROUP --query "
    "securityProfile.azureKeyVaultKms (empty: az aks update --enable-azure-keyvault-kms "
    "--azure-keyvault-kms-key-id KEY_ID ...)",
    "GKE: gcloud container clusters describe CLUSTER --format "
    "'value(databaseEncryption)' (DECRYPTED: gcloud container clusters update CLUSTER "
    "--database-encryption-key KMS_KEY)",
    "self-managed: kube-apiserver --encryption-provider-config names an "
    "EncryptionConfiguration whose first provider for secrets is kms or aescbc/aesgcm, "
    "not identity",
]


def check_store(project: Project, env: EnvironmentConfig) -> Verdict:
    config = project.config
    match builtin_settings(env):
        case AwsSettings() as aws:
            return _aws(project, env, aws)
        case AzureSettings() as azure:
            return _azure(azure)
        case VaultSettings():
            return _vault(config, env)
        case LocalSettings() as local:
            return _local(config, env, local)
        case None:
            return not_checked(PRACTICE, env)
        case unknown:
            assert_never(unknown)


def check_cluster(env: EnvironmentConfig) -> Verdict:
    first = {AwsSettings: "EKS", AzureSettings: "AKS"}.get(type(env.store))
    checks = sorted(ETCD_CHECKS, key=lambda c: not (first and c.startswith(first)))
    return Verdict(PRACTICE, "cluster", UNKNOWN,
                   "whether the cluster encrypts Secrets in etcd is not readable through "
                   "the Kubernetes API", ["the API serves Secrets decrypted either way"],
                   fix="check it on the provider: " + "; ".join(checks),
                   reason="etcd encryption is configured on the API server, not in the API",
                   commands=checks)


def _local(config: Config, env: EnvironmentConfig, settings: LocalSettings) -> Verdict:
    from deparrow_secrets.gitrepo import is_tracked
    from deparrow_secrets.providers.local.settings import DEFAULT_STORE
    from deparrow_secrets.providers.local.store import KEY_ENV, KEY_FILE_ENV

    store = config.root / (settings.path or DEFAULT_STORE)
    evidence = ["each version sealed with AES-256-GCM, bound to its object and version"]
    if os.environ.get(KEY_ENV):
        evidence.append(f"key from ${KEY_ENV} (not on disk)")
        return Verdict(PRACTICE, "local", PASS, "the embedded store is encrypted; its key is "
                       "not on disk", evidence)
    key_file = os.environ.get(KEY_FILE_ENV) or str(store.with_suffix(".key"))
    try:
        st = os.stat(key_file, follow_symlinks=False)
    except FileNotFoundError:
        return Verdict(PRACTICE, "local", UNKNOWN, f"no key file at {key_file} yet",
                       evidence, fix=f"deparrow-secrets provision --env {env.name} creates "
                       "the store and its key (0600, git-ignored)", reason="no store yet")
    mode = stat.S_IMODE(st.st_mode)
    evidence.append(f"key file {key_file} mode {mode:04o}")
    problems: list[str] = []
    fixes: list[str] = []
    if not stat.S_ISREG(st.st_mode):
        problems.append("the key file is not a regular file")
        fixes.append(f"replace {key_file} with the key file itself")
    if mode & 0o077:
        problems.append(f"the key file is readable by others (mode {mode:04o})")
        fixes.append(f"chmod 600 {key_file}")
    if is_tracked(Path(key_file)):
        problems.append("the key file is tracked by git: everyone with the repository can "
                        "decrypt the store")
        evidence.append("git ls-files lists the key file")
        fixes.append(f"git rm --cached {key_file}, commit, and rotate every value "
                     f"(the key was shared): deparrow-secrets rotate --all --env {env.name}")
    else:
        evidence.append("the key file is not tracked by git")
    if problems:
        return Verdict(PRACTICE, "local", FAIL, "; ".join(problems), evidence,
                       fix="; ".join(fixes))
    return Verdict(PRACTICE, "local", PASS, "the embedded store is encrypted and its key "
                   "file is private", evidence)


def _aws(project: Project, env: EnvironmentConfig, settings: AwsSettings) -> Verdict:
    from deparrow_secrets.providers.aws.store import AwsStore

    layout = project.layout(env)
    names = sorted(layout.objects(v.name for v in layout.needed()))
    store = AwsStore.from_config(project.config, env)
    keys: dict[str, str] = {}
    missing: list[str] = []
    try:
        for name in names:
            try:
                described = store.client.describe_secret(SecretId=name)
            except Exception as exc:  # noqa: BLE001 - botocore's errors, classified here
                code = _code(exc)
                if code == "ResourceNotFoundException":
                    missing.append(name)
                    continue
                reason = f"DescribeSecret {name}: {code}"
                return Verdict(PRACTICE, "aws", UNKNOWN, "the secrets' KMS keys are not "
                               "readable", [reason],
                               fix="run posture with credentials allowed "
                               "secretsmanager:DescribeSecret on "
                               f"{env.remote_path}/*", reason=reason)
            keys[name] = str(described.get("KmsKeyId") or AWS_MANAGED_ALIAS)
    finally:
        store.close()
    if not keys:
        return Verdict(PRACTICE, "aws", UNKNOWN, "no secret of the environment exists yet",
                       [f"DescribeSecret: {', '.join(missing)} not found"],
                       fix=f"deparrow-secrets provision --env {env.name}",
                       reason="nothing to look at")
    evidence = [f"{name}: {key}" for name, key in sorted(keys.items())]
    customer = {k for k in keys.values() if not _aws_managed(k)}
    configured = settings.kms_key_arn
    if not customer:
        return Verdict(PRACTICE, "aws", PASS, "Secrets Manager encrypts every secret with "
                       "the AWS managed key aws/secretsmanager", evidence,
                       commands=["for a key you control (key policy, rotation, CloudTrail of "
                                 "its use): aws secretsmanager update-secret --secret-id NAME "
                                 "--kms-key-id KMS_KEY_ARN, and `kmsKeyArn:` under the store"])
    uncovered = sorted(k for k in customer if not (configured and _same_key(k, configured)))
    if uncovered:
        return Verdict(PRACTICE, "aws", FAIL,
                       "secrets encrypted with a customer-managed KMS key that the IAM "
                       "policy deparrow-secrets renders does not cover: ESO's read is "
                       "denied kms:Decrypt", evidence
                       + [f"store kmsKeyArn: {configured or 'not set'}"],
                       fix=f"set `kmsKeyArn: {uncovered[0]}` (the key's ARN) under "
                       f"environments.{env.name}.store in deparrow-secrets.yaml, then "
                       f"deparrow-secrets setup --env {env.name}")
    return Verdict(PRACTICE, "aws", PASS, "secrets encrypted with the customer-managed KMS "
                   "key the rendered IAM policy grants kms:Decrypt on", evidence
                   + [f"store kmsKeyArn: {configured}"])


def _code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or type(exc).__name__)


def _aws_managed(key: str) -> bool:
    return key.endswith(AWS_MANAGED_ALIAS)


def _same_key(described: str, configured: str) -> bool:
    """DescribeSecret gives the key as written at creation: an ARN, a key id or an alias."""
    key_id = configured.rsplit("/", 1)[-1]
    return described in (configured, key_id) or described.rsplit("/", 1)[-1] == key_id


def _azure(settings: AzureSettings) -> Verdict:
    from deparrow_secrets.providers.azure.settings import vault_name

    name = vault_name(settings.vault_url or "")
    command = f"az keyvault show --name {name} --query properties.sku.name --output tsv"
    return Verdict(PRACTICE, "azure", UNKNOWN,
                   f"Key Vault {name} always encrypts secrets at rest; its SKU (standard: "
                   "software-protected keys, premium: HSM-protected) is not readable "
                   "through the data plane", [f"vault {settings.vault_url}"],
                   fix=f"check: {command} (premium for HSM-backed keys: az keyvault update "
                   f"--name {name} --sku premium)", reason="the SKU is a management-plane "
                   "property", commands=[command])


def _vault(config: Config, env: EnvironmentConfig) -> Verdict:
    from deparrow_secrets.providers.vault.connection import VaultConnection

    admin = VaultConnection.logged_in(config, env)
    where = f"Vault at {admin.address}"
    try:
        try:
            status = admin.get("read seal status", "sys/seal-status", missing_ok=False) or {}
        except StoreError as exc:
            return Verdict(PRACTICE, "vault", UNKNOWN, f"{where}: seal status not readable",
                           [f"GET sys/seal-status: {exc}"], fix="check VAULT_ADDR, rerun",
                           reason="sys/seal-status did not answer")
    finally:
        admin.close()
    seal = str(status.get("type") or "unknown")
    storage = status.get("storage_type")
    evidence = [f"sys/seal-status: seal type {seal}"
                + (f", storage {storage}" if storage else "")]
    if storage == "inmem":
        return Verdict(PRACTICE, "vault", FAIL, f"{where} keeps its data in memory (a dev "
                       "server): nothing is at rest, everything is lost on restart",
                       evidence, fix="run a server with persistent storage (raft) for "
                       f"{env.name}: bao/vault server -config=FILE with a `storage \"raft\"` "
                       "stanza, and point store.server at it")
    return Verdict(PRACTICE, "vault", PASS, f"{where} encrypts its storage with the barrier "
                   f"key ({seal} seal)", evidence)
