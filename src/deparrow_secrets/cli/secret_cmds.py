"""Commands that read or write values in an environment's store."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from deparrow_secrets.cli.cluster_cmds import cluster_options, progress_printer
from deparrow_secrets.cli.common import (
    env_option,
    load_project,
    output_option,
    print_json,
    print_table,
    prompt_value,
    prompt_values,
    stdin_is_tty,
)
from deparrow_secrets.errors import EXIT_FINDINGS, InputError


@click.command()
@env_option()
@click.option("--values-file", type=click.Path(dir_okay=False),
              help="KEY=VALUE lines or a JSON object with user-supplied values.")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read user-supplied values (KEY=VALUE lines) from stdin.")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--recover-deleted", is_flag=True,
              help="Recover soft-deleted remote secrets (Azure) instead of stopping at them.")
@output_option()
@click.pass_context
def provision(ctx: click.Context, env_name: str, values_file: str | None, from_stdin: bool,
              dry_run: bool, recover_deleted: bool, output: str) -> None:
    """Create every missing value of ENV; existing values are never overwritten."""
    from deparrow_secrets.operations.provision import (
        apply_provision,
        check_supplied,
        missing_user_keys,
        plan_provision,
    )
    from deparrow_secrets.operations.reports import ProvisionReport
    from deparrow_secrets.operations.values_input import supplied_values

    project = load_project(ctx)
    env = project.environment(env_name)
    supplied = supplied_values(values_file, from_stdin)
    check_supplied(project, supplied)
    with project.open_store(env, create=not dry_run) as store:
        plans = plan_provision(project, env, store, supplied)
        missing_user = missing_user_keys(plans)
        if missing_user and not dry_run and stdin_is_tty() and not from_stdin:
            supplied.update(prompt_values(project, missing_user))
            plans = plan_provision(project, env, store, supplied)
        result = None if dry_run else apply_provision(project, env, store, plans, supplied,
                                                      recover_deleted)
    report = ProvisionReport.of(env, plans, result)
    if output == "json":
        print_json(report.to_json())
        return
    print_table(report.TABLE_HEADERS, report.table_rows())
    for line in report.closing_lines():
        click.echo(line)


@click.command()
@env_option()
@output_option()
@click.pass_context
def verify(ctx: click.Context, env_name: str, output: str) -> None:
    """Check that every value ENV needs is present; exit 1 listing what is not."""
    from deparrow_secrets.operations.verify import verify as run_verify

    project = load_project(ctx)
    env = project.environment(env_name)
    with project.open_store(env, create=False) as store:
        report = run_verify(project, env, store)
    if output == "json":
        print_json(report.to_json())
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        ctx.exit(EXIT_FINDINGS)


@click.command("status")
@env_option()
@output_option()
@click.pass_context
def status_cmd(ctx: click.Context, env_name: str, output: str) -> None:
    """Every catalog value of ENV: needed, present, version, source. Never values."""
    from deparrow_secrets.operations.reports import StatusReport
    from deparrow_secrets.operations.status import status

    project = load_project(ctx)
    env = project.environment(env_name)
    with project.open_store(env, create=False) as store:
        report = StatusReport.of(env, status(project, env, store))
    if output == "json":
        print_json(report.to_json())
        return
    print_table(report.TABLE_HEADERS, report.table_rows())


@click.command()
@click.argument("key")
@env_option()
@click.option("--reveal", is_flag=True, help="Print the value itself to stdout.")
@click.option("--version", "version", help="A specific version of the remote object.")
@output_option()
@click.pass_context
def get(ctx: click.Context, key: str, env_name: str, reveal: bool, version: str | None,
        output: str) -> None:
    """Metadata of KEY in ENV; the value itself only with --reveal."""
    from deparrow_secrets.operations.values import apply_get, plan_get

    project = load_project(ctx)
    env = project.environment(env_name)
    plan = plan_get(project, env, key, version)
    with project.open_store(env, create=False) as store:
        result = apply_get(store, plan)
    if output == "json":
        print_json(result.to_json(reveal=reveal))
    else:
        click.echo(result.text(reveal=reveal), err=not result.found)
    if not result.found:
        ctx.exit(EXIT_FINDINGS)


class _ValueFreeCommand(click.Command):
    """A command whose stray arguments are refused without being printed.

    Click's own usage errors quote the offending argument, and for `set` a stray
    argument is most likely the value itself (`set KEY VALUE`), or part of one that
    starts with a dash. So the arguments are checked against the command's own options
    before click sees them.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: set[str] = set()
        flags = set(ctx.help_option_names)
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                (flags if param.is_flag else takes_value).update(param.opts)
        positional = 0
        it = iter(args)
        for arg in it:
            if arg == "--":
                positional += len(list(it))
                break
            if arg in flags:
                continue
            if arg in takes_value:
                next(it, None)
                continue
            if arg.startswith("--") and arg.split("=", 1)[0] in takes_value:
                continue
            if len(arg) > 2 and arg[:2] in takes_value and not arg.startswith("--"):
                continue  # -eVALUE
            if arg.startswith("-") and arg != "-":
                self._refuse(ctx)
            positional += 1
        if positional > 1:
            self._refuse(ctx)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if isinstance(exc, click.BadParameter) and isinstance(exc.param, click.Option):
                raise  # about an option's own argument (--from-file's path), not a value
            if positional == 0:
                raise  # e.g. KEY missing: nothing in argv that could be a value
            self._refuse(ctx)

    def _refuse(self, ctx: click.Context) -> NoReturn:
        raise InputError(
            f"{ctx.command_path} takes KEY and options only; an extra argument is not "
            "shown, as it may be a value (a value on the command line would stay in shell "
            "history and be visible in the process list)",
            hint="pipe the value on stdin, run without it to be asked, or use --from-file "
            "FILE; nothing was written")


@click.command("set", cls=_ValueFreeCommand)
@click.argument("key")
@env_option()
@click.option("--from-file", type=click.Path(dir_okay=False, exists=True),
              help="Read the value from this file (one trailing newline is dropped).")
@click.option("--force", is_flag=True, help="Accept a value shorter than the catalog's policy.")
@output_option()
@click.pass_context
def set_cmd(ctx: click.Context, key: str, env_name: str, from_file: str | None,
            force: bool, output: str) -> None:
    """Set KEY in ENV from stdin, a hidden prompt or --from-file (never from argv)."""
    from deparrow_secrets.operations.values import apply_set, plan_set, value_target
    from deparrow_secrets.operations.values_input import (
        read_single_value,
        read_stdin,
        read_text_file,
    )

    project = load_project(ctx)
    env = project.environment(env_name)
    target = value_target(project, env, key)  # an unknown key before asking for a value
    if from_file:
        value = read_single_value(read_text_file(Path(from_file), "value file"), from_file)
    elif stdin_is_tty():
        value = prompt_value(key, key)
    else:
        value = read_single_value(read_stdin())
    plan = plan_set(project, target, value, force=force)
    with project.open_store(env) as store:
        result = apply_set(project, env, store, plan)
    if output == "json":
        print_json(result.to_json())
    else:
        click.echo(result.text())


@click.command()
@click.argument("key")
@env_option()
@output_option()
@click.pass_context
def history(ctx: click.Context, key: str, env_name: str, output: str) -> None:
    """Versions of the remote object holding KEY, and in which KEY changed."""
    from deparrow_secrets.operations.history import key_history
    from deparrow_secrets.operations.reports import HistoryReport
    from deparrow_secrets.operations.values import value_target

    project = load_project(ctx)
    env = project.environment(env_name)
    target = value_target(project, env, key)
    with project.open_store(env, create=False) as store:
        report = HistoryReport(target, tuple(key_history(project, env, store, key)))
    if output == "json":
        print_json(report.to_json())
        return
    click.echo(report.heading())
    print_table(report.table_headers(), report.table_rows())


@click.command()
@click.argument("key")
@env_option()
@click.option("--to", "version", help="Version to restore (default: the previous one).")
@click.option("--sync", is_flag=True,
              help="Then force-sync, verify by hash, restart consumers and wait, as rotate.")
@click.option("--no-restart", is_flag=True, help="With --sync: leave the workloads alone.")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              metavar="SECONDS", help="With --sync: how long to wait for ESO and rollouts.")
@cluster_options
@output_option()
@click.pass_context
def rollback(ctx: click.Context, key: str, env_name: str, version: str | None, sync: bool,
             no_restart: bool, timeout: float, kubeconfig: str | None,
             kube_context: str | None, output: str) -> None:
    """Restore KEY's previous value (or its value in --to VERSION) as a new version.

    Only KEY changes: other keys held by the same remote object keep their values.
    With --sync the restored value is carried into the cluster the way rotate does
    (exit 0 done, 9 a step failed: the message says which and how to finish).
    """
    from deparrow_secrets.operations.history import check_version_id, rollback_key
    from deparrow_secrets.operations.reports import RollbackReport
    from deparrow_secrets.operations.values import value_target

    project = load_project(ctx)
    env = project.environment(env_name)
    value_target(project, env, key)
    if version is not None:
        check_version_id(version)
    if sync:
        from deparrow_secrets.cli.rotate_cmds import cluster_client, show_result
        from deparrow_secrets.operations.rotate import RotateOptions, rollback_sync

        with cluster_client(env, kubeconfig, kube_context) as client, \
                project.open_store(env, create=False, writable=True) as store:
            _, outcome = rollback_sync(
                project, env, store, client, key, version,
                RotateOptions(restart=not no_restart, timeout=timeout),
                progress=None if output == "json" else progress_printer())
        show_result(outcome, output)
        if outcome.exit_code:
            ctx.exit(outcome.exit_code)
        return
    with project.open_store(env, create=False, writable=True) as store:
        report = RollbackReport.of(env, key, rollback_key(project, env, store, key, version))
    if output == "json":
        print_json(report.to_json())
        return
    click.echo(report.text())


@click.command("export")
@env_option()
@click.option("--format", "fmt", type=click.Choice(["env", "json"]), default="env",
              show_default=True)
@click.option("--path", "output", type=click.Path(),
              help="env: a directory instead of the overlay; json: the file to write.")
@click.option("--allow-non-dev", is_flag=True,
              help="Also export an environment whose values live in a remote store "
              "(staging, production): plaintext files on this disk.")
@click.pass_context
def export_cmd(ctx: click.Context, env_name: str, fmt: str, output: str | None,
               allow_non_dev: bool) -> None:
    """Write ENV's values to the files its secretGenerator reads (mode 0600).

    For dev. Other environments only with --allow-non-dev.
    """
    from deparrow_secrets.operations.export import check_allowed, export
    from deparrow_secrets.operations.reports import ExportReport

    project = load_project(ctx)
    env = project.environment(env_name)
    check_allowed(env, allow_non_dev)  # before connecting to anything
    with project.open_store(env, create=False) as store:
        result = export(project, env, store, fmt, Path(output) if output else None,
                        allow_non_dev=allow_non_dev)
    report = ExportReport.of(env, result)
    for line in report.lines():
        click.echo(line)
    warning = report.warning()
    if warning:
        click.echo(warning, err=True)
