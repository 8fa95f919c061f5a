"""Audit logging at the store: who read and who changed which secret.

- vault: `GET sys/audit` lists the enabled audit devices; reading it needs `read` and
  `sudo` on sys/audit, so a 403 is "unknown" naming that grant, never "fail".
- aws: a CloudTrail trail that is logging, covers the store's region (multi-region or
  homed there) and records management events (Secrets Manager's GetSecretValue,
  PutSecretValue, ... are management events; read events need ReadWriteType All).
- azure: diagnostic settings live on the management plane, which the tool does not
  use: the `az monitor diagnostic-settings` commands to check and to set them.
- local: the embedded store has no audit device; the change ledger records its writes.
"""

from __future__ import annotations

import shlex
from typing import Any, assert_never

from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import AccessDeniedError, StoreError
from deparrow_secrets.findings import ERROR, Rule, declare
from deparrow_secrets.posture.model import FAIL, PASS, UNKNOWN, Verdict, not_checked
from deparrow_secrets.providers import builtin_settings
from deparrow_secrets.providers.aws.identity import aws_trail_command
from deparrow_secrets.providers.aws.settings import AwsSettings
from deparrow_secrets.providers.azure.identity import azure_diagnostic_commands, vault_name
from deparrow_secrets.providers.azure.settings import AzureSettings
from deparrow_secrets.providers.azure.settings import settings_of as azure_settings_of
from deparrow_secrets.providers.local.settings import LocalSettings
from deparrow_secrets.providers.vault.settings import VaultSettings

(RULE,) = declare(
    Rule("audit-logging", ERROR,
         "The store records who read and changed secrets: a Vault/OpenBao audit device, an "
         "AWS CloudTrail trail with Secrets Manager management events in the region, the "
         "Key Vault AuditEvent diagnostic setting, the embedded store's change ledger.",
         "deparrow-secrets setup --env ENV --audit", tool="posture"),
)

PRACTICE = RULE.id
VAULT_AUDIT_GRANT = 'path "sys/audit" { capabilities = ["read", "sudo"] }'
TRAIL_ACTIONS = ("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus",
                 "cloudtrail:GetEventSelectors")


def check(config: Config, env: EnvironmentConfig) -> Verdict:
    match builtin_settings(env):
        case VaultSettings():
            return _vault(config, env)
        case AwsSettings():
            return _aws(config, env)
        case AzureSettings():
            return _azure(env)
        case LocalSettings():
            return _local(config, env)
        case None:
            return not_checked(PRACTICE, env)
        case unknown:
            assert_never(unknown)


def _local(config: Config, env: EnvironmentConfig) -> Verdict:
    from deparrow_secrets.ledger.chain import LedgerFiles

    ledger = LedgerFiles(config.root, config.state_dir).ledger
    shown = _shown(config, ledger)
    if ledger.is_file():
        return Verdict(PRACTICE, "local", PASS,
                       "the embedded store has no audit device; the change ledger records "
                       "every write", [f"change ledger {shown} exists"],
                       fix="", commands=["deparrow-secrets audit --verify"])
    return Verdict(PRACTICE, "local", UNKNOWN,
                   "the embedded store has no audit device; the change ledger records "
                   "every write", [f"no change ledger at {shown} yet"],
                   fix=f"nothing to do: the next provision/set/rollback of {env.name} "
                   "starts it; `deparrow-secrets audit --verify` checks it",
                   reason="no write recorded yet")


def _shown(config: Config, path: Any) -> str:
    try:
        return str(path.relative_to(config.root))
    except ValueError:
        return str(path)


def _vault(config: Config, env: EnvironmentConfig) -> Verdict:
    from deparrow_secrets.providers.vault.connection import VaultConnection
    from deparrow_secrets.providers.vault.identity import audit_devices

    admin = VaultConnection.logged_in(config, env)
    where = f"Vault at {admin.address}"
    try:
        try:
            listing = admin.get("list audit devices", "sys/audit", missing_ok=False) or {}
        except AccessDeniedError:
            return Verdict(PRACTICE, "vault", UNKNOWN, f"{where}: audit devices not readable",
                           ["GET sys/audit answered 403"],
                           fix="run posture with a token whose policy has "
                           f"{VAULT_AUDIT_GRANT}",
                           reason="listing audit devices needs read and sudo on sys/audit")
    finally:
        admin.close()
    found = sorted(f"{path} ({kind})" for path, kind in audit_devices(listing).items())
    if found:
        return Verdict(PRACTICE, "vault", PASS, f"{where}: {len(found)} audit device(s) "
                       "enabled", [f"sys/audit lists {', '.join(found)}"])
    return Verdict(PRACTICE, "vault", FAIL, f"{where}: no audit device is enabled: reads "
                   "and writes of secrets leave no record", ["sys/audit lists no device"],
                   fix=f"deparrow-secrets setup --env {env.name} --audit (Vault: enables a "
                   "file audit device; OpenBao: prints the `audit` stanza for its "
                   "configuration file)")


def _trail_covers(trail: dict[str, Any], region: str) -> bool:
    return bool(trail.get("IsMultiRegionTrail")) or trail.get("HomeRegion") == region


def _management_scope(selectors: dict[str, Any]) -> str | None:
    """"All", "WriteOnly", "ReadOnly" or None (no management events recorded)."""
    if not selectors.get("EventSelectors") and not selectors.get("AdvancedEventSelectors"):
        return "All"  # a trail created without selectors logs all management events
    scopes: set[str] = set()
    for sel in selectors.get("EventSelectors") or []:
        if sel.get("IncludeManagementEvents", True):
            scopes.add(str(sel.get("ReadWriteType") or "All"))
    for adv in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in adv.get("FieldSelectors") or []}
        category = fields.get("eventCategory") or {}
        if "Management" not in (category.get("Equals") or []):
            continue
        read_only = (fields.get("readOnly") or {}).get("Equals") or []
        scopes.add("ReadOnly" if read_only == ["true"] else
                   "WriteOnly" if read_only == ["false"] else "All")
    if "All" in scopes or {"ReadOnly", "WriteOnly"} <= scopes:
        return "All"
    return next(iter(scopes), None)


def _aws(config: Config, env: EnvironmentConfig) -> Verdict:
    from deparrow_secrets.providers.aws.store import AwsStore

    store = AwsStore.from_config(config, env)
    region = store.region
    create = aws_trail_command(region)
    try:
        # the store's connection: its timeout and one attempt per request
        trail_client = store.connection.client("cloudtrail")
        try:
            trails = trail_client.describe_trails(includeShadowTrails=True).get("trailList")
            evidence: list[str] = []
            partial: list[str] = []
            for trail in trails or []:
                name = str(trail.get("TrailARN") or trail.get("Name"))
                if not _trail_covers(trail, region):
                    evidence.append(f"trail {name}: homed in {trail.get('HomeRegion')}, "
                                    "single-region")
                    continue
                status = trail_client.get_trail_status(Name=name)
                if not status.get("IsLogging"):
                    evidence.append(f"trail {name}: not logging")
                    continue
                scope = _management_scope(trail_client.get_event_selectors(TrailName=name))
                if scope is None:
                    evidence.append(f"trail {name}: records no management events")
                elif scope != "All":
                    evidence.append(f"trail {name}: management events {scope} only")
                    partial.append(name)
                else:
                    evidence.append(f"trail {name}: logging, management events All")
                    return Verdict(PRACTICE, "aws", PASS,
                                   f"CloudTrail records Secrets Manager management events "
                                   f"in {region}", evidence)
        finally:
            store.close()
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors, translated below
        code = str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code")
                   or type(exc).__name__)
        if "AccessDenied" in code or "Unauthorized" in code or "NoCredentials" in code:
            return Verdict(PRACTICE, "aws", UNKNOWN, f"CloudTrail in {region} not readable",
                           [f"CloudTrail answered {code}"],
                           fix="run posture with credentials allowed "
                           + ", ".join(TRAIL_ACTIONS), reason=f"{code}: the check needs "
                           + ", ".join(TRAIL_ACTIONS))
        return Verdict(PRACTICE, "aws", UNKNOWN, f"CloudTrail in {region} not readable",
                       [f"CloudTrail call failed: {code}"],
                       fix="check the network, AWS_REGION and AWS_ENDPOINT_URL, then rerun",
                       reason=code)
    finally:
        store.close()
    if not evidence:
        evidence.append(f"no trail in {region} (nor a multi-region one)")
    fix = create
    if partial:
        fix = (f"aws cloudtrail put-event-selectors --trail-name {shlex.quote(partial[0])} "
               "--event-selectors '[{\"ReadWriteType\":\"All\","
               f"\"IncludeManagementEvents\":true}}]' --region {region}")
    return Verdict(PRACTICE, "aws", FAIL, f"no CloudTrail trail records all Secrets Manager "
                   f"management events in {region}: reads of secrets leave no record",
                   evidence, fix=fix)


def _azure(env: EnvironmentConfig) -> Verdict:
    name = vault_name(env)
    check_cmd, create_cmd = azure_diagnostic_commands(env)
    return Verdict(PRACTICE, "azure", UNKNOWN,
                   f"Key Vault {name}: the AuditEvent diagnostic setting is on the management "
                   "plane, which the tool does not read",
                   [f"vault {azure_settings_of(env).vault_url}"],
                   fix=f"check: {check_cmd}; if it lists none, set it: {create_cmd}",
                   reason="diagnostic settings are not readable through the Key Vault data "
                   "plane", commands=[check_cmd, create_cmd])
