"""`audit`: list the change ledger, and check its chain."""

from __future__ import annotations

from typing import Any

import click

from deparrow_secrets.cli.common import load_project, output_option, print_json, print_table
from deparrow_secrets.errors import InputError


def _versions(record: dict[str, Any]) -> str:
    # A failed run's object without an `after` was written with an unknown result.
    unknown = "?" if record["outcome"].get("status") != "ok" else "-"
    return ", ".join(f"{o.get('remoteKey')} {o.get('before') or '-'} -> "
                     f"{o.get('after') or unknown}"
                     for o in record["objects"] if isinstance(o, dict)) or "-"


def _who(record: dict[str, Any]) -> str:
    user = str(record.get("user") or "?")
    return f"{user} as {record['principal']}" if record.get("principal") else user


def _keys(record: dict[str, Any]) -> str:
    keys = [str(k) for k in record["keys"]]
    if len(keys) > 3:
        return ",".join(keys[:2]) + f" +{len(keys) - 2} more"
    return ",".join(keys) or "-"


def _outcome(record: dict[str, Any]) -> str:
    outcome = record["outcome"]
    if outcome.get("status") == "ok":
        return "ok"
    return f"failed: {outcome.get('error')} (exit {outcome.get('exitCode')})"


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
    from deparrow_secrets import ledger
    from deparrow_secrets.config.settings import ENVIRONMENTS

    project = load_project(ctx)
    if env_name is not None and env_name not in ENVIRONMENTS:
        raise InputError(f"unknown environment '{env_name[:40]}'",
                         hint="environments: " + ", ".join(ENVIRONMENTS))
    if key is not None and key not in project.catalog.values:
        raise InputError(f"'{key[:60]}' is not in the catalog",
                         hint="known keys: " + ", ".join(project.catalog.values))
    files = ledger.files(project)
    records = files.read_records()
    count, head = files.verify(records) if verify else (len(records), "")
    shown = [r for r in records
             if (env_name is None or r["env"] == env_name) and (key is None or key in r["keys"])]
    if output == "json":
        data: dict[str, Any] = {"ledger": str(files.ledger), "records": shown}
        if verify:
            data["verified"] = {"intact": True, "records": count, "head": head}
        print_json(data)
        return
    if not records:
        click.echo(f"no changes recorded yet ({files.ledger} does not exist or is empty)")
    else:
        print_table(["#", "WHEN", "WHO", "COMMAND", "ENV", "KEYS", "VERSIONS", "OUTCOME"],
                    [(r["seq"], r["time"], _who(r), r["command"], r["env"],
                      _keys(r), _versions(r), _outcome(r))
                     for r in shown])
    if verify:
        click.echo(f"ledger intact: {count} record(s) chained"
                   + (f", newest MAC {head[:16]}" if head else ""))
