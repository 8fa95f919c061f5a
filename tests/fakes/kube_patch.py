"""Patch engines of the fake Kubernetes API server (:mod:`kube_apiserver`).

* :func:`json_merge_patch` - RFC 7386 (``application/merge-patch+json``);
* :func:`json_patch` - RFC 6902 (``application/json-patch+json``);
* :func:`strategic_merge_patch` - ``application/strategic-merge-patch+json`` for the built-in
  kinds, with the list merge keys of the Kubernetes API types (``patchMergeKey`` tags in
  k8s.io/api, e.g. ``containers``/``env``/``volumes`` by ``name``) and the ``$patch``,
  ``$retainKeys``, ``$setElementOrder/`` and ``$deleteFromPrimitiveList/`` directives;
* :class:`FieldSet` helpers for the simplified server-side apply: a field path is a tuple of
  map keys and list-item keys (``("k", (("name", "app"),))``) down to a leaf; lists without a
  merge key are atomic leaves, as in structured-merge-diff.

Simplifications (said here because tests depend on them): the merge-key table is keyed by the
field name alone, not by the Go type that holds it, which is right for every list the project's
objects use; ``ports`` merge by ``containerPort`` (container ports), not by ``port`` + protocol.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

Json = Any

# patchMergeKey tags of k8s.io/api/core/v1 and meta/v1 (types.go), by field name.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
# `patchStrategy:"merge"` lists of scalars (set semantics).
MERGED_SCALAR_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    """The patch cannot be applied; the server answers 422 (or 400 for a malformed patch)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- JSON merge patch


def json_merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7386: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", status=400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Json, parts: list[str], path: str) -> Json:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise PatchError(f"doc is missing path: \"{path}\": missing value")
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError) as exc:
                raise PatchError(f"doc is missing path: \"{path}\": missing value") from exc
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return doc


def _list_index(container: list[Any], part: str, path: str, *, insert: bool) -> int:
    if insert and part == "-":
        return len(container)
    try:
        index = int(part)
    except ValueError as exc:
        raise PatchError(f"invalid array index {part!r} in \"{path}\"") from exc
    limit = len(container) if insert else len(container) - 1
    if index < 0 or index > limit:
        raise PatchError(f"index out of range in \"{path}\"")
    return index


def _add(doc: Json, path: str, value: Json) -> Json:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, path, insert=True), copy.deepcopy(value))
    else:
        raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return doc


def _remove(doc: Json, path: str) -> tuple[Json, Json]:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, last, path, insert=False))
    raise PatchError(f"doc is missing path: \"{path}\": missing value")


def json_patch(target: Json, operations: Json) -> Json:
    """RFC 6902 ``add``/``remove``/``replace``/``move``/``copy``/``test``."""
    if not isinstance(operations, list):
        # what the real server answers for an object body sent as a JSON patch
        raise PatchError(
            "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            status=400,
        )
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("malformed JSON patch operation", status=400)
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, op.get("value"))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path)
            doc = _add(doc, path, op.get("value"))
        elif kind == "move":
            doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, _walk(doc, _pointer(op["from"]), op["from"]))
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", status=400)
    return doc


# --------------------------------------------------------------------------- strategic merge


def _smp_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(field)
    if field in MERGED_SCALAR_LISTS:
        merged = list(target)
        merged += [v for v in patch if v not in merged]
        return merged
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (i for i, cur in enumerate(result)
             if isinstance(cur, dict) and cur.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def strategic_merge_patch(target: Json, patch: Json) -> Json:
    """Strategic merge patch as apimachinery's strategicpatch does for the common cases."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _smp_list(key, result[key], value)
        else:
            result[key] = copy.deepcopy(
                [{k: v for k, v in i.items() if k != "$patch"} if isinstance(i, dict) else i
                 for i in value] if isinstance(value, list) else value
            )
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


# --------------------------------------------------------------------------- field sets (SSA)

ItemKey = tuple[str, tuple[tuple[str, Any], ...]]
Segment = str | ItemKey
FieldPath = tuple[Segment, ...]


def _item_key(field: str, item: Any) -> ItemKey | None:
    key = MERGE_KEYS.get(field)
    if key is None or not isinstance(item, dict) or key not in item:
        return None
    return ("k", ((key, item[key]),))


def leaves(obj: Json, prefix: FieldPath = (), field: str = "") -> Iterator[tuple[FieldPath, Any]]:
    """Every leaf (scalar, atomic list, empty map) of `obj` with its field path."""
    if isinstance(obj, dict):
        if not obj and prefix:
            yield prefix, obj
        for key, value in obj.items():
            yield from leaves(value, (*prefix, key), key)
    elif isinstance(obj, list) and obj and all(_item_key(field, i) for i in obj):
        for item in obj:
            item_key = _item_key(field, item)
            assert item_key is not None
            yield from leaves(item, (*prefix, item_key), "")
    else:
        yield prefix, obj


def get_path(obj: Json, path: FieldPath) -> tuple[bool, Any]:
    """(found, value) at `path` in `obj`."""
    cur = obj
    for seg in path:
        if isinstance(seg, tuple):
            if not isinstance(cur, list):
                return False, None
            (key, value), = seg[1]
            cur = next((i for i in cur if isinstance(i, dict) and i.get(key) == value), None)
            if cur is None:
                return False, None
        else:
            if not isinstance(cur, dict) or seg not in cur:
                return False, None
            cur = cur[seg]
    return True, cur


def remove_path(obj: Json, path: FieldPath) -> None:
    """Remove the field at `path` (a list item when `path` ends at the item's merge key);
    maps and items left empty by the removal go too."""
    if not path:
        return
    parents: list[tuple[Any, Segment]] = []
    cur = obj
    for seg in path[:-1]:
        found, nxt = get_path(cur, (seg,))
        if not found:
            return
        parents.append((cur, seg))
        cur = nxt
    last = path[-1]
    if isinstance(cur, dict) and isinstance(last, str):
        if parents and isinstance(parents[-1][1], tuple) and parents[-1][1][1][0][0] == last:
            # the merge key of a list item: the item goes
            container, seg = parents.pop()
            found, lst = True, container
            _drop_item(lst, seg)
            cur = container
        else:
            cur.pop(last, None)
    # prune empty maps / items upward
    while parents:
        container, seg = parents.pop()
        found, child = get_path(container, (seg,))
        if found and child in ({}, []):
            if isinstance(seg, tuple):
                _drop_item(container, seg)
            else:
                container.pop(seg, None)
        else:
            break


def _drop_item(lst: Any, seg: Segment) -> None:
    if not isinstance(lst, list) or not isinstance(seg, tuple):
        return
    (key, value), = seg[1]
    lst[:] = [i for i in lst if not (isinstance(i, dict) and i.get(key) == value)]


def fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    """Render a set of field paths as Kubernetes ``managedFields[].fieldsV1``."""
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=lambda p: json.dumps(p, default=str)):
        node = tree
        for seg in path:
            if isinstance(seg, tuple):
                name = "k:" + json.dumps(dict(seg[1]), separators=(",", ":"), sort_keys=True)
            else:
                name = "f:" + seg
            node = node.setdefault(name, {})
    return tree


def apply_merge(live: Json, applied: Json, field: str = "") -> Json:
    """Merge an applied configuration into the live object (SSA: maps and keyed lists merge
    by field, other lists and scalars are replaced)."""
    if isinstance(applied, dict):
        result = copy.deepcopy(live) if isinstance(live, dict) else {}
        for key, value in applied.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = apply_merge(result.get(key), value, key)
        return result
    if (isinstance(applied, list) and isinstance(live, list) and applied
            and all(_item_key(field, i) for i in applied)
            and all(_item_key(field, i) for i in live if isinstance(i, dict))):
        result_list = [copy.deepcopy(i) for i in live]
        for item in applied:
            item_key = _item_key(field, item)
            assert item_key is not None
            (key, value), = item_key[1]
            index = next((n for n, cur in enumerate(result_list) if cur.get(key) == value), None)
            if index is None:
                result_list.append(copy.deepcopy(item))
            else:
                result_list[index] = apply_merge(result_list[index], item)
        return result_list
    return copy.deepcopy(applied)
