"""The Key Vault fake, exercised through the real ``azure.keyvault.secrets.SecretClient``."""

from __future__ import annotations

import importlib
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import HttpChallengeCache
from azure_keyvault import FakeKeyVault, RecordedRequest, StaticTokenCredential

VERSION_RE = re.compile(r"^[0-9a-f]{32}$")
FAST = {"_polling_interval": 0.01}  # begin_* pollers: poll every 10 ms instead of 2 s


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeKeyVault]:
    with FakeKeyVault(vault_name="unit-vault") as fake:
        yield fake


@pytest.fixture
def fake(vault: FakeKeyVault) -> FakeKeyVault:
    vault.reset()
    return vault


@pytest.fixture
def client(fake: FakeKeyVault) -> Iterator[SecretClient]:
    with fake.make_client() as c:
        yield c


def value() -> str:
    return secrets.token_urlsafe(24)


def name() -> str:
    return "s-" + secrets.token_hex(6)


def statuses(fake: FakeKeyVault, method: str, path: str) -> list[int]:
    return [r.status for r in fake.requests if r.method == method and r.path == path]


def test_challenge_auth_then_bearer_token() -> None:
    HttpChallengeCache.clear()  # the SDK caches challenges per host:port, process-wide
    credential = StaticTokenCredential("t0ken")
    with FakeKeyVault() as fake, fake.make_client(credential) as client:
        n, v = name(), value()
        client.set_secret(n, v)
        assert client.get_secret(n).value == v
        log = fake.requests
        assert [(r.method, r.status, r.authorized) for r in log] == [
            ("PUT", 401, False),
            ("PUT", 200, True),
            ("GET", 200, True),
        ]
        assert all("api-version=2026-04-01" in r.query for r in log)
        scope = "https://vault.azure.net/.default"
        assert credential.token_requests == [((scope,), fake.tenant_id)]


def test_wrong_token_is_rejected() -> None:
    with FakeKeyVault(token="expected") as fake:
        wrong = fake.make_client(StaticTokenCredential("other"))
        with wrong, pytest.raises(ClientAuthenticationError) as info:
            wrong.get_secret("anything")
        assert info.value.status_code == 401
        right = fake.make_client(StaticTokenCredential("expected"))
        with right, pytest.raises(ResourceNotFoundError):
            right.get_secret("anything")


def test_set_get_versions(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    values = [value() for _ in range(3)]
    created = [
        client.set_secret(n, v, content_type="text/plain", tags={"i": str(i)})
        for i, v in enumerate(values)
    ]
    versions = [s.properties.version for s in created]
    assert all(VERSION_RE.match(str(v)) for v in versions)
    assert len(set(versions)) == 3

    latest = client.get_secret(n)
    assert latest.value == values[-1]
    assert latest.id == f"{fake.url}/secrets/{n}/{versions[-1]}"
    props = latest.properties
    assert (props.name, props.vault_url, props.version) == (n, fake.url, versions[-1])
    assert props.enabled is True
    assert props.content_type == "text/plain"
    assert props.tags == {"i": "2"}
    assert props.recovery_level == "Recoverable+Purgeable"
    assert props.recoverable_days == 90
    assert isinstance(props.created_on, datetime)
    assert abs(props.created_on - datetime.now(UTC)) < timedelta(minutes=1)
    assert props.updated_on == props.created_on

    for version, v in zip(versions, values, strict=True):
        assert client.get_secret(n, version).value == v

    listed = list(client.list_properties_of_secret_versions(n))
    assert [p.version for p in listed] == versions
    assert [p.tags for p in listed] == [{"i": "0"}, {"i": "1"}, {"i": "2"}]

    with pytest.raises(ResourceNotFoundError) as info:
        client.get_secret(n, "0" * 32)
    assert info.value.error is not None
    assert info.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name())


def test_names_are_case_insensitive(client: SecretClient) -> None:
    client.set_secret("Mixed-Case", "one")
    client.set_secret("mixed-case", "two")
    assert client.get_secret("MIXED-CASE").value == "two"
    assert client.get_secret("mixed-case").name == "Mixed-Case"
    assert len(list(client.list_properties_of_secret_versions("mixed-CASE"))) == 2


def test_set_with_attributes(client: SecretClient) -> None:
    n = name()
    nbf = datetime(2030, 1, 1, tzinfo=UTC)
    exp = datetime(2031, 1, 1, tzinfo=UTC)
    s = client.set_secret(n, value(), not_before=nbf, expires_on=exp, enabled=True)
    assert (s.properties.not_before, s.properties.expires_on) == (nbf, exp)
    # Key Vault does not enforce nbf/exp for secrets
    assert client.get_secret(n).properties.expires_on == exp


def test_list_paging(fake: FakeKeyVault, client: SecretClient) -> None:
    names = sorted(f"page-{i:02d}" for i in range(8))
    for n in names:
        client.set_secret(n, value())
    fake.clear_requests()

    pages = [list(p) for p in client.list_properties_of_secrets(max_page_size=3).by_page()]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [p.name for page in pages for p in page] == names
    listed = pages[0][0]
    assert listed.id == f"{fake.url}/secrets/{names[0]}"
    assert listed.version is None
    assert listed.enabled is True

    gets = [r for r in fake.requests if r.path == "/secrets"]
    assert [r.status for r in gets] == [200, 200, 200]
    assert "$skiptoken" not in gets[0].query
    assert all("$skiptoken=" in r.query and "maxresults=3" in r.query for r in gets[1:])

    fake.clear_requests()
    assert [p.name for p in client.list_properties_of_secrets()] == names
    assert fake.request_count("GET", "/secrets") == 1  # default page size 25

    with pytest.raises(HttpResponseError) as info:
        list(client.list_properties_of_secrets(max_page_size=26))
    assert info.value.status_code == 400


def test_list_versions_paging(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    versions = [client.set_secret(n, value()).properties.version for _ in range(5)]
    fake.clear_requests()
    listed = [p.version for p in client.list_properties_of_secret_versions(n, max_page_size=2)]
    assert listed == versions
    assert fake.request_count("GET", f"/secrets/{n}/versions") == 3


def test_small_server_page_size() -> None:
    with FakeKeyVault(page_size=2) as fake, fake.make_client() as client:
        for _ in range(5):
            fake.seed(name(), value())
        assert len(list(client.list_properties_of_secrets())) == 5
        assert statuses(fake, "GET", "/secrets") == [401, 200, 200, 200]  # challenge first


def test_update_properties_disable_version(client: SecretClient) -> None:
    n = name()
    first = client.set_secret(n, value())
    second_value = value()
    second = client.set_secret(n, second_value)

    updated = client.update_secret_properties(n, first.properties.version, enabled=False)
    assert updated.enabled is False
    assert updated.version == first.properties.version
    assert updated.updated_on is not None

    with pytest.raises(HttpResponseError) as info:
        client.get_secret(n, first.properties.version)
    assert info.value.status_code == 403
    assert info.value.error is not None
    assert info.value.error.code == "Forbidden"
    assert info.value.error.message == "Operation get is not allowed on a disabled secret."
    assert client.get_secret(n).value == second_value  # latest still enabled

    client.update_secret_properties(n, content_type="application/json", tags={"env": "ci"})
    latest = client.get_secret(n)
    assert latest.properties.version == second.properties.version
    assert latest.properties.content_type == "application/json"
    assert latest.properties.tags == {"env": "ci"}

    client.update_secret_properties(n, enabled=False)  # latest version
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(n)
    assert info.value.status_code == 403
    listed = {p.version: p.enabled for p in client.list_properties_of_secret_versions(n)}
    assert listed == {first.properties.version: False, second.properties.version: False}

    client.update_secret_properties(n, first.properties.version, enabled=True)
    assert client.get_secret(n, first.properties.version).value == first.value

    with pytest.raises(ResourceNotFoundError):
        client.update_secret_properties(name(), enabled=True)


def test_soft_delete_conflict_recover(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    values = [value(), value()]
    for v in values:
        client.set_secret(n, v, tags={"owner": "team-a"})

    poller = client.begin_delete_secret(n, **FAST)
    deleted = poller.result()
    poller.wait()
    assert poller.done()
    assert deleted.name == n
    assert deleted.recovery_id == f"{fake.url}/deletedsecrets/{n}"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.tags == {"owner": "team-a"}

    with pytest.raises(ResourceNotFoundError):
        client.get_secret(n)
    assert [d.name for d in client.list_deleted_secrets()] == [n]
    assert client.get_deleted_secret(n).recovery_id == deleted.recovery_id
    assert list(client.list_properties_of_secrets()) == []

    with pytest.raises(ResourceExistsError) as info:
        client.set_secret(n, value())
    err = info.value
    assert err.status_code == 409
    assert err.error is not None
    assert err.error.code == "Conflict"
    assert err.error.message == (
        f"Secret {n} is currently in a deleted but recoverable state, and its name cannot be "
        "reused; in this state, the secret can only be recovered or purged."
    )
    assert err.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}

    with pytest.raises(ResourceNotFoundError):  # second delete of a deleted secret
        client.begin_delete_secret(n, **FAST)

    recovered_poller = client.begin_recover_deleted_secret(n, **FAST)
    recovered_poller.wait()
    assert recovered_poller.result().name == n
    assert client.get_secret(n).value == values[-1]
    assert len(list(client.list_properties_of_secret_versions(n))) == 2
    assert list(client.list_deleted_secrets()) == []
    with pytest.raises(ResourceNotFoundError) as not_deleted:
        client.get_deleted_secret(n)
    assert not_deleted.value.error is not None
    assert not_deleted.value.error.message == "Deleted Secret not found"


def test_purge(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    client.set_secret(n, value())
    client.begin_delete_secret(n, **FAST).wait()
    client.purge_deleted_secret(n)
    purge = RecordedRequest("DELETE", f"/deletedsecrets/{n}", 204, True, "api-version=2026-04-01")
    assert fake.requests[-1] == purge
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(n)
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret(n)
    with pytest.raises(ResourceNotFoundError):
        client.begin_recover_deleted_secret(n, **FAST)
    fresh = value()
    client.set_secret(n, fresh)  # the name is free again
    assert client.get_secret(n).value == fresh
    assert len(list(client.list_properties_of_secret_versions(n))) == 1


def test_purge_protection() -> None:
    with (
        FakeKeyVault(purge_protection=True, retention_days=7) as fake,
        fake.make_client() as client,
    ):
        n = name()
        s = client.set_secret(n, value())
        assert s.properties.recovery_level == "CustomizedRecoverable"
        assert s.properties.recoverable_days == 7
        client.begin_delete_secret(n, **FAST).wait()
        with pytest.raises(HttpResponseError) as info:
            client.purge_deleted_secret(n)
        assert info.value.status_code == 403


def test_operation_lag_exercises_pollers(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    client.set_secret(n, value())
    fake.operation_lag(2)
    poller = client.begin_delete_secret(n, **FAST)
    with pytest.raises(ResourceExistsError) as info:
        client.set_secret(n, value())
    assert info.value.error is not None
    assert info.value.error.innererror == {"code": "ObjectIsBeingDeleted"}
    poller.wait()
    assert statuses(fake, "GET", f"/deletedsecrets/{n}") == [404, 404, 200]

    recover = client.begin_recover_deleted_secret(n, **FAST)
    recover.wait()
    assert statuses(fake, "GET", f"/secrets/{n}/") == [404, 404, 200]
    client.get_secret(n)


def test_invalid_names_rejected(fake: FakeKeyVault, client: SecretClient) -> None:
    for bad in ("under_score", "a" * 128, "dot.ted", "sp ace", "sla/sh"):
        with pytest.raises(HttpResponseError) as info:
            client.set_secret(bad, value())
        assert info.value.status_code == 400, bad
        assert info.value.error is not None
        assert info.value.error.code == "BadParameter"
        assert "invalid name" in info.value.error.message
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("no_underscores")
    assert info.value.status_code == 400
    assert fake.secret_names() == []
    client.set_secret("a" * 127, value())
    client.set_secret("0-Z-9", value())
    assert fake.secret_names() == ["0-Z-9", "a" * 127]


def test_deny_gives_403(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    client.set_secret(n, value())
    fake.deny(True)
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(n)
    err = info.value
    assert err.status_code == 403
    assert err.error is not None
    assert err.error.code == "Forbidden"
    assert err.error.innererror == {"code": "AccessDenied"}
    assert f"oid={fake.principal_id}" in err.error.message
    assert "does not have secrets get permission on key vault 'unit-vault;" in err.error.message
    with pytest.raises(HttpResponseError) as info:
        client.set_secret(n, value())
    assert info.value.status_code == 403
    assert "secrets set permission" in str(info.value)

    fake.deny(True, permissions={"get"})
    assert [p.name for p in client.list_properties_of_secrets()] == [n]
    with pytest.raises(HttpResponseError):
        client.get_secret(n)

    fake.deny(True, rbac=True)
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(n)
    assert info.value.error is not None
    assert info.value.error.innererror == {"code": "ForbiddenByRbac"}
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in info.value.error.message

    fake.deny(False)
    client.get_secret(n)


def test_throttle_is_retried_by_sdk(fake: FakeKeyVault, client: SecretClient) -> None:
    n, v = name(), value()
    client.set_secret(n, v)
    fake.clear_requests()
    fake.throttle(2)
    started = time.monotonic()
    assert client.get_secret(n).value == v
    assert time.monotonic() - started < 1.0
    assert statuses(fake, "GET", f"/secrets/{n}/") == [429, 429, 200]
    assert fake.request_count() == 3


def test_throttle_without_retries_surfaces_429(fake: FakeKeyVault) -> None:
    fake.seed("quota", "x")
    fake.throttle(1, retry_after=1)
    with fake.make_client(retry_total=0) as client, pytest.raises(HttpResponseError) as info:
        client.get_secret("quota")
    assert info.value.status_code == 429
    assert info.value.response is not None
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.error is not None
    assert info.value.error.code == "Throttled"


def test_fail_and_retry_limits(fake: FakeKeyVault, client: SecretClient) -> None:
    n = name()
    fake.seed(n, "v")
    fake.fail(2, status=503)
    assert client.get_secret(n).value == "v"
    assert statuses(fake, "GET", f"/secrets/{n}/") == [503, 503, 200]
    fake.fail(5, status=500)
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(n)  # retry_status defaults to 3: 4 attempts
    assert info.value.status_code == 500
    fake.clear_faults()
    fake.fail(1, status=503)
    with pytest.raises(HttpResponseError):
        client.begin_recover_deleted_secret(n, **FAST)  # POST without Retry-After: no retry
    assert client.get_secret(n).value == "v"


def test_delay(fake: FakeKeyVault, client: SecretClient) -> None:
    fake.seed("slow", "v")
    fake.delay(0.2)
    started = time.monotonic()
    client.get_secret("slow")
    assert time.monotonic() - started >= 0.2
    fake.delay(0)


def test_backup_restore(client: SecretClient) -> None:
    n = name()
    values = [value(), value()]
    for v in values:
        client.set_secret(n, v)
    blob = client.backup_secret(n)
    assert isinstance(blob, bytes)
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    client.begin_delete_secret(n, **FAST).wait()
    client.purge_deleted_secret(n)
    restored = client.restore_secret_backup(blob)
    assert restored.name == n
    assert client.get_secret(n).value == values[-1]
    assert len(list(client.list_properties_of_secret_versions(n))) == 2


def test_concurrent_clients(fake: FakeKeyVault) -> None:
    n = name()

    def worker(i: int) -> None:
        with fake.make_client() as c:
            for j in range(5):
                c.set_secret(n, f"{i}-{j}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    with fake.make_client() as c:
        assert len(list(c.list_properties_of_secret_versions(n))) == 40


def test_unimplemented_route(fake: FakeKeyVault) -> None:
    from azure.core.rest import HttpRequest

    with fake.make_client() as client:
        request = HttpRequest("GET", f"{fake.url}/keys?api-version=7.5")
        response = client._client.send_request(request)
    assert response.status_code == 501


def test_importable_as_fakes_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    module = importlib.import_module("fakes.azure_keyvault")
    with module.FakeKeyVault() as other, other.make_client() as client:
        client.set_secret("via-package", "ok")
        assert client.get_secret("via-package").value == "ok"


def test_stop_removes_ca_and_url_requires_start() -> None:
    fake = FakeKeyVault().start()
    ca = Path(fake.ca_path)
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    fake.stop()
    assert not ca.exists()
    with pytest.raises(RuntimeError):
        _ = fake.url


def test_delay_next_delays_only_matching_requests_and_still_applies_them(
    fake: FakeKeyVault, client: SecretClient
) -> None:
    n = name()
    client.set_secret(n, value())
    fake.delay_next(0.6, method="PUT")
    slow = fake.make_client(retry_total=0, read_timeout=0.2)
    with slow, pytest.raises(ServiceResponseError):
        slow.set_secret(n, value())  # times out client-side ...
    client.get_secret(n)  # a GET is not delayed
    deadline = time.monotonic() + 5
    while len(list(client.list_properties_of_secret_versions(n))) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # ... but the PUT is still carried out (polling, not a speed check)


def test_version_order_id_sorts_like_the_service() -> None:
    with FakeKeyVault(version_order="id") as fake, fake.make_client() as c:
        n = name()
        versions = [c.set_secret(n, value()).properties.version for _ in range(6)]
        listed = [p.version for p in c.list_properties_of_secret_versions(n)]
        assert listed == sorted(versions)
    with pytest.raises(ValueError):
        FakeKeyVault(version_order="time")


def test_entra_token_endpoint_and_strict_vault() -> None:
    import requests

    with FakeKeyVault() as fake:
        app = fake.enable_entra()
        assert app.client_secret not in repr(app)
        token_url = f"{fake.url}/{app.tenant_id}/oauth2/v2.0/token"
        form = {"grant_type": "client_credentials", "client_id": app.client_id,
                "client_secret": app.client_secret,
                "scope": "https://vault.azure.net/.default"}
        oidc = requests.get(f"{fake.url}/{app.tenant_id}/v2.0/.well-known/openid-configuration",
                            verify=fake.ca_path, timeout=10).json()
        assert oidc["token_endpoint"] == token_url
        bad = requests.post(token_url, data={**form, "client_secret": "wrong"},
                            verify=fake.ca_path, timeout=10)
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        other = requests.post(f"{fake.url}/{uuid_str()}/oauth2/v2.0/token", data=form,
                              verify=fake.ca_path, timeout=10)
        assert other.status_code == 400 and other.json()["error"] == "invalid_tenant"
        good = requests.post(token_url, data=form, verify=fake.ca_path, timeout=10).json()
        assert good["token_type"] == "Bearer" and good["access_token"] in fake.issued_tokens
        # the vault now takes only tokens the fake issued
        with fake.make_client(StaticTokenCredential("made-up")) as c, pytest.raises(
            ClientAuthenticationError
        ):
            c.get_secret("anything")
        with fake.make_client(StaticTokenCredential(good["access_token"])) as c:
            c.set_secret("issued-token-works", value())


def test_entra_proxy_tunnels_only_the_login_host() -> None:
    import socket

    with FakeKeyVault() as fake:
        app = fake.enable_entra()
        port = int(app.proxy_url.rsplit(":", 1)[1])
        for target, expected in (("example.com:443", b"403"),
                                 ("login.microsoftonline.com:80", b"403"),
                                 ("login.microsoftonline.com:443", b"200")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                assert s.recv(64).split()[1] == expected, target
        assert fake.proxy_tunnels == ["example.com:443", "login.microsoftonline.com:80",
                                      "login.microsoftonline.com:443"]


def uuid_str() -> str:
    import uuid

    return str(uuid.uuid4())


# ------------------------------------------------------------------ as strict as the service


def test_limits_the_service_enforces(fake: FakeKeyVault, client: SecretClient) -> None:
    with pytest.raises(HttpResponseError, match="maximum of 15") as info:
        client.set_secret(name(), value(), tags={f"t{i}": "x" for i in range(16)})
    assert info.value.status_code == 400
    client.set_secret(name(), value(), tags={f"t{i}": "x" for i in range(15)})
    with pytest.raises(HttpResponseError, match="maximum size") as info:
        client.set_secret(name(), "x" * (25 * 1024 + 1))
    assert info.value.status_code == 400
    client.set_secret(name(), "x" * (25 * 1024))


def test_unknown_api_version_is_refused(fake: FakeKeyVault) -> None:
    with fake.make_client(api_version="2099-01-01") as c, \
            pytest.raises(HttpResponseError, match="not recognized") as info:
        c.get_secret(name())
    assert info.value.status_code == 400
    with fake.make_client() as c:  # the SDK's default is one the service knows
        with pytest.raises(ResourceNotFoundError):
            c.get_secret(name())
        assert "api-version=2026-04-01" in fake.requests[-1].query


def test_short_pages_with_next_link() -> None:
    with FakeKeyVault(short_pages=True) as fake, fake.make_client() as client:
        names = sorted(name() for _ in range(5))
        for n in names:
            fake.seed(n, value())
        pages = [list(p) for p in client.list_properties_of_secrets(max_page_size=25).by_page()]
        assert [len(p) for p in pages] == [0, 2, 2, 1]
        assert [p.name for page in pages for p in page] == names


def test_certificate_backed_secrets_are_listed_as_managed(fake: FakeKeyVault,
                                                        client: SecretClient) -> None:
    version = fake.seed_certificate("tls-cert")
    listed = list(client.list_properties_of_secrets())
    assert [(p.name, p.managed) for p in listed] == [("tls-cert", True)]
    secret = client.get_secret("tls-cert")
    assert secret.properties.managed and secret.properties.version == version
    assert secret.properties.key_id == f"{fake.url}/keys/tls-cert/{version}"


def test_read_lag_hides_new_versions_from_reads_and_listings(fake: FakeKeyVault,
                                                             client: SecretClient) -> None:
    n = name()
    first = client.set_secret(n, value()).properties.version
    fake.read_lag(0.4)
    second = client.set_secret(n, value()).properties.version  # the PUT answers at once
    assert client.get_secret(n).properties.version == first
    assert [p.version for p in client.list_properties_of_secret_versions(n)] == [first]
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(n, second)
    fresh = name()
    client.set_secret(fresh, value())
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(fresh)
    assert fresh not in [p.name for p in client.list_properties_of_secrets()]
    time.sleep(0.45)
    assert client.get_secret(n).properties.version == second
    assert fresh in [p.name for p in client.list_properties_of_secrets()]


def test_writes_right_after_recovery_are_refused_for_a_while(fake: FakeKeyVault,
                                                             client: SecretClient) -> None:
    n = name()
    client.set_secret(n, value())
    client.begin_delete_secret(n, **FAST).wait()
    fake.recovering_writes(2)
    client.begin_recover_deleted_secret(n, **FAST).wait()
    for _ in range(2):
        with pytest.raises(HttpResponseError) as info:
            client.set_secret(n, value())
        assert info.value.status_code == 409 and "ObjectIsBeingRecovered" in str(info.value)
    client.set_secret(n, value())


def test_throttle_without_retry_after_and_after_a_write(fake: FakeKeyVault) -> None:
    with fake.make_client(retry_total=0) as c:
        n = name()
        c.set_secret(n, value())
        fake.throttle(1, retry_after=None, after="PUT")
        c.get_secret(n)  # not armed yet: no PUT since
        c.set_secret(n, value())  # goes through; the next request is throttled
        with pytest.raises(HttpResponseError) as info:
            c.get_secret(n)
        assert info.value.status_code == 429
        assert "Retry-After" not in (info.value.response.headers or {})


def test_challenge_names_the_configured_resource(fake: FakeKeyVault) -> None:
    HttpChallengeCache.clear()
    fake.challenge_resource = "https://vault.example"
    try:
        credential = StaticTokenCredential()
        with fake.make_client(credential) as c, pytest.raises(ResourceNotFoundError):
            c.get_secret(name())
        assert credential.token_requests[0][0] == ("https://vault.example/.default",)
    finally:
        fake.challenge_resource = "https://vault.azure.net"
        HttpChallengeCache.clear()
