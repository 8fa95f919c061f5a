#!/usr/bin/env python3
"""Derive the strict JSON Schemas in src/deparrow_secrets/render/schemas/eso.json.

Input: the four External Secrets Operator CRD files (SecretStore, ClusterSecretStore,
ExternalSecret, PushSecret) in a directory: argv[1], default `<repo>/../shared/eso-crds`.

For every CRD kind and version the `openAPIV3Schema` is converted to JSON Schema (draft 7):

- `description` and `example` are dropped (size; they carry no validation rule);
- `x-kubernetes-int-or-string: true` becomes `type: [integer, string]`;
- `nullable: true` also allows null;
- every object schema with `properties`, no `x-kubernetes-preserve-unknown-fields: true`
  and no `additionalProperties` gets `additionalProperties: false`, so unknown fields
  fail like `kubeconform -strict` (the API server drops or rejects them);
- the other `x-kubernetes-*` keys are dropped (the CEL rules in `x-kubernetes-validations`
  are NOT enforced by the derived schema);
- the root `metadata` (the CRD only says `type: object`) accepts the usual ObjectMeta
  fields with their types and stays open to other keys.

The output is deterministic: sorted keys, compact separators, one trailing newline.
Run from the repository root:  python tools/derive_eso_schemas.py [CRD_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRD_DIR = REPO_ROOT.parent / "shared" / "eso-crds"
SCHEMA_DIR = REPO_ROOT / "src" / "deparrow_secrets" / "render" / "schemas"
OUTPUT = SCHEMA_DIR / "eso.json"

CRD_FILES = (
    "external-secrets.io_clustersecretstores.yaml",
    "external-secrets.io_externalsecrets.yaml",
    "external-secrets.io_pushsecrets.yaml",
    "external-secrets.io_secretstores.yaml",
)

JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"

# Keys whose value is a single sub-schema, a map of sub-schemas, or a list of sub-schemas.
_SUBSCHEMA_KEYS = ("additionalProperties", "items", "not")
_SUBSCHEMA_MAP_KEYS = ("properties", "patternProperties")
_SUBSCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_DROPPED_KEYS = ("description", "example", "nullable")

_STRING_MAP: dict[str, Any] = {"additionalProperties": {"type": "string"}, "type": "object"}
_OPEN_OBJECT: dict[str, Any] = {"type": "object"}

# ObjectMeta as written in manifests: known fields are type-checked, other keys are allowed.
OBJECT_META: dict[str, Any] = {
    "properties": {
        "annotations": _STRING_MAP,
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "deletionTimestamp": {"type": ["string", "null"]},
        "finalizers": {"items": {"type": "string"}, "type": "array"},
        "generateName": {"type": "string"},
        "generation": {"type": "integer"},
        "labels": _STRING_MAP,
        "managedFields": {"items": _OPEN_OBJECT, "type": "array"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "ownerReferences": {"items": _OPEN_OBJECT, "type": "array"},
        "resourceVersion": {"type": "string"},
        "selfLink": {"type": "string"},
        "uid": {"type": "string"},
    },
    "type": "object",
}

_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def _allow_null(schema: dict[str, Any]) -> None:
    types = schema.get("type")
    if isinstance(types, str):
        schema["type"] = [types, "null"]
    elif isinstance(types, list) and "null" not in types:
        schema["type"] = [*types, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


def convert(node: Any) -> Any:
    """Convert one OpenAPI v3 (structural) schema node to JSON Schema."""
    if not isinstance(node, dict):
        return node  # `additionalProperties: true|false`
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key.startswith("x-kubernetes-"):
            continue
        if key in _SUBSCHEMA_KEYS:
            out[key] = convert(value)
        elif key in _SUBSCHEMA_MAP_KEYS:
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LIST_KEYS:
            out[key] = [convert(sub) for sub in value]
        else:
            out[key] = value  # data: type, enum, required, pattern, default, format, ...
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
        if sorted(out.get("anyOf", []), key=json.dumps) == _INT_OR_STRING_ANY_OF:
            del out["anyOf"]  # redundant with the type list, and gives vaguer errors
    if node.get("nullable") is True:
        _allow_null(out)
    if (
        "properties" in out
        and "additionalProperties" not in out
        and node.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    return out


def convert_root(schema: dict[str, Any]) -> dict[str, Any]:
    out = convert(schema)
    props = out.get("properties", {})
    if props.get("metadata") == {"type": "object"}:
        props["metadata"] = OBJECT_META
    return {"$schema": JSON_SCHEMA_DIALECT, **out}


def derive(crd_dir: Path) -> str:
    """Return the text of eso.json derived from the CRD files in `crd_dir`."""
    yaml = YAML(typ="safe", pure=True)
    kinds: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in CRD_FILES:
        raw = (crd_dir / name).read_bytes()
        sources[name] = hashlib.sha256(raw).hexdigest()
        crd = yaml.load(raw)
        if crd.get("kind") != "CustomResourceDefinition":
            raise SystemExit(f"{name}: not a CustomResourceDefinition")
        spec = crd["spec"]
        versions = {}
        for version in spec["versions"]:
            versions[version["name"]] = {
                "deprecated": bool(version.get("deprecated", False)),
                "schema": convert_root(version["schema"]["openAPIV3Schema"]),
                "served": bool(version["served"]),
                "storage": bool(version["storage"]),
            }
        kinds[spec["names"]["kind"]] = {
            "group": spec["group"],
            "scope": spec["scope"],
            "versions": versions,
        }
    doc = {
        "generator": "tools/derive_eso_schemas.py",
        "kinds": kinds,
        "sources": sources,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    crd_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_CRD_DIR
    if not crd_dir.is_dir():
        print(f"CRD directory not found: {crd_dir}", file=sys.stderr)
        return 2
    text = derive(crd_dir)
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    license_src = crd_dir / "LICENSE"
    if license_src.is_file():
        (SCHEMA_DIR / "LICENSE-external-secrets").write_bytes(license_src.read_bytes())
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
