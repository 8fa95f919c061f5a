"""Commands that talk to the Kubernetes cluster: deploy, doctor, drift, impact."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from deparrow_secrets.cli.common import (
    camel_dict,
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
        print_json({"environment": env.name, "namespace": project.config.namespace,
                    "context": client.context, "dryRun": dry_run, "applied": not no_apply,
                    "changes": [camel_dict(c) for c in result.changes],
                    "forcedSync": result.forced, "converged": result.converged,
                    "secrets": [{"name": s.name, "externalSecret": s.external_secret,
                                 "synced": s.converged, "lastSync": s.last_sync or None}
                                for s in result.secrets],
                    "waitedSeconds": round(result.waited, 2), "apiCalls": result.api_calls})
        return
    verb = "would change" if dry_run else "changed"
    for c in result.changes:
        fields = f" ({', '.join(c.fields[:6])}{', ...' if len(c.fields) > 6 else ''})" \
            if c.fields else ""
        click.echo(f"{c.action:9} {c.ref}{fields}")
    for name in result.forced:
        click.echo(f"force-sync ExternalSecret/{name}")
    changed = sum(1 for c in result.changes if c.action != "unchanged")
    summary = f"{env.name} ({client.context}, namespace {project.config.namespace}): "
    if not no_apply:
        summary += f"{verb} {changed} of {len(result.changes)} object(s)"
    if wait and not dry_run:
        summary += ("; " if not no_apply else "") + \
            f"{len(result.secrets)} Secret(s) synced and verified by hash in " \
            f"{result.waited:.1f}s"
    click.echo(summary + f" ({result.api_calls} API calls)")


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
        click.echo(render_json("doctor", report.findings, report.checked, {
            "environment": env.name, "namespace": report.namespace,
            "context": report.context, "apiCalls": report.api_calls,
            "nodes": [camel_dict(n) for n in report.nodes.values()],
            "edges": [list(e) for e in report.edges]}))
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
        print_json({"environment": env.name, "namespace": report.namespace,
                    "context": report.context, "drifted": len(report.drifted),
                    "keys": [camel_dict(k) for k in report.keys],
                    "apiCalls": report.api_calls})
    elif output == "sarif":
        from deparrow_secrets.findings.output import render_sarif
        from deparrow_secrets.operations.drift import DRIFT_RULES

        click.echo(render_sarif(report.findings(), DRIFT_RULES))
    else:
        print_table(["KEY", "SECRET", "STORE", "VERSION", "CLUSTER", "LAST SYNC", "STATE"],
                    [(k.key, k.secret, "yes" if k.in_store else "no", k.store_version,
                      "equal" if k.equal else ("differs" if k.equal is False else
                                               ("present" if k.in_secret else "absent")),
                      k.last_sync or None, k.state) for k in report.keys])
        fixes = list(dict.fromkeys(k.fix for k in report.drifted))
        click.echo("")
        if not report.drifted:
            click.echo(f"{env.name}: catalog, store and cluster agree "
                       f"({len(report.keys)} keys)")
        for fix in fixes:
            click.echo(f"fix: {fix}")
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
        print_json({"target": target, "environment": env.name, "namespace": report.namespace,
                    "secrets": report.secrets, "key": report.key,
                    "lastChange": report.last_change,
                    "workloads": [camel_dict(c) for c in report.workloads],
                    "pods": [camel_dict(c) for c in report.pods],
                    "apiCalls": report.api_calls})
        return
    what = f"key {report.key} (in {', '.join(report.secrets)})" if report.key \
        else f"Secret {target}"
    click.echo(f"{what}, environment {env.name}, namespace {report.namespace}"
               + (f"; data last changed {report.last_change}" if report.last_change else ""))
    click.echo("")
    print_table(["WORKLOAD", "HOW", "CONTAINERS", "KEYS", "RELOADER"],
                [(f"{c.kind}/{c.name}", ",".join(c.ways), ",".join(c.containers) or None,
                  ",".join(c.keys) or "all", "yes" if c.reloader else "no")
                 for c in report.workloads])
    click.echo("")
    print_table(["POD", "OWNER", "HOW", "STARTED", "STALE"],
                [(c.name, c.owner, ",".join(c.ways), c.started,
                  "yes" if c.stale else "no") for c in report.pods])
    stale = [c for c in report.pods if c.stale]
    if stale:
        owners = sorted({c.owner for c in stale if c.owner})
        click.echo("")
        click.echo(f"{len(stale)} pod(s) hold a copy older than the Secret; restart: "
                   + "; ".join(f"kubectl -n {report.namespace} rollout restart {o.lower()}"
                               for o in owners))
