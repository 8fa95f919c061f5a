"""Commands for identity and least privilege: `policy` prints, `setup` applies."""

from __future__ import annotations

from typing import Any

import click

from deparrow_secrets.cli.common import (
    env_option,
    load_project,
    output_option,
    print_json,
    print_table,
)
from deparrow_secrets.errors import InputError

OUTPUTS = ("text", "json", "hcl", "yaml", "shell")


class _IdentityOptionsCommand(click.Command):
    """A command with a flag for each option a provider declares for its identity
    (`Provider.identity_options`), the help naming the providers that take it.

    The flags are gathered when the command line is parsed, not when this module is
    imported, so a provider registered or installed later gets its flags as well. An
    option that would reuse one of the command's own flags is refused with a notice.
    """

    def __init__(self, *args: Any, setup: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup = setup

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        # click asks more than once per command line: gather (and give notice) once.
        cached: list[click.Parameter] | None = ctx.meta.get(_PARAMS_KEY)
        if cached is None:
            cached = ctx.meta[_PARAMS_KEY] = self._params_with_identity_options(ctx)
        return cached

    def _params_with_identity_options(self, ctx: click.Context) -> list[click.Parameter]:
        from deparrow_secrets import providers
        from deparrow_secrets.errors import notice

        help_option = self.get_help_option(ctx)
        own = [*self.params, *([help_option] if help_option else [])]
        taken = {name for param in own
                 for name in (param.name or "", *param.opts, *param.secondary_opts)}
        declared = providers.identity_options(setup=self.setup, taken=taken)
        for refused in declared.refused:
            notice(refused)
        added: list[click.Parameter] = []
        for attr, option in declared.options.items():
            who = ", ".join(declared.takers[attr])
            if option.is_flag:
                added.append(click.Option([option.flag, attr], is_flag=True,
                                          help=f"{who}: {option.help}"))
            else:
                added.append(click.Option(
                    [option.flag, attr], metavar=option.metavar,
                    type=click.Path(exists=True, dir_okay=False) if option.is_file else None,
                    help=f"{who}: {option.help}"))
        return [*self.params, *added, *([help_option] if help_option else [])]


_PARAMS_KEY = "deparrow_secrets.identity_options"


def _options(**kw: Any) -> Any:
    from deparrow_secrets.providers.identity_plan import Options

    return Options(**kw)


@click.command(cls=_IdentityOptionsCommand, setup=False)
@env_option()
@click.option("--output", "-o", "output", type=click.Choice(OUTPUTS), default="text",
              show_default=True,
              help="text: everything; json: everything as data; hcl: the Vault policy; "
              "yaml: the Kubernetes manifests; shell: the commands.")
@click.pass_context
def policy(ctx: click.Context, env_name: str, output: str, **kw: Any) -> None:
    """Print the least-privilege identity setup environment ENV needs.

    One environment only, never all: the IAM policy and IRSA trust policy (aws), the
    role assignment and federated credential (azure), or the ACL policy and
    kubernetes auth role (vault), with the ServiceAccount, the commands and how to
    install External Secrets Operator.
    """
    from deparrow_secrets.policy import build_plan
    from deparrow_secrets.policy.output import render_plan

    project = load_project(ctx)
    env = project.environment(env_name)
    plan = build_plan(project.config, env, _options(**kw))
    if output not in plan.outputs:
        raise InputError(f"--output {output} does not fit environment {env.name} "
                         f"({env.provider})",
                         hint="use one of: " + ", ".join(plan.outputs))
    click.echo(render_plan(plan, output), nl=False)
    if output not in ("text", "json"):
        for warning in plan.warnings:
            click.echo(f"warning: {warning}", err=True)


@click.command(cls=_IdentityOptionsCommand, setup=True)
@env_option()
@click.option("--dry-run", is_flag=True, help="Compare only; change nothing.")
@click.option("--audit", is_flag=True,
              help="Set up audit logging at the store instead of the identity: vault: "
              "enable an audit device (OpenBao: print its configuration stanza); aws, "
              "azure: print the commands.")
@click.option("--audit-file", metavar="PATH",
              help="vault --audit: the file audit device's path on the server "
              "(default /var/log/vault/audit.log).")
@click.option("--audit-socket", metavar="HOST:PORT",
              help="vault --audit: a socket audit device instead of a file.")
@output_option()
@click.pass_context
def setup(ctx: click.Context, env_name: str, dry_run: bool, audit: bool,
          audit_file: str | None, audit_socket: str | None, output: str,
          **kw: Any) -> None:
    """Apply ENV's identity setup where it can be applied from here, idempotently.

    vault: write the policy, enable and configure kubernetes auth, write the role,
    with the tool's own credentials (VAULT_ADDR, VAULT_TOKEN...). aws: create or
    update the IAM policy (and with --create-role the role). azure: print the az
    commands; nothing is run. A second run changes nothing.
    """
    from deparrow_secrets.policy import run_setup

    project = load_project(ctx)
    env = project.environment(env_name)
    if (audit_file or audit_socket) and not audit:
        raise InputError("--audit-file and --audit-socket go with --audit",
                         hint=f"deparrow-secrets setup --env {env.name} --audit "
                         "[--audit-file PATH | --audit-socket HOST:PORT]")
    if audit_file and audit_socket:
        raise InputError("give --audit-file or --audit-socket, not both",
                         hint="one audit device is enough; add more by hand")
    if audit:
        report = _setup_audit(project, env, audit_file, audit_socket, dry_run)
    else:
        report = run_setup(project.config, env,
                           _options(dry_run=dry_run, **kw))
    if output == "json":
        print_json(report.to_json())
        return
    print_table(["ITEM", "ACTION", "DETAIL"],
                [(c.item, c.action, c.detail) for c in report.changes])
    if report.commands:
        click.echo("\n# Run these (deparrow-secrets did not):")
        for line in report.commands:
            click.echo(line)
    click.echo(f"\n{report.summary()}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


def _setup_audit(project: Any, env: Any, audit_file: str | None, audit_socket: str | None,
                 dry_run: bool) -> Any:
    """setup --audit: what can be enabled from here is enabled, the rest printed."""
    from deparrow_secrets import providers

    return providers.of(env).audit_setup(project.config, env, file_path=audit_file,
                                         socket_address=audit_socket, dry_run=dry_run)
