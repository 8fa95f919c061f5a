"""Files the tool writes: no write through a planted link, nothing outside the project,
private modes whatever the umask (issue 9, points 1-4). Commands run in this process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers import git, git_init, write_config

ENV_FILES = ["deparrow-secrets.env", "postgres-credentials.env", "redis-credentials.env"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def listing(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


# --------------------------------------------------------------------------- point 1


def test_planted_tmp_links_receive_nothing_on_export(project: Path, elsewhere: Path,
                                                     cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    secrets_dir = project / "deparrow/k8s/overlays/dev/secrets"
    secrets_dir.mkdir(parents=True)
    traps = []
    for name in ENV_FILES:
        trap = elsewhere / f"trap-{name}"
        trap.write_bytes(b"")
        # The name the tool used for its temporary file: `.NAME.tmpPID`.
        (secrets_dir / f".{name}.tmp{os.getpid()}").symlink_to(trap)
        traps.append(trap)
    run = cli("export", "--env", "dev")
    assert run.code == 0, run.text
    for trap in traps:
        assert trap.read_bytes() == b"", f"{trap.name} received the export"
    for name in ENV_FILES:
        exported = secrets_dir / name
        assert not exported.is_symlink() and exported.stat().st_size > 0


def test_committed_secrets_link_does_not_redirect_the_export(project: Path, elsewhere: Path,
                                                              cli) -> None:
    git_init(project)
    assert cli("provision", "--env", "dev").code == 0
    gitignore = (project / ".gitignore").read_bytes()
    overlay = project / "deparrow/k8s/overlays/dev"
    overlay.mkdir(parents=True)
    (overlay / "secrets").symlink_to(elsewhere, target_is_directory=True)
    git(project, "add", "-f", "deparrow/k8s/overlays/dev/secrets")
    git(project, "commit", "-q", "-m", "a link someone committed")
    run = cli("export", "--env", "dev")
    assert run.code == 2, run.text
    assert "symbolic link" in run.err and "overlays/dev/secrets" in run.err
    assert listing(elsewhere) == {}
    assert (project / ".gitignore").read_bytes() == gitignore  # refused before any write


def test_symlinked_export_file_is_refused_not_followed(project: Path, elsewhere: Path,
                                                        cli) -> None:
    assert cli("provision", "--env", "dev").code == 0
    secrets_dir = project / "deparrow/k8s/overlays/dev/secrets"
    secrets_dir.mkdir(parents=True)
    trap = elsewhere / "trap.env"
    trap.write_bytes(b"")
    (secrets_dir / "redis-credentials.env").symlink_to(trap)
    run = cli("export", "--env", "dev")
    assert run.code == 2 and "symbolic link" in run.err, run.text
    assert trap.read_bytes() == b""


def test_planted_tmp_links_in_the_tree_receive_nothing_on_render(project: Path,
                                                                 elsewhere: Path,
                                                                 cli) -> None:
    overlay = project / "deparrow/k8s/overlays/dev"
    overlay.mkdir(parents=True)
    trap = elsewhere / "trap.yaml"
    trap.write_bytes(b"")
    (overlay / f".kustomization.yaml.tmp{os.getpid()}").symlink_to(trap)
    run = cli("render")
    assert run.code == 0, run.text
    assert trap.read_bytes() == b""
    assert (overlay / "kustomization.yaml").is_file()


def test_render_refuses_a_linked_tree_directory(project: Path, elsewhere: Path, cli) -> None:
    (project / "deparrow").mkdir()
    (project / "deparrow/k8s").symlink_to(elsewhere, target_is_directory=True)
    run = cli("render")
    assert run.code == 2 and "symbolic link" in run.err, run.text
    assert listing(elsewhere) == {}


def test_umask_000_still_gives_private_modes(project: Path, cli) -> None:
    git_init(project)
    old = os.umask(0)
    try:
        assert cli("provision", "--env", "dev").code == 0
        assert cli("export", "--env", "dev").code == 0
        assert cli("export", "--env", "dev", "--format", "json").code == 0
        assert cli("render").code == 0
    finally:
        os.umask(old)
    state = project / ".deparrow-secrets"
    assert mode(state) == 0o700
    assert mode(state / "store.db") == 0o600 and mode(state / "store.key") == 0o600
    assert mode(state / "export-dev.json") == 0o600
    exported = project / "deparrow/k8s/overlays/dev/secrets"
    assert mode(exported) == 0o700
    assert {mode(exported / n) for n in ENV_FILES} == {0o600}
    tree = project / "deparrow/k8s/overlays/dev/kustomization.yaml"
    assert mode(tree) == 0o644 and mode(tree.parent) == 0o755
    assert mode(project / ".gitignore") == 0o644


def test_an_odd_umask_cannot_lock_the_tool_out_of_its_own_files(project: Path,
                                                                cli) -> None:
    """Under umask 0277 a directory made 0700 would come out 0500 and a file 0400: the
    modes are set explicitly, so the store stays writable and the tree readable."""
    git_init(project)
    old = os.umask(0o277)
    try:
        assert cli("provision", "--env", "dev").code == 0
        assert cli("set", "REDIS_PASSWORD", stdin="r" + "x" * 40).code == 0
        assert cli("export", "--env", "dev").code == 0
        assert cli("render").code == 0
    finally:
        os.umask(old)
    state = project / ".deparrow-secrets"
    assert mode(state) == 0o700 and mode(state / "store.key") == 0o600
    assert mode(state / "store.db") == 0o600
    assert mode(project / "deparrow/k8s/overlays/dev/secrets") == 0o700
    assert mode(project / "deparrow/k8s/overlays/dev/secrets/redis-credentials.env") == 0o600
    assert mode(project / "deparrow/k8s/base/namespace.yaml") == 0o644
    assert mode(project / "deparrow/k8s/base") == 0o755


def test_planted_store_and_key_links_are_refused(project: Path, elsewhere: Path,
                                                 cli) -> None:
    state = project / ".deparrow-secrets"
    state.mkdir(mode=0o700)
    (state / "store.key").symlink_to(elsewhere / "key")
    run = cli("provision", "--env", "dev")
    assert run.code == 2 and "symbolic link" in run.err, run.text
    assert listing(elsewhere) == {}
    (state / "store.key").unlink()
    (state / "store.db").symlink_to(elsewhere / "store.db")
    run = cli("provision", "--env", "dev")
    assert run.code == 2 and "symbolic link" in run.err, run.text
    assert listing(elsewhere) == {}


def test_render_refuses_a_linked_overlay_before_writing_anything(project: Path,
                                                                 elsewhere: Path,
                                                                 cli) -> None:
    (project / "deparrow/k8s/overlays").mkdir(parents=True)
    (project / "deparrow/k8s/overlays/dev").symlink_to(elsewhere, target_is_directory=True)
    run = cli("render")
    assert run.code == 2 and "overlays/dev is a symbolic link" in run.err, run.text
    assert listing(elsewhere) == {}
    assert not (project / "deparrow/k8s/base").exists()  # not half-written either


# --------------------------------------------------------------------------- point 2


@pytest.mark.parametrize("manifests", ["..", "../sibling/k8s", "/tmp"])
def test_manifests_outside_the_project_are_refused(project: Path, tmp_path: Path,
                                                   manifests: str, cli) -> None:
    sibling = tmp_path / "sibling" / "k8s" / "overlays" / "old"
    sibling.mkdir(parents=True)
    generated = sibling / "kustomization.yaml"
    from deparrow_secrets.render.yamlout import GENERATED

    generated.write_text(GENERATED + "kind: Kustomization\n", encoding="utf-8")
    write_config(project, f"manifests: {manifests}\nenvironments:\n"
                          "  dev:\n    store: {provider: local}\n")
    before = listing(tmp_path / "sibling")
    for args in (["render"], ["render", "--check"], ["quickstart"]):
        run = cli(*args)
        assert run.code == 2, run.text
        assert "manifests" in run.err and "inside the project" in run.err
        assert "hint:" in run.err
    assert listing(tmp_path / "sibling") == before
    assert not (project / ".deparrow-secrets").exists()


# --------------------------------------------------------------------------- point 3


def test_state_directory_linked_into_the_repository_is_refused(project: Path, cli) -> None:
    git_init(project)
    (project / "stash").mkdir()
    (project / ".deparrow-secrets").symlink_to("stash", target_is_directory=True)
    for args in (["provision", "--env", "dev"], ["quickstart"], ["status"]):
        run = cli(*args)
        assert run.code == 2, run.text
        assert ".deparrow-secrets is a symbolic link" in run.err
    assert list((project / "stash").iterdir()) == []
    assert not (project / ".gitignore").exists()  # refused before anything was written
    git(project, "add", "-A")
    staged = git(project, "diff", "--cached", "--name-only").stdout.split()
    assert not [p for p in staged if p.startswith("stash/")], staged


# --------------------------------------------------------------------------- point 4


@pytest.fixture
def aws_project(project: Path, aws_env) -> Path:  # noqa: ARG001 - starts moto
    write_config(project, "environments:\n  dev:\n    store: {provider: local}\n"
                          "  production:\n    store: {provider: aws, region: us-east-1, "
                          "accountId: '123456789012'}\n")
    return project


def test_export_of_a_remote_environment_needs_the_flag(aws_project: Path, cli) -> None:
    assert cli("provision", "--env", "production").code == 0
    before = listing(aws_project)
    run = cli("export", "--env", "production")
    assert run.code == 2 and "--allow-non-dev" in run.err, run.text
    assert listing(aws_project) == before
    run = cli("export", "--env", "production", "--allow-non-dev")
    assert run.code == 0, run.text
    exported = aws_project / "deparrow/k8s/overlays/production/secrets"
    assert f"wrote {exported}/" in run.out
    assert "plaintext" in run.err and str(exported) in run.err
    assert mode(exported) == 0o700
