"""posture: the guide's seven security practices for one environment, with evidence."""

from __future__ import annotations

import os
from pathlib import Path

import click

from deparrow_secrets.cli.cluster_cmds import cluster_options
from deparrow_secrets.cli.common import env_option, load_project, output_option
from deparrow_secrets.errors import EXIT_FINDINGS

# Kept here as names only, so --help imports nothing heavy; checked against the
# practices the posture modules declare (posture/checks.py POSTURE_RULES) in the tests.
PRACTICES = ("audit-logging", "rotation-age", "encryption-at-rest", "network-isolation",
             "nothing-committed", "least-privilege", "separate-stores")


def _cluster_asked(kubeconfig: str | None, context: str | None) -> bool:
    """The user named a cluster: a failure to reach it is an error, not a verdict."""
    return bool(kubeconfig or context or os.environ.get("KUBECONFIG"))


def _cluster_found() -> bool:
    return Path("~/.kube/config").expanduser().is_file() or \
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


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
    from deparrow_secrets.findings.output import render_json, render_sarif
    from deparrow_secrets.posture.checks import POSTURE_RULES, run_posture

    project = load_project(ctx)
    env = project.environment(env_name)
    client = None
    cluster_problem = None
    asked = _cluster_asked(kubeconfig, kube_context)
    if "network-isolation" not in ignore and (asked or _cluster_found()):
        from deparrow_secrets.cluster.official import connect
        from deparrow_secrets.errors import DeparrowError

        try:
            client = connect(kubeconfig, kube_context)
        except DeparrowError as exc:
            if asked:
                raise
            # ~/.kube/config or the in-cluster account, found rather than given: its
            # failure is the network check's unknown verdict, not the whole command's.
            cluster_problem = exc.message
    try:
        report = run_posture(project, env, lambda: project.open_store(env, create=False),
                             client, ignore, cluster_problem=cluster_problem)
    finally:
        if client is not None:
            client.close()
    findings = report.findings()
    if output == "json":
        click.echo(render_json("posture", findings, len(findings), {
            "environment": env.name, "provider": env.provider,
            "context": client.context if client is not None else None,
            "verdicts": {v: report.count(v) for v in ("pass", "fail", "unknown")},
            "ignored": sorted(set(ignore))}))
    elif output == "sarif":
        click.echo(render_sarif(findings, POSTURE_RULES))
    else:
        for v in report.verdicts:
            click.echo(f"{v.verdict.upper():8} {v.practice} ({v.provider}): {v.summary}")
            if v.reason:
                click.echo(f"    why unknown: {v.reason}")
            for item in v.evidence:
                click.echo(f"    evidence: {item}")
            if v.fix:
                click.echo(f"    fix: {v.fix}")
        click.echo(f"{env.name} ({env.provider}): {report.count('pass')} pass, "
                   f"{report.count('fail')} fail, {report.count('unknown')} unknown")
    if report.failed:
        ctx.exit(EXIT_FINDINGS)
