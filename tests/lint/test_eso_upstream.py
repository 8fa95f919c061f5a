"""lint over upstream-style ESO manifests: nothing on valid v1 manifests of every
provider (defaulted fields left out, nulls present), the schema and identity rules
still on broken ones (issue 8.7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from deparrow_secrets.render.validate import validate_object

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "eso-upstream"
Run = Any


def providers() -> set[str]:
    ref = resources.files("deparrow_secrets.render").joinpath("schemas", "eso.json")
    schema = json.loads(ref.read_text(encoding="utf-8"))["kinds"]["SecretStore"]["versions"][
        "v1"]["schema"]
    return set(schema["properties"]["spec"]["properties"]["provider"]["properties"])


def test_the_corpus_covers_every_provider_with_defaults_left_out_and_nulls() -> None:
    from ruamel.yaml import YAML

    seen: set[str] = set()
    texts = []
    for path in sorted((CORPUS / "valid").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        texts.append(text)
        for doc in YAML(typ="safe").load_all(text):
            if doc["kind"].endswith("SecretStore"):
                seen |= set(doc["spec"]["provider"])
    assert seen == providers()
    joined = "".join(texts)
    assert ": null" in joined
    for defaulted in ("mountPath:", "\n          path: approle", "apiHost:"):
        assert defaulted not in joined


def test_valid_upstream_manifests_have_no_finding(cli: Callable[..., Run]) -> None:
    run = cli("lint", "-o", "json", "valid", cwd=CORPUS)
    assert run.findings() == [], run.out
    assert run.code == 0
    assert run.json()["summary"]["checked"] == len(list((CORPUS / "valid").glob("*.yaml")))


def test_vault_kubernetes_without_mount_path_validates() -> None:
    store = {"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
             "metadata": {"name": "v", "creationTimestamp": None},
             "spec": {"provider": {"vault": {"server": "https://v.test", "caBundle": None,
                                             "auth": {"kubernetes": {
                                                 "role": "r",
                                                 "serviceAccountRef": {"name": "sa"}}}}}}}
    assert validate_object(store) == []
    # a default does not hide a wrong value, and null is not a value for a required field
    store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["mountPath"] = 7
    assert [p.path for p in validate_object(store)] == [
        "spec.provider.vault.auth.kubernetes.mountPath"]
    store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] = None
    assert "spec.provider.vault.auth.kubernetes.role" in [p.path for p in validate_object(store)]


def test_broken_upstream_manifests_are_still_reported(cli: Callable[..., Run]) -> None:
    run = cli("lint", "-o", "json", "broken", cwd=CORPUS)
    assert run.code == 1
    got = {(Path(f["file"]).name, f["rule"]) for f in run.findings()}
    assert got == {("v1beta1.yaml", "eso-v1beta1"),
                   ("unknown-field.yaml", "eso-unknown-field"),
                   ("missing-service-account-ref.yaml", "missing-service-account-ref"),
                   ("plaintext-secret.yaml", "secret-data-outside-dev")}, run.out
    assert "not-a-real-password-fixture" not in run.out + run.err
