"""Commands that write the project: render and quickstart."""

from __future__ import annotations

from pathlib import Path

import click

from deparrow_secrets.cli.common import load_project, output_option, print_json, print_table
from deparrow_secrets.errors import EXIT_FINDINGS


@click.command()
@click.option("--check", is_flag=True,
              help="Compare the committed tree with a fresh rendering; exit 1 if it differs.")
@click.option("--diff", "show_diff", is_flag=True, help="With --check, print the diff.")
@output_option()
@click.pass_context
def render(ctx: click.Context, check: bool, show_diff: bool, output: str) -> None:
    """Write (or --check) the deparrow/k8s tree for every configured environment."""
    # `deparrow-secrets render ...` in the forms cli.fast_render_options knows runs the
    # same call without click; this command serves the other forms (and --help).
    from deparrow_secrets.render.run import render_project

    outcome = render_project(load_project(ctx), check)
    for line, to_stderr in outcome.messages(output, show_diff):
        click.echo(line, err=to_stderr)
    if outcome.exit_code:
        ctx.exit(outcome.exit_code)


@click.command()
@output_option()
@click.pass_context
def quickstart(ctx: click.Context, output: str) -> None:
    """Dev on the embedded store: configuration, values, manifests, validation."""
    from deparrow_secrets.config.settings import CONFIG_FILE
    from deparrow_secrets.operations.quickstart import (
        TABLE_HEADERS,
        apply_quickstart,
        plan_quickstart,
        write_starter_config,
    )

    given = (ctx.find_root().obj or {}).get("config_path")
    starter = None if given else write_starter_config(Path.cwd())
    if starter and output == "text":
        click.echo(f"wrote {CONFIG_FILE}")
    project = load_project(ctx)
    result = apply_quickstart(project, plan_quickstart(project), starter)
    if output == "json":
        print_json(result.to_json())
        if not result.ok:
            ctx.exit(EXIT_FINDINGS)
        return
    click.echo(result.summary())
    click.echo("")
    print_table(TABLE_HEADERS, result.table_rows())
    click.echo("")
    for line in result.notes():
        click.echo(line)
    if not result.ok:
        for line in result.problem_lines():
            click.echo(line, err=True)
        ctx.exit(EXIT_FINDINGS)
    click.echo(result.verdict())
    click.echo(f"\nnext: {result.next_step()}")
