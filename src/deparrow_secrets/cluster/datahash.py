"""ESO's data hash of a Secret, computed the way ESO computes it, for comparison only.

ESO v2.9 (runtime/esutils/utils.go, `ObjectHash`) writes the annotation
`reconcile.external-secrets.io/data-hash` as
`fmt.Sprintf("%x", sha3.Sum224([]byte(fmt.Sprintf("%+v", secret.Data))))`, where
`secret.Data` is a Go `map[string][]byte`. Go's fmt prints maps with their keys sorted
(byte order) and a `[]byte` as its bytes in decimal: `map[a:[49 50] b:[]]`.

The hash is unsalted, so it lets anyone test guesses of a value offline: it is compared
here and never printed, logged or put in JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from deparrow_secrets.cluster.api import SecretDigest

DATA_HASH_ANNOTATION = "reconcile.external-secrets.io/data-hash"
MANAGED_LABEL = "reconcile.external-secrets.io/managed"
# Annotations that can carry a Secret's values (kubectl apply's copy of the object).
VALUE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

# Per-process key for per-key digests: they let two sides be compared key by key in
# memory, and are worthless outside this process.
_KEY_DIGEST_SALT = secrets.token_bytes(32)


# Each byte value in decimal, as Go prints the elements of a []byte.
_DECIMAL = tuple(str(i).encode() for i in range(256))


def go_map_repr(data: Mapping[str, bytes]) -> bytes:
    """Go's `%+v` rendering of a map[string][]byte."""
    items = sorted((k.encode(), v) for k, v in data.items())
    inner = b" ".join(k + b":[" + b" ".join(map(_DECIMAL.__getitem__, v)) + b"]"
                      for k, v in items)
    return b"map[" + inner + b"]"


def eso_data_hash(data: Mapping[str, bytes]) -> str:
    """The value ESO writes in the data-hash annotation for a Secret holding `data`."""
    return hashlib.sha3_224(go_map_repr(data)).hexdigest()


def key_digest(key: str, value: bytes) -> str:
    """A per-process keyed digest of one entry, for in-memory comparison only."""
    return hmac.new(_KEY_DIGEST_SALT, key.encode() + b"\0" + value, "sha256").hexdigest()


def hashes_equal(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a, b)


def digest_secret(item: dict[str, Any]) -> SecretDigest:
    """A Secret as the API returns it -> its digest (data hashed, then forgotten)."""
    meta = item.get("metadata") or {}
    raw = item.get("data") or {}
    decoded: dict[str, bytes] = {}
    for key, value in raw.items():
        try:
            decoded[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError):
            decoded[key] = b""
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in VALUE_ANNOTATIONS}
    digest = SecretDigest(
        name=meta.get("name", ""), namespace=meta.get("namespace", ""),
        keys=tuple(sorted(decoded)), data_hash=eso_data_hash(decoded),
        key_digests={k: key_digest(k, v) for k, v in decoded.items()},
        annotations=annotations, labels=dict(meta.get("labels") or {}),
        owner_references=tuple(meta.get("ownerReferences") or ()),
        resource_version=str(meta.get("resourceVersion") or ""),
        created=str(meta.get("creationTimestamp") or ""),
        type=str(item.get("type") or "Opaque"))
    decoded.clear()
    return digest
