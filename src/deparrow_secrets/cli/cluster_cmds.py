"""Commands that talk to the Kubernetes cluster: deploy, doctor, drift, impact."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from deparrow_secrets.cli.common import (
    env_option,
    load_project,
    output_option,
    print_json,
    print_table,
)
from deparrow_secrets.errors import EXIT_FINDINGS

F = TypeVar("F", bound=Callable[..., Any])

def cluster_options(fn: F) -> F:
    fn = click.option("--context", "kube_context", metavar="NAME",
                      help="Kubeconfig context (default: the current context).")(fn)
    return click.option("--kubeconfig", metavar="FILE",
                        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                             "in-cluster).")(fn)


@contextmanager
def _client(kubeconfig: str | None, context: str | None) -> Iterator[Any]:
    from deparrow_secrets.cluster.official import connect

    client = connect(kubeconfig, context)
    try:
        yield client
    finally:
        client.close()


def progress_printer() -> Callable[[str, bool], None]:
    """A live line on a terminal, plain lines otherwise (logs, CI)."""
    live = sys.stderr.isatty()

    def show(line: str, final: bool) -> None:
        if live:
            click.echo("\r\033[2K" + line, nl=final, err=True)
        else:
            click.echo(line, err=True)

    return show


@click.command()
@env_option()
@click.option("--dry-run", is_flag=True,
              help="Show what would change (server-side dry run); apply nothing.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until every value arrived, verified by hash.")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait for ESO to sync.")
@click.option("--no-apply", is_flag=True,
              help="Apply nothing; only wait and verify (a GitOps controller applies).")
@cluster_options
@output_option()
@click.pass_context
def deploy(ctx: click.Context, env_name: str, dry_run: bool, wait: bool, timeout: float,
           no_apply: bool, kubeconfig: str | None, kube_context: str | None,
           output: str) -> None:
    """Apply ENV's objects (server-side apply) and wait until every value arrived.

    Proof of arrival: every ExternalSecret Ready for its current spec and every target
    Secret's data hash equal to the hash of the store's values. Exit 1 when the cluster
    does not converge before --timeout, with the reason.
    """
    from deparrow_secrets.operations.deploy import deploy as run_deploy

    project = load_project(ctx)
    env = project.environment(env_name)
    with _client(kubeconfig, kube_context) as client:
        result = run_deploy(project, env, client, lambda: project.open_store(env, create=False),
                            dry_run=dry_run, apply=not no_apply,
                            wait=wait, timeout=timeout,
                            progress=None if output == "json" else progress_printer())
    if output == "json":
        print_json(result.to_json(client.context, applied=not no_apply))
        return
    for line in result.text_lines(client.context, applied=not no_apply, waited=wait):
        click.echo(line)


@click.command()
@env_option()
@cluster_options
@output_option("text", "json", "sarif", "dot", "mermaid")
@click.pass_context
def doctor(ctx: click.Context, env_name: str, kubeconfig: str | None,
           kube_context: str | None, output: str) -> None:
    """Follow store -> SecretStore -> ExternalSecret -> Secret -> workloads; name each
    problem with a stable id and its fix. Exit 0 healthy, 1 findings."""
    from deparrow_secrets.findings.output import render_json, render_sarif, render_text
    from deparrow_secrets.operations.doctor import DOCTOR_RULES, render_dot, render_mermaid
    from deparrow_secrets.operations.doctor import doctor as run_doctor

    project = load_project(ctx)
    env = project.environment(env_name)
    with _client(kubeconfig, kube_context) as client:
        report = run_doctor(project, env, client,
                            lambda: project.open_store(env, create=False))
    if output == "json":
        click.echo(render_json("doctor", report.findings, report.checked, report.details()))
    elif output == "sarif":
        click.echo(render_sarif(report.findings, DOCTOR_RULES))
    elif output == "dot":
        click.echo(render_dot(report))
    elif output == "mermaid":
        click.echo(render_mermaid(report))
    else:
        click.echo(render_text(report.findings, report.checked, "object", "object"))
    if report.findings:
        ctx.exit(EXIT_FINDINGS)


@click.command()
@env_option()
@cluster_options
@output_option("text", "json", "sarif")
@click.pass_context
def drift(ctx: click.Context, env_name: str, kubeconfig: str | None,
          kube_context: str | None, output: str) -> None:
    """Catalog <-> store <-> cluster, key by key, by hash; exit 1 when a side is behind."""
    from deparrow_secrets.operations.drift import drift as run_drift

    project = load_project(ctx)
    env = project.environment(env_name)
    with _client(kubeconfig, kube_context) as client, \
            project.open_store(env, create=False) as store:
        report = run_drift(project, env, client, store)
    if output == "json":
        print_json(report.to_json())
    elif output == "sarif":
        from deparrow_secrets.findings.output import render_sarif
        from deparrow_secrets.operations.drift import DRIFT_RULES

        click.echo(render_sarif(report.findings(), DRIFT_RULES))
    else:
        print_table(["KEY", "SECRET", "STORE", "VERSION", "CLUSTER", "LAST SYNC", "STATE"],
                    report.table_rows())
        click.echo("")
        for line in report.summary_lines():
            click.echo(line)
    if report.drifted:
        ctx.exit(EXIT_FINDINGS)


@click.command()
@click.argument("target", metavar="SECRET|KEY")
@env_option()
@cluster_options
@output_option()
@click.pass_context
def impact(ctx: click.Context, target: str, env_name: str, kubeconfig: str | None,
           kube_context: str | None, output: str) -> None:
    """Which workloads and pods consume a Secret (or a catalog key), how, and which pods
    hold a stale copy."""
    from deparrow_secrets.operations.impact import impact as run_impact

    project = load_project(ctx)
    env = project.environment(env_name)
    with _client(kubeconfig, kube_context) as client:
        report = run_impact(project, env, client, target)
    if output == "json":
        print_json(report.to_json())
        return
    click.echo(report.heading())
    click.echo("")
    print_table(["WORKLOAD", "HOW", "CONTAINERS", "KEYS", "RELOADER"], report.workload_rows())
    click.echo("")
    print_table(["POD", "OWNER", "HOW", "STARTED", "STALE"], report.pod_rows())
    stale = report.stale_line()
    if stale:
        click.echo("")
        click.echo(stale)
