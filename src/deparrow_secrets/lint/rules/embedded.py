"""Values written into the tree: secret-data-outside-dev, generator-literals-outside-dev,
placeholder-value. Values are never put into a message: keys and key paths only."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any

from deparrow_secrets.config.yamlfile import KeyPath, format_path
from deparrow_secrets.findings import ERROR, Finding, Rule, declare
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import WORKLOAD_KINDS, Document, walk_strings
from deparrow_secrets.lint.placeholders import placeholder_kind
from deparrow_secrets.render.validate import ESO_GROUP

RULES = declare(
    Rule("secret-data-outside-dev", ERROR,
         "A Kubernetes Secret with `data` or `stringData` outside the dev overlay: the "
         "value is committed with the manifests.",
         "Put the values in the environment's store and let an ExternalSecret create the "
         "Secret; embedded Secrets belong only in the dev overlay."),
    Rule("generator-literals-outside-dev", ERROR,
         "A kustomize secretGenerator with `literals` outside the dev overlay.",
         "Use an ExternalSecret in this environment; in dev, use `envs:` with the files "
         "`deparrow-secrets export` writes (git-ignored)."),
    Rule("placeholder-value", ERROR,
         "A value that looks like a placeholder (`your-...`, `changeme`, `<...>`, "
         "`REPLACE_ME`, `example`, `xxx`, `TODO`, `ACCOUNT_ID`, AWS's documentation account "
         "123456789012) in Secret data, secretGenerator literals, env files, ESO objects, "
         "ServiceAccount annotations, policies or the configuration. Secret values are "
         "reported by key name only.",
         "Replace it with the real value (secrets: in the store, via `deparrow-secrets set` "
         "or `provision`)."),
)

# Fields of ESO objects that name things (Kubernetes objects, remote objects and their
# properties, roles): placeholder-value judges values, not names.
OBJECT_NAME_FIELDS = frozenset({"name", "namespace", "kind", "key", "secretKey", "property",
                                "role", "roleId", "username", "mountPath", "version"})


def is_secret(doc: Document) -> bool:
    return doc.api_version == "v1" and doc.kind == "Secret"


def _where(ctx: LintContext, env: str | None) -> str:
    if env is None:
        return "in a file outside any overlay (it reaches every environment that includes it)"
    return f"in the {env} overlay"


def _literal_key(literal: Any) -> str:
    return str(literal).partition("=")[0].strip() or "?"


def check_secret_data(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.manifests(["Secret"]):
        if not is_secret(doc) or ctx.embedded_allowed(doc.file.env):
            continue
        for field in ("data", "stringData"):
            values = doc.data.get(field)
            if isinstance(values, Mapping) and values:
                keys = ", ".join(str(k) for k in values)
                yield ctx.finding(
                    "secret-data-outside-dev", doc, (field,),
                    f"Secret {doc.name or '(unnamed)'} embeds {len(values)} value(s) in "
                    f"`{field}` {_where(ctx, doc.file.env)}: {keys}")


def _generators(doc: Document) -> Iterator[tuple[int, Mapping[str, Any]]]:
    generators = doc.data.get("secretGenerator") if isinstance(doc.data, Mapping) else None
    if isinstance(generators, list):
        for i, gen in enumerate(generators):
            if isinstance(gen, Mapping):
                yield i, gen


def check_generator_literals(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.documents:
        if not doc.is_kustomization or ctx.embedded_allowed(doc.file.env):
            continue
        for i, gen in _generators(doc):
            literals = gen.get("literals")
            if isinstance(literals, list) and literals:
                keys = ", ".join(_literal_key(lit) for lit in literals)
                yield ctx.finding(
                    "generator-literals-outside-dev", doc, ("secretGenerator", i, "literals"),
                    f"secretGenerator {gen.get('name', '?')} has literal values "
                    f"{_where(ctx, doc.file.env)}: {keys}")


def _decoded(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _placeholder(ctx: LintContext, doc: Document, path: KeyPath, value: Any,
                 what: str, secret: bool = False) -> Finding | None:
    kind = placeholder_kind(value, secret) if isinstance(value, str) else None
    if kind is None:
        return None
    return ctx.finding("placeholder-value", doc, path, f"{doc.describe()}: {what} is {kind}")


def _pod_specs(doc: Document) -> Iterator[tuple[KeyPath, Mapping[str, Any]]]:
    paths: dict[str, KeyPath] = {"Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec",
                                                                 "template", "spec")}
    path = paths.get(doc.kind, ("spec", "template", "spec"))
    spec = doc.get(path)
    if isinstance(spec, Mapping):
        yield path, spec


def pod_specs(doc: Document) -> Iterator[tuple[KeyPath, Mapping[str, Any]]]:
    if doc.kind in WORKLOAD_KINDS:
        yield from _pod_specs(doc)


def check_placeholders(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.documents:
        if not doc.file.reported:
            continue
        data = doc.data
        if not isinstance(data, Mapping):
            continue
        if is_secret(doc):
            for key, value in (data.get("data") or {}).items() if isinstance(
                    data.get("data"), Mapping) else ():
                found = _placeholder(ctx, doc, ("data", key), _decoded(value),
                                     f"the value of {key} (data)", secret=True)
                if found:
                    yield found
            string_data = data.get("stringData")
            if isinstance(string_data, Mapping):
                for key, value in string_data.items():
                    found = _placeholder(ctx, doc, ("stringData", key), value,
                                         f"the value of {key} (stringData)", secret=True)
                    if found:
                        yield found
        elif doc.is_kustomization:
            for i, gen in _generators(doc):
                for j, literal in enumerate(gen.get("literals") or []):
                    if not isinstance(literal, str) or "=" not in literal:
                        continue
                    key, _, value = literal.partition("=")
                    found = _placeholder(ctx, doc, ("secretGenerator", i, "literals", j), value,
                                         f"the literal value of {key.strip()} in "
                                         f"secretGenerator {gen.get('name', '?')}", secret=True)
                    if found:
                        yield found
        elif doc.group == ESO_GROUP:
            for path, value in walk_strings(data.get("spec"), ("spec",)):
                if path and path[-1] in OBJECT_NAME_FIELDS:
                    continue  # a name chosen by the user: "example-db" is not a placeholder
                found = _placeholder(ctx, doc, path, value, format_path(path))
                if found:
                    yield found
        elif doc.kind == "ServiceAccount":
            annotations = doc.get(("metadata", "annotations"))
            for path, value in walk_strings(annotations, ("metadata", "annotations")):
                found = _placeholder(ctx, doc, path, value, f"annotation {path[-1]}")
                if found:
                    yield found
        else:
            for spec_path, spec in pod_specs(doc):
                for group in ("initContainers", "containers"):
                    for c, container in enumerate(spec.get(group) or []):
                        if not isinstance(container, Mapping):
                            continue
                        for e, env in enumerate(container.get("env") or []):
                            if isinstance(env, Mapping) and isinstance(env.get("value"), str):
                                found = _placeholder(
                                    ctx, doc, (*spec_path, group, c, "env", e, "value"),
                                    env["value"], f"the value of env {env.get('name', '?')} in "
                                    f"container {container.get('name', c)}")
                                if found:
                                    yield found


def env_file_entries(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, key, value) of KEY=VALUE lines (comments, blanks and `export ` handled)."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        yield number, key.strip(), value


def check_env_files(ctx: LintContext) -> Iterator[Finding]:
    for source in ctx.files:
        if source.kind != "env" or not source.reported:
            continue
        for number, key, value in env_file_entries(source.text):
            kind = placeholder_kind(value, secret=True)
            if kind:
                yield ctx.finding("placeholder-value", None, (key,),
                                  f"env file: the value of {key} is {kind}", file=source,
                                  line=number)
