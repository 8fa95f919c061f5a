"""A fifth provider, registered here and nowhere else, renders, provisions and verifies
through the same commands as the built-in four (its package: `memory_provider`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from memory_provider import BUCKETS, PROVIDER, MemoryProvider, MemoryStore

from deparrow_secrets import providers
from deparrow_secrets.errors import InputError
from deparrow_secrets.providers.interface import IdentityOption
from deparrow_secrets.render.validate import validate_object
from deparrow_secrets.stores.interface import SecretStore
from deparrow_secrets.testing import StoreConformance
from helpers import Run, load_documents, write_config


@pytest.fixture
def memory_registered() -> Iterator[str]:
    bucket = f"b-{secrets.token_hex(4)}"
    providers.register(PROVIDER)
    yield bucket
    providers.unregister(PROVIDER.name)
    BUCKETS.pop(bucket, None)


@pytest.fixture
def project(tmp_path: Path, memory_registered: str) -> Path:
    write_config(tmp_path, "environments:\n  dev:\n    store: {provider: local}\n"
                 f"  staging:\n    store: {{provider: memory, bucket: {memory_registered}}}\n")
    return tmp_path


def test_renders_provisions_and_verifies(project: Path, memory_registered: str,
                                         cli: Callable[..., Run]) -> None:
    rendered = cli("render", cwd=project)
    assert rendered.code == 0, rendered.err
    rendered_objects = load_documents(
        (project / "deparrow/k8s/overlays/staging/patches/external-secrets.yaml")
        .read_text(encoding="utf-8"))
    secret_store = next(o for o in rendered_objects if o["kind"] == "SecretStore")
    assert secret_store["spec"]["provider"] == {"fake": {"data": []}}
    assert [p for o in rendered_objects for p in validate_object(o)] == []  # ESO CRDs
    assert cli("render", "--check", cwd=project).code == 0

    before = cli("verify", "--env", "staging", cwd=project)
    assert before.code != 0  # nothing provisioned yet: verify reads the memory store

    provisioned = cli("provision", "--env", "staging", cwd=project)
    assert provisioned.code == 0, provisioned.err
    objects = BUCKETS[memory_registered]
    assert objects and all(versions for versions in objects.values())

    verified = cli("verify", "--env", "staging", cwd=project)
    assert verified.code == 0, verified.out + verified.err

    objects.clear()  # the values are gone: verify must see it through the provider
    assert cli("verify", "--env", "staging", cwd=project).code != 0


def test_its_settings_are_checked_by_its_parser(project: Path, cli: Callable[..., Run]) -> None:
    write_config(project, "environments:\n  staging:\n    store: {provider: memory, "
                 "bucket: b, region: x}\n")
    run = cli("render", cwd=project)
    assert run.code == 2
    assert "environments.staging.store" in run.err and "region" in run.err


def test_unregistered_it_is_an_unknown_provider(tmp_path: Path,
                                                cli: Callable[..., Run]) -> None:
    write_config(tmp_path, "environments:\n  staging:\n    store: {provider: memory, "
                 "bucket: b}\n")
    run = cli("render", cwd=tmp_path)
    assert run.code == 2
    assert "'memory' is not allowed" in run.err and "local, vault, aws, azure" in run.err


def test_its_identity_options_are_flags_of_policy_and_setup(
        project: Path, memory_registered: str, cli: Callable[..., Run]) -> None:
    """Registered after the CLI was imported, its options still become flags: `policy`
    and `setup` gather them when the command line is parsed."""
    policy_help = cli("policy", "--help", cwd=project).out
    assert "--reader NAME" in policy_help and "memory: who may read the bucket." in policy_help
    assert "--grant" not in policy_help  # setup_only
    assert "--grant" in cli("setup", "--help", cwd=project).out

    planned = cli("policy", "--env", "staging", "--reader", "team-a", "-o", "json", cwd=project)
    assert planned.code == 0, planned.err
    assert json.loads(planned.out)["readerGrant"] == {"bucket": memory_registered,
                                                      "reader": "team-a"}
    applied = cli("setup", "--env", "staging", "--reader", "team-a", "--grant", "-o", "json",
                  cwd=project)
    assert applied.code == 0, applied.err
    assert json.loads(applied.out)["changes"] == [
        {"item": f"reader team-a of bucket {memory_registered}", "action": "created",
         "detail": ""}]

    # Given to another provider's environment, either way round, it is a mistake.
    misplaced = cli("policy", "--env", "dev", "--reader", "team-a", cwd=project)
    assert misplaced.code == 2
    assert "--reader applies to memory environments; dev uses local" in misplaced.err
    foreign = cli("policy", "--env", "staging", "--cluster", "c1", cwd=project)
    assert foreign.code == 2
    assert "--cluster applies to aws and azure environments" in foreign.err

    providers.unregister(PROVIDER.name)
    assert "--reader" not in cli("policy", "--help", cwd=project).out


def test_an_option_no_provider_declares_is_refused(project: Path) -> None:
    from deparrow_secrets.policy import build_plan, run_setup
    from deparrow_secrets.project import Project
    from deparrow_secrets.providers.identity_plan import Options

    loaded = Project.load(cwd=project)
    for call in (build_plan, run_setup):
        with pytest.raises(InputError, match="no provider takes the option colour"):
            call(loaded.config, loaded.environment("staging"), Options(colour="red"))


class ClashingProvider(MemoryProvider):
    """Declares options that clash with a command's own flags and with built-in options."""

    name = "clashing"
    identity_options = (
        IdentityOption("target_env", "--env", "ENV", "clashes with the command's --env."),
        IdentityOption("cluster_name", "--cluster", "NAME", "--cluster is aws's `cluster`."),
        IdentityOption("cluster", "--cluster-name", "NAME", "`cluster` is --cluster."),
        IdentityOption("owner", "--owner", "NAME", "clashes with nothing."),
    )


def test_an_option_that_clashes_is_not_offered(project: Path, cli: Callable[..., Run]) -> None:
    providers.register(ClashingProvider())
    try:
        shown = cli("policy", "--help", cwd=project)
    finally:
        providers.unregister(ClashingProvider.name)
    assert shown.code == 0, shown.err
    refused = [line for line in shown.err.splitlines() if "is not offered" in line]
    assert len(refused) == 3, shown.err
    assert all(line.startswith("warning: provider clashing: option --") for line in refused)
    assert "--owner NAME" in shown.out and "clashing: clashes with nothing." in shown.out
    assert "--cluster-name" not in shown.out
    assert "aws, azure: cluster name" in shown.out  # the built-in --cluster is kept


def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """A distribution on sys.path declaring `memory = <target>` as a provider."""
    site = tmp_path / "site"
    info = site / "deparrow_memory_provider-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deparrow-memory-provider\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[{providers.ENTRY_POINT_GROUP}]\nmemory = {target}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))


def memory_project(tmp_path: Path, bucket: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    write_config(project, f"environments:\n  staging:\n    store: {{provider: memory, "
                 f"bucket: {bucket}}}\n")
    return project


def test_an_installed_distribution_provides_it_by_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Run]) -> None:
    """pip-installed, a provider declares itself under the entry-point group; the
    configuration then names it with nothing registered by hand."""
    bucket = f"b-{secrets.token_hex(4)}"
    project = memory_project(tmp_path, bucket)
    assert "memory" not in providers.names()
    installed(tmp_path, monkeypatch, "memory_provider:PROVIDER")
    try:
        assert "memory" in providers.names()
        assert cli("render", cwd=project).code == 0
        assert cli("provision", "--env", "staging", cwd=project).code == 0
        assert BUCKETS[bucket]
    finally:
        providers.unregister(PROVIDER.name)
        BUCKETS.pop(bucket, None)


def test_an_installed_provider_that_cannot_load_is_a_configuration_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Run]) -> None:
    project = memory_project(tmp_path, "b")
    installed(tmp_path, monkeypatch, "memory_provider:NO_SUCH_PROVIDER")
    run = cli("render", cwd=project)
    assert run.code == 2, run.err
    assert "provider 'memory' (memory_provider:NO_SUCH_PROVIDER) cannot be loaded" in run.err
    assert "reinstall" in run.err and "internal error" not in run.err
    assert not (project / "deparrow").exists()
    # Commands that do not use it still work: it only offers no options.
    assert cli("policy", "--help", cwd=project).code == 0


class TestMemoryConformance(StoreConformance):
    @pytest.fixture
    def store(self, memory_registered: str) -> Iterator[SecretStore]:
        with MemoryStore(memory_registered) as s:
            yield s

    @pytest.fixture
    def second_store(self, memory_registered: str) -> Iterator[SecretStore]:
        with MemoryStore(memory_registered) as s:
            yield s
