"""The CLI against each external store, checked with the provider's own client.

For every provider: `provision --env production` creates exactly the guide's remote
layout, `verify` passes and then fails naming a removed or emptied key, a second
provision writes nothing, rollback restores, and no command prints a value.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deparrow_secrets.config.catalog import load_catalog
from helpers import Run

Cli = Callable[..., Run]

CATALOG = load_catalog()
NEEDED = [v.name for v in CATALOG.needed(ha=True)]


@dataclass
class Backend:
    """One provider wired to a real (or, for Azure, fake) server for the CLI."""

    name: str
    store_yaml: str
    raw: Any  # () -> dict[object name, dict[property, str]]
    remove: Any  # (key) -> None: remove one value with the provider's own client
    empty: Any  # (key) -> None: set one value to "" with the provider's own client
    expected_layout: dict[str, set[str]] = field(default_factory=dict)


def _project(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "deparrow-secrets.yaml").write_text(
        "environments:\n"
        "  dev:\n    store: {provider: local}\n"
        f"  production:\n    ha: true\n    store: {backend.store_yaml}\n",
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def vault_backend(bao_env) -> Backend:
    path = f"deparrow-{secrets.token_hex(4)}/production"
    client = bao_env.client()

    def raw() -> dict[str, dict[str, str]]:
        try:
            data = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True)
        except Exception:  # noqa: BLE001 - absent path
            return {}
        return {path: dict(data["data"]["data"])}

    def rewrite(key: str, drop: bool) -> None:
        current = raw()[path]
        if drop:
            current.pop(key)
        else:
            current[key] = ""
        client.secrets.kv.v2.create_or_update_secret(path=path, secret=current,
                                                     mount_point="secret")

    return Backend(
        "vault", f"{{provider: vault, server: 'https://vault.example.com', path: {path}}}",
        raw, lambda k: rewrite(k, True), lambda k: rewrite(k, False),
        {path: set(NEEDED)})


@pytest.fixture
def aws_backend(aws_env) -> Backend:
    client = aws_env.client("secretsmanager")
    prefix = "deparrow/production"
    homes = {v.name: (f"{prefix}/{v.group}", v.property or v.name) for v in CATALOG.needed(True)}
    expected: dict[str, set[str]] = {}
    for obj, prop in homes.values():
        expected.setdefault(obj, set()).add(prop)

    raw = aws_env.current_secrets

    def rewrite(key: str, drop: bool) -> None:
        obj, prop = homes[key]
        current = raw()[obj]
        if drop:
            current.pop(prop)
        else:
            current[prop] = ""
        client.put_secret_value(SecretId=obj, SecretString=json.dumps(current))

    return Backend("aws", "{provider: aws, region: us-east-1, accountId: '123456789012'}",
                   raw, lambda k: rewrite(k, True), lambda k: rewrite(k, False), expected)


@pytest.fixture
def azure_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    import deparrow_secrets.providers.azure.store as azure_store
    from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential

    with FakeKeyVault() as fake:
        monkeypatch.setenv("AZURE_KEYVAULT_URL", fake.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        monkeypatch.setattr(azure_store, "_default_credential", StaticTokenCredential)
        client = fake.make_client()

        def raw() -> dict[str, dict[str, str]]:
            out = {}
            for props in client.list_properties_of_secrets():
                out[props.name] = {"": client.get_secret(props.name).value or ""}
            return out

        def remove(key: str) -> None:
            client.begin_delete_secret(key.replace("_", "-")).wait()

        def empty(key: str) -> None:
            client.set_secret(key.replace("_", "-"), "")

        yield Backend(
            "azure", "{provider: azure, vaultUrl: 'https://deparrow-kv.vault.azure.net', "
            "tenantId: '00000000-0000-0000-0000-000000000000', clientId: 'app'}",
            raw, remove, empty, {k.replace("_", "-"): {""} for k in NEEDED})


@pytest.fixture(params=["vault", "aws", "azure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setenv("DEPARROW_SECRETS_RETRIES", "2")
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "5")
    chosen: Backend = request.getfixturevalue(f"{request.param}_backend")
    _project(tmp_path, chosen, monkeypatch)
    return chosen


def _values(backend: Backend) -> list[str]:
    return [v for props in backend.raw().values() for v in props.values() if len(v) >= 16]


def assert_no_values(text: str, values: list[str]) -> None:
    for v in values:
        assert v not in text
        assert base64.b64encode(v.encode()).decode() not in text


def test_provision_creates_the_guide_layout(backend: Backend, cli: Cli) -> None:
    result = cli("provision", "--env", "production")
    assert result.code == 0, result.text
    layout = {name: set(props) for name, props in backend.raw().items()}
    assert layout == backend.expected_layout
    assert all(v for props in backend.raw().values() for v in props.values())
    assert cli("verify", "--env", "production").code == 0


def test_second_provision_writes_nothing(backend: Backend, cli: Cli) -> None:
    assert cli("provision", "--env", "production").code == 0
    before = backend.raw()
    again = cli("provision", "--env", "production", "--output", "json")
    assert again.code == 0, again.text
    assert backend.raw() == before
    assert {k["action"] for k in json.loads(again.out)["keys"]} == {"exists"}


@pytest.mark.parametrize("how", ["remove", "empty"])
def test_verify_names_a_missing_or_emptied_key(backend: Backend, cli: Cli, how: str) -> None:
    assert cli("provision", "--env", "production").code == 0
    getattr(backend, how)("REDIS_PASSWORD")
    result = cli("verify", "--env", "production")
    assert result.code == 1
    assert "REDIS_PASSWORD" in result.out
    assert "DEPARROW_JWT_SECRET" not in result.out
    args = ["provision", "--env", "production"]
    if backend.name == "azure" and how == "remove":
        # Key Vault keeps a deleted secret soft-deleted: never silently recreated.
        refused = cli(*args)
        assert refused.code == 6
        assert "soft-deleted" in refused.err and "--recover-deleted" in refused.err
        args.append("--recover-deleted")
    healed = cli(*args)
    assert healed.code == 0, healed.text
    assert cli("verify", "--env", "production").code == 0


def test_recovered_secret_keeps_its_value(azure_backend: Backend, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    _project(tmp_path, azure_backend, monkeypatch)
    assert cli("provision", "--env", "production").code == 0
    before = azure_backend.raw()["REDIS-PASSWORD"]
    azure_backend.remove("REDIS_PASSWORD")
    result = cli("provision", "--env", "production", "--recover-deleted", "-o", "json")
    assert result.code == 0, result.text
    assert json.loads(result.out)["recovered"] == ["REDIS-PASSWORD"]
    assert azure_backend.raw()["REDIS-PASSWORD"] == before


def test_set_then_rollback_restores(backend: Backend, cli: Cli) -> None:
    assert cli("provision", "--env", "production").code == 0
    original = cli("get", "GRAFANA_ADMIN_PASSWORD", "--env", "production", "--reveal")
    assert original.code == 0
    new = secrets.token_urlsafe(32)
    assert cli("set", "GRAFANA_ADMIN_PASSWORD", "--env", "production", stdin=new + "\n").code == 0
    assert cli("get", "GRAFANA_ADMIN_PASSWORD", "--env", "production", "--reveal").out \
        == new + "\n"
    rolled = cli("rollback", "GRAFANA_ADMIN_PASSWORD", "--env", "production")
    assert rolled.code == 0, rolled.text
    assert cli("get", "GRAFANA_ADMIN_PASSWORD", "--env", "production", "--reveal").out \
        == original.out


def test_no_command_prints_a_value(backend: Backend, cli: Cli) -> None:
    outputs = [cli("provision", "--env", "production")]
    planted = secrets.token_urlsafe(48)
    outputs.append(cli("set", "DEPARROW_SECRET_KEY", "--env", "production", stdin=planted))
    for args in (["status", "--env", "production"],
                 ["status", "--env", "production", "-o", "json"],
                 ["verify", "--env", "production"],
                 ["verify", "--env", "production", "-o", "json"],
                 ["provision", "--env", "production", "--dry-run"],
                 ["get", "POSTGRES_PASSWORD", "--env", "production"],
                 ["get", "POSTGRES_PASSWORD", "--env", "production", "-o", "json"],
                 ["history", "DEPARROW_SECRET_KEY", "--env", "production"],
                 ["history", "DEPARROW_SECRET_KEY", "--env", "production", "-o", "json"],
                 ["rollback", "DEPARROW_SECRET_KEY", "--env", "production", "-o", "json"],
                 ["render"]):
        outputs.append(cli(*args))
    values = _values(backend) + [planted]
    assert len(values) >= 6
    for r in outputs:
        assert r.code == 0, r.text
        assert_no_values(r.text, values)
    rows = cli("status", "--env", "production", "-o", "json").json()["keys"]
    assert {"remoteKey", "property", "present"} <= set(rows[0])  # camelCase, as ESO
    revealed = cli("get", "POSTGRES_PASSWORD", "--env", "production", "--reveal")
    assert revealed.out.strip() in values  # the canary can fail: --reveal does print


def test_soft_deleted_vault_version_stops_status_and_provision(
        vault_backend: Backend, openbao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cli: Cli) -> None:
    """A soft-deleted current version is "deleted", not every key "missing": provision
    would otherwise mint a new value for every key, an outage for all that read them."""
    _project(tmp_path, vault_backend, monkeypatch)
    assert cli("provision", "--env", "production").code == 0
    (path,) = vault_backend.raw()
    before = vault_backend.raw()[path]
    values = _values(vault_backend)
    kv = openbao.client().secrets.kv.v2
    current = kv.read_secret_version(path=path, mount_point="secret",
                                     raise_on_deleted_version=True)["data"]["metadata"]["version"]
    kv.delete_latest_version_of_secret(path=path, mount_point="secret")
    for args in (["status", "--env", "production"], ["provision", "--env", "production"]):
        result = cli(*args)
        assert result.code == 6, result.text
        assert "deleted" in result.err
        assert f"bao kv undelete -mount=secret -versions={current} {path}" in result.err
        assert_no_values(result.text, values)
    kv.undelete_secret_versions(path=path, versions=[current], mount_point="secret")
    assert vault_backend.raw()[path] == before  # nothing was written over it
    assert cli("verify", "--env", "production").code == 0


def test_kv_version_1_mount_makes_status_fail(openbao, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    mount = f"kv1-{secrets.token_hex(4)}"
    openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    backend = Backend("vault", f"{{provider: vault, server: 'https://vault.example.com', "
                      f"mount: {mount}, path: deparrow/production}}", dict, None, None)
    _project(tmp_path, backend, monkeypatch)
    result = cli("status", "--env", "production")
    assert result.code != 0 and "KV version 2" in result.err, result.text


def test_a_silent_store_gets_one_progress_line(
        openbao, fault_proxy: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    proxy = fault_proxy(openbao.port, mode="blackhole")
    monkeypatch.setenv("VAULT_ADDR", proxy.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    monkeypatch.setenv("DEPARROW_SECRETS_TIMEOUT", "1.5")
    backend = Backend("vault", "{provider: vault, server: 'https://vault.example.com', "
                      "path: deparrow/production}", dict, None, None)
    _project(tmp_path, backend, monkeypatch)
    result = cli("status", "--env", "production")
    assert result.code == 3, result.text
    progress = [line for line in result.err.splitlines() if line.startswith("waiting for")]
    assert progress == [progress[0]] and f"vault at {proxy.url}" in progress[0], result.err
    assert result.err.index("waiting for") < result.err.index("timed out")


def test_history_of_a_version_aws_deleted(aws_backend: Backend, aws_env, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    """AWS deletes unlabelled versions beyond 100; one that goes between the listing and
    the read is shown as unreadable, not as "the secret is scheduled for deletion"."""
    from deparrow_secrets.providers.aws import store as aws_store
    from servers import AwsShaped

    _project(tmp_path, aws_backend, monkeypatch)
    expire: list[tuple[str, str]] = []
    original = aws_store.AwsStore.__init__

    def shaped(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        hooks = AwsShaped(self.client, aws_env)

        def listed(**_: Any) -> None:  # after the listing, before any read
            for item in expire:
                hooks.expire(*item)

        self.client.meta.events.register(
            "after-call.secrets-manager.ListSecretVersionIds", listed)

    monkeypatch.setattr(aws_store.AwsStore, "__init__", shaped)
    assert cli("provision", "--env", "production").code == 0
    for _ in range(2):
        new = secrets.token_urlsafe(32)
        assert cli("set", "GRAFANA_ADMIN_PASSWORD", "--env", "production",
                   stdin=new + "\n").code == 0
    rows = cli("history", "GRAFANA_ADMIN_PASSWORD", "--env", "production", "-o", "json")
    assert rows.code == 0, rows.text
    oldest = rows.json()["versions"][0]["version"]
    assert rows.json()["versions"][0]["keyChange"] == "created"
    expire.append((rows.json()["remoteKey"], oldest))
    result = cli("history", "GRAFANA_ADMIN_PASSWORD", "--env", "production", "-o", "json")
    assert result.code == 0, result.text
    first = result.json()["versions"][0]
    assert first["version"] == oldest and first["keyChange"] == "unreadable"
    assert "scheduled for deletion" not in result.text
