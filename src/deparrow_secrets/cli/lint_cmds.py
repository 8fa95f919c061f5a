"""lint and scan: keep mistakes out of the manifests and secret values out of git."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from deparrow_secrets.cli.common import env_option, load_project, output_option
from deparrow_secrets.errors import EXIT_FINDINGS
from deparrow_secrets.project import Project

if TYPE_CHECKING:
    from deparrow_secrets.findings import Rule
    from deparrow_secrets.lint.engine import LintResult
    from deparrow_secrets.scan.engine import ScanResult


def _project_if_configured(ctx: click.Context) -> Project | None:
    """The project when a configuration file is given or present, else None."""
    from deparrow_secrets.config.settings import CONFIG_FILE

    obj = ctx.find_root().obj or {}
    if obj.get("config_path") or (Path.cwd() / CONFIG_FILE).is_file():
        return load_project(ctx)
    return None


def _lint_and_scan_rules() -> dict[str, Rule]:
    """What `lint --list-rules` shows and `--ignore` takes: lint's rules, then scan's."""
    from deparrow_secrets.lint.rules import LINT_RULES
    from deparrow_secrets.scan.engine import SCAN_RULES

    return {r.id: r for r in (*LINT_RULES, *SCAN_RULES)}


def _print_rules() -> None:
    for rule in _lint_and_scan_rules().values():
        click.echo(f"{rule.id:31} {rule.tool:5} {rule.severity:8} {rule.title}")


def _check_rule_ids(ctx: click.Context, param: click.Parameter,
                    value: tuple[str, ...]) -> tuple[str, ...]:
    known = _lint_and_scan_rules()
    unknown = [v for v in value if v not in known]
    if unknown:
        raise click.BadParameter(f"unknown rule {', '.join(unknown)} (see `lint --list-rules`)")
    return value


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--ignore", "ignore", multiple=True, metavar="RULE", callback=_check_rule_ids,
              help="Skip a rule (repeatable).")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@output_option("text", "json", "sarif")
@click.pass_context
def lint(ctx: click.Context, paths: tuple[str, ...], ignore: tuple[str, ...],
         list_rules: bool, output: str) -> None:
    """Check Kubernetes YAML, the configuration and IAM/Vault policy files.

    With no PATH: the configured deparrow/k8s tree and deparrow-secrets.yaml. A
    directory is read as git sees it (.gitignore honoured). Exit 0 clean, 1 findings,
    2 usage. A YAML comment `# deparrow-secrets: ignore[RULE]` on a line, or the line
    above it, silences RULE there.
    """
    if list_rules:
        _print_rules()
        return
    from deparrow_secrets.lint.engine import lint as run_lint

    result = run_lint([Path(p) for p in paths], _project_if_configured(ctx), ignore)
    _print(result, output)
    if result.findings:
        ctx.exit(EXIT_FINDINGS)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@env_option(default="dev")
@click.option("--remote", is_flag=True,
              help="Read the values from the environment's configured remote store "
              "(needed for any environment not on the embedded store).")
@click.option("--history", is_flag=True,
              help="Also search every commit of every ref (added lines, commit messages).")
@click.option("--generic/--no-generic", default=False, show_default=True,
              help="Also run detect-secrets' generic detectors on the files.")
@click.option("--max-file-size", "max_mb", type=click.IntRange(min=1), default=50,
              show_default=True, metavar="MB", help="Skip files larger than this.")
@output_option("text", "json", "sarif")
@click.pass_context
def scan(ctx: click.Context, paths: tuple[str, ...], env_name: str, remote: bool,
         history: bool, generic: bool, max_mb: int, output: str) -> None:
    """Find ENV's secret values (plain or base64) in files and, with --history, in git.

    Reads the working tree as git sees it (.gitignore honoured; the embedded store and
    exported env files skipped), or the PATHs given. Reports file, line, key name and a
    redacted excerpt; never a value. Exit 0 clean, 1 findings, 2 usage.
    """
    from deparrow_secrets.scan.engine import scan_environment

    project = load_project(ctx)
    result = scan_environment(project, project.environment(env_name), [Path(p) for p in paths],
                              remote=remote, history=history, generic=generic,
                              max_file_bytes=max_mb * 1024 * 1024)
    _print(result, output)
    if result.findings:
        ctx.exit(EXIT_FINDINGS)


def _print(result: LintResult | ScanResult, output: str) -> None:
    if output == "json":
        click.echo(result.to_json())
    elif output == "sarif":
        click.echo(result.to_sarif())
    else:
        for line, to_stderr in result.report_lines():
            click.echo(line, err=to_stderr)
