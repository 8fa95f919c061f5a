"""posture: the guide's seven security practices for one environment, with evidence."""

from __future__ import annotations

import click

from deparrow_secrets.cli.cluster_cmds import cluster_options
from deparrow_secrets.cli.common import env_option, load_project, output_option
from deparrow_secrets.errors import EXIT_FINDINGS

# Kept here as names only, so --help imports nothing heavy; checked against the
# practices the posture modules declare (posture/checks.py POSTURE_RULES) in the tests.
PRACTICES = ("audit-logging", "rotation-age", "encryption-at-rest", "network-isolation",
             "nothing-committed", "least-privilege", "separate-stores")


@click.command()
@env_option()
@click.option("--ignore", "ignore", multiple=True, metavar="PRACTICE",
              help="Skip a practice (repeatable): " + ", ".join(PRACTICES) + ".")
@cluster_options
@output_option("text", "json", "sarif")
@click.pass_context
def posture(ctx: click.Context, env_name: str, ignore: tuple[str, ...],
            kubeconfig: str | None, kube_context: str | None, output: str) -> None:
    """Does ENV follow the guide's security practices? One verdict (pass, fail,
    unknown) per practice and provider, with the evidence looked at and the exact fix.

    Audit logging, rotation age (catalog maxAge), encryption at rest, network isolation
    (needs a cluster: --kubeconfig/--context as kubectl), and the three the tool
    enforces: nothing committed, least privilege, separate stores. Exit 1 when a
    practice fails; unknown verdicts (what cannot be read from here) name the check.
    """
    from deparrow_secrets.errors import InputError

    unknown = [p for p in ignore if p not in PRACTICES]
    if unknown:
        raise InputError(f"unknown practice {', '.join(unknown)} in --ignore",
                         hint="practices: " + ", ".join(PRACTICES))
    from deparrow_secrets.posture.checks import check_posture

    project = load_project(ctx)
    report = check_posture(project, project.environment(env_name), ignore, kubeconfig,
                           kube_context)
    if output == "json":
        click.echo(report.to_json())
    elif output == "sarif":
        click.echo(report.to_sarif())
    else:
        for line in report.text_lines():
            click.echo(line)
    if report.failed:
        ctx.exit(EXIT_FINDINGS)
