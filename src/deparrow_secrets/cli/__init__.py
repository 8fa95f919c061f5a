"""The command line: parses, calls the library, prints. Nothing else lives here.

Commands are imported only when run (`--help` lists them from the table below), so
start-up stays fast and provider SDKs load only when their store is used.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from deparrow_secrets import __version__

# name -> (module:function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("deparrow_secrets.cli.tree_cmds:quickstart",
                   "Set up dev on the embedded store: config, values, manifests."),
    "provision": ("deparrow_secrets.cli.secret_cmds:provision",
                  "Create every missing value of an environment (never overwrites)."),
    "verify": ("deparrow_secrets.cli.secret_cmds:verify",
               "Check every needed value is present and meets its policy."),
    "status": ("deparrow_secrets.cli.secret_cmds:status_cmd",
               "Table of the catalog's values in an environment (never values)."),
    "get": ("deparrow_secrets.cli.secret_cmds:get",
            "Show a value's metadata; print the value only with --reveal."),
    "set": ("deparrow_secrets.cli.secret_cmds:set_cmd",
            "Set one value from stdin, a hidden prompt or a file."),
    "history": ("deparrow_secrets.cli.secret_cmds:history",
                "Versions of the remote object holding a key."),
    "rollback": ("deparrow_secrets.cli.secret_cmds:rollback",
                 "Make the previous (or a named) version current again."),
    "export": ("deparrow_secrets.cli.secret_cmds:export_cmd",
               "Write the env files the dev secretGenerator reads (0600, git-ignored)."),
    "render": ("deparrow_secrets.cli.tree_cmds:render",
               "Write the deparrow/k8s tree; --check compares it instead."),
    "policy": ("deparrow_secrets.cli.policy_cmds:policy",
               "Print the least-privilege identity setup an environment needs."),
    "setup": ("deparrow_secrets.cli.policy_cmds:setup",
              "Apply that identity setup where it can be applied from here."),
    "lint": ("deparrow_secrets.cli.lint_cmds:lint",
             "Check manifests, configuration and policies for known mistakes."),
    "scan": ("deparrow_secrets.cli.lint_cmds:scan",
             "Find an environment's secret values in files and git history."),
    "deploy": ("deparrow_secrets.cli.cluster_cmds:deploy",
               "Apply an environment to the cluster and verify every value arrived."),
    "doctor": ("deparrow_secrets.cli.cluster_cmds:doctor",
               "Diagnose store -> SecretStore -> ExternalSecret -> Secret -> workloads."),
    "drift": ("deparrow_secrets.cli.cluster_cmds:drift",
              "Compare catalog, store and cluster key by key (by hash)."),
    "rotate": ("deparrow_secrets.cli.rotate_cmds:rotate",
               "Rotate values: store, verified sync, restarts, rollouts; undo on failure."),
    "impact": ("deparrow_secrets.cli.cluster_cmds:impact",
               "Which workloads and pods consume a Secret or key, and which are stale."),
    "migrate": ("deparrow_secrets.cli.migrate_cmds:migrate",
                "Move embedded Secrets into the store; remove them once ESO serves them."),
    "audit": ("deparrow_secrets.cli.audit_cmds:audit", "List and verify the change ledger."),
    "posture": ("deparrow_secrets.cli.posture_cmds:posture",
                "Check the guide's security practices for an environment, with evidence."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deparrow-secrets")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default: ./deparrow-secrets.yaml).")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False),
              help="Catalog file (default: the configured one, else DEparrow's).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, catalog_path: str | None) -> None:
    """Secrets for DEparrow on Kubernetes: one catalog, dev on an embedded encrypted
    store, staging and production through External Secrets Operator.

    Exit codes: 0 ok, 1 check failed or findings, 2 usage or configuration error,
    3 store unavailable, 4 access denied, 5 write conflict, 6 integrity (wrong key,
    tampered data), 7 missing optional dependency, 8 rotation rolled back to the old
    value, 9 rotation needs a person.
    """
    ctx.obj = {"config_path": config_path, "catalog_path": catalog_path}


def main(argv: list[str] | None = None) -> None:
    import warnings

    from deparrow_secrets.errors import Notice

    with warnings.catch_warnings():
        shown_before = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: Any = None, line: str | None = None) -> None:
            if issubclass(category, Notice):
                click.echo(f"warning: {message}", err=True)
            else:
                shown_before(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", Notice)
        warnings.showwarning = show
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from deparrow_secrets.errors import DeparrowError

    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="deparrow-secrets", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except DeparrowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence against leaking a value
        if os.environ.get("DEPARROW_SECRETS_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__} (details hidden: they may contain "
                   "secret material; set DEPARROW_SECRETS_DEBUG=1 to see them)", err=True)
        sys.exit(70)
