"""Known values in git history: every line any commit added, and commit messages.

One `git log --all -p -U0` stream (all refs, every commit's diff against its first
parent, added and removed lines only) is read in large blocks cut at commit
boundaries; each block is searched with the same needles as the working tree, and
only a match is mapped back to its commit, file and line. Values never go to git's
argv (no `-S`/`-G`). Merge commits show no diff of their own (their changes are in
the commits merged); binary files are not searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deparrow_secrets.gitrepo import history_patches
from deparrow_secrets.scan.search import Match, excerpt, find_all
from deparrow_secrets.scan.values import Needle

COMMIT_MARK = b"\n\x01"  # each commit starts with \x01<sha>\x02<message>\x03
_HUNK = re.compile(rb"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
MESSAGE = "(commit message)"


@dataclass(frozen=True)
class HistoryHit:
    commit: str
    file: str
    line: int | None
    needles: tuple[Needle, ...]
    excerpt: str


def _blocks(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Chunks of whole commits (each chunk starts at a commit mark)."""
    pending = b""
    for chunk in stream:
        pending += chunk
        cut = pending.rfind(COMMIT_MARK)
        if cut > 0:
            yield pending[:cut + 1]
            pending = pending[cut + 1:]
    if pending:
        yield pending


def _locate(block: bytes, match: Match) -> tuple[str, str, int | None, int] | None:
    """(commit, file, line in that commit's file, where its text starts) of a match;
    None for a removed line."""
    commit_start = block.rfind(COMMIT_MARK, 0, match.start) + 1
    if block[commit_start:commit_start + 1] != b"\x01":
        return None
    sha_end = block.find(b"\x02", commit_start)
    commit = block[commit_start + 1:sha_end].decode("ascii", "replace")
    message_end = block.find(b"\x03", sha_end)
    if match.start < message_end:
        line = block.count(b"\n", sha_end + 1, match.start) + 1
        return commit, MESSAGE, line, sha_end + 1
    line_start = block.rfind(b"\n", 0, match.start) + 1
    if block[line_start:line_start + 1] != b"+" or block.startswith(b"+++", line_start):
        return None  # removed or context line, or a header
    header = block.rfind(b"\n+++ ", message_end, line_start)
    if header == -1:
        return None
    header_end = block.find(b"\n", header + 1)
    name = block[header + 5:header_end].decode("utf-8", "replace")
    name = name[2:] if name.startswith("b/") else name
    hunk = block.rfind(b"\n@@ ", header, line_start)
    if hunk == -1:
        return None
    hunk_end = block.find(b"\n", hunk + 1)
    found = _HUNK.match(block, hunk + 1, hunk_end)
    if not found:
        return None
    number = int(found.group(1))
    cursor = hunk_end + 1
    while cursor < line_start:  # count the new file's lines between the hunk and here
        nxt = block.find(b"\n", cursor)
        if block[cursor:cursor + 1] in (b"+", b" "):
            number += 1
        cursor = nxt + 1
    return commit, name, number, line_start


def search_history(cwd: Path, needles: Sequence[Needle]) -> Iterator[HistoryHit]:
    if not needles:
        return
    with history_patches(cwd) as stream:
        seen: set[tuple[str, str, int | None, str]] = set()
        for block in _blocks(stream):
            matches = find_all(block, needles)
            for m in matches:
                where = _locate(block, m)
                if where is None:
                    continue
                commit, name, line, floor = where
                key = (commit, name, line, m.needle.label)
                if key in seen:
                    continue
                seen.add(key)
                near = [o for o in matches
                        if o.start < m.end + 4096 and o.end > m.start - 4096]
                yield HistoryHit(commit, name, line, (m.needle,),
                                 excerpt(block, near, m.start, floor))
