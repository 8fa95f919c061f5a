"""HashiCorp Vault / OpenBao: ACL policy, kubernetes auth method, config and role.

What ESO's Vault provider does with `auth.kubernetes` and KV v2, and therefore needs:
- logs in at `auth/<authMount>/login` with a token it requests for
  `serviceAccountRef` (audience `serviceAccountRef.audiences`): no policy needed;
- reads `<mount>/data/<path>` for every `data[].remoteRef` (KV v2 GET with the
  optional `version`): `read` on exactly that path;
- looks its token up (`auth/token/lookup-self`: SecretStore validation and token
  checks) and revokes it after a reconcile (`auth/token/revoke-self`).
It reads `<mount>/metadata/...` only for `dataFrom.find` and `metadataPolicy: Fetch`,
and writes only for PushSecret; the rendered ExternalSecrets use none of them, so
the policy grants nothing there. The role sets `token_no_default_policy`, so the
policy below is the token's whole grant (the `default` policy would add cubbyhole,
wrapping and tools endpoints ESO never calls).

The guide's policy (`secret/data/deparrow/*`) lets staging read production and is
never written; its role has no audience, no TTL and attaches the default policy.

How Vault reviews ESO's token is the store's `tokenReview` (settings.py names
the three modes): `in-cluster` (Vault in a pod: its own CA and token, no
--kubernetes-ca-cert, no binding for ESO), `reviewer-jwt` (Vault outside: CA, host and
a reviewer JWT; the reviewer's account holds system:auth-delegator) and `client-token`
(Vault outside without a reviewer JWT: ESO's ServiceAccount gets the
system:auth-delegator binding, and its token's audience must be one the API server
accepts). `policy`, `setup` and `render` all follow the configured mode, and the CLI
options must agree with it.

`setup` talks to Vault with the tool's own (admin) credentials, as every command does
(VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT...), over the store's connection
(connection.py: retries, deadline, login) and error translator (errors.py: principal and
hints in a denial, no raw Vault message). It is idempotent: it enables the auth method
only when absent and writes the config, the policy and the role only when what Vault
returns differs from what is wanted.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deparrow_secrets.errors import ConfigError, DeparrowError, InputError
from deparrow_secrets.k8sobjects import auth_delegator_binding
from deparrow_secrets.providers import secret_store, service_account
from deparrow_secrets.providers.identity_plan import (
    Options,
    Piece,
    Plan,
    SetupReport,
    heredoc,
    shell_line,
)
from deparrow_secrets.providers.vault.connection import VaultConnection
from deparrow_secrets.providers.vault.errors import Request, vault_text
from deparrow_secrets.providers.vault.settings import VaultSettings, settings_of
from deparrow_secrets.record import record
from deparrow_secrets.secret import SecretValue

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

DEFAULT_KUBERNETES_HOST = "https://kubernetes.default.svc:443"
TOKEN_TTL = 900  # 15m: ESO logs in for every reconcile and revokes the token after it
TOKEN_MAX_TTL = 900
ROLE_LIST_FIELDS = ("bound_service_account_names", "bound_service_account_namespaces",
                    "token_policies")
# Readable fields of auth/<mount>/config that a rewrite must carry over.
CONFIG_KEEP = ("kubernetes_ca_cert", "disable_local_ca_jwt", "pem_keys", "issuer")
NO_LOCAL_CA = ("Vault has no local Kubernetes CA certificate: it does not run in a pod of "
               "the cluster")
CA_HINT = ("pass --kubernetes-ca-cert FILE with the cluster's CA certificate (kubectl config "
           "view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}'"
           " | base64 -d > ca.crt) and --kubernetes-host with the API server's address")


@record
class VaultIdentityOptions:
    """The options of Vault's identity (declared in its `PROVIDER.identity_options`),
    read from `Options` with `Options.read`, typed."""

    kubernetes_host: str | None = None
    kubernetes_ca_cert: str | None = None
    token_reviewer_jwt_file: str | None = None
    dry_run: bool = False


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def data_path(env: EnvironmentConfig) -> str:
    return f"{settings_of(env).mount.strip('/')}/data/{env.remote_path.strip('/')}"


def auth_mount(env: EnvironmentConfig) -> str:
    return settings_of(env).auth_mount.strip("/")


def role_path(env: EnvironmentConfig) -> str:
    return f"auth/{auth_mount(env)}/role/{settings_of(env).role}"


def acl_policy_hcl(env: EnvironmentConfig) -> str:
    store = settings_of(env)
    where = f"KV v2 secret {env.remote_path} on mount {store.mount}"
    if store.vault_namespace:
        where += f" (paths relative to namespace {store.vault_namespace})"

    def block(path: str, caps: str) -> str:
        return f"path {json.dumps(path)} {{\n  capabilities = [{json.dumps(caps)}]\n}}\n"

    return (
        f"# {store.policy}: what External Secrets Operator needs for environment {env.name}.\n"
        "# Generated by deparrow-secrets from deparrow-secrets.yaml; change that, not this.\n"
        "\n"
        f"# ExternalSecret data[].remoteRef: read the {where}.\n"
        + block(data_path(env), "read")
        + "\n# ESO looks its token up after login (SecretStore validation, token checks)...\n"
        + block("auth/token/lookup-self", "read")
        + "\n# ...and revokes it when a reconcile is done.\n"
        + block("auth/token/revoke-self", "update")
        + "\n# Nothing else: no metadata/ (ESO reads it only for dataFrom.find and\n"
        "# metadataPolicy: Fetch, which the rendered ExternalSecrets do not use), no list,\n"
        "# no write. The role sets token_no_default_policy: this is the token's whole grant.\n"
    )


def role_data(config: Config, env: EnvironmentConfig) -> dict[str, Any]:
    """The role as setup writes it (and as Vault reads it back, for those fields)."""
    return {
        "bound_service_account_names": [config.service_account],
        "bound_service_account_namespaces": [config.namespace],
        "audience": settings_of(env).audience or "",
        "token_policies": [settings_of(env).policy],
        "token_no_default_policy": True,
        "token_ttl": TOKEN_TTL,
        "token_max_ttl": TOKEN_MAX_TTL,
    }


def kubernetes_host(options: VaultIdentityOptions) -> str:
    host = (options.kubernetes_host or DEFAULT_KUBERNETES_HOST).strip().rstrip("/")
    if not host.startswith("https://") or len(host) <= len("https://"):
        raise InputError(f"--kubernetes-host {host!r} is not an https:// URL",
                         hint="the Kubernetes API server address as Vault reaches it, "
                         f"e.g. {DEFAULT_KUBERNETES_HOST} when Vault runs in the cluster")
    return host


def read_ca_cert(path: str) -> str:
    """The PEM text of --kubernetes-ca-cert, checked to hold certificates."""
    from cryptography import x509

    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --kubernetes-ca-cert {path} ({type(exc).__name__})",
                         file=path) from None
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certs = []
    if not certs:
        raise InputError("--kubernetes-ca-cert holds no PEM certificate", file=path,
                         hint="the file must contain -----BEGIN CERTIFICATE----- blocks")
    return text.strip() + "\n"


def read_reviewer_jwt(path: str) -> str:
    """The token reviewer JWT from its file (never from argv; never printed)."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --token-reviewer-jwt-file {path} "
                         f"({type(exc).__name__})", file=path) from None
    if text.count(".") != 2 or any(c.isspace() for c in text):
        raise InputError("--token-reviewer-jwt-file does not hold one JWT", file=path,
                         hint="a service account token: header.payload.signature")
    return text


HOST_PLACEHOLDER = "<KUBERNETES_API_SERVER_URL>"
CA_PLACEHOLDER = "@<CLUSTER_CA_CERT_FILE>"
JWT_PLACEHOLDER = "@<TOKEN_REVIEWER_JWT_FILE>"
MODE_SUMMARY = {
    "in-cluster": "tokenReview: in-cluster: Vault runs in the cluster and reviews ESO's token "
                  "with its own pod's service account token and CA (that account needs "
                  "system:auth-delegator, which the Vault Helm chart binds).",
    "reviewer-jwt": "tokenReview: reviewer-jwt: Vault runs outside the cluster, trusts the "
                    "given CA and reviews ESO's token with the token reviewer JWT (its "
                    "ServiceAccount needs system:auth-delegator).",
    "client-token": "tokenReview: client-token: Vault runs outside the cluster, trusts the "
                    "given CA and reviews ESO's token with that same token: ESO's "
                    "ServiceAccount needs system:auth-delegator and its token an audience "
                    "the API server accepts.",
}


def token_review(env: EnvironmentConfig) -> str:
    return settings_of(env).token_review


def needs_auth_delegator(env: EnvironmentConfig) -> bool:
    """ESO's own ServiceAccount reviews tokens only in client-token mode."""
    return token_review(env) == "client-token"


def check_mode_options(config: Config, env: EnvironmentConfig,
                       options: VaultIdentityOptions) -> None:
    """The CLI options must fit the configured review mode (exit 2 naming the fix)."""
    mode = token_review(env)
    key = f"environments.{env.name}.store.tokenReview"
    where = str(config.file) if config.file else None
    if mode == "in-cluster" and (options.kubernetes_ca_cert or options.token_reviewer_jwt_file):
        flag = "--kubernetes-ca-cert" if options.kubernetes_ca_cert else \
            "--token-reviewer-jwt-file"
        raise ConfigError(
            f"{flag} is for Vault outside the cluster, and {env.name} has tokenReview "
            "in-cluster (the default)", file=where, key_path=key,
            hint="set `tokenReview: reviewer-jwt` (with --token-reviewer-jwt-file) or "
            "`tokenReview: client-token` under the store, re-run `render`, then this command")
    if mode == "client-token" and options.token_reviewer_jwt_file:
        raise ConfigError(
            f"--token-reviewer-jwt-file is for tokenReview reviewer-jwt, and {env.name} has "
            "tokenReview client-token", file=where, key_path=key,
            hint="set `tokenReview: reviewer-jwt` to review with that JWT (re-run `render`: "
            "ESO's ServiceAccount then needs no system:auth-delegator binding)")


def config_plan_data(env: EnvironmentConfig, options: VaultIdentityOptions) -> dict[str, Any]:
    """auth/<mount>/config as printed: files by reference (@FILE, as the vault CLI reads),
    placeholders where an outside mode needs a file or address not given."""
    mode = token_review(env)
    if mode == "in-cluster":
        return {"kubernetes_host": kubernetes_host(options), "disable_local_ca_jwt": False}
    data: dict[str, Any] = {
        "kubernetes_host": kubernetes_host(options) if options.kubernetes_host
        else HOST_PLACEHOLDER,
        "kubernetes_ca_cert": f"@{options.kubernetes_ca_cert}" if options.kubernetes_ca_cert
        else CA_PLACEHOLDER,
        "disable_local_ca_jwt": True}
    if mode == "reviewer-jwt":
        data["token_reviewer_jwt"] = (f"@{options.token_reviewer_jwt_file}"
                                      if options.token_reviewer_jwt_file else JWT_PLACEHOLDER)
    return data


def audience_warning(env: EnvironmentConfig) -> str | None:
    if settings_of(env).audience:
        return None
    if token_review(env) == "client-token":
        return (f"no audience under environments.{env.name}.store: right for tokenReview "
                "client-token (ESO's token carries the API server's default audience), but "
                "Vault 1.21+ warns about a role without one; if you set one it must be an "
                "audience the API server accepts, never `vault`")
    return (f"no audience under environments.{env.name}.store: the role accepts tokens of "
            "any audience and Vault 1.21+ warns about it; set `audience: vault` there and "
            "re-run `render` and `setup` so the role and serviceAccountRef.audiences agree")


def shared_names(config: Config, env: EnvironmentConfig) -> list[tuple[str, str]]:
    """(other environment, what it shares) for Vault names that would collide."""
    out = []
    mine = settings_of(env)
    for other in config.environments.values():
        theirs = other.store
        if other.name == env.name or not isinstance(theirs, VaultSettings):
            continue
        if (theirs.server, theirs.vault_namespace) != (mine.server, mine.vault_namespace):
            continue
        if theirs.policy == mine.policy:
            out.append((other.name, f"policy {mine.policy}"))
        if (auth_mount(other), theirs.role) == (auth_mount(env), mine.role):
            out.append((other.name, f"role {role_path(env)}"))
    return out


# --------------------------------------------------------------------------- policy


def plan(config: Config, env: EnvironmentConfig, options: Options) -> Plan:
    given = options.read(VaultIdentityOptions)
    store = settings_of(env)
    result = Plan(env.name, env.provider)
    mount = auth_mount(env)
    hcl = acl_policy_hcl(env)
    role = role_data(config, env)
    check_mode_options(config, env, given)
    mode = token_review(env)
    cfg = config_plan_data(env, given)

    result.pieces.append(Piece(
        "aclPolicy", f"Vault ACL policy {store.policy}", "hcl",
        {"name": store.policy, "hcl": hcl,
         "rules": [{"path": data_path(env), "capabilities": ["read"]},
                   {"path": "auth/token/lookup-self", "capabilities": ["read"]},
                   {"path": "auth/token/revoke-self", "capabilities": ["update"]}]}))
    result.pieces.append(Piece(
        "kubernetesAuth", f"Kubernetes auth method at auth/{mount} and its config", "json",
        {"mount": mount, "type": "kubernetes", "configPath": f"auth/{mount}/config",
         "tokenReview": mode, "config": cfg}, notes=(MODE_SUMMARY[mode],)))
    result.pieces.append(Piece(
        "role", f"Kubernetes auth role {role_path(env)}", "json",
        {"path": role_path(env), "data": role},
        notes=(f"Bound to ServiceAccount {config.service_account} in namespace "
               f"{config.namespace} only; tokens carry only {store.policy} and live "
               f"{_duration(TOKEN_TTL)}.",)))
    result.pieces.append(Piece(
        "serviceAccount", "ServiceAccount", "yaml", [service_account(config, env)]))
    if needs_auth_delegator(env):
        result.pieces.append(Piece(
            "clusterRoleBinding", "ClusterRoleBinding to system:auth-delegator", "yaml",
            [auth_delegator_binding(config)],
            notes=("Lets the ESO ServiceAccount's token be used for TokenReview calls "
                   "(tokenReview: client-token).",)))
    result.pieces.append(Piece(
        "secretStore", "SecretStore (as `render` writes it; shown for its auth block)", "yaml",
        [secret_store(config, env)],
        notes=("auth.kubernetes.serviceAccountRef.audiences must match the role's "
               "audience.",)))

    commands: list[str] = []
    if store.vault_namespace:
        commands.append(shell_line("export", f"VAULT_NAMESPACE={store.vault_namespace}"))
    listed = shlex.quote(json.dumps(mount + "/"))
    commands.append(f"vault auth list -format=json | grep -q {listed} || "
                    + shell_line("vault", "auth", "enable", f"-path={mount}", "kubernetes"))
    config_args = [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                   for k, v in cfg.items()]
    commands.append(shell_line("vault", "write", f"auth/{mount}/config", *config_args))
    commands.append(heredoc(shell_line("vault", "policy", "write", store.policy, "-"), hcl))
    role_args = [
        f"bound_service_account_names={config.service_account}",
        f"bound_service_account_namespaces={config.namespace}",
        f"token_policies={store.policy}",
        "token_no_default_policy=true",
        f"token_ttl={_duration(TOKEN_TTL)}",
        f"token_max_ttl={_duration(TOKEN_MAX_TTL)}",
    ]
    if store.audience:
        role_args.append(f"audience={store.audience}")
    commands.append(shell_line("vault", "write", role_path(env), *role_args))
    result.pieces.append(Piece(
        "commands", "Commands (vault CLI; bao takes the same)", "shell", commands,
        notes=(f"Idempotent alternative: deparrow-secrets setup --env {env.name}",
               "The ServiceAccount"
               + (", ClusterRoleBinding" if needs_auth_delegator(env) else "")
               + " and SecretStore are in the rendered manifests.")))

    warning = audience_warning(env)
    if warning:
        result.warnings.append(warning)
    if any(str(value).lstrip("@").startswith("<") for value in cfg.values()):
        result.warnings.append(
            f"tokenReview {mode}: replace the <PLACEHOLDERS> of auth/{mount}/config with "
            "--kubernetes-host and --kubernetes-ca-cert (and, for reviewer-jwt, "
            "--token-reviewer-jwt-file), or pass them to `setup`")
    for other, what in shared_names(config, env):
        result.warnings.append(
            f"environment {other} uses the same {what} on this Vault: setting up one "
            f"environment overwrites the other's; give each its own `policy:` and `role:`")
    return result


# --------------------------------------------------------------------------- setup


def _diff(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    changed = []
    for key, want in desired.items():
        have = current.get(key)
        if key in ROLE_LIST_FIELDS:
            if sorted(have or []) != sorted(want):
                changed.append(key)
        elif key == "audience":
            if (have or "") != want:
                changed.append(key)
        elif key == "kubernetes_ca_cert":
            if (have or "").strip() != want.strip():
                changed.append(key)
        elif have != want:
            changed.append(key)
    return changed


def setup(config: Config, env: EnvironmentConfig, options: Options) -> SetupReport:
    given = options.read(VaultIdentityOptions)
    for other, what in shared_names(config, env):
        raise ConfigError(
            f"environments {env.name} and {other} use the same {what} on the same Vault: "
            f"setting up {env.name} would change what {other} can read",
            file=str(config.file) if config.file else None,
            key_path=f"environments.{env.name}.store",
            hint="give each environment its own `policy:` and `role:` (for example "
            f"deparrow-secrets-{env.name})")
    check_mode_options(config, env, given)
    if given.kubernetes_host:
        kubernetes_host(given)  # refuse a malformed one before anything else
    ca = read_ca_cert(given.kubernetes_ca_cert) if given.kubernetes_ca_cert else None
    jwt = read_reviewer_jwt(given.token_reviewer_jwt_file) \
        if given.token_reviewer_jwt_file else None
    report = SetupReport(env.name, env.provider, dry_run=given.dry_run)
    mount = auth_mount(env)
    admin = VaultConnection.logged_in(config, env)
    try:
        # 1. the auth method
        listing = admin.get("list auth methods", "sys/auth", missing_ok=False) or {}
        methods = listing.get("data") or listing
        existing = methods.get(f"{mount}/")
        fresh = existing is None
        if existing is not None and existing.get("type") != "kubernetes":
            raise ConfigError(
                f"auth/{mount} is a {existing.get('type')} auth method, not kubernetes",
                file=str(config.file) if config.file else None,
                key_path=f"environments.{env.name}.store.authMount",
                hint="set authMount to a free path or to the kubernetes auth method's path")
        # What the config needs (host, CA, reviewer JWT) is settled before anything is
        # written, so a refusal leaves Vault as it was.
        config_step = _config_step(admin, env, given, ca, jwt, fresh)
        if existing is None:
            if not report.dry_run:
                admin.write("enable auth method", f"sys/auth/{mount}",
                            {"type": "kubernetes",
                             "description": "Kubernetes service accounts (deparrow-secrets)"},
                            caps="create, update, sudo")
            report.add(f"auth method auth/{mount}", "enabled", "kubernetes")
        else:
            report.add(f"auth method auth/{mount}", "unchanged", "kubernetes")

        # 2. its config
        item, action, detail, body = config_step
        if body is not None and not report.dry_run:
            admin.api("post", "write auth config", f"auth/{mount}/config", body,
                      caps="create, update", on_error=_no_local_ca,
                      redact=[SecretValue(jwt)] if jwt else [])
        report.add(item, action, detail)

        # 3. the policy
        name = settings_of(env).policy
        hcl = acl_policy_hcl(env)
        current = admin.get("read policy", f"sys/policies/acl/{name}")
        have = ((current or {}).get("data") or {}).get("policy") if current else None
        if have == hcl:
            report.add(f"policy {name}", "unchanged")
        else:
            if not report.dry_run:
                admin.write("write policy", f"sys/policies/acl/{name}", {"policy": hcl})
            report.add(f"policy {name}", "created" if have is None else "updated",
                       f"read on {data_path(env)}")

        # 4. the role
        desired = role_data(config, env)
        path = role_path(env)
        current = None if fresh else admin.get("read role", path)
        have_role = (current or {}).get("data") if current else None
        if have_role is None:
            if not report.dry_run:
                admin.write("write role", path, desired)
            report.add(f"role {path}", "created",
                       f"{config.namespace}/{config.service_account} -> {name}")
        else:
            changed = _diff(have_role, desired)
            if changed:
                if not report.dry_run:
                    admin.write("write role", path, desired)
                report.add(f"role {path}", "updated", "changed: " + ", ".join(changed))
            else:
                report.add(f"role {path}", "unchanged")
        if report.dry_run:
            _check_write_access(admin, config, env, report)
    finally:
        admin.close()
    warning = audience_warning(env)
    if warning:
        report.warnings.append(warning)
    return report


def _no_local_ca(exc: Exception) -> DeparrowError | None:
    """Vault refuses a config without a CA when it has no pod CA of its own to fall back on."""
    import hvac.exceptions as hx

    if isinstance(exc, hx.InvalidRequest) and "ca.crt" in vault_text(exc):
        return InputError(NO_LOCAL_CA, hint=CA_HINT)
    return None


def _check_write_access(admin: VaultConnection, config: Config, env: EnvironmentConfig,
                        report: SetupReport) -> None:
    """A dry run fails where the real run would: a write it would make without the
    capability for it is refused the same way (asked with sys/capabilities-self)."""
    targets: list[tuple[str, bool]] = []  # (path, needs sudo)
    for change in report.changes:
        if not change.action.startswith("would "):
            continue
        if change.item.startswith("auth method "):
            targets.append((f"sys/auth/{auth_mount(env)}", True))
        elif change.item.startswith("kubernetes auth config "):
            targets.append((f"auth/{auth_mount(env)}/config", False))
        elif change.item.startswith("policy "):
            targets.append((f"sys/policies/acl/{settings_of(env).policy}", False))
        elif change.item.startswith("role "):
            targets.append((role_path(env), False))
    if not targets:
        return
    body = {"paths": [path for path, _ in targets]}
    answer = admin.api("post", "check capabilities", "sys/capabilities-self", body,
                       caps="update")
    data = answer.get("data", answer) if isinstance(answer, dict) else {}
    for path, sudo in targets:
        have = set(data.get(path) or [])
        if "root" in have or (have & {"create", "update"} and (not sudo or "sudo" in have)):
            continue
        caps = "create, update, sudo" if sudo else "create, update"
        raise admin.errors.denied(Request("check capabilities", target=path, remote_key=path,
                                          caps=caps),
                                  note="dry run: the real run would stop here")


def _config_step(admin: VaultConnection, env: EnvironmentConfig,
                 options: VaultIdentityOptions, ca: str | None, jwt: str | None, fresh: bool
                 ) -> tuple[str, str, str, dict[str, Any] | None]:
    """(item, action, detail, body to write or None) for auth/<mount>/config in the
    configured review mode. What a previous run set and this one does not pass (host,
    CA, reviewer JWT) is kept, never reset; what is missing is refused here."""
    mount = auth_mount(env)
    mode = token_review(env)
    path = f"auth/{mount}/config"
    item = f"kubernetes auth config {path}"
    current = None if fresh else admin.get("read auth config", path)
    have = ((current or {}).get("data") if current else None) or None
    have_host = str(have.get("kubernetes_host") or "") if have else ""
    have_ca = str(have.get("kubernetes_ca_cert") or "") if have else ""
    have_jwt = bool(have and have.get("token_reviewer_jwt_set"))
    if options.kubernetes_host:
        host = kubernetes_host(options)
    elif have_host:
        host = have_host
    elif mode == "in-cluster":
        host = DEFAULT_KUBERNETES_HOST
    else:
        raise InputError(f"tokenReview {mode}: Vault needs the API server's address",
                         hint="pass --kubernetes-host with the API server's address as Vault "
                         "reaches it")
    if mode != "in-cluster" and ca is None and not have_ca.strip():
        raise InputError(f"tokenReview {mode}: {NO_LOCAL_CA}", hint=CA_HINT)
    if mode == "reviewer-jwt" and jwt is None and not have_jwt:
        raise InputError("tokenReview reviewer-jwt: no token reviewer JWT is configured",
                         hint="pass --token-reviewer-jwt-file FILE (a token of a "
                         "ServiceAccount bound to system:auth-delegator)")
    desired: dict[str, Any] = {"kubernetes_host": host,
                               "disable_local_ca_jwt": mode != "in-cluster"}
    if ca is not None:
        desired["kubernetes_ca_cert"] = ca
    if have is None:
        body = dict(desired)
        if jwt is not None:
            body["token_reviewer_jwt"] = jwt
        return item, "created", f"kubernetes_host={host} ({mode})", body
    changed = _diff(have, desired)
    drop_jwt = have_jwt and mode == "client-token"
    if not changed and jwt is None and not drop_jwt:
        return item, "unchanged", f"kubernetes_host={host} ({mode})", None
    if jwt is None and have_jwt and mode == "in-cluster":
        raise InputError(
            f"{path} has a token reviewer JWT, and rewriting the config ({', '.join(changed)} "
            "changed) would remove it",
            hint="pass --token-reviewer-jwt-file FILE to keep one (with `tokenReview: "
            "reviewer-jwt` under the store)")
    if jwt is None and have_jwt and mode == "reviewer-jwt":
        raise InputError(
            f"{path} has a token reviewer JWT that Vault never returns, and rewriting the "
            f"config ({', '.join(changed)} changed) needs it again",
            hint="pass --token-reviewer-jwt-file FILE")
    # A write replaces the whole config: carry over what the user did not ask to change.
    body = {k: have[k] for k in CONFIG_KEEP if have.get(k) not in (None, "", [])}
    body.update(desired)
    if jwt is not None:
        body["token_reviewer_jwt"] = jwt
        changed.append("token_reviewer_jwt (not readable, always rewritten)")
    if drop_jwt:
        changed.append("token_reviewer_jwt removed (tokenReview client-token)")
    return item, "updated", "changed: " + ", ".join(changed), body


# --------------------------------------------------------------------------- audit

DEFAULT_AUDIT_FILE = "/var/log/vault/audit.log"
AUDIT_DEVICE = "deparrow"
# OpenBao refuses audit devices through the API unless the server's configuration sets
# `unsafe_allow_api_audit_creation`; it declares them in its configuration file instead.
API_AUDIT_REFUSED = "cannot enable audit device via api"


def audit_devices(listing: dict[str, Any]) -> dict[str, str]:
    """Path -> type of the enabled audit devices in a `GET sys/audit` answer (the devices
    are under `data`, and at the top level too on older servers)."""
    data = listing.get("data")
    devices: dict[str, Any] = data if isinstance(data, dict) else listing
    return {str(path): str(info["type"]) for path, info in devices.items()
            if isinstance(info, dict) and "type" in info}


def audit_stanza(file_path: str | None, socket_address: str | None) -> list[str]:
    """The configuration-file form of the audit device (OpenBao's declarative way)."""
    if socket_address:
        kind, options = "socket", [f"    address = {json.dumps(socket_address)}",
                                   '    socket_type = "tcp"']
    else:
        kind, options = "file", [f"    file_path = {json.dumps(file_path or DEFAULT_AUDIT_FILE)}"]
    return [f'audit "{kind}" "{AUDIT_DEVICE}" {{',
            '  description = "secret reads and writes (deparrow-secrets setup --audit)"',
            "  options {", *options, "  }", "}"]


def setup_audit(config: Config, env: EnvironmentConfig, *, file_path: str | None = None,
                socket_address: str | None = None, dry_run: bool = False) -> SetupReport:
    """Enable an audit device through the API where the server allows it (Vault), else
    print the stanza for the server's configuration file (OpenBao). Idempotent: a
    server with any audit device enabled is left as it is."""
    import hvac.exceptions as hx

    report = SetupReport(env.name, env.provider, dry_run=dry_run)
    admin = VaultConnection.logged_in(config, env)
    try:
        listing = admin.get("list audit devices", "sys/audit", missing_ok=False) or {}
        enabled = sorted(audit_devices(listing))
        if enabled:
            report.add("audit device", "unchanged", "enabled: " + ", ".join(enabled))
            return report
        kind = "socket" if socket_address else "file"
        options = {"address": socket_address, "socket_type": "tcp"} if socket_address \
            else {"file_path": file_path or DEFAULT_AUDIT_FILE}
        detail = f"{kind} {options.get('address') or options.get('file_path')}"
        if dry_run:
            report.add(f"audit device {AUDIT_DEVICE}/", "enabled", detail)
            return report
        body = {"type": kind, "description": "secret reads and writes (deparrow-secrets)",
                "options": options}

        refused = object()

        def refusal(exc: Exception) -> object | None:
            if isinstance(exc, hx.InvalidRequest) and \
                    API_AUDIT_REFUSED in vault_text(exc).lower():
                return refused
            return None

        answer = admin.api("put", "enable audit device", f"sys/audit/{AUDIT_DEVICE}", body,
                           caps="create, update, sudo", on_error=refusal)
        if answer is refused:
            report.add(f"audit device {AUDIT_DEVICE}/", "printed",
                       "not enabled: the server declares audit devices in its configuration "
                       "file (OpenBao); add the stanza below")
            report.commands += [
                "# add to the server's configuration file (-config=FILE), then restart it:",
                *audit_stanza(file_path, socket_address)]
            return report
        report.add(f"audit device {AUDIT_DEVICE}/", "enabled", detail)
    finally:
        admin.close()
    return report
