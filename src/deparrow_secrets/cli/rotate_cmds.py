"""rotate (and the printing `rollback --sync` shares with it): parse, call, print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from deparrow_secrets.cli.cluster_cmds import cluster_options, progress_printer
from deparrow_secrets.cli.common import (
    env_option,
    load_project,
    output_option,
    print_json,
    prompt_values,
    stdin_is_tty,
)
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import InputError


@contextmanager
def cluster_client(env: EnvironmentConfig, kubeconfig: str | None,
                   context: str | None) -> Iterator[Any]:
    """The cluster of `env`: always for ESO environments; for dev only when asked for."""
    if not env.uses_eso and kubeconfig is None and context is None:
        yield None
        return
    from deparrow_secrets.cluster.official import connect

    client = connect(kubeconfig, context)
    try:
        yield client
    finally:
        client.close()


@click.command()
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@env_option()
@click.option("--secret", "secret_name", metavar="NAME",
              help="Rotate every value of this Kubernetes Secret (fixed defaults excepted).")
@click.option("--all", "all_keys", is_flag=True,
              help="Rotate every value the environment uses (fixed defaults excepted).")
@click.option("--values-file", type=click.Path(dir_okay=False),
              help="New values of user-supplied keys: KEY=VALUE lines or a JSON object.")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read new values of user-supplied keys (KEY=VALUE lines) from stdin.")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--no-restart", is_flag=True,
              help="Write and sync; leave the workloads alone.")
@click.option("--no-rollback", is_flag=True,
              help="On a failure after the write, keep the new value and say how to finish.")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait for ESO and for each rollout step.")
@click.option("--due", is_flag=True,
              help="Rotate the values older than their catalog maxAge (none: nothing to do).")
@click.option("--yes", is_flag=True, help="Do not ask before rotating --all.")
@cluster_options
@output_option()
@click.pass_context
def rotate(ctx: click.Context, keys: tuple[str, ...], env_name: str, secret_name: str | None,
           all_keys: bool, values_file: str | None, from_stdin: bool, dry_run: bool,
           no_restart: bool, no_rollback: bool, timeout: float, due: bool, yes: bool,
           kubeconfig: str | None, kube_context: str | None, output: str) -> None:
    """Rotate KEYs of ENV: new values into the store (check-and-set), force-sync the
    ExternalSecrets and verify each Secret by hash, restart the consumers (Reloader's
    are awaited), wait for the rollouts. A failure after the write rolls back by itself.

    Exit codes: 0 on the new value, 8 rolled back to the old value, 9 needs a person,
    5 another writer came first (nothing restarted), 2 bad input (nothing written).
    A killed run resumes when the same command is run again.
    """
    from deparrow_secrets.operations import rotate as ops
    from deparrow_secrets.operations.values_input import supplied_values

    project = load_project(ctx)
    env = project.environment(env_name)
    if due:
        if keys or secret_name or all_keys:
            raise InputError("--due chooses the keys itself: give no KEY, --secret or --all",
                             hint=f"deparrow-secrets rotate --due --env {env.name}")
        keys = tuple(ops.due_keys(project, env))
        if not keys:
            if output == "json":
                print_json({"environment": env.name, "due": [], "outcome": "nothing-due"})
            else:
                click.echo(f"{env.name}: no value is older than its maxAge; nothing to rotate")
            return
    selected = ops.select_keys(project, env, list(keys), secret_name, all_keys)
    if all_keys and not yes and not dry_run:
        if not stdin_is_tty():
            raise InputError(f"--all rotates {len(selected)} value(s) of {env.name} and "
                             "restarts their consumers; confirm with --yes when not on a "
                             "terminal", hint="nothing was written")
        click.confirm(f"rotate {len(selected)} value(s) of {env.name}: "
                      + ", ".join(selected) + "?", abort=True)
    record = ops.pending(project, env)
    # A run killed after its write needs no new value: it finishes with the stored one.
    resuming = record is not None and record.keys == selected and record.done("write")
    supplied = {} if resuming else supplied_values(values_file, from_stdin)
    if not resuming and not dry_run and stdin_is_tty() and not from_stdin:
        supplied.update(prompt_values(project, ops.keys_needing_input(project, selected,
                                                                      supplied), "new "))
    if dry_run:
        ops.new_values(project, selected, supplied)  # the same input checks, nothing kept
    options = ops.RotateOptions(dry_run=dry_run, restart=not no_restart,
                                rollback=not no_rollback, timeout=timeout)
    with cluster_client(env, kubeconfig, kube_context) as client, \
            project.open_store(env, create=False, writable=not dry_run) as store:
        result = ops.rotate(project, env, store, client, selected, supplied, options,
                            progress=None if output == "json" else progress_printer())
    show_result(result, output)
    if result.exit_code:
        ctx.exit(result.exit_code)


def show_result(result: Any, output: str) -> None:
    """The report of a rotation or `rollback --sync` (RotationResult), text or JSON."""
    if output == "json":
        print_json(result.to_json())
        return
    for line, to_stderr in result.report_lines():
        click.echo(line, err=to_stderr)
