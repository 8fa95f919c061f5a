"""`audit`: list the change ledger, and check its chain."""

from __future__ import annotations

import click

from deparrow_secrets.cli.common import load_project, output_option, print_json, print_table


@click.command()
@click.option("--env", "-e", "env_name", metavar="ENV",
              help="Only records of this environment (default: all).")
@click.option("--key", "key", metavar="KEY", help="Only records that touched this key.")
@click.option("--verify", is_flag=True,
              help="Check the HMAC chain: exit 6 naming the first removed, reordered or "
              "edited record.")
@output_option()
@click.pass_context
def audit(ctx: click.Context, env_name: str | None, key: str | None, verify: bool,
          output: str) -> None:
    """The change ledger: who provisioned, set or rolled back what, when, and how it
    ended (never values). Reads only: creates nothing."""
    from deparrow_secrets.operations.audit import TABLE_HEADERS
    from deparrow_secrets.operations.audit import audit as run_audit

    report = run_audit(load_project(ctx), env_name, key, verify)
    if output == "json":
        print_json(report.to_json())
        return
    empty = report.empty_line()
    if empty is not None:
        click.echo(empty)
    else:
        print_table(TABLE_HEADERS, report.table_rows())
    verified = report.verified_line()
    if verified is not None:
        click.echo(verified)
