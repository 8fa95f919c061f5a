"""The values to look for: an environment's secrets and the byte patterns they leave.

A value is searched as itself and in base64 (Kubernetes Secret `data` is base64): the
three alignments of its base64 form, each without the characters that depend on the
bytes around it, so the value is found inside a longer base64 blob too. Only values
whose catalog source is `generated` or `user` and that are at least MIN_LENGTH long
are searched: defaults such as `deparrow` or `admin` are not secrets.

Patterns are secret material: `Needle` never shows its pattern in a repr.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.errors import InputError
from deparrow_secrets.project import Project
from deparrow_secrets.secret import SecretValue

MIN_LENGTH = 8
SECRET_SOURCES = ("generated", "user")
PLAIN = "plain"
BASE64 = "base64"


class Needle:
    """One byte pattern, the catalog keys whose value it comes from, and its encoding."""

    __slots__ = ("encoding", "keys", "pattern")

    def __init__(self, pattern: bytes, keys: tuple[str, ...], encoding: str) -> None:
        self.pattern = pattern
        self.keys = keys
        self.encoding = encoding

    def __repr__(self) -> str:
        return f"Needle(keys={self.keys!r}, encoding={self.encoding!r}, pattern=<redacted>)"

    @property
    def label(self) -> str:
        return ",".join(self.keys)


def base64_forms(raw: bytes) -> list[bytes]:
    """The parts of base64(raw) that do not depend on neighbouring bytes, per alignment."""
    forms = []
    for offset, drop in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * offset + raw)
        end = ((offset + len(raw)) * 8) // 6
        form = encoded[drop:end]
        if len(form) >= MIN_LENGTH:
            forms.append(form)
    return forms


def needles(values: Mapping[str, SecretValue]) -> list[Needle]:
    """Patterns for every value, longest first; a value shared by keys is one needle."""
    by_pattern: dict[tuple[bytes, str], list[str]] = {}
    for key, value in values.items():
        raw = value.reveal().encode("utf-8")
        if len(raw) < MIN_LENGTH:
            continue
        by_pattern.setdefault((raw, PLAIN), []).append(key)
        for form in base64_forms(raw):
            if form != raw:
                by_pattern.setdefault((form, BASE64), []).append(key)
    out = [Needle(pattern, tuple(dict.fromkeys(keys)), encoding)
           for (pattern, encoding), keys in by_pattern.items()]
    return sorted(out, key=lambda n: (-len(n.pattern), n.keys))


def environment_values(project: Project, env: EnvironmentConfig,
                       remote: bool = False) -> tuple[dict[str, SecretValue], str | None]:
    """(key -> value of every secret-like catalog value present, note or None).

    The embedded store is read for a `local` environment; any other environment's store
    only with `remote` (it needs credentials and a network), else InputError (exit 2).
    """
    if env.uses_eso and not remote:
        raise InputError(
            f"the values of {env.name} live in its {env.provider} store, which scan reads "
            "only when asked", hint=f"add --remote to read them from there (with the "
            f"{env.provider} credentials of this shell), or scan --env dev")
    store_path = project.local_store_path(env)
    if store_path is not None and not store_path.exists():
        return {}, (f"{env.name} has no embedded store yet "
                    f"({store_path}): no known values to look for")
    layout = project.layout(env)
    wanted = [v.name for v in project.catalog.values.values() if v.source in SECRET_SOURCES]
    with project.open_store(env, create=False) as store:
        read = layout.read(store, wanted)
    values = {key: got.value for key, got in read.items()
              if got.value is not None and len(got.value) >= MIN_LENGTH}
    note = None if values else f"{env.name} has no generated or user-supplied values to look for"
    return values, note
