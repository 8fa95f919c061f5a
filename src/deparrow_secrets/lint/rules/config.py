"""The configuration file: store-shared-between-envs, refresh-disabled and
placeholder-value on its store settings (checked when the file is being linted)."""

from __future__ import annotations

from collections.abc import Iterator

from deparrow_secrets.config.yamlfile import format_path
from deparrow_secrets.findings import Finding
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import walk_strings
from deparrow_secrets.lint.placeholders import placeholder_kind


def check_config(ctx: LintContext) -> Iterator[Finding]:
    project = ctx.project
    source = ctx.config_file
    if project is None or source is None or not source.reported:
        return
    config = project.config
    doc = config.source
    if doc is None:
        return

    def line(*path: str | int) -> int | None:
        return doc.line(tuple(path))

    seen: dict[tuple[str, ...], str] = {}
    for env in config.environments.values():
        location = env.store.location(env.name)
        if location in seen:
            yield ctx.finding(
                "store-shared-between-envs", None, ("environments", env.name, "store"),
                f"environments {seen[location]} and {env.name} use the same {env.provider} "
                "store location", fix="Give each environment its own location (Vault path, "
                "AWS prefix, Key Vault, or local store file)", file=source,
                line=line("environments", env.name, "store"))
        else:
            seen[location] = env.name
        if env.uses_eso and env.refresh_interval.strip() in ("0", "0s", "0m", "0h"):
            yield ctx.finding(
                "refresh-disabled", None, ("environments", env.name, "refreshInterval"),
                f"environment {env.name}: refreshInterval 0 renders ExternalSecrets that never "
                "refresh", fix="Use a duration such as 1h", file=source,
                line=line("environments", env.name, "refreshInterval"))
    environments = doc.data.get("environments") if isinstance(doc.data, dict) else None
    for path, value in walk_strings(environments, ("environments",)):
        if "store" not in path or path[-1] in ("role", "policy", "authMount"):
            continue  # names chosen by the user, not values to fill in
        kind = placeholder_kind(value)
        if kind:
            yield ctx.finding(
                "placeholder-value", None, path,
                f"configuration: {format_path(path)} is {kind}",
                fix="Put the real address, id or ARN of this environment's store here",
                file=source, line=doc.line(path))
