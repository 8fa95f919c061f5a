"""The conformance suite every store passes, unchanged (keyring's BackendBasicTests pattern).

A store's test module subclasses `StoreConformance` in a class pytest collects (its name
starts with ``Test``) and provides two fixtures: `store` (a connected store with nothing
in it under `object_name()` names) and `second_store` (another, independent connection
to the same store, for the race). Every test of the suite then runs against that store.

This module imports pytest: import it from test code only (pytest is a test dependency,
not one of the package's).
"""

from __future__ import annotations

import secrets
import threading

import pytest

from deparrow_secrets.errors import ConflictError, NotFoundError
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE, SecretStore


def value() -> SecretValue:
    return SecretValue(secrets.token_urlsafe(24))


def race_writers(stores: list[SecretStore], key: str,
                 candidates: list[dict[str, SecretValue]], base: str) -> list[object]:
    """Every store writes its candidate over `base` at the same moment.

    Returns, per writer, the new version (a win) or the ConflictError it got.
    """
    outcomes: list[object] = [None] * len(stores)
    barrier = threading.Barrier(len(stores))

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = stores[i].write(key, candidates[i], base)
        except ConflictError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


class StoreConformance:
    def object_name(self, store: SecretStore, label: str) -> str:
        suffix = f"{label}-{secrets.token_hex(4)}"
        return f"conformance-{suffix}" if store.single_value else f"deparrow/conformance/{suffix}"

    def group(self, store: SecretStore, n: int = 3) -> dict[str, SecretValue]:
        if store.single_value:
            return {WHOLE: value()}
        return {f"KEY_{i}": value() for i in range(n)}

    def test_missing_object_reads_none(self, store: SecretStore) -> None:
        assert store.read(self.object_name(store, "missing")) is None
        assert store.history(self.object_name(store, "missing")) == []

    def test_create_then_read(self, store: SecretStore) -> None:
        key = self.object_name(store, "create")
        values = self.group(store)
        version = store.write(key, values, None)
        snap = store.read(key)
        assert snap is not None
        assert snap.version == version
        assert dict(snap.values) == values
        for prop, val in values.items():
            assert store.read_value(key, prop) == val

    def test_create_when_exists_conflicts(self, store: SecretStore) -> None:
        key = self.object_name(store, "exists")
        first = self.group(store)
        store.write(key, first, None)
        with pytest.raises(ConflictError):
            store.write(key, self.group(store), None)
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == first

    def test_stale_version_conflicts_and_writes_nothing(self, store: SecretStore) -> None:
        key = self.object_name(store, "stale")
        v1 = store.write(key, self.group(store), None)
        second = self.group(store)
        v2 = store.write(key, second, v1)
        assert v2 != v1
        with pytest.raises(ConflictError):
            store.write(key, self.group(store), v1)
        snap = store.read(key)
        assert snap is not None and snap.version == v2 and dict(snap.values) == second
        assert len(store.history(key)) == 2

    def test_racing_writers_one_wins(self, store: SecretStore, second_store: SecretStore) -> None:
        key = self.object_name(store, "race")
        base = store.write(key, self.group(store), None)
        candidates = [self.group(store), self.group(store)]
        outcomes = race_writers([store, second_store], key, candidates, base)
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
        losers = [i for i, o in enumerate(outcomes) if isinstance(o, ConflictError)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == candidates[winners[0]]

    def test_history_and_read_version(self, store: SecretStore) -> None:
        key = self.object_name(store, "history")
        groups = [self.group(store) for _ in range(3)]
        versions: list[str] = []
        current = None
        for g in groups:
            current = store.write(key, g, current)
            versions.append(current)
        hist = store.history(key)
        assert [h.version for h in hist] == versions
        assert [h.current for h in hist] == [False, False, True]
        for v, g in zip(versions, groups, strict=True):
            snap = store.read(key, v)
            assert snap is not None and dict(snap.values) == g

    def test_unknown_version_not_found(self, store: SecretStore) -> None:
        key = self.object_name(store, "noversion")
        store.write(key, self.group(store), None)
        with pytest.raises(NotFoundError):
            store.read(key, "999999")

    def test_rollback_restores_previous(self, store: SecretStore) -> None:
        key = self.object_name(store, "rollback")
        first, second = self.group(store), self.group(store)
        v1 = store.write(key, first, None)
        store.write(key, second, v1)
        store.rollback(key)
        snap = store.read(key)
        assert snap is not None and dict(snap.values) == first

    def test_rollback_without_previous_fails(self, store: SecretStore) -> None:
        key = self.object_name(store, "noprevious")
        store.write(key, self.group(store), None)
        with pytest.raises(NotFoundError):
            store.rollback(key)

    def test_list_by_prefix(self, store: SecretStore) -> None:
        keys = sorted(self.object_name(store, f"list{i}") for i in range(3))
        for key in keys:
            store.write(key, self.group(store), None)
        listed = store.list_objects()
        assert set(keys) <= set(listed)
        assert store.list_objects(keys[0]) == [keys[0]]

    def test_special_characters_round_trip(self, store: SecretStore) -> None:
        key = self.object_name(store, "chars")
        tricky = SecretValue("päss wörd\"'\\$`{}\n\t" + secrets.token_hex(4))
        prop = WHOLE if store.single_value else "TRICKY"
        store.write(key, {prop: tricky}, None)
        assert store.read_value(key, prop) == tricky

    def test_health(self, store: SecretStore) -> None:
        health = store.health()
        assert health.ok, health.detail

    def test_repr_never_shows_values(self, store: SecretStore) -> None:
        key = self.object_name(store, "repr")
        values = self.group(store)
        store.write(key, values, None)
        snap = store.read(key)
        text = repr(snap) + str(snap) + repr(store) + repr(store.history(key))
        for v in values.values():
            assert v.reveal() not in text
