"""Vault / OpenBao: the ACL policy, kubernetes auth and `setup` against a real server."""

from __future__ import annotations

import re
import secrets
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
from policy_configs import VAULT_CLIENT_TOKEN_CONFIG, VAULT_CONFIG, VAULT_REVIEWER_CONFIG

from deparrow_secrets.errors import AccessDeniedError, ConfigError, InputError
from deparrow_secrets.policy import build_plan, run_setup
from deparrow_secrets.providers.identity_plan import Options
from deparrow_secrets.providers.vault.identity import acl_policy_hcl, role_data

PROD_POLICY = "deparrow-secrets-production"
PROD_ROLE = "auth/kubernetes/role/deparrow-secrets-production"
UNREACHABLE = "https://kubernetes.example.invalid:6443"


@pytest.fixture
def config(write_config, load):  # type: ignore[no-untyped-def]
    return load(write_config(VAULT_CONFIG))


@pytest.fixture
def outside(write_config, load):  # type: ignore[no-untyped-def]
    """Vault outside the cluster, tokenReview client-token (OpenBao is not in a pod)."""
    return load(write_config(VAULT_CLIENT_TOKEN_CONFIG))


def client_with(bao, token: str) -> hvac.Client:  # type: ignore[no-untyped-def]
    session = requests.Session()
    session.trust_env = False
    return hvac.Client(url=bao.addr, token=token, session=session, timeout=10)


def assert_reads_only_production(client: hvac.Client) -> None:
    kv = client.secrets.kv.v2
    got = kv.read_secret_version("deparrow/production", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"K": "prod-value"}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("deparrow/staging", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret("deparrow/production", {"K": "changed"})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret("deparrow/production/new", {"K": "x"})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_metadata("deparrow/production")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.list_secrets("deparrow")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.list_acl_policies()
    # what ESO does around a reconcile: look the token up, revoke it
    assert client.auth.token.lookup_self()["data"]["policies"] == [PROD_POLICY]
    client.auth.token.revoke_self()


def snapshot(bao) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    root = bao.client()
    return {"policy": root.sys.read_acl_policy(PROD_POLICY)["data"]["policy"],
            "role": root.read(PROD_ROLE)["data"],
            "config": root.read("auth/kubernetes/config")["data"],
            "auth": {k: v["type"] for k, v in root.sys.list_auth_methods()["data"].items()}}


# --------------------------------------------------------------------------- static


def test_policy_reads_exactly_one_path(config) -> None:  # type: ignore[no-untyped-def]
    hcl = acl_policy_hcl(config.environment("production"))
    rules = re.findall(r'path "([^"]+)" \{\n  capabilities = \[([^\]]*)\]\n\}', hcl)
    assert rules == [("secret/data/deparrow/production", '"read"'),
                     ("auth/token/lookup-self", '"read"'),
                     ("auth/token/revoke-self", '"update"')]
    body = "\n".join(line for line in hcl.splitlines() if not line.startswith("#"))
    assert "*" not in body and "+" not in body
    assert "staging" not in hcl
    role = role_data(config, config.environment("production"))
    assert role["token_policies"] == [PROD_POLICY]
    assert role["token_no_default_policy"] is True
    assert role["bound_service_account_names"] == ["deparrow-external-secrets-sa"]
    assert role["bound_service_account_namespaces"] == ["deparrow"]
    assert role["audience"] == "vault"


def test_audience_consistent_or_warned(config, write_config, load) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(config, config.environment("production"))
    store = plan.piece("secretStore").data[0]
    sa_ref = store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"]
    assert sa_ref["audiences"] == [plan.piece("role").data["data"]["audience"]] == ["vault"]
    assert not plan.warnings
    bare = load(write_config(VAULT_CONFIG.replace("      audience: vault\n", "")))
    plan = build_plan(bare, bare.environment("production"))
    sa_ref = plan.piece("secretStore").data[0]["spec"]["provider"]["vault"]["auth"][
        "kubernetes"]["serviceAccountRef"]
    assert "audiences" not in sa_ref and plan.piece("role").data["data"]["audience"] == ""
    assert any("no audience" in w for w in plan.warnings)


def test_shared_policy_names_are_refused(write_config, load) -> None:  # type: ignore[no-untyped-def]
    shared = load(write_config(VAULT_CONFIG.replace("deparrow-secrets-staging",
                                                    "deparrow-secrets-production")))
    plan = build_plan(shared, shared.environment("production"))
    assert any("environment staging uses the same policy" in w for w in plan.warnings)
    with pytest.raises(ConfigError, match="would change what staging can read"):
        run_setup(shared, shared.environment("production"))


# --------------------------------------------------------------------------- OpenBao


def test_setup_token_with_only_the_policy_reads_production_only(bao, outside, ca_file) -> None:  # type: ignore[no-untyped-def]
    # Vault stores any https kubernetes_host without contacting it (a CA is needed
    # because OpenBao does not run in a pod and has no local one).
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))
    report = run_setup(outside, outside.environment("production"), options)
    assert [c.action for c in report.changes] == ["enabled", "created", "created", "created"]
    token = bao.client().auth.token.create(policies=[PROD_POLICY], no_default_policy=True,
                                           ttl="5m")["auth"]["client_token"]
    assert_reads_only_production(client_with(bao, token))


def test_setup_twice_changes_nothing(bao, outside, ca_file) -> None:  # type: ignore[no-untyped-def]
    env = outside.environment("production")
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))
    run_setup(outside, env, options)
    before = snapshot(bao)
    second = run_setup(outside, env, options)
    assert not second.changed
    assert [c.action for c in second.changes] == ["unchanged"] * 4
    assert snapshot(bao) == before
    assert before["auth"]["kubernetes/"] == "kubernetes"
    assert before["policy"] == acl_policy_hcl(env)
    role = before["role"]
    for key, value in role_data(outside, env).items():
        assert role.get(key, "") == value, key
    # without the CA option the config is left as it is (not reset to in-cluster mode)
    third = run_setup(outside, env, Options(kubernetes_host=UNREACHABLE))
    assert not third.changed
    assert snapshot(bao) == before


def test_setup_repairs_drift(bao, outside, ca_file) -> None:  # type: ignore[no-untyped-def]
    env = outside.environment("production")
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))
    run_setup(outside, env, options)
    root = bao.client()
    root.write_data(PROD_ROLE, data={"token_policies": ["deparrow-secrets-production", "admin"],
                                     "token_ttl": "10m", "audience": "vault"})
    root.sys.create_or_update_acl_policy(PROD_POLICY, 'path "secret/*" { capabilities = ["read"] }')
    dry = run_setup(outside, env, Options(kubernetes_host="https://other:6443",
                                         kubernetes_ca_cert=str(ca_file), dry_run=True))
    assert [c.action for c in dry.changes] == ["unchanged", "would update", "would update",
                                                "would update"]
    assert root.read(PROD_ROLE)["data"]["token_ttl"] == 600
    report = run_setup(outside, env, options)
    actions = {c.item: (c.action, c.detail) for c in report.changes}
    assert actions[f"policy {PROD_POLICY}"][0] == "updated"
    assert actions[f"role {PROD_ROLE}"] == ("updated", "changed: audience, token_policies, "
                                            "token_ttl")
    assert not run_setup(outside, env, options).changed


def test_outside_the_cluster_needs_a_ca(bao, write_config, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = str(write_config(VAULT_CLIENT_TOKEN_CONFIG))
    for dry in ([], ["--dry-run"]):
        result = run_cli("--config", path, "setup", "--env", "production",
                         "--kubernetes-host", UNREACHABLE, *dry)
        assert result.code == 2, result.err
        assert "does not run in a pod" in result.err and "--kubernetes-ca-cert" in result.err
        assert "Traceback" not in result.err
    assert "kubernetes/" not in bao.client().sys.list_auth_methods()["data"]


def test_in_cluster_mode_refuses_outside_options(config, write_config, run_cli,  # type: ignore[no-untyped-def]
                                                 ca_file) -> None:
    path = str(write_config(VAULT_CONFIG))
    for command in ("policy", "setup"):
        result = run_cli("--config", path, command, "--env", "production",
                         "--kubernetes-ca-cert", str(ca_file))
        assert result.code == 2, result.err
        assert "tokenReview" in result.err and "client-token" in result.err


def test_rerun_without_host_keeps_the_host(bao, outside, ca_file) -> None:  # type: ignore[no-untyped-def]
    """issue 9.14: a rerun without --kubernetes-host keeps the host the first run set."""
    env = outside.environment("production")
    run_setup(outside, env, Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file)))
    for options in (Options(), Options(dry_run=True), Options(kubernetes_ca_cert=str(ca_file))):
        report = run_setup(outside, env, options)
        assert not report.changed, report.changes
        assert bao.client().read("auth/kubernetes/config")["data"]["kubernetes_host"] == \
            UNREACHABLE


def test_dry_run_fails_where_the_real_run_fails(bao, outside, ca_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """issue 9.14: a token that may not write the auth config fails the dry run too."""
    root = bao.client()
    root.sys.create_or_update_acl_policy("reader-only", 'path "sys/*" { capabilities = ["read"] }\n'
                                         'path "auth/*" { capabilities = ["read"] }\n'
                                         'path "sys/capabilities-self" '
                                         '{ capabilities = ["update"] }')
    weak = root.auth.token.create(policies=["reader-only"], ttl="5m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", weak)
    env = outside.environment("production")
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))
    with pytest.raises(AccessDeniedError) as real:
        run_setup(outside, env, options)
    with pytest.raises(AccessDeniedError) as dry:
        run_setup(outside, env, Options(kubernetes_host=UNREACHABLE,
                                        kubernetes_ca_cert=str(ca_file), dry_run=True))
    assert "sys/auth/kubernetes" in str(real.value) and "sys/auth/kubernetes" in str(dry.value)


def test_bad_ca_file_is_refused(tmp_path, outside) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate\n")
    with pytest.raises(InputError, match="no PEM certificate"):
        run_setup(outside, outside.environment("production"),
                  Options(kubernetes_ca_cert=str(bad)))


def test_reviewer_jwt_is_kept_and_never_printed(bao, ca_file, tmp_path,  # type: ignore[no-untyped-def]
                                                write_config, run_cli) -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXZpZXdlciJ9." + secrets.token_urlsafe(24)
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text(jwt + "\n")
    path = str(write_config(VAULT_REVIEWER_CONFIG))
    base = ["--config", path, "setup", "--env", "production", "--kubernetes-host", UNREACHABLE,
            "--kubernetes-ca-cert", str(ca_file)]
    first = run_cli(*base, "--token-reviewer-jwt-file", str(jwt_file))
    assert first.code == 0, first.err
    assert bao.client().read("auth/kubernetes/config")["data"]["token_reviewer_jwt_set"]
    printed = run_cli("--config", path, "policy", "--env", "production", "-o", "json",
                      "--kubernetes-ca-cert", str(ca_file),
                      "--token-reviewer-jwt-file", str(jwt_file))
    for result in (first, printed):
        assert jwt not in result.out + result.err
    assert f"@{jwt_file}" in printed.out
    # no JWT given and nothing else to change: the stored one stays
    again = run_cli(*base, "-o", "json")
    assert again.code == 0 and '"changed": false' in again.out
    assert bao.client().read("auth/kubernetes/config")["data"]["token_reviewer_jwt_set"]
    # a change that would drop it is refused
    moved = run_cli("--config", path, "setup", "--env", "production", "--kubernetes-host",
                    "https://moved.example:6443", "--kubernetes-ca-cert", str(ca_file))
    assert moved.code == 2 and "--token-reviewer-jwt-file" in moved.err


API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def test_eso_login_end_to_end(bao, outside, tokenreview) -> None:  # type: ignore[no-untyped-def]
    """ESO's own path in tokenReview client-token: the ServiceAccount's token (no
    audience asked: the API server's own), TokenReview with that token, role, policy."""
    options = Options(kubernetes_host=tokenreview.url,
                      kubernetes_ca_cert=str(tokenreview.ca_file))
    run_setup(outside, outside.environment("production"), options)
    anonymous = client_with(bao, "")

    def login(namespace: str, name: str, audiences: list[str]) -> str:
        jwt = tokenreview.issue(namespace, name, audiences)
        answer = anonymous.auth.kubernetes.login("deparrow-secrets-production", jwt,
                                                 use_token=False)
        return str(answer["auth"]["client_token"])

    token = login("deparrow", "deparrow-external-secrets-sa", [API_AUDIENCE])
    # Vault reviewed the token with the token itself (no reviewer JWT): the
    # system:auth-delegator binding of the ServiceAccount is what allows that.
    assert tokenreview.bearers[-1] == f"Bearer {next(iter(tokenreview.tokens))}"
    assert_reads_only_production(client_with(bao, token))
    for namespace, name, audiences in (("other", "deparrow-external-secrets-sa", [API_AUDIENCE]),
                                       ("deparrow", "default", [API_AUDIENCE]),
                                       # what the broken combination produced: 403
                                       ("deparrow", "deparrow-external-secrets-sa", ["vault"])):
        with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)):
            login(namespace, name, audiences)


def test_client_token_with_a_vault_audience_is_refused(write_config, run_cli, tmp_path,  # type: ignore[no-untyped-def]
                                                       ca_file) -> None:
    path = str(write_config(VAULT_CLIENT_TOKEN_CONFIG.replace(
        "      tokenReview: client-token\n", "      tokenReview: client-token\n"
        "      audience: vault\n", 1)))
    for args in (["render"], ["policy", "--env", "staging"],
                 ["setup", "--env", "staging", "--dry-run", "--kubernetes-ca-cert", str(ca_file)]):
        result = run_cli("--config", path, *args)
        assert result.code == 2, (args, result.err)
        assert "audience" in result.err and "403" in result.err
        assert "remove `audience:`" in result.err
    assert not (tmp_path / "deparrow").exists()


def test_reviewer_jwt_end_to_end(bao, write_config, load, tokenreview, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """tokenReview reviewer-jwt: Vault reviews with the reviewer's token; ESO's token may
    carry only the `vault` audience."""
    config = load(write_config(VAULT_REVIEWER_CONFIG))
    reviewer = tokenreview.issue("vault", "vault-reviewer", [API_AUDIENCE])
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text(reviewer + "\n")
    run_setup(config, config.environment("production"),
              Options(kubernetes_host=tokenreview.url, kubernetes_ca_cert=str(tokenreview.ca_file),
                      token_reviewer_jwt_file=str(jwt_file)))
    jwt = tokenreview.issue("deparrow", "deparrow-external-secrets-sa", ["vault"])
    answer = client_with(bao, "").auth.kubernetes.login("deparrow-secrets-production", jwt,
                                                        use_token=False)
    assert tokenreview.bearers[-1] == f"Bearer {reviewer}"
    assert_reads_only_production(client_with(bao, answer["auth"]["client_token"]))


def test_setup_in_a_vault_namespace(bao, write_config, load, ca_file) -> None:  # type: ignore[no-untyped-def]
    """`namespace:` of the store: everything lands in that namespace, paths relative to it."""
    config = load(write_config(VAULT_CLIENT_TOKEN_CONFIG.replace(
        "      policy: deparrow-secrets-production\n",
        "      policy: deparrow-secrets-production\n      namespace: team\n")))
    assert bao.api("POST", "sys/namespaces/team", {})[0] == 200
    team = bao.client(namespace="team")
    team.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    team.secrets.kv.v2.create_or_update_secret("deparrow/production", {"K": "team-value"})
    env = config.environment("production")
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file))
    assert [c.action for c in run_setup(config, env, options).changes] == \
        ["enabled", "created", "created", "created"]
    assert "kubernetes/" in team.sys.list_auth_methods()["data"]
    assert "kubernetes/" not in bao.client().sys.list_auth_methods()["data"]
    assert not run_setup(config, env, options).changed
    token = team.auth.token.create(policies=[PROD_POLICY], no_default_policy=True,
                                   ttl="5m")["auth"]["client_token"]
    reader = client_with(bao, token)
    reader.adapter.namespace = "team"
    got = reader.secrets.kv.v2.read_secret_version("deparrow/production",
                                                   raise_on_deleted_version=True)
    assert got["data"]["data"] == {"K": "team-value"}


@pytest.mark.parametrize("mode_config", ["client-token", "reviewer-jwt"])
def test_policy_setup_and_render_agree(bao, write_config, load, ca_file, tmp_path,  # type: ignore[no-untyped-def]
                                       mode_config) -> None:
    """What `policy` prints for auth/<mount>/config and the role is what `setup` writes,
    and its manifests are what `render` writes, in each outside mode."""
    from deparrow_secrets.config.catalog import load_catalog
    from deparrow_secrets.render.manifests import eso_objects

    text = VAULT_CLIENT_TOKEN_CONFIG if mode_config == "client-token" else VAULT_REVIEWER_CONFIG
    config = load(write_config(text))
    env = config.environment("production")
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyIn0." + secrets.token_urlsafe(16))
    options = Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file),
                      token_reviewer_jwt_file=str(jwt_file) if mode_config == "reviewer-jwt"
                      else None)
    plan = build_plan(config, env, options)
    run_setup(config, env, options)
    stored = bao.client().read("auth/kubernetes/config")["data"]
    printed = plan.piece("kubernetesAuth").data
    assert printed["tokenReview"] == mode_config
    assert stored["kubernetes_host"] == printed["config"]["kubernetes_host"]
    assert stored["disable_local_ca_jwt"] is printed["config"]["disable_local_ca_jwt"] is True
    assert stored["kubernetes_ca_cert"].strip() == ca_file.read_text().strip()
    assert stored["token_reviewer_jwt_set"] is ("token_reviewer_jwt" in printed["config"])
    role = bao.client().read(PROD_ROLE)["data"]
    for key, value in plan.piece("role").data["data"].items():
        assert role.get(key, "") == value, key
    rendered = {o["kind"]: o for o in eso_objects(config, load_catalog(), env)}
    shown = {o["kind"]: o for p in plan.pieces if p.format == "yaml" for o in p.data}
    assert {k: shown[k] for k in shown} == {k: rendered[k] for k in shown}
    assert ("ClusterRoleBinding" in rendered) is (mode_config == "client-token")
    assert set(shown) == set(rendered) - {"ExternalSecret"}


def test_mode_options_and_prerequisites_are_checked_before_any_write(  # type: ignore[no-untyped-def]
        bao, write_config, load, ca_file, tmp_path) -> None:
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyIn0." + secrets.token_urlsafe(16))
    client = load(write_config(VAULT_CLIENT_TOKEN_CONFIG))
    env = client.environment("production")
    with pytest.raises(ConfigError, match="tokenReview reviewer-jwt"):
        build_plan(client, env, Options(token_reviewer_jwt_file=str(jwt_file)))
    with pytest.raises(InputError, match="needs the API server's address"):
        run_setup(client, env, Options(kubernetes_ca_cert=str(ca_file)))
    reviewer = load(write_config(VAULT_REVIEWER_CONFIG))
    with pytest.raises(InputError, match="no token reviewer JWT"):
        run_setup(reviewer, reviewer.environment("production"),
                  Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file)))
    assert "kubernetes/" not in bao.client().sys.list_auth_methods()["data"]


def test_client_token_removes_a_reviewer_jwt(bao, write_config, load, ca_file,  # type: ignore[no-untyped-def]
                                            tmp_path) -> None:
    jwt_file = tmp_path / "reviewer.jwt"
    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyIn0." + secrets.token_urlsafe(16))
    reviewer = load(write_config(VAULT_REVIEWER_CONFIG))
    run_setup(reviewer, reviewer.environment("production"),
              Options(kubernetes_host=UNREACHABLE, kubernetes_ca_cert=str(ca_file),
                      token_reviewer_jwt_file=str(jwt_file)))
    assert bao.client().read("auth/kubernetes/config")["data"]["token_reviewer_jwt_set"]
    client = load(write_config(VAULT_CLIENT_TOKEN_CONFIG))
    report = run_setup(client, client.environment("production"))
    detail = {c.item: c.detail for c in report.changes}["kubernetes auth config "
                                                        "auth/kubernetes/config"]
    assert "token_reviewer_jwt removed" in detail
    assert not bao.client().read("auth/kubernetes/config")["data"]["token_reviewer_jwt_set"]


def test_client_token_accepts_an_api_server_audience(write_config, load) -> None:  # type: ignore[no-untyped-def]
    config = load(write_config(VAULT_CLIENT_TOKEN_CONFIG.replace(
        "      tokenReview: client-token\n",
        "      tokenReview: client-token\n"
        "      audience: https://kubernetes.default.svc.cluster.local\n", 1)))
    plan = build_plan(config, config.environment("staging"))
    assert plan.piece("role").data["data"]["audience"] == \
        "https://kubernetes.default.svc.cluster.local"
