"""What the Key Vault store decides from version metadata alone: pure, no SDK, no network.

Key Vault has no conditional write, and its `created` has one-second resolution, so the
store's check-and-set (docs/stores.md, "Azure Key Vault") decides from the versions'
metadata which version is current, which one came first after the version a writer read,
whose value must stand after a race, what a rollback goes back to, and when a write's
own version has shown in reads. Those decisions live here, over `VersionMeta` values;
`store.py` fetches the metadata and acts on the answers.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from deparrow_secrets.stores.interface import VersionInfo

# The chain tags every version this tool writes carries (docs/stores.md).
TAG_PREVIOUS = "deparrow-previous"  # the version that was latest when the writer checked
TAG_WRITE = "deparrow-write"  # a random id of one write: a repeated PUT is recognised
TAG_RESTORES = "deparrow-restores"  # this version writes that one's value again
TAG_COMMITTED = "deparrow-committed"  # the writer proved it came first after `previous`
NO_PREVIOUS = "none"  # `deparrow-previous` of a write that created the secret

LABEL_LOSER = "conflict-loser"
LABEL_RESTORE = "restore"
LABEL_DISABLED = "disabled"

LATEST_DISABLED = ""
"""`latest` as the store passes it when Key Vault's latest version is disabled (the
service refuses to read it, so it names no id)."""


@dataclass(frozen=True)
class VersionMeta:
    """Metadata of one version as listed (never its value)."""

    id: str
    created: int  # unix seconds: Key Vault's resolution
    created_on: datetime | None = None  # the same instant, as history reports it
    enabled: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def previous(self) -> str | None:
        return self.tags.get(TAG_PREVIOUS)

    @property
    def write(self) -> str | None:
        return self.tags.get(TAG_WRITE)

    @property
    def restores(self) -> str | None:
        return self.tags.get(TAG_RESTORES)

    @property
    def committed(self) -> bool:
        return self.tags.get(TAG_COMMITTED) == "true"


Fact = tuple[str, frozenset[str]]
"""(latest, listed): `latest` was the version the service reported as latest after the
versions `listed` had been listed, so it was created after each of them."""


def competes(v: VersionMeta, token: str) -> bool:
    """Whether `v` is a candidate to be the first write after the version `token`: a
    write chained from it that is not a restore, or a version written outside this tool."""
    return v.write is None or (v.previous == token and v.restores is None)


def descends(vid: str | None, mine: Collection[str], listed: Mapping[str, VersionMeta],
             nodes: Collection[str]) -> bool:
    """Whether `vid` is one of `mine` or a write chained (by previous tags) from one."""
    seen: set[str] = set()
    while vid and vid not in seen:
        if vid in mine:
            return True
        if vid not in nodes or vid not in listed or listed[vid].restores:
            return False
        seen.add(vid)
        vid = listed[vid].previous
    return False


class Order:
    """What can be proven about the creation order of some versions.

    a < b is proven by: a later created second; b's chain tags naming a (previous or
    restores); or b being the latest the service reported after a was listed.
    """

    def __init__(self, nodes: Iterable[VersionMeta], facts: Iterable[Fact] = ()) -> None:
        self.nodes = {v.id: v for v in nodes}
        succ: dict[str, set[str]] = {k: set() for k in self.nodes}
        for a in self.nodes.values():
            for b in self.nodes.values():
                if a.id != b.id and (a.created < b.created or a.id in (b.previous, b.restores)):
                    succ[a.id].add(b.id)
        for latest, listed in facts:
            if latest in succ:
                for earlier in listed & succ.keys():
                    if earlier != latest:
                        succ[earlier].add(latest)
        self._after: dict[str, set[str]] = {}
        for start in self.nodes:
            seen: set[str] = set()
            stack = list(succ[start])
            while stack:
                n = stack.pop()
                if n not in seen:
                    seen.add(n)
                    stack.extend(succ[n])
            self._after[start] = seen

    def before(self, a: str, b: str) -> bool:
        return a != b and b in self._after.get(a, set())

    def first(self, ids: Iterable[str]) -> str | None:
        """The one of `ids` proven to precede all the others, if any."""
        ids = list(ids)
        for a in ids:
            if all(self.before(a, b) for b in ids if b != a):
                return a
        return None


def history_order(versions: Iterable[VersionMeta], latest: str | None) -> list[VersionMeta]:
    """Oldest first: created second, then chain tags, then version id; `latest` last.

    The service's listing order is not used: it sorts by version id, not by time.
    """
    versions = list(versions)
    by_id = {v.id: v for v in versions}
    parents: dict[str, set[str]] = {v.id: set() for v in versions}
    for v in versions:
        for p in (v.previous, v.restores):
            if p in by_id and p != v.id:
                parents[v.id].add(p)
    if latest in by_id:
        parents[latest] |= {v.id for v in versions if v.id != latest}
    children: dict[str, set[str]] = {v.id: set() for v in versions}
    for child, ps in parents.items():
        for p in ps:
            children[p].add(child)
    waiting = {k: len(ps) for k, ps in parents.items()}
    heap = [(by_id[k].created, k) for k, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    out: list[VersionMeta] = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(by_id[k])
        for c in children[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (by_id[c].created, c))
    if len(out) < len(versions):  # a tag cycle (hand-edited tags): fall back to time order
        done = {v.id for v in out}
        out += sorted((v for v in versions if v.id not in done), key=lambda v: (v.created, v.id))
    return out


def newest(versions: Iterable[VersionMeta]) -> str | None:
    """The newest of `versions` by `history_order` (the latest when the service will not
    name it because it is disabled)."""
    ordered = history_order(versions, None)
    return ordered[-1].id if ordered else None


def version_history(versions: Iterable[VersionMeta], latest: str | None) -> list[VersionInfo]:
    """The versions oldest first, the current one marked, with their labels.

    `latest` is what the service reports as latest: an id; LATEST_DISABLED (then no
    version is current: Key Vault, and ESO, read none); or None when it is not known
    (then the newest by order is current).
    """
    versions = list(versions)
    known = latest if latest and any(v.id == latest for v in versions) else None
    ordered = history_order(versions, known)
    if latest == LATEST_DISABLED:
        current: str | None = None
    else:
        current = known or (ordered[-1].id if ordered else None)
    losers = {v.previous for v in versions if v.restores}
    out = []
    for v in ordered:
        labels = []
        if not v.enabled:
            labels.append(LABEL_DISABLED)
        if v.restores:
            labels.append(f"{LABEL_RESTORE}:{v.restores}")
        if v.id in losers:
            labels.append(LABEL_LOSER)
        out.append(VersionInfo(v.id, v.created_on, v.id == current, tuple(labels)))
    return out


def rollback_target(entries: list[VersionInfo]) -> str | None:
    """The newest version before the current one with different content.

    Skips restores of the current version, losers of a write race and disabled
    versions, so a rollback never brings back a value that lost a race.
    """
    idx = next((i for i, v in enumerate(entries) if v.current), len(entries) - 1)

    def effective(v: VersionInfo) -> str:
        for label in v.labels:
            if label.startswith(f"{LABEL_RESTORE}:"):
                return label.split(":", 1)[1]
        return v.version

    if idx < 0:
        return None
    current = effective(entries[idx])
    for v in reversed(entries[:idx]):
        if (effective(v) != current and LABEL_LOSER not in v.labels
                and LABEL_DISABLED not in v.labels):
            return v.version
    return None


def counts_as(latest: str, expected: str, listed: Mapping[str, VersionMeta]) -> bool:
    """Whether the latest version stands for the `expected` one a writer read: it is that
    version, a restore of it, or a repeat of the same PUT (retried after a timeout)."""
    meta = listed.get(latest)
    restores = meta.restores if meta else None
    write = meta.write if meta else None
    if write and expected in listed and listed[expected].write == write:
        restores = expected
    return expected in (latest, restores)


def shows(version: str, listed: Collection[str], latest: str | None,
          older: Collection[str]) -> bool:
    """Whether a just-written `version` has shown in reads: it is listed, and the latest
    the service reports is none of the versions that existed before the write.

    Key Vault documents no read-your-writes consistency; a version written after another
    becomes visible after it, so once ours shows, every version created before it does.
    """
    return version in listed and bool(latest) and latest not in older


def lag_pauses(limit: float, first: float = 0.05, cap: float = 0.5) -> Iterator[float]:
    """The pauses between looks while waiting for a write to show, doubling from `first`
    to `cap`, and never more in all than `limit` seconds (the read-lag tolerance, cut to
    what is left of the call's time bound)."""
    waited = 0.0
    pause = first
    while waited + pause <= limit:
        yield pause
        waited += pause
        pause = min(pause * 2, cap)


@dataclass(frozen=True)
class Race:
    """One write's view of its race, from a listing taken once its own version showed.

    `token` is the version the write read (`NO_PREVIOUS` when it created the secret);
    `nodes` the versions created after it; `mine` the write's own versions (its PUT and
    repeats of it).
    """

    token: str
    listed: Mapping[str, VersionMeta]
    nodes: frozenset[str]
    mine: frozenset[str]
    order: Order

    @classmethod
    def seen(cls, *, base: str | None, before: Collection[str],
             listed: Mapping[str, VersionMeta], write_id: str, ours: str,
             facts: Iterable[Fact] = ()) -> Race:
        """`before`: the versions listed before the PUT (all up to `base`)."""
        nodes = frozenset(k for k in listed if k not in before and k != base)
        mine = frozenset({k for k, v in listed.items() if v.write == write_id} | {ours})
        return cls(base or NO_PREVIOUS, listed, nodes, mine,
                   Order((listed[k] for k in nodes), facts))

    def verdict(self) -> bool | None:
        """True: ours came first after `token`; False: another did; None: cannot be told."""
        listed, order, nodes, mine = self.listed, self.order, self.nodes, self.mine
        rivals = {k for k in nodes - mine if competes(listed[k], self.token)}
        for k in nodes - mine:  # what other writers of this race proved and published
            v = listed[k]
            if v.restores and descends(v.restores, mine, listed, nodes):
                return True
            if v.restores in rivals or (k in rivals and v.committed):
                return False
        if any(all(order.before(x, m) for m in mine) for x in rivals):
            return False
        if all(any(order.before(m, x) for m in mine) for x in rivals):
            return True
        return None

    def _round_winner(self, token: str, nodes: Collection[str]) -> str | None:
        """The first write after version `token` among `nodes`, if it can be told; not ours."""
        candidates = {k for k in nodes if competes(self.listed[k], token)}
        if not candidates:
            return None
        committed = [k for k in candidates if self.listed[k].committed]
        if len(committed) == 1:
            found: str | None = committed[0]
        else:
            named = {self.listed[k].restores for k in nodes} & candidates
            found = named.pop() if len(named) == 1 else self.order.first(candidates)
        return None if found is None or found in self.mine else found

    def winner(self) -> str | None:
        """For a loser: the version whose value must stand (the winner of its round,
        followed through the writes that read it and won theirs); None when no winner
        can be proven (the race is void)."""
        t = self._round_winner(self.token, self.nodes)
        if t is None:
            return None
        while True:
            later = {k for k in self.nodes if k != t and not self.order.before(k, t)}
            nxt = self._round_winner(t, later)
            if nxt is None:
                return t
            t = nxt

    def committed_rival(self, relisted: Mapping[str, VersionMeta]) -> str | None:
        """After a void race's restore of the base: the one rival that has meanwhile
        published its win (tag `deparrow-committed`), whose value must then stand."""
        committed = [k for k, v in relisted.items()
                     if k not in self.mine and v.committed and competes(v, self.token)]
        return committed[0] if len(committed) == 1 else None

    def reasserts(self, latest: VersionMeta) -> bool:
        """For a winner that has committed: whether the now-latest version must be
        overwritten with its value again (a loser of this race, or a stale restore, became
        latest after its check); a later write that read ours, or any write outside this
        protocol, stands."""
        if latest.id in self.mine or not latest.write:
            return False
        everything = self.listed.keys()
        if latest.restores:
            return not descends(latest.restores, self.mine, self.listed, everything)
        return latest.previous == self.token or not (
            descends(latest.previous, self.mine, self.listed, everything)
            or latest.previous not in self.listed)
