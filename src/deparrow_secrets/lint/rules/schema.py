"""eso-v1beta1, eso-unknown-field, manifest-schema: `render.validate.validate_object`."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from deparrow_secrets.config.yamlfile import KeyPath
from deparrow_secrets.errors import MissingDependencyError
from deparrow_secrets.findings import ERROR, Finding, Rule, declare
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import Document
from deparrow_secrets.render.validate import ESO_GROUP, SchemaProblem, validate_object

RULES = declare(
    Rule("eso-v1beta1", ERROR,
         "An External Secrets Operator kind in external-secrets.io/v1beta1, which ESO no "
         "longer serves since 0.17 (kubectl: \"no matches for kind\").",
         "Change apiVersion to external-secrets.io/v1."),
    Rule("eso-unknown-field", ERROR,
         "A field the ESO CRD schema does not define under an ESO kind; ESO's CRDs do not "
         "reject it, they ignore it (the guide's `authManagedIdentity`).",
         "Remove or rename the field as the message says."),
    Rule("manifest-schema", ERROR,
         "Any other schema violation: ESO kinds against the ESO v2.9 CRDs, built-in kinds "
         "against the Kubernetes API schemas, kustomization fields.",
         "Fix the field as the message says."),
)

_ESO_V1 = f"{ESO_GROUP}/v1"
_INDEX = re.compile(r"\[(\d+)\]")

AZURE_AUTH_FIX = (
    "`authManagedIdentity` does not exist in ESO: use `authType: WorkloadIdentity` with "
    "`serviceAccountRef` (the ServiceAccount carries azure.workload.identity/client-id), or "
    "`authType: ManagedIdentity` with `identityId`")


def resolve_path(data: Any, dotted: str) -> KeyPath:
    """Turn validate_object's `a.b[0].c` back into a key path, keys with dots included."""
    path: list[str | int] = []
    rest = dotted
    node = data
    while rest:
        if rest.startswith("["):
            match = _INDEX.match(rest)
            if not match:
                break
            index = int(match.group(1))
            path.append(index)
            node = node[index] if isinstance(node, list) and index < len(node) else None
            rest = rest[match.end():].removeprefix(".")
            continue
        key = None
        if isinstance(node, Mapping):
            for candidate in sorted((k for k in node if isinstance(k, str)), key=len,
                                    reverse=True):
                if rest == candidate or rest.startswith((candidate + ".", candidate + "[")):
                    key = candidate
                    break
        if key is None:  # a field that is absent (a missing required one): the text up to "."
            key = re.split(r"[.\[]", rest, maxsplit=1)[0]
        path.append(key)
        node = node.get(key) if isinstance(node, Mapping) else None
        rest = rest[len(key):].removeprefix(".")
    return tuple(path)


def _split_message(message: str) -> tuple[str, str | None]:
    what, sep, fix = message.partition("; ")
    return (what, fix) if sep else (message, None)


def _problems(doc: Document) -> Iterator[tuple[SchemaProblem, bool]]:
    """(problem, found-by-the-v1-schema-of-a-v1beta1-object)."""
    data = doc.data
    problems = validate_object(data)
    yield from ((p, False) for p in problems)
    if doc.group == ESO_GROUP and any(p.rule == "eso-v1beta1" for p in problems):
        # The object must move to v1 anyway: check it against v1 now, so the unknown
        # fields (the guide's authManagedIdentity) show up in the same run.
        moved = copy.deepcopy(dict(data))
        moved["apiVersion"] = _ESO_V1
        yield from ((p, True) for p in validate_object(moved) if p.rule != "eso-v1beta1")


def check_schema(ctx: LintContext) -> Iterator[Finding]:
    skipped_kinds: set[str] = set()
    for doc in ctx.manifests():
        if not doc.file.reported:
            continue
        try:
            found = list(_problems(doc))
        except MissingDependencyError:
            skipped_kinds.add(doc.kind)
            continue
        eso = doc.group == ESO_GROUP
        for problem, as_v1 in found:
            path = resolve_path(doc.data, problem.path) if problem.path else ()
            what, fix = _split_message(problem.message)
            if problem.rule == "eso-v1beta1":
                rule = "eso-v1beta1"
            elif problem.rule == "unknown-field" and eso:
                rule = "eso-unknown-field"
            else:
                rule = "manifest-schema"
            if path and path[-1] == "authManagedIdentity":
                fix = AZURE_AUTH_FIX
            elif fix:
                fix = fix[0].upper() + fix[1:]
            if as_v1:
                what += f" (checked against {_ESO_V1})"
            yield ctx.finding(rule, doc, path, f"{doc.describe()}: {what}", fix)
    if skipped_kinds:
        ctx.notes.append("built-in kinds not schema-checked (" + ", ".join(sorted(skipped_kinds))
                         + "): install kubernetes-validate")
