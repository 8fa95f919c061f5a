"""Placeholder-looking values: what a copy-pasted example left behind.

`placeholder_kind` says which form matched, never the value, so a finding can explain
itself without printing a Secret's data.
"""

from __future__ import annotations

import re

_ANGLE = re.compile(r"<[A-Za-z0-9]+(?:[-_ .][A-Za-z0-9]+)+>|^<[^<>]+>$")
_YOUR = re.compile(r"(?:^|[^A-Za-z0-9])your[-_ ]", re.IGNORECASE)
_CHANGE_ME = re.compile(r"(?:change|replace|fill)[-_ ]?(?:me|it)(?![a-z])", re.IGNORECASE)
_DOC_CONSTANT = re.compile(
    r"(?<![A-Za-z0-9_])(?:ACCOUNT_ID|AWS_ACCOUNT_ID|REGION|TENANT_ID|CLIENT_ID|"
    r"SUBSCRIPTION_ID|OBJECT_ID|PROJECT_ID|CLUSTER_NAME)(?![A-Za-z0-9_])")
_AWS_DOC_ACCOUNT = re.compile(r"(?<!\d)123456789012(?!\d)")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_TOKENS = {"todo": "a TODO marker", "fixme": "a FIXME marker", "tbd": "a TBD marker",
           "placeholder": "the word placeholder", "example": "an example value or domain"}
_WHOLE = {"password", "secret", "changeit", "dummy", "test", "none", "null", "foo", "bar"}


def placeholder_kind(value: str, secret: bool = False) -> str | None:
    """A short description of the placeholder form `value` has, or None.

    `secret`: the value is a secret (Secret data, a literal, an env file), where a
    well-known dummy such as `password` is a placeholder too.
    """
    text = value.strip()
    if not text:
        return None
    if _ANGLE.search(text):
        return "an <angle-bracket> placeholder"
    if _YOUR.search(text):
        return "a 'your-...' placeholder"
    if _CHANGE_ME.search(text):
        return "a change-me / replace-me marker"
    if _DOC_CONSTANT.search(text):
        return "an upper-case documentation placeholder (such as ACCOUNT_ID or REGION)"
    if _AWS_DOC_ACCOUNT.search(text):
        return "AWS's documentation account id 123456789012"
    if secret and text.lower() in _WHOLE:
        return "a well-known dummy value"
    for token in _TOKEN.findall(text):
        lowered = token.lower()
        if lowered in _TOKENS:
            return _TOKENS[lowered]
        # Three x's alone, or four in a row anywhere: a run of three inside a random
        # urlsafe token is common enough (1 in 150,000) to make false positives.
        if set(lowered) == {"x"} and (len(lowered) >= 4 or len(lowered) == len(text) >= 3):
            return "an xxx filler"
    return None
