"""The catalog: which values an application needs and which Kubernetes Secrets carry them.

Loaded from YAML (the DEparrow catalog ships in `data/`); no code names a key.
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import TYPE_CHECKING

from deparrow_secrets.config.yamlfile import Checker, KeyPath, Located, format_path, load_yaml
from deparrow_secrets.errors import CatalogError
from deparrow_secrets.record import field, record

if TYPE_CHECKING:
    from datetime import timedelta

REQUIREMENTS = ["required", "ha", "optional"]
SOURCES = ["generated", "default", "user"]
# string.ascii_letters and string.digits, written out: `string` costs render's start-up.
_LETTERS_DIGITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ALPHABETS: dict[str, str] = {
    "alphanumeric": _LETTERS_DIGITS,
    "urlsafe": _LETTERS_DIGITS + "-_",
    "hex": "0123456789abcdef",
    "printable": _LETTERS_DIGITS + "!#%+,-./:=?@^_~",
}
KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
K8S_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DEFAULT_GROUP = "secrets"
# A value's maximum age before it is due for rotation: a whole number and a unit
# (h hours, d days, w weeks), such as 90d. No months or years: their length varies.
MAX_AGE_PATTERN = r"([1-9][0-9]{0,5})([hdw])"
MAX_AGE_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_max_age(text: str) -> timedelta | None:
    """`90d` -> 90 days; None when `text` is not of the form MAX_AGE_PATTERN."""
    from datetime import timedelta  # only where an age is computed: start-up stays light

    m = re.fullmatch(MAX_AGE_PATTERN, text)
    if m is None:
        return None
    return timedelta(hours=int(m.group(1)) * MAX_AGE_UNIT_HOURS[m.group(2)])


@record
class GeneratePolicy:
    length: int
    alphabet: str

    @property
    def characters(self) -> str:
        return ALPHABETS[self.alphabet]


@record
class CatalogValue:
    name: str
    description: str
    requirement: str
    source: str
    generate: GeneratePolicy | None = None
    default: str | None = None
    min_length: int = 1
    group: str = DEFAULT_GROUP
    property: str | None = None
    max_age: str | None = None
    """As written (`90d`); `max_age_delta` is its length. None: never due for rotation."""
    # Keys that must change together with this one (`rotateWith:`): rotate takes them all.
    rotate_with: tuple[str, ...] = ()

    @builtins.property  # `property` is a field of this class
    def max_age_delta(self) -> timedelta | None:
        return parse_max_age(self.max_age) if self.max_age else None

    def needed(self, ha: bool, optional_keys: frozenset[str] = frozenset()) -> bool:
        if self.requirement == "required":
            return True
        if self.requirement == "ha":
            return ha
        return self.name in optional_keys


@record
class KubernetesSecret:
    name: str
    keys: tuple[str, ...]


@record
class Catalog:
    source: str
    values: dict[str, CatalogValue]
    secrets: tuple[KubernetesSecret, ...]
    # Where each key was in the file, so later checks can name file and line.
    doc: Located | None = field(default=None, repr=False, compare=False)

    def needed(self, ha: bool, optional_keys: frozenset[str] = frozenset()) -> list[CatalogValue]:
        """The values one environment must have, in catalog order."""
        return [v for v in self.values.values() if v.needed(ha, optional_keys)]

    def rotation_group(self, key: str) -> list[str]:
        """`key` and every key linked to it by `rotateWith` (either way, transitively), in
        catalog order: the keys one rotation must change together."""
        linked: dict[str, set[str]] = {name: set() for name in self.values}
        for value in self.values.values():
            for other in value.rotate_with:
                linked[value.name].add(other)
                linked[other].add(value.name)
        group, todo = {key}, [key]
        while todo:
            for other in linked.get(todo.pop(), ()):
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return [name for name in self.values if name in group]

    def secret_keys(self, secret: KubernetesSecret, ha: bool,
                    optional_keys: frozenset[str] = frozenset()) -> list[str]:
        return [k for k in secret.keys if self.values[k].needed(ha, optional_keys)]

    def error(self, path: KeyPath, message: str, hint: str | None = None) -> CatalogError:
        """A CatalogError located at `path` of the catalog file (with its line if known)."""
        if self.doc is not None:
            error = self.doc.error(CatalogError, path, message, hint)
            assert isinstance(error, CatalogError)
            return error
        return CatalogError(message, file=self.source, key_path=format_path(path), hint=hint)


def default_catalog_path() -> Path:
    # Beside this module (package data); importlib.resources would cost a few ms of start-up.
    return Path(__file__).resolve().parent / "data" / "deparrow-catalog.yaml"


def load_catalog(path: Path | None = None) -> Catalog:
    doc = load_yaml(path or default_catalog_path(), CatalogError)
    return parse_catalog(doc)


def parse_catalog(doc: Located) -> Catalog:
    c = Checker(doc, CatalogError)
    top = c.mapping((), doc.data, ["values", "secrets"], required=("values", "secrets"))
    raw_values = c.mapping(("values",), top["values"])
    values: dict[str, CatalogValue] = {}
    for name, raw in raw_values.items():
        values[name] = _parse_value(c, name, raw)

    raw_secrets = c.mapping(("secrets",), top["secrets"])
    secrets = []
    homes: dict[str, str] = {}
    for sname, raw_keys in raw_secrets.items():
        path = ("secrets", sname)
        c.string(path, sname, pattern=K8S_NAME_PATTERN, what="Kubernetes Secret name")
        keys = c.string_list(path, raw_keys)
        if not keys:
            raise c.fail(path, "a Secret needs at least one key",
                         hint="list the keys it carries, or remove the Secret")
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key not in values:
                raise c.fail((*path, i), f"'{key}' is not defined under values",
                             hint="add it under `values:` or remove it from this Secret")
            if key in seen:
                raise c.fail((*path, i), f"'{key}' is listed twice in this Secret",
                             hint="remove the second entry")
            seen.add(key)
        secrets.append(KubernetesSecret(sname, tuple(keys)))
        for key in keys:
            homes.setdefault(key, sname)
    for name in values:
        if name not in homes:
            raise c.fail(("values", name), f"'{name}' is in no Kubernetes Secret",
                         hint="list it under `secrets:` or remove it")
    _check_remote_homes(c, values)
    _check_rotation_groups(c, values)
    return Catalog(doc.file, values, tuple(secrets), doc)


def _parse_value(c: Checker, name: str, raw: object) -> CatalogValue:
    path: tuple[str, ...] = ("values", name)
    c.string(path, name, pattern=KEY_PATTERN, what="key name")
    m = c.mapping(path, raw, ["description", "requirement", "source", "generate", "default",
                              "minLength", "remote", "maxAge", "rotateWith"],
                  required=("requirement", "source"))
    requirement = c.choice((*path, "requirement"), m["requirement"], REQUIREMENTS)
    source = c.choice((*path, "source"), m["source"], SOURCES)
    description = c.string((*path, "description"), m.get("description", ""))
    generate = None
    default = None
    if source == "generated":
        g = c.mapping((*path, "generate"), m.get("generate"), ["length", "alphabet"])
        length = c.integer((*path, "generate", "length"), g.get("length", 32), 8, 4096)
        alphabet = c.choice((*path, "generate", "alphabet"), g.get("alphabet", "alphanumeric"),
                            list(ALPHABETS))
        generate = GeneratePolicy(length, alphabet)
    elif "generate" in m:
        raise c.fail((*path, "generate"), "`generate` only goes with `source: generated`",
                     hint="remove `generate:` or set `source: generated`")
    if source == "default":
        if "default" not in m:
            raise c.fail(path, "`source: default` needs a `default:` value",
                         hint=f"add `default:` under {'.'.join(path)}")
        default = c.string((*path, "default"), m["default"])
    elif "default" in m:
        raise c.fail((*path, "default"), "`default` only goes with `source: default`",
                     hint="remove `default:` or set `source: default`")
    min_length = c.integer((*path, "minLength"), m.get("minLength", 1), 1, 4096)
    if generate is not None and "minLength" not in m:
        min_length = generate.length
    remote = c.mapping((*path, "remote"), m.get("remote"), ["group", "property"])
    group = c.string((*path, "remote", "group"), remote.get("group", DEFAULT_GROUP),
                     pattern=r"[A-Za-z0-9_.-]+", what="remote group name")
    prop = remote.get("property")
    if prop is not None:
        prop = c.string((*path, "remote", "property"), prop, pattern=KEY_PATTERN,
                        what="remote property name")
    max_age = None
    if m.get("maxAge") is not None:
        max_age = c.string((*path, "maxAge"), m["maxAge"])
        if re.fullmatch(MAX_AGE_PATTERN, max_age) is None:
            raise c.fail((*path, "maxAge"), f"'{max_age}' is not a valid maximum age",
                         hint="write a whole number and a unit: h (hours), d (days) or "
                         "w (weeks), such as 90d")
    rotate_with = tuple(c.string_list((*path, "rotateWith"), m.get("rotateWith", [])))
    return CatalogValue(name, description, requirement, source, generate, default,
                        min_length, group, prop, max_age, rotate_with)


def _check_rotation_groups(c: Checker, values: dict[str, CatalogValue]) -> None:
    for v in values.values():
        for i, other in enumerate(v.rotate_with):
            if other not in values:
                raise c.fail(("values", v.name, "rotateWith", i),
                             f"'{other}' is not defined under values",
                             hint="list keys of this catalog that must change together "
                                  "with this one, or remove the entry")
            if other == v.name:
                raise c.fail(("values", v.name, "rotateWith", i),
                             "a key cannot rotate with itself", hint="remove the entry")


def _check_remote_homes(c: Checker, values: dict[str, CatalogValue]) -> None:
    taken: dict[tuple[str, str], str] = {}
    for v in values.values():
        home = (v.group, v.property or v.name)
        if home in taken:
            raise c.fail(("values", v.name, "remote"),
                         f"'{v.name}' and '{taken[home]}' share the remote home "
                         f"{home[0]}.{home[1]}",
                         hint="each value needs its own group/property")
        taken[home] = v.name
