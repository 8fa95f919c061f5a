"""Key Vault's ordering decisions (`providers/azure/ordering.py`), as tables of version metadata.

Every row is version metadata as Key Vault lists it (id, created second, enabled, tags)
and the decision the store takes from it: which version is current, what a rollback goes
back to, whether a latest version stands for the one a writer read, whether a write has
shown in reads, and who won a race. No SDK, no server: the module is pure.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deparrow_secrets.providers.azure import ordering
from deparrow_secrets.providers.azure.ordering import (
    LATEST_DISABLED,
    NO_PREVIOUS,
    TAG_COMMITTED,
    TAG_PREVIOUS,
    TAG_RESTORES,
    TAG_WRITE,
    Fact,
    Order,
    Race,
    VersionMeta,
    counts_as,
    descends,
    lag_pauses,
    newest,
    rollback_target,
    shows,
    version_history,
)

T0 = 1_700_000_000  # a created second; rows give seconds relative to it


def v(vid: str, second: int, *, previous: str | None = None, write: str | None = None,
      restores: str | None = None, committed: bool = False, enabled: bool = True,
      **foreign: str) -> VersionMeta:
    """A version as listed; `write` defaults to one write id per version (this tool's)."""
    tags = dict(foreign)
    if previous is not None:
        tags[TAG_PREVIOUS] = previous
        tags[TAG_WRITE] = write or f"w-{vid}"
    if restores is not None:
        tags[TAG_RESTORES] = restores
    if committed:
        tags[TAG_COMMITTED] = "true"
    return VersionMeta(vid, T0 + second,
                       datetime.fromtimestamp(T0 + second, tz=UTC), enabled, tags)


def outside(vid: str, second: int) -> VersionMeta:
    """A version written outside this tool (portal, az): no chain tags."""
    return VersionMeta(vid, T0 + second, None, True, {})


def by_id(*versions: VersionMeta) -> dict[str, VersionMeta]:
    return {x.id: x for x in versions}


# ---------------------------------------------------------------------- history: order, current

HISTORY = [
    # (case, versions as listed (by id, as the service lists them), latest, oldest-first ids,
    #  current, labels of the versions that have any)
    ("seconds decide, not the listing order",
     [v("a", 2), v("b", 1)], "a", ["b", "a"], "a", {}),
    ("same second: the chain tag decides against the id",
     [v("a", 1, previous="z"), v("z", 1, previous=NO_PREVIOUS)], "a", ["z", "a"], "a", {}),
    ("same second, no tags: the service's latest is last",
     [outside("a", 1), outside("b", 1)], "a", ["b", "a"], "a", {}),
    ("same second, no tags, latest unknown: the id breaks the tie",
     [outside("a", 1), outside("b", 1)], None, ["a", "b"], "b", {}),
    ("latest not listed yet (read lag): the newest listed is current",
     [v("a", 1), v("b", 2)], "c", ["a", "b"], "b", {}),
    ("latest disabled: no version is current (Key Vault and ESO read none)",
     [v("a", 1), v("b", 2, enabled=False)], LATEST_DISABLED, ["a", "b"], None,
     {"b": ("disabled",)}),
    ("an older disabled version is labelled and the latest stays current",
     [v("a", 1, enabled=False), v("b", 2)], "b", ["a", "b"], "b", {"a": ("disabled",)}),
    ("a race: the restore and the loser it overwrote are labelled",
     [v("b0", 0, previous=NO_PREVIOUS), v("w1", 1, previous="b0"), v("w2", 1, previous="b0"),
      v("r", 1, previous="w2", restores="w1")], "r", ["b0", "w1", "w2", "r"], "r",
     {"r": ("restore:w1",), "w2": ("conflict-loser",)}),
    ("hand-edited tags in a cycle: time order, then id",
     [v("a", 2, previous="b"), v("b", 1, previous="a")], None, ["b", "a"], "a", {}),
    ("a tag naming the version itself is ignored",
     [v("a", 1, previous="a"), v("b", 2, previous="a")], "b", ["a", "b"], "b", {}),
    ("same second: a restore follows what it restores and the loser it overwrote",
     [v("a", 5, previous="m", restores="z"), v("m", 5, previous="z"),
      v("z", 5, previous=NO_PREVIOUS)], None, ["z", "m", "a"], "a",
     {"a": ("restore:z",), "m": ("conflict-loser",)}),
]


@pytest.mark.parametrize("case, versions, latest, order, current, labels", HISTORY,
                         ids=[row[0] for row in HISTORY])
def test_history_orders_versions_and_marks_the_current_one(
        case: str, versions: list[VersionMeta], latest: str | None, order: list[str],
        current: str | None, labels: Mapping[str, tuple[str, ...]]) -> None:
    entries = version_history(versions, latest)
    assert [e.version for e in entries] == order
    assert [e.version for e in entries if e.current] == ([current] if current else [])
    assert {e.version: e.labels for e in entries if e.labels} == labels
    created = {x.id: x.created_on for x in versions}
    assert all(e.created == created[e.version] for e in entries)


NEWEST = [
    ("nothing listed", [], None),
    ("a later second", [v("a", 2), v("b", 1)], "a"),
    ("same second: the end of the chain", [v("a", 1, previous="z"),
                                           v("z", 1, previous=NO_PREVIOUS)], "a"),
    ("a disabled latest is still the newest", [v("a", 1), v("b", 2, enabled=False)], "b"),
]


@pytest.mark.parametrize("case, versions, expected", NEWEST, ids=[row[0] for row in NEWEST])
def test_newest_is_the_latest_the_service_will_not_name(
        case: str, versions: list[VersionMeta], expected: str | None) -> None:
    assert newest(versions) == expected


# ---------------------------------------------------------------------- rollback

ROLLBACK = [
    # (case, versions, latest, the version a rollback writes back, or None)
    ("one version: nothing to go back to", [v("a", 1)], "a", None),
    ("the version before", [v("a", 1), v("b", 2)], "b", "a"),
    ("a disabled previous version is skipped",
     [v("a", 1), v("b", 2, enabled=False), v("c", 3)], "c", "a"),
    ("only disabled before: nothing", [v("a", 1, enabled=False), v("b", 2)], "b", None),
    ("after a race: not the loser, not the winner's own value again",
     [v("b0", 0, previous=NO_PREVIOUS), v("w1", 1, previous="b0"), v("w2", 1, previous="b0"),
      v("r", 1, previous="w2", restores="w1")], "r", "b0"),
    ("a later write: back to the restore that stood for the race's winner",
     [v("b0", 0, previous=NO_PREVIOUS), v("w1", 1, previous="b0"), v("w2", 1, previous="b0"),
      v("r", 1, previous="w2", restores="w1"), v("n", 2, previous="r")], "n", "r"),
    ("latest disabled (no current): back from the newest",
     [v("a", 1), v("b", 2, enabled=False)], LATEST_DISABLED, "a"),
    ("latest unknown: back from the newest", [v("a", 1), v("b", 2)], None, "a"),
    ("the latest not the newest listed: back from the latest",
     [v("a", 1), v("b", 1), v("c", 1)], "b", "c"),
]


@pytest.mark.parametrize("case, versions, latest, expected", ROLLBACK,
                         ids=[row[0] for row in ROLLBACK])
def test_rollback_target(case: str, versions: list[VersionMeta], latest: str | None,
                         expected: str | None) -> None:
    assert rollback_target(version_history(versions, latest)) == expected


def test_rollback_of_nothing_is_nothing() -> None:
    assert rollback_target([]) is None


# ---------------------------------------------------------------------- check before writing

COUNTS_AS = [
    # (case, listed, latest, expected version read, whether the latest stands for it)
    ("the same version", [v("a", 1)], "a", "a", True),
    ("a restore of it", [v("a", 1), v("x", 2), v("r", 3, previous="x", restores="a")],
     "r", "a", True),
    ("a repeat of the same PUT (retried after a timeout)",
     [v("a", 1, previous="b", write="w"), v("a2", 1, previous="b", write="w"),
      v("b", 0)], "a2", "a", True),
    ("another writer's version", [v("a", 1), v("b", 2, previous="a")], "b", "a", False),
    ("a restore of another version", [v("a", 1), v("x", 2),
                                      v("r", 3, previous="a", restores="x")], "r", "a", False),
    ("the version read is no longer listed", [v("b", 2)], "b", "a", False),
    ("a write outside this tool", [v("a", 1), outside("b", 2)], "b", "a", False),
    ("the same write id on an unrelated version is not a repeat",
     [v("a", 1, previous="z", write="w"), v("b", 2, previous="a", write="u")], "b", "a", False),
]


@pytest.mark.parametrize("case, listed, latest, expected, stands", COUNTS_AS,
                         ids=[row[0] for row in COUNTS_AS])
def test_latest_counts_as_the_version_read(case: str, listed: list[VersionMeta], latest: str,
                                           expected: str, stands: bool) -> None:
    assert counts_as(latest, expected, by_id(*listed)) is stands


# ---------------------------------------------------------------------- read lag

SHOWS = [
    # (case, own version, listed ids, reported latest, versions before the write, shown)
    ("listed, and the latest is new", "o", {"b", "o"}, "o", {"b"}, True),
    ("not listed yet (the listing lags)", "o", {"b"}, "o", {"b"}, False),
    ("listed, but get still answers the old latest", "o", {"b", "o"}, "b", {"b"}, False),
    ("listed, latest a racer's newer version", "o", {"b", "o", "r"}, "r", {"b"}, True),
    ("nothing reported as latest yet", "o", {"o"}, None, set(), False),
    ("the latest is disabled (no id)", "o", {"o"}, LATEST_DISABLED, set(), False),
    ("creating: listed and latest", "o", {"o"}, "o", set(), True),
]


@pytest.mark.parametrize("case, version, listed, latest, older, shown", SHOWS,
                         ids=[row[0] for row in SHOWS])
def test_a_write_has_shown_in_reads(case: str, version: str, listed: set[str],
                                    latest: str | None, older: set[str], shown: bool) -> None:
    assert shows(version, listed, latest, older) is shown


PAUSES = [
    # (read-lag limit in seconds, the pauses between looks)
    (-1.0, []),  # the call's time bound is already spent
    (0.0, []),
    (0.04, []),
    (0.05, [0.05]),
    (1.0, [0.05, 0.1, 0.2, 0.4]),
    (5.0, [0.05, 0.1, 0.2, 0.4] + [0.5] * 8),
]


@pytest.mark.parametrize("limit, expected", PAUSES, ids=[str(p[0]) for p in PAUSES])
def test_read_lag_waits_double_up_to_half_a_second_within_the_limit(
        limit: float, expected: list[float]) -> None:
    pauses = list(lag_pauses(limit))
    assert pauses == pytest.approx(expected)
    assert sum(pauses) <= limit or not pauses


# ---------------------------------------------------------------------- the race

BASE = v("b", 0, previous=NO_PREVIOUS)
OURS = "o"


def ours(second: int, *, committed: bool = False) -> VersionMeta:
    return v(OURS, second, previous="b", write="w-ours", committed=committed)


def rival(vid: str, second: int, *, committed: bool = False, enabled: bool = True
          ) -> VersionMeta:
    return v(vid, second, previous="b", committed=committed, enabled=enabled)


def race(*versions: VersionMeta, facts: tuple[Fact, ...] = (), base: str | None = "b",
         before: tuple[str, ...] = ("b",)) -> Race:
    listed = by_id(*(((BASE,) if base == "b" else ()) + versions))
    return Race.seen(base=base, before=set(before), listed=listed, write_id="w-ours",
                     ours=OURS, facts=facts)


VERDICTS = [
    # (case, race, True: ours came first after the base / False: another did / None: unknown)
    ("alone", race(ours(1)), True),
    ("a rival in a later second", race(ours(1), rival("r", 2)), True),
    ("a rival in an earlier second", race(ours(2), rival("r", 1)), False),
    ("a tie on the second, nothing else known", race(ours(1), rival("r", 1)), None),
    ("a tie: ours was the latest after the rival was listed",
     race(ours(1), rival("r", 1), facts=(("o", frozenset({"b", "r"})),)), False),
    ("a tie: the rival was the latest after ours was listed",
     race(ours(1), rival("r", 1), facts=(("r", frozenset({"b", "o"})),)), True),
    ("a tie: facts chain (r < x, o < r is not known, x after o)",
     race(ours(1), rival("r", 1), rival("x", 1),
          facts=(("x", frozenset({"o"})), ("r", frozenset({"o"})))), True),
    ("a tie: the rival published its win", race(ours(1), rival("r", 1, committed=True)),
     False),
    ("a tie: a rival lost and restored ours",
     race(ours(1), rival("r", 1), v("x", 1, previous="r", restores=OURS)), True),
    ("a tie: a loser restored the rival", race(ours(1), rival("r", 1), rival("s", 1),
                                               v("x", 1, previous="s", restores="r")), False),
    ("a tie: a restore of a write chained from ours",
     race(ours(1), rival("r", 1), v("d", 1, previous=OURS),
          v("x", 1, previous="r", restores="d")), True),
    ("a tie with a write outside this tool", race(ours(1), outside("u", 1)), None),
    ("a write outside this tool, a second later", race(ours(1), outside("u", 2)), True),
    ("a write outside this tool, a second earlier", race(ours(2), outside("u", 1)), False),
    ("a repeat of our PUT: the earlier copy counts",
     race(ours(1), v("o2", 2, previous="b", write="w-ours"), rival("r", 2)), True),
    ("a repeat of our PUT created first (the first attempt applied) is ours, not a rival",
     race(ours(2), v("o1", 1, previous="b", write="w-ours"), rival("r", 2)), True),
    ("an outside write before the base is not a rival",
     race(ours(1), outside("u", -3), before=("b", "u")), True),
    ("a disabled rival still counts (it was written)",
     race(ours(2), rival("r", 1, enabled=False)), False),
    ("a later write that read the rival does not compete",
     race(ours(1), rival("r", 2), v("d", 3, previous="r")), True),
    ("creating: a rival creating it a second later",
     race(v(OURS, 1, previous=NO_PREVIOUS, write="w-ours"),
          v("r", 2, previous=NO_PREVIOUS), base=None, before=()), True),
    ("creating: a rival creating it first",
     race(v(OURS, 2, previous=NO_PREVIOUS, write="w-ours"),
          v("r", 1, previous=NO_PREVIOUS), base=None, before=()), False),
    ("recovered history before the base is not in the race (old committed wins)",
     race(ours(1), v("old", -5, previous=NO_PREVIOUS, committed=True),
          before=("b", "old")), True),
    ("a restore of the base by a void race is not a rival",
     race(ours(1), rival("r", 1), v("x", 1, previous="r", restores="b")), None),
]


@pytest.mark.parametrize("case, the_race, verdict", VERDICTS, ids=[row[0] for row in VERDICTS])
def test_who_came_first_after_the_base(case: str, the_race: Race, verdict: bool | None) -> None:
    assert the_race.verdict() is verdict


WINNERS = [
    # (case, race as the loser sees it, the version whose value must stand, or None: void)
    ("the rival in an earlier second", race(ours(2), rival("r", 1)), "r"),
    ("a tie: the one that committed", race(ours(1), rival("r", 1, committed=True)), "r"),
    ("a tie: the one another loser restored",
     race(ours(1), rival("r", 1), rival("s", 1), v("x", 1, previous="s", restores="r")), "r"),
    ("a tie of three, nothing proven: void", race(ours(1), rival("r", 1), rival("s", 1)),
     None),
    ("the winner's value was overwritten by a write that read it and won",
     race(ours(2), rival("r", 1), v("d", 3, previous="r")), "d"),
    ("a write that read the winner but lost its own round does not stand",
     race(ours(2), rival("r", 1), v("d", 3, previous="r"), v("e", 2, previous="r")), "e"),
    ("a write outside this tool came first", race(ours(2), outside("u", 1)), "u"),
    ("we came first: no winner to restore", race(ours(1), rival("r", 2)), None),
]


@pytest.mark.parametrize("case, the_race, winner", WINNERS, ids=[row[0] for row in WINNERS])
def test_whose_value_must_stand_after_losing(case: str, the_race: Race,
                                              winner: str | None) -> None:
    assert the_race.winner() == winner


COMMITTED_RIVALS = [
    # (case, versions listed after the void race's restore, the committed winner or None)
    ("one rival committed meanwhile", [rival("r", 1, committed=True), rival("s", 1)], "r"),
    ("none committed", [rival("r", 1), rival("s", 1)], None),
    ("two claim it: none is believed",
     [rival("r", 1, committed=True), rival("s", 1, committed=True)], None),
    ("our own commit tag is not a rival's", [ours(1, committed=True), rival("r", 1)], None),
    ("a committed write of another round",
     [v("r", 1, previous="x", committed=True)], None),
    ("a committed restore does not compete",
     [v("r", 1, previous="b", restores="s", committed=True)], None),
]


@pytest.mark.parametrize("case, relisted, expected", COMMITTED_RIVALS,
                         ids=[row[0] for row in COMMITTED_RIVALS])
def test_a_rival_that_committed_during_a_void_race(case: str, relisted: list[VersionMeta],
                                                   expected: str | None) -> None:
    void = race(ours(1), rival("r", 1), rival("s", 1))
    assert void.verdict() is None and void.winner() is None
    assert void.committed_rival(by_id(BASE, *relisted)) == expected


REASSERTS = [
    # (case, the version latest after our commit, whether we write our value again)
    ("ours is latest", ours(1), False),
    ("a loser of our race is latest", rival("r", 1), True),
    ("a restore of ours is latest", v("x", 2, previous="r", restores=OURS), False),
    ("a restore of a write chained from ours", v("x", 3, previous="r", restores="d"), False),
    ("a stale restore of the rival is latest", v("x", 2, previous=OURS, restores="r"), True),
    ("a later write that read ours", v("d", 2, previous=OURS), False),
    ("a write that read a version we never listed", v("d", 2, previous="zz"), False),
    ("a write that read the loser", v("d", 2, previous="r"), True),
    ("a write outside this tool", outside("u", 2), False),
    ("a hand-tagged version without a write id",
     VersionMeta("u", T0 + 2, None, True, {TAG_PREVIOUS: "b"}), False),
]


@pytest.mark.parametrize("case, latest, again", REASSERTS, ids=[row[0] for row in REASSERTS])
def test_a_winner_reasserts_its_value_only_over_its_race(case: str, latest: VersionMeta,
                                                         again: bool) -> None:
    won = race(ours(1), rival("r", 2), v("d", 2, previous=OURS))
    assert won.verdict() is True
    assert won.reasserts(latest) is again


DESCENDS = [
    # (case, version, listed, whether it is one of ours (o, o2) or a write chained from one)
    ("one of ours", "o2", [v("o2", 1)], True),
    ("a write that read ours", "d", [v("o", 1), v("d", 2, previous="o")], True),
    ("two steps from ours", "e", [v("o", 1), v("d", 2, previous="o"), v("e", 3, previous="d")],
     True),
    ("a restore is not a write chained from ours", "e",
     [v("o", 1), v("d", 2, previous="o", restores="r"), v("e", 3, previous="d")], False),
    ("a chain through a version not listed", "e", [v("e", 3, previous="d")], False),
    ("a chain from another writer", "d", [v("r", 1), v("d", 2, previous="r")], False),
    ("hand-edited tags in a cycle", "a", [v("a", 1, previous="b"), v("b", 1, previous="a")],
     False),
    ("no version", None, [], False),
]


@pytest.mark.parametrize("case, vid, listed, expected", DESCENDS,
                         ids=[row[0] for row in DESCENDS])
def test_descends_from_ours(case: str, vid: str | None, listed: list[VersionMeta],
                            expected: bool) -> None:
    versions = by_id(*listed)
    assert descends(vid, {"o", "o2"}, versions, versions.keys()) is expected


def test_descends_only_within_the_race() -> None:
    versions = by_id(v("o", 1), v("d", 2, previous="o"))
    assert descends("d", {"o"}, versions, {"o"}) is False  # d created before the race


ORDER = [
    # (case, versions, facts, (a, b) pairs proven a before b, pairs not proven)
    ("seconds", [v("a", 1), v("b", 2)], (), [("a", "b")], [("b", "a")]),
    ("a tie proves nothing", [v("a", 1), v("b", 1)], (), [], [("a", "b"), ("b", "a")]),
    ("a previous tag", [v("a", 1), v("b", 1, previous="a")], (), [("a", "b")], [("b", "a")]),
    ("a restores tag", [v("a", 1), v("b", 1, previous="z", restores="a")], (), [("a", "b")],
     [("b", "a")]),
    ("latest after a listing", [v("a", 1), v("b", 1)], (("b", frozenset({"a"})),),
     [("a", "b")], [("b", "a")]),
    ("transitive", [v("a", 1), v("b", 1, previous="a"), v("c", 1)],
     (("c", frozenset({"b"})),), [("a", "c")], [("c", "a")]),
    ("a fact about versions outside the set is ignored", [v("a", 1), v("b", 1)],
     (("zz", frozenset({"a"})), ("b", frozenset({"zz"}))), [], [("a", "b"), ("b", "a")]),
]


@pytest.mark.parametrize("case, versions, facts, proven, unproven", ORDER,
                         ids=[row[0] for row in ORDER])
def test_order_proves_only_what_the_metadata_shows(
        case: str, versions: list[VersionMeta], facts: tuple[Fact, ...],
        proven: list[tuple[str, str]], unproven: list[tuple[str, str]]) -> None:
    order = Order(versions, facts)
    assert all(order.before(a, b) for a, b in proven)
    assert not any(order.before(a, b) for a, b in unproven)
    if proven == [("a", "b")]:
        assert order.first(["a", "b"]) == "a"
    if not proven:
        assert order.first([x.id for x in versions]) is None


# ---------------------------------------------------------------------- purity


def test_the_ordering_module_is_pure() -> None:
    """Standard library and the store interface's dataclasses only: no SDK, no I/O."""
    tree = ast.parse(Path(ordering.__file__).read_text(encoding="utf-8"))
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    assert imported == {"__future__", "heapq", "collections.abc", "dataclasses", "datetime",
                        "deparrow_secrets.stores.interface"}
