"""migrate: embedded Secrets into the store, verified in the cluster before removal."""

from __future__ import annotations

from typing import Any

import click

from deparrow_secrets.cli.cluster_cmds import cluster_options, progress_printer
from deparrow_secrets.cli.common import env_option, load_project, output_option, print_json


@click.command()
@env_option()
@click.option("--from", "source", type=click.Choice(["cluster", "files"]), required=True,
              help="Where the embedded Secrets are: the cluster, or files (a "
                   "kustomization's secretGenerator, Secret manifests).")
@click.argument("paths", nargs=-1, metavar="[PATH|SECRET]...")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--force", is_flag=True,
              help="Replace store values that differ from the migrated ones.")
@click.option("--delete-original", is_flag=True,
              help="Also remove the cluster's leftovers that hold values (old "
                   "hash-suffixed generator Secrets, last-applied annotations).")
@click.option("--rotate-leaked", is_flag=True,
              help="Rotate the migrated values found in git history, in the same run.")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait for ESO to sync.")
@cluster_options
@output_option()
@click.pass_context
def migrate(ctx: click.Context, env_name: str, source: str, paths: tuple[str, ...],
            dry_run: bool, force: bool, delete_original: bool, rotate_leaked: bool,
            timeout: float, kubeconfig: str | None, kube_context: str | None,
            output: str) -> None:
    """Move ENV's embedded Secrets into its store; remove them only once the cluster
    serves the same bytes through ESO (verified by hash).

    PATHs (with --from files) are kustomizations, their directories or Secret manifests;
    with --from cluster, the Secrets to migrate (default: the catalog's). Exit 5 when
    the store holds a different value (nothing written; --force replaces it), 1 when
    ESO does not converge (the embedded Secrets are left as they were; rerun resumes).
    """
    from deparrow_secrets.operations.migrate import MigrateOptions
    from deparrow_secrets.operations.migrate import migrate as run_migrate

    project = load_project(ctx)
    env = project.environment(env_name)
    opts = MigrateOptions(source, list(paths), dry_run=dry_run, force=force,
                          delete_original=delete_original, rotate_leaked=rotate_leaked,
                          timeout=timeout)

    def open_store(create: bool = True) -> Any:
        return project.open_store(env, create=create)

    need_cluster = env.uses_eso or source == "cluster"
    if need_cluster:
        from deparrow_secrets.cli.cluster_cmds import _client

        with _client(kubeconfig, kube_context) as client:
            result = run_migrate(project, env, client, open_store, opts,
                                 progress=None if output == "json" else progress_printer())
    else:
        result = run_migrate(project, env, None, open_store, opts)
    if output == "json":
        print_json(result.to_json())
    else:
        _print_text(result)
    if result.rotation_exit:
        ctx.exit(result.rotation_exit)


def _print_text(result: Any) -> None:
    from deparrow_secrets.cli.common import print_table

    for line in result.heading_lines():
        click.echo(line)
    if result.plan.keys:
        print_table(["KEY", "SECRET", "FROM", "STORE", "ACTION"], result.table_rows())
    for line in result.report_lines():
        click.echo(line)
