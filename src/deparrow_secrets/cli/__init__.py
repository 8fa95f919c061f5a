"""The command line: parses, calls the library, prints. Nothing else lives here.

Commands are imported only when run (`--help` lists them from the table below), so
start-up stays fast and provider SDKs load only when their store is used. click itself
loads only when needed: `render` in its plain forms (what CI and pre-commit hooks run)
is parsed here and runs without it (`fast_render_options`), since importing click costs
more than rendering every environment.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click

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


def _build_cli() -> click.Group:
    import importlib

    import click

    from deparrow_secrets import __version__

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            if cmd_name not in COMMANDS:
                return None
            target, _ = COMMANDS[cmd_name]
            module, _, attr = target.partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command

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

    return cli


def __getattr__(name: str) -> Any:
    """`cli`, the click group, is built on first use (never by `render`'s fast path)."""
    if name == "cli":
        return _cli()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cli() -> click.Group:
    group: click.Group | None = globals().get("cli")
    if group is None:
        group = globals()["cli"] = _build_cli()
    return group


def main(argv: list[str] | None = None) -> None:
    import warnings

    from deparrow_secrets.errors import Notice

    with warnings.catch_warnings():
        shown_before = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: Any = None, line: str | None = None) -> None:
            if issubclass(category, Notice):
                echo(f"warning: {message}", err=True)
            else:
                shown_before(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", Notice)
        warnings.showwarning = show
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from deparrow_secrets.errors import DeparrowError

    try:
        fast = fast_render_options(sys.argv[1:] if argv is None else argv)
        if fast is not None:
            sys.exit(_render(fast))
        _click_main(argv)
    except DeparrowError as exc:
        echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence against leaking a value
        if os.environ.get("DEPARROW_SECRETS_DEBUG"):
            raise
        echo(f"internal error: {type(exc).__name__} (details hidden: they may contain "
             "secret material; set DEPARROW_SECRETS_DEBUG=1 to see them)", err=True)
        sys.exit(70)


def _click_main(argv: list[str] | None) -> None:
    import click

    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = _cli().main(args=argv, prog_name="deparrow-secrets", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)


def echo(text: str, err: bool = False) -> None:
    """click.echo without importing click for plain ASCII text, which it writes as is
    (it strips ANSI escapes when not on a terminal, and may re-encode other text)."""
    if not text.isascii() or "\x1b" in text:
        import click

        click.echo(text, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()


# --------------------------------------------------------------------------- render


class RenderOptions:
    """`[--config F] [--catalog F] render [--check] [--diff] [-o text|json]`."""

    def __init__(self, config_path: str | None, catalog_path: str | None, check: bool,
                 show_diff: bool, output: str) -> None:
        self.config_path = config_path
        self.catalog_path = catalog_path
        self.check = check
        self.show_diff = show_diff
        self.output = output


def fast_render_options(args: list[str]) -> RenderOptions | None:
    """The options of a `render` command line that needs nothing of click: every option
    at most once, values that click would take as they are. Anything else (help,
    --version, another command, a typo, a path click refuses) returns None and goes
    through click, which prints its usual message."""
    paths: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i] != "render":
        name, equals, value = args[i].partition("=")
        if not equals:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        i += 1
        if name not in ("--config", "--catalog") or name in paths \
                or not _path_click_takes(value):
            return None
        paths[name] = value
    if i == len(args):
        return None
    flags: set[str] = set()
    output = None
    rest = args[i + 1:]
    j = 0
    while j < len(rest):
        arg = rest[j]
        j += 1
        if arg in ("--check", "--diff"):
            flags.add(arg)
            continue
        if arg in ("--output", "-o") and j < len(rest):
            value = rest[j]
            j += 1
        elif arg.startswith("--output="):
            value = arg.removeprefix("--output=")
        elif arg.startswith("-o") and not arg.startswith("--"):
            value = arg[2:]
        else:
            return None
        if output is not None or value not in ("text", "json"):
            return None
        output = value
    return RenderOptions(paths.get("--config"), paths.get("--catalog"), "--check" in flags,
                         "--diff" in flags, output or "text")


def _path_click_takes(value: str) -> bool:
    """click.Path(dir_okay=False) accepts `value` without a message: a name that does not
    start like an option, and that is absent or a readable non-directory."""
    import stat

    if not value or value.startswith("-"):
        return False
    try:
        status = os.stat(value)
    except OSError:
        return True  # absent: the loader says so
    except ValueError:  # a NUL byte: what click makes of it
        return False
    return not stat.S_ISDIR(status.st_mode) and os.access(value, os.R_OK)


def _render(options: RenderOptions) -> int:
    from pathlib import Path

    from deparrow_secrets.project import Project
    from deparrow_secrets.render.run import render_project

    try:
        project = Project.load(Path(options.config_path) if options.config_path else None,
                               Path.cwd(),
                               Path(options.catalog_path) if options.catalog_path else None)
        outcome = render_project(project, options.check)
        for line, to_stderr in outcome.messages(options.output, options.show_diff):
            echo(line, err=to_stderr)
    except (EOFError, KeyboardInterrupt):  # what click makes of them: a new line, "aborted"
        echo("", err=True)
        echo("aborted", err=True)
        return 130
    return outcome.exit_code
