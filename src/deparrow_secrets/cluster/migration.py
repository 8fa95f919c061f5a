"""What `migrate` needs from the cluster beyond the other commands: the values of the
Secrets it moves into a store, the leftovers that still hold values, and the undo.

`read_secret_values` is the one place outside `datahash.digest_secret` where Secret data
is decoded, and only `migrate` calls it: the values go to the store write as SecretValue
objects and are never printed. Everything else here sees Secrets as digests plus the
names of the value-holding annotations they carry.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from deparrow_secrets.cluster.api import EXTERNAL_SECRET, SECRET, KubeClient, SecretDigest
from deparrow_secrets.cluster.datahash import (
    DATA_HASH_ANNOTATION,
    MANAGED_LABEL,
    VALUE_ANNOTATIONS,
    digest_secret,
)
from deparrow_secrets.errors import InputError
from deparrow_secrets.secret import SecretValue

CREATED_BY_LABEL = "reconcile.external-secrets.io/created-by"
# kustomize's secretGenerator suffix: "-" and 10 characters of its hash alphabet
# (api/hasher/hasher.go encodes with the consonants and digits bcdfghkmt2456789).
GENERATOR_SUFFIX = re.compile(r"-[bcdfghkmt2456789]{10}$")


@dataclass(frozen=True)
class SecretSurvey:
    digest: SecretDigest
    value_annotations: tuple[str, ...] = ()  # names only: their text can hold values
    immutable: bool = False

    @property
    def name(self) -> str:
        return self.digest.name


@dataclass
class SourceSecretValues:
    """A Secret's values as read for migration; repr shows key names only."""

    name: str
    values: dict[str, SecretValue] = field(repr=False)
    undecodable: list[str] = field(default_factory=list)


def survey_secrets(client: KubeClient, namespace: str) -> dict[str, SecretSurvey]:
    """Every Secret of the namespace as a digest, with the value annotations it carries
    (one list request; data hashed and dropped as in `secret_digests`)."""
    out: dict[str, SecretSurvey] = {}
    for item in client.list_objects(SECRET, namespace):
        meta = item.get("metadata") or {}
        held = tuple(a for a in VALUE_ANNOTATIONS if a in (meta.get("annotations") or {}))
        digest = digest_secret(item)
        out[digest.name] = SecretSurvey(digest, held, bool(item.get("immutable")))
        item.clear()
    return out


def read_secret_values(client: KubeClient, namespace: str,
                       names: list[str]) -> dict[str, SourceSecretValues]:
    """The data of the named Secrets as SecretValue maps (absent Secrets are left out).

    A value that is not UTF-8 text cannot be a store value (stores hold strings): it is
    refused by name, never shown.
    """
    out: dict[str, SourceSecretValues] = {}
    for name in names:
        item = client.get(SECRET, name, namespace)
        if item is None:
            continue
        try:
            values: dict[str, SecretValue] = {}
            bad: list[str] = []
            for key, raw in (item.get("data") or {}).items():
                try:
                    values[key] = SecretValue(base64.b64decode(raw or "",
                                                               validate=True).decode("utf-8"))
                except (binascii.Error, ValueError):
                    bad.append(key)
            out[name] = SourceSecretValues(name, values, bad)
        finally:
            item.clear()
    if any(s.undecodable for s in out.values()):
        which = ", ".join(f"{s.name}.{k}" for s in out.values() for k in s.undecodable)
        raise InputError(f"Secret data that is not UTF-8 text cannot move to a store: {which}",
                         hint="store such values base64-encoded under a catalog key, or "
                              "leave that Secret out (name the others on the command line)")
    return out


def generator_leftovers(surveys: dict[str, SecretSurvey], names: set[str]) -> list[str]:
    """Old hash-suffixed secretGenerator Secrets (`<name>-<10 chars>`) of `names`."""
    out = []
    for secret in surveys:
        match = GENERATOR_SUFFIX.search(secret)
        if match and secret[:match.start()] in names:
            out.append(secret)
    return sorted(out)


def drop_value_annotations(client: KubeClient, namespace: str, name: str,
                           annotations: tuple[str, ...]) -> None:
    patched = client.patch(SECRET, name, {"metadata": {"annotations": {
        a: None for a in annotations}}}, namespace)
    patched.clear()  # the answer is the whole Secret


def release_target(client: KubeClient, namespace: str, external_secret: str,
                   secret: str) -> None:
    """Undo an adoption: the ExternalSecret stops owning its target (creationPolicy
    Orphan, CLUSTER.md "Undo"), the Secret loses the ownerReference and ESO's marks, then
    the ExternalSecret is deleted. The Secret and its data stay as they are.

    The ownerReference is removed by the tool as well: ESO drops it on its next
    reconcile, but an ESO that is down never reconciles, and garbage collection would
    delete the Secret with its owner. The delete itself orphans dependents too: an ESO
    reconcile still working from the Owner spec can put the reference back in between.
    """
    es = client.get(EXTERNAL_SECRET, external_secret, namespace)
    if es is None:
        return
    uid = (es.get("metadata") or {}).get("uid")
    client.patch(EXTERNAL_SECRET, external_secret,
                 {"spec": {"target": {"creationPolicy": "Orphan"}}}, namespace)
    live = client.get(SECRET, secret, namespace)
    if live is not None:
        meta = live.get("metadata") or {}
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") == uid]
        live.clear()
        patch: dict[str, object] = {
            "labels": {MANAGED_LABEL: None, CREATED_BY_LABEL: None},
            "annotations": {DATA_HASH_ANNOTATION: None}}
        if refs:
            patch["ownerReferences"] = [{"uid": uid, "$patch": "delete"}]
        client.patch(SECRET, secret, {"metadata": patch}, namespace).clear()
    client.delete(EXTERNAL_SECRET, external_secret, namespace, orphan_dependents=True)
