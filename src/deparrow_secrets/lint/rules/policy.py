"""Identity policies in files: IAM policy documents (JSON) and Vault policies (HCL).

policy-too-broad: a resource that covers more than one environment (its literal part,
before the first wildcard, names no environment: `deparrow/*`, `*`), or NotResource.
policy-wildcard-action: IAM actions with `*` or NotAction; Vault's sudo/root.
ARN placeholders (REGION, ACCOUNT_ID) are placeholder-value findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from deparrow_secrets.config.yamlfile import KeyPath
from deparrow_secrets.findings import ERROR, Finding, Rule, declare
from deparrow_secrets.lint.context import LintContext
from deparrow_secrets.lint.documents import Document, SourceFile
from deparrow_secrets.lint.placeholders import placeholder_kind

RULES = declare(
    Rule("policy-too-broad", ERROR,
         "An IAM or Vault policy whose resources cover more than one environment "
         "(`deparrow/*`, `*`, NotResource).",
         "Scope it to one environment: arn:...:secret:deparrow/<env>/* or "
         "secret/data/deparrow/<env>."),
    Rule("policy-wildcard-action", ERROR,
         "An IAM policy with wildcard actions (`secretsmanager:*`, `*`, `Get*`, NotAction) "
         "or a Vault policy granting sudo/root.",
         "List the actions ESO needs: secretsmanager:GetSecretValue (DescribeSecret only "
         "for metadataPolicy: Fetch and PushSecret; Vault: read)."),
)

_NAME_RESOURCES = re.compile(r"^arn:[^:]*:(secretsmanager|ssm):[^:]*:[^:]*:(?:secret:|parameter/)"
                             r"(?P<name>.*)$")
_VAULT_PATH = re.compile(r'(?m)^[ \t]*path[ \t]+"(?P<path>[^"]*)"[ \t]*\{(?P<body>[^}]*)\}')
_CAPABILITIES = re.compile(r"capabilities\s*=\s*\[(?P<list>[^\]]*)\]")
_VAULT_DANGEROUS = ("sudo", "root")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def too_broad(pattern: str, envs: set[str], wildcards: str = "*?") -> bool:
    """True when a path pattern with wildcards covers more than one environment."""
    cut = min((i for i, ch in enumerate(pattern) if ch in wildcards), default=None)
    if cut is None:
        return False
    literal = pattern[:cut]
    complete = literal.split("/")[:-1]  # the last piece is cut by the wildcard
    return not any(segment in envs for segment in complete)


def vault_path_too_broad(pattern: str, envs: set[str]) -> bool:
    """True when a Vault policy path covers more than one environment.

    Vault has two wildcards: `+` stands for exactly one path segment (anywhere), `*` for
    any suffix (at the end only). A segment naming an environment scopes the path to it
    even after a `+` (`secret/data/+/staging`); one after a `*` cannot."""
    if "*" not in pattern and "+" not in pattern:
        return False
    for segment in pattern.split("/"):
        if "*" in segment:
            return True  # everything from here on is open
        if "+" in segment:
            continue
        if segment in envs:
            return False
    return True


def _policy_documents(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath,
                                                                       Mapping[str, Any]]]:
    """IAM policy documents anywhere in a document (`PolicyDocument`, `document`, ...)."""
    if isinstance(node, Mapping):
        statements = node.get("Statement")
        if any(isinstance(s, Mapping) and "Effect" in s for s in _as_list(statements)):
            yield path, node
            return
        for key, value in node.items():
            yield from _policy_documents(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _policy_documents(value, (*path, i))


def _iam_findings(ctx: LintContext, doc: Document, base: KeyPath,
                  policy: Mapping[str, Any]) -> Iterator[Finding]:
    envs = ctx.env_names
    statements = policy.get("Statement")
    many = isinstance(statements, list)
    for s, statement in enumerate(_as_list(statements)):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        spath: KeyPath = (*base, "Statement", s) if many else (*base, "Statement")
        sid = f"statement {statement.get('Sid') or s}"
        if "NotAction" in statement:
            yield ctx.finding("policy-wildcard-action", doc, (*spath, "NotAction"),
                              f"IAM policy {sid}: Allow with NotAction grants every other "
                              "action")
        for a, action in enumerate(_as_list(statement.get("Action"))):
            if isinstance(action, str) and ("*" in action or "?" in action):
                apath = (*spath, "Action", a) if isinstance(statement.get("Action"),
                                                           list) else (*spath, "Action")
                yield ctx.finding("policy-wildcard-action", doc, apath,
                                  f"IAM policy {sid}: wildcard action {action}")
        if "NotResource" in statement:
            yield ctx.finding("policy-too-broad", doc, (*spath, "NotResource"),
                              f"IAM policy {sid}: Allow with NotResource covers every other "
                              "resource")
        resources = statement.get("Resource")
        for r, resource in enumerate(_as_list(resources)):
            if not isinstance(resource, str):
                continue
            rpath = (*spath, "Resource", r) if isinstance(resources, list) else (
                *spath, "Resource")
            kind = placeholder_kind(resource)
            if kind:
                yield ctx.finding("placeholder-value", doc, rpath,
                                  f"IAM policy {sid}: resource ARN has {kind}",
                                  fix="Put the real region and account id into the ARN "
                                  "(`deparrow-secrets policy` prints them filled in)")
            match = _NAME_RESOURCES.match(resource)
            if resource.strip() == "*":
                yield ctx.finding("policy-too-broad", doc, rpath,
                                  f"IAM policy {sid}: Resource \"*\" covers every secret of "
                                  "every environment")
            elif match and too_broad(match.group("name"), envs):
                yield ctx.finding("policy-too-broad", doc, rpath,
                                  f"IAM policy {sid}: resource {resource} covers more than "
                                  "one environment")


def check_iam_policies(ctx: LintContext) -> Iterator[Finding]:
    for doc in ctx.documents:
        if doc.file.kind not in ("json", "yaml") or doc.is_manifest:
            continue
        for base, policy in _policy_documents(doc.data):
            yield from _iam_findings(ctx, doc, base, policy)


def _strip_comments(text: str) -> str:
    """Blank out # and // comments (keeping offsets) so they cannot match."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        in_string = False
        for i, ch in enumerate(body):
            if ch == '"':
                in_string = not in_string
            elif not in_string and (ch == "#" or body.startswith("//", i)):
                body = body[:i] + " " * (len(body) - i)
                break
        out.append(body + end)
    return "".join(out)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def vault_policy_findings(ctx: LintContext, source: SourceFile) -> Iterator[Finding]:
    text = _strip_comments(source.text)
    envs = ctx.env_names
    for match in _VAULT_PATH.finditer(text):
        path = match.group("path")
        line = _line_of(text, match.start("path"))
        key = (f'path "{path}"',)
        if vault_path_too_broad(path, envs):
            yield ctx.finding("policy-too-broad", None, key,
                              f'Vault policy: path "{path}" covers more than one environment',
                              file=source, line=line)
        caps = _CAPABILITIES.search(match.group("body"))
        if caps:
            granted = {c.strip().strip('"') for c in caps.group("list").split(",")}
            for cap in _VAULT_DANGEROUS:
                if cap in granted:
                    yield ctx.finding(
                        "policy-wildcard-action", None, (*key, "capabilities"),
                        f'Vault policy: path "{path}" grants {cap}, which allows everything '
                        "on it", fix="Grant only read (ESO reads secrets; list where "
                        "dataFrom.find is used)", file=source,
                        line=_line_of(text, match.start("body") + caps.start()))


def check_vault_policies(ctx: LintContext) -> Iterator[Finding]:
    for source in ctx.files:
        if source.kind == "hcl" and source.reported:
            yield from vault_policy_findings(ctx, source)
