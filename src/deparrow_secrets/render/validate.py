"""Offline schema validation of rendered (or hand-written) Kubernetes manifests.

- External Secrets Operator kinds (group `external-secrets.io`: SecretStore,
  ClusterSecretStore, ExternalSecret, PushSecret) are checked against JSON Schemas
  derived from the ESO v2.9.0 CRDs (`schemas/eso.json`, made by
  `tools/derive_eso_schemas.py`). Unknown fields are errors, like `kubeconform -strict`.
  CEL rules of the CRDs (`x-kubernetes-validations`) are not checked.
- Built-in Kubernetes kinds (Namespace, ServiceAccount, Secret, RBAC, Deployment, ...)
  are checked with the optional `kubernetes_validate` package in strict mode against
  Kubernetes `KUBERNETES_VERSION`. It stops at the first error of an object. A kind
  that Kubernetes does not have in a built-in group (typo, removed API version such as
  rbac.authorization.k8s.io/v1beta1) is an "unknown-kind" problem. A `v1 List` is
  validated item by item.
- kustomize's Kustomization/Component files get basic shape checks (field names and
  types of the top level; kustomize rejects unknown fields).
- Other kinds (CRDs of other operators) are not checked; a missing apiVersion or kind
  is an "unknown-kind" problem.
- ESO objects are checked as the API server would store them: `null` values are
  dropped where the CRD schema does not allow null (structural schema pruning), then
  the CRD's defaults are filled in (apiextensions defaulting runs after that pruning),
  so a Vault `auth.kubernetes` without `mountPath` is valid, as the API server fills in
  `kubernetes`.

Problem messages never contain field values, so a Secret's data/stringData cannot leak.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator, ValidationError

from deparrow_secrets.errors import MissingDependencyError

__all__ = [
    "ESO_GROUP",
    "KUBERNETES_VERSION",
    "SchemaProblem",
    "is_eso_kind",
    "validate_object",
]

ESO_GROUP = "external-secrets.io"
KUBERNETES_VERSION = "1.33"
"""Kubernetes version whose API schemas built-in kinds are checked against (oldest supported)."""

RULE_ESO_V1BETA1 = "eso-v1beta1"
RULE_UNKNOWN_FIELD = "unknown-field"
RULE_SCHEMA = "schema"
RULE_UNKNOWN_KIND = "unknown-kind"

_KUSTOMIZE_GROUP = "kustomize.config.k8s.io"
_KUSTOMIZE_KINDS = {"Kustomization": "v1beta1", "Component": "v1alpha1"}
# Top-level fields of kustomize v5 (api/types/kustomization.go); kustomize rejects others.
_KUSTOMIZE_STRING_FIELDS = frozenset({"namePrefix", "nameSuffix", "namespace"})
_KUSTOMIZE_STRING_LIST_FIELDS = frozenset({
    "bases", "buildMetadata", "components", "configurations", "crds", "generators",
    "resources", "transformers", "validators",
})
_KUSTOMIZE_LIST_FIELDS = frozenset({
    "configMapGenerator", "helmChartInflationGenerator", "helmCharts", "imageTags", "images",
    "labels", "patches", "patchesJson6902", "patchesStrategicMerge", "replacements", "replicas",
    "secretGenerator", "vars",
})
_KUSTOMIZE_STRING_MAP_FIELDS = frozenset({"commonAnnotations", "commonLabels", "openapi"})
_KUSTOMIZE_MAP_FIELDS = frozenset({"generatorOptions", "helmGlobals", "metadata", "sortOptions"})
_KUSTOMIZE_FIELDS = (
    frozenset({"apiVersion", "kind"})
    | _KUSTOMIZE_STRING_FIELDS
    | _KUSTOMIZE_STRING_LIST_FIELDS
    | _KUSTOMIZE_LIST_FIELDS
    | _KUSTOMIZE_STRING_MAP_FIELDS
    | _KUSTOMIZE_MAP_FIELDS
)

# API groups served by kube-apiserver itself (current and removed ones). Other groups, even
# *.k8s.io ones such as snapshot.storage.k8s.io or gateway.networking.k8s.io, are CRDs.
_BUILTIN_GROUPS = frozenset({
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
    "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
    "extensions", "flowcontrol.apiserver.k8s.io", "internal.apiserver.k8s.io",
    "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
})

_MAX_ALLOWED_LISTED = 60


@dataclass(frozen=True)
class SchemaProblem:
    """One validation finding of one manifest object."""

    path: str
    """Dotted key path inside the object ("" for the root), list items as `[i]`."""
    message: str
    """One line saying what is wrong and what to do; never contains field values."""
    rule: str
    """"eso-v1beta1" | "unknown-field" | "schema" | "unknown-kind"."""


# --------------------------------------------------------------------------- helpers


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _type_meta(obj: Any) -> tuple[str, str] | None:
    if not isinstance(obj, Mapping):
        return None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if isinstance(api_version, str) and api_version and isinstance(kind, str) and kind:
        return api_version, kind
    return None


def _format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """Deep copy into dict/list, as jsonschema only treats dict/list as object/array."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _or_list(items: Iterable[Any]) -> str:
    words = [str(i) if isinstance(i, str) else json.dumps(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unknown_field_problems(error: ValidationError) -> list[SchemaProblem]:
    instance, schema = error.instance, error.schema
    if not isinstance(instance, Mapping) or not isinstance(schema, Mapping):
        return []
    allowed = sorted(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    listed = ", ".join(allowed[:_MAX_ALLOWED_LISTED])
    if len(allowed) > _MAX_ALLOWED_LISTED:
        listed += ", ..."
    problems = []
    for name in instance:
        if name in allowed or any(re.search(p, str(name)) for p in patterns):
            continue
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"allowed here: {listed}" if allowed else "no fields are allowed here"
        problems.append(SchemaProblem(
            path=_format_path([*error.absolute_path, name]),
            message=f"unknown field '{name}'{hint}; remove or rename it ({where})",
            rule=RULE_UNKNOWN_FIELD,
        ))
    return problems


def _schema_message(error: ValidationError) -> str:
    """Describe one error without the instance value (it may be secret data)."""
    kw, expected = error.validator, error.validator_value
    if kw == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        return (f"wrong type: expected {_or_list(types)}, got {_json_type(error.instance)}; "
                f"change the value to {_or_list(types)}")
    if kw == "enum":
        return f"unsupported value; use one of: {_or_list(expected)}"
    if kw == "const":
        return f"unsupported value; use {_or_list([expected])}"
    if kw == "pattern":
        return f"value does not match the pattern {expected}; fix the value"
    limits = {
        "minLength": "value is too short: at least {} characters",
        "maxLength": "value is too long: at most {} characters",
        "minItems": "too few items: at least {}",
        "maxItems": "too many items: at most {}",
        "minProperties": "too few entries: at least {}",
        "maxProperties": "too many entries: at most {}",
        "minimum": "value is too small: minimum {}",
        "maximum": "value is too large: maximum {}",
        "exclusiveMinimum": "value is too small: must be greater than {}",
        "exclusiveMaximum": "value is too large: must be less than {}",
    }
    if kw in limits:
        return limits[kw].format(expected) + "; fix the value"
    if kw == "uniqueItems":
        return "items must be unique; remove the duplicates"
    if kw in ("anyOf", "oneOf"):
        return "value matches none of the allowed forms; check the field's documentation"
    if kw == "not":
        return "this value or combination of fields is not allowed here"
    return f"value breaks the schema rule '{kw}'; check the field's documentation"


def _problems_from_errors(errors: Iterable[ValidationError]) -> list[SchemaProblem]:
    problems: list[SchemaProblem] = []
    seen: set[SchemaProblem] = set()
    for error in errors:
        if error.validator == "additionalProperties" and error.validator_value is False:
            found = _unknown_field_problems(error)
        elif error.validator == "required" and isinstance(error.instance, Mapping):
            found = [
                SchemaProblem(
                    path=_format_path([*error.absolute_path, name]),
                    message=f"missing required field '{name}'; add it",
                    rule=RULE_SCHEMA,
                )
                for name in error.validator_value
                if name not in error.instance
            ]
        else:
            found = [SchemaProblem(
                path=_format_path(error.absolute_path),
                message=_schema_message(error),
                rule=RULE_SCHEMA,
            )]
        for problem in found:
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems


# --------------------------------------------------------------------------- ESO


@functools.cache
def _eso_document() -> dict[str, Any]:
    ref = resources.files("deparrow_secrets.render").joinpath("schemas", "eso.json")
    return json.loads(ref.read_text(encoding="utf-8"))


@functools.cache
def _eso_validator(kind: str, version: str) -> Draft7Validator:
    schema = _eso_document()["kinds"][kind]["versions"][version]["schema"]
    return Draft7Validator(schema)


def is_eso_kind(obj: Any) -> bool:
    """True for an object of the External Secrets Operator API group `external-secrets.io`."""
    meta = _type_meta(obj)
    return meta is not None and _split_api_version(meta[0])[0] == ESO_GROUP


def _allows_null(schema: Any) -> bool:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def admitted(value: Any, schema: Any) -> Any:
    """`value` as the API server stores it under a CRD's structural schema: nulls the
    schema does not allow pruned, then absent fields with a `default` filled in (the
    apiextensions order: prune, default, validate)."""
    if isinstance(value, Mapping):
        properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
        extra = schema.get("additionalProperties") if isinstance(schema, Mapping) else None
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else {})
            if item is None and not _allows_null(sub):
                continue
            out[key] = admitted(item, sub)
        for key, sub in properties.items():
            if key not in out and isinstance(sub, Mapping) and "default" in sub:
                out[key] = admitted(copy.deepcopy(sub["default"]), sub)
        return out
    if isinstance(value, list | tuple):
        items = schema.get("items", {}) if isinstance(schema, Mapping) else {}
        return [admitted(item, items) for item in value]
    return value


def _validate_eso(obj: Mapping[str, Any], api_version: str, kind: str) -> list[SchemaProblem]:
    info = _eso_document()["kinds"].get(kind)
    if info is None:
        return []  # an ESO kind this tool has no schema for (e.g. ClusterExternalSecret)
    version = _split_api_version(api_version)[1]
    versions = info["versions"]
    if not versions.get(version, {}).get("served", False):
        served = sorted(v for v, data in versions.items() if data["served"])
        use = " or ".join(f"{ESO_GROUP}/{v}" for v in served)
        if version == "v1beta1":
            message = f"{api_version} is not served by ESO >= 0.17; use {use}"
        else:
            message = f"{api_version} is not a served version of {kind} in ESO v2.9; use {use}"
        return [SchemaProblem(path="apiVersion", message=message, rule=RULE_ESO_V1BETA1)]
    validator = _eso_validator(kind, version)
    return _problems_from_errors(validator.iter_errors(admitted(_plain(obj),
                                                                validator.schema)))


# --------------------------------------------------------------------------- Kubernetes


def _is_builtin_group(group: str) -> bool:
    """A group Kubernetes serves itself; CRD groups always contain a dot."""
    return group in _BUILTIN_GROUPS or "." not in group


def _kubernetes_validate() -> Any:
    from deparrow_secrets.deps import require

    return require("kubernetes_validate", "test",
                   purpose="validating built-in Kubernetes kinds",
                   hint="install deparrow-secrets[test] or kubernetes-validate "
                   f"(pip install 'kubernetes-validate>={KUBERNETES_VERSION}')")


def _validate_builtin(obj: Mapping[str, Any], api_version: str, kind: str) -> list[SchemaProblem]:
    if api_version == "v1" and kind == "List":
        return _validate_list(obj)
    kv = _kubernetes_validate()
    try:
        kv.validate(_plain(obj), KUBERNETES_VERSION, strict=True)
    except kv.ValidationError as error:
        return _problems_from_errors([error])
    except kv.SchemaNotFoundError:
        return [SchemaProblem(
            path="",
            message=(f"Kubernetes {KUBERNETES_VERSION} has no kind {kind} in {api_version}; "
                     "check the apiVersion and kind spelling"),
            rule=RULE_UNKNOWN_KIND,
        )]
    except kv.utils.VersionNotSupportedError as exc:
        raise MissingDependencyError(
            f"the installed kubernetes-validate has no schemas for Kubernetes "
            f"{KUBERNETES_VERSION}",
            hint=f"pip install 'kubernetes-validate>={KUBERNETES_VERSION}'",
        ) from exc
    return []


def _validate_list(obj: Mapping[str, Any]) -> list[SchemaProblem]:
    """kubectl's client-side `v1 List`: validate each item."""
    items = obj.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        return [SchemaProblem(path="items", message="wrong type: expected a list of objects",
                              rule=RULE_SCHEMA)]
    problems = []
    for index, item in enumerate(items):
        for problem in validate_object(item):
            path = f"items[{index}]" + (f".{problem.path}" if problem.path else "")
            problems.append(SchemaProblem(path=path, message=problem.message, rule=problem.rule))
    return problems


# --------------------------------------------------------------------------- kustomize


def _validate_kustomization(obj: Mapping[str, Any], api_version: str,
                            kind: str) -> list[SchemaProblem]:
    required_version = _KUSTOMIZE_KINDS.get(kind)
    if required_version is None:
        return []
    problems: list[SchemaProblem] = []
    wanted = f"{_KUSTOMIZE_GROUP}/{required_version}"
    if api_version != wanted:
        problems.append(SchemaProblem(
            path="apiVersion", message=f"apiVersion of a {kind} must be {wanted}",
            rule=RULE_SCHEMA,
        ))

    def wrong(name: str, expected: str) -> SchemaProblem:
        return SchemaProblem(path=name, message=f"wrong type: expected {expected}",
                             rule=RULE_SCHEMA)

    allowed = sorted(_KUSTOMIZE_FIELDS)
    for name, value in obj.items():
        if name not in _KUSTOMIZE_FIELDS:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(SchemaProblem(
                path=str(name),
                message=(f"unknown field '{name}'{hint}; kustomize rejects it, "
                         "remove or rename it"),
                rule=RULE_UNKNOWN_FIELD,
            ))
        elif value is None:
            continue  # kustomize treats null as absent
        elif name in _KUSTOMIZE_STRING_FIELDS and not isinstance(value, str):
            problems.append(wrong(name, "a string"))
        elif name in _KUSTOMIZE_STRING_LIST_FIELDS and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems.append(wrong(name, "a list of strings"))
        elif name in _KUSTOMIZE_LIST_FIELDS and not isinstance(value, list):
            problems.append(wrong(name, "a list"))
        elif name in _KUSTOMIZE_STRING_MAP_FIELDS and not (
            isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())
        ):
            problems.append(wrong(name, "a mapping of strings to strings (quote the values)"))
        elif name in _KUSTOMIZE_MAP_FIELDS and not isinstance(value, Mapping):
            problems.append(wrong(name, "a mapping"))
    return problems


# --------------------------------------------------------------------------- entry point


def validate_object(obj: object) -> list[SchemaProblem]:
    """Validate one manifest object; an empty list means no problem was found.

    Raises MissingDependencyError for a built-in Kubernetes kind when kubernetes-validate
    is not installed.
    """
    if not isinstance(obj, Mapping):
        return [SchemaProblem(path="", message="a manifest must be a mapping (key: value)",
                              rule=RULE_SCHEMA)]
    meta = _type_meta(obj)
    if meta is None:
        missing = [k for k in ("apiVersion", "kind")
                   if not (isinstance(obj.get(k), str) and obj.get(k))]
        return [SchemaProblem(
            path="",
            message=f"missing {' and '.join(missing)}; every manifest needs apiVersion and kind",
            rule=RULE_UNKNOWN_KIND,
        )]
    api_version, kind = meta
    group = _split_api_version(api_version)[0]
    if group == ESO_GROUP:
        return _validate_eso(obj, api_version, kind)
    if group == _KUSTOMIZE_GROUP:
        return _validate_kustomization(obj, api_version, kind)
    if _is_builtin_group(group):
        return _validate_builtin(obj, api_version, kind)
    return []
