"""Options and printing shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from deparrow_secrets.operations.reports import camel_dict as camel_dict
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue

F = TypeVar("F", bound=Callable[..., Any])


DEFAULT_ENV = "dev"


def env_option(default: str = DEFAULT_ENV) -> Callable[[F], F]:
    """--env, with the same default (shown in --help) for every command."""
    return click.option("--env", "-e", "env_name", default=default, show_default=True,
                        metavar="ENV", help="Environment: dev, staging or production.")


def output_option(*choices: str) -> Callable[[F], F]:
    options = list(choices or ("text", "json"))
    return click.option("--output", "-o", "output", type=click.Choice(options),
                        default=options[0], show_default=True, help="Output format.")


def load_project(ctx: click.Context) -> Project:
    obj = ctx.find_root().obj or {}
    config_path = obj.get("config_path")
    catalog_path = obj.get("catalog_path")
    return Project.load(Path(config_path) if config_path else None, Path.cwd(),
                        Path(catalog_path) if catalog_path else None)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def prompt_value(label: str, key: str) -> SecretValue:
    """One value typed twice at a hidden prompt, checked as any supplied value."""
    from deparrow_secrets.operations.values_input import checked_value

    return checked_value(click.prompt(label, hide_input=True, confirmation_prompt=True),
                         "<prompt>", key)


def prompt_values(project: Project, keys: Iterable[str],
                  prefix: str = "") -> dict[str, SecretValue]:
    """A hidden prompt for each of `keys`, labelled with its catalog description."""
    return {key: prompt_value(f"{prefix}{key} ({project.catalog.values[key].description})",
                              key) for key in keys}
