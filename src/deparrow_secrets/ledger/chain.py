"""The ledger file: HMAC-chained JSON lines in the project's state directory.

Files (all 0600 in the 0700 state directory, written through `safefiles`):
- `ledger.jsonl`: one record a line, appended with O_APPEND under an exclusive lock;
- `ledger.key`: the per-project ledger key (32 random bytes, base64), made by the first
  write only; it keys the data hashes and the chain;
- `ledger.head`: the newest record's number and MAC, MACed itself, rewritten after each
  append, so records cut from the end of the ledger are noticed (unless the head file
  is rolled back with it: see docs/ledger.md).

Each record's `mac` is HMAC-SHA256 (chain subkey) over the canonical JSON of the record
without `mac`; that content holds `seq` and `prev` (the previous record's MAC), so a
removed, reordered or edited record breaks the chain at that point.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deparrow_secrets import safefiles
from deparrow_secrets.errors import InputError, IntegrityError
from deparrow_secrets.secret import SecretValue

LEDGER_FILE = "ledger.jsonl"
KEY_FILE = "ledger.key"
HEAD_FILE = "ledger.head"
FORMAT = 1
_KEY_BYTES = 32
_LINE_LIMIT = 1 << 20  # a record is a few hundred bytes; a longer line is not one
_TAIL_CHUNK = 1 << 16
REQUIRED_FIELDS = ("v", "seq", "time", "command", "env", "keys", "objects", "outcome",
                   "keyId", "prev", "mac")


def canonical(data: Any) -> bytes:
    """The one byte encoding MACs and hashes are computed over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class LedgerKey:
    """The per-project key, from which separate subkeys for each use are derived."""

    raw: bytes

    def _sub(self, label: bytes) -> bytes:
        return hmac.new(self.raw, b"deparrow-secrets ledger " + label, hashlib.sha256).digest()

    @property
    def key_id(self) -> str:
        return self._sub(b"key id").hex()[:16]

    def chain_mac(self, content: Mapping[str, Any]) -> str:
        return hmac.new(self._sub(b"chain"), canonical(content), hashlib.sha256).hexdigest()

    def data_hash(self, context: str, values: Mapping[str, SecretValue]) -> str:
        """HMAC-SHA256 of `values` (property -> value) bound to `context` (environment
        and remote object), so equal contents elsewhere do not show as equal here."""
        encoded = canonical({"context": context,
                             "data": {k: v.reveal() for k, v in values.items()}})
        return "hmac-sha256:" + hmac.new(self._sub(b"data"), encoded,
                                         hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class LedgerFiles:
    root: Path  # the project root: files are reached from it without following links
    state_dir: Path

    @property
    def ledger(self) -> Path:
        return self.state_dir / LEDGER_FILE

    @property
    def key(self) -> Path:
        return self.state_dir / KEY_FILE

    @property
    def head(self) -> Path:
        return self.state_dir / HEAD_FILE

    def exists(self) -> bool:
        return self.ledger.is_file() or self.ledger.is_symlink()

    # ------------------------------------------------------------------ the key

    def read_key(self) -> LedgerKey | None:
        """The ledger key, None when there is none yet. Creates nothing."""
        try:
            text = safefiles.read_bytes(self.root, self.key, limit=256)
        except FileNotFoundError:
            return None
        try:
            raw = base64.urlsafe_b64decode(text.strip())
        except ValueError:
            raw = b""
        if len(raw) != _KEY_BYTES:
            raise IntegrityError(f"{self.key} does not hold a ledger key",
                                 hint="restore it from where you keep it; without it the "
                                 "ledger cannot be verified or extended")
        return LedgerKey(raw)

    def key_for_writing(self) -> LedgerKey:
        """The key, made on the ledger's first write; an existing ledger without its key
        is an error, never a new key that would break the chain unnoticed."""
        key = self.read_key()
        if key is not None:
            return key
        if self.exists():
            raise IntegrityError(f"the ledger key {self.key} is missing, but the ledger "
                                 f"{self.ledger} exists",
                                 hint=f"restore {self.key}, or move {self.ledger} and "
                                 f"{self.head} aside to start a new ledger")
        safefiles.create_file(self.root, self.key,
                              base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)) + b"\n",
                              mode=safefiles.PRIVATE_FILE, private_dir=True)
        made = self.read_key()  # another process may have made it first: theirs wins
        assert made is not None
        return made

    # ------------------------------------------------------------------ appending

    def append(self, content: dict[str, Any], key: LedgerKey) -> dict[str, Any]:
        """Chain `content` after the newest record and append it; the stored record."""
        fd, _ = safefiles.open_append(self.root, self.ledger, private_dir=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_record(fd, self.ledger)
            if last is None:
                head = self._read_head(key)
                if head is not None and head[0] > 0:
                    raise IntegrityError(
                        f"{self.ledger} is empty, but {self.head} records {head[0]} "
                        "record(s): the ledger was removed or emptied",
                        hint=f"restore {self.ledger}, or move {self.head} aside to start a "
                        "new ledger")
            record = dict(content)
            record.update(v=FORMAT, seq=(int(last["seq"]) + 1) if last else 1,
                          keyId=key.key_id, prev=str(last["mac"]) if last else "")
            record["mac"] = key.chain_mac(record)
            line = json.dumps(record, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode("utf-8") + b"\n"
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            self._write_head(record, key)
            return record
        finally:
            os.close(fd)  # releases the lock

    def _write_head(self, record: Mapping[str, Any], key: LedgerKey) -> None:
        head = {"seq": record["seq"], "mac": record["mac"], "keyId": key.key_id}
        head["headMac"] = key.chain_mac({"head": head})
        safefiles.write_file(self.root, self.head, canonical(head) + b"\n",
                             private_dir=True)

    def _read_head(self, key: LedgerKey) -> tuple[int, str] | None:
        """(seq, mac) of the newest record as the head file recorded it; None if absent.

        IntegrityError when the head file was altered."""
        try:
            raw = safefiles.read_bytes(self.root, self.head, limit=4096)
        except FileNotFoundError:
            return None
        try:
            head = json.loads(raw)
            claimed = head.pop("headMac")
            seq, mac = int(head["seq"]), str(head["mac"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IntegrityError(f"{self.head} is not a ledger head",
                                 hint="restore it, or remove it to verify the ledger "
                                 "without it (then records cut from its end go "
                                 "unnoticed)") from None
        if head.get("keyId") != key.key_id or not hmac.compare_digest(
                str(claimed), key.chain_mac({"head": head})):
            raise IntegrityError(f"{self.head} was not written with this project's ledger "
                                 "key, or was edited",
                                 hint=f"restore {self.head} and {self.key} from where you "
                                 "keep them")
        return seq, mac

    # ------------------------------------------------------------------ reading

    def read_records(self) -> list[dict[str, Any]]:
        """Every record, oldest first; [] when there is no ledger. Creates nothing.

        InputError (exit 2) for a line that is not a record, naming its number only."""
        try:
            data = safefiles.read_bytes(self.root, self.ledger)
        except FileNotFoundError:
            return []
        records = []
        lines = data.split(b"\n")
        complete = lines[:-1]  # the text after the last newline is not a whole line
        for number, line in enumerate(complete, 1):
            records.append(_parse_line(line, number, self.ledger))
        if lines[-1]:
            raise InputError(f"line {len(lines)} of the ledger is incomplete (no newline at "
                             "its end): truncated, or cut while being written",
                             file=str(self.ledger),
                             hint="move the incomplete last line out of the file (it is "
                             "not shown here), then run `deparrow-secrets audit --verify`")
        return records

    def verify(self, records: list[dict[str, Any]]) -> tuple[int, str]:
        """(number of records, newest MAC) of an intact chain; IntegrityError naming the
        first bad record and what is wrong with it otherwise."""
        key = self.read_key()
        if key is None:
            if not records:
                return 0, ""
            raise IntegrityError(f"the ledger key {self.key} is missing: the ledger "
                                 "cannot be verified",
                                 hint=f"restore {self.key} from where you keep it")
        seqs = [r["seq"] for r in records]
        prev = ""
        for line, record in enumerate(records, 1):
            expected = line
            where = f"record {expected} (line {line})"
            if record["keyId"] != key.key_id:
                raise IntegrityError(f"{where} was chained with an unknown key "
                                     f"(key id {str(record['keyId'])[:16]}, this project's "
                                     f"is {key.key_id})",
                                     hint=f"the ledger or {self.key} was replaced; restore "
                                     "the pair that belongs together")
            content = {k: v for k, v in record.items() if k != "mac"}
            if not hmac.compare_digest(str(record["mac"]), key.chain_mac(content)):
                raise IntegrityError(f"{where} was edited: its MAC does not match its "
                                     "content", hint=_RESTORE)
            if record["seq"] != expected:
                if expected in seqs[line:]:
                    raise IntegrityError(f"the ledger is reordered at line {line}: it holds "
                                         f"record {record['seq']} where record {expected} "
                                         "belongs", hint=_RESTORE)
                raise IntegrityError(f"record {expected} is missing (removed): line {line} "
                                     f"holds record {record['seq']}", hint=_RESTORE)
            if record["prev"] != prev:
                raise IntegrityError(f"{where} does not follow record {expected - 1}: the "
                                     "chain was spliced or reordered", hint=_RESTORE)
            prev = str(record["mac"])
        head = self._read_head(key)
        if head is not None:
            head_seq, head_mac = head
            if head_seq > len(records):
                raise IntegrityError(f"records {len(records) + 1} to {head_seq} are missing: "
                                     f"{self.head} records {head_seq} record(s), the ledger "
                                     f"holds {len(records)} (its end was cut)",
                                     hint=_RESTORE)
            if head_seq >= 1 and not hmac.compare_digest(
                    str(records[head_seq - 1]["mac"]), head_mac):
                raise IntegrityError(f"record {head_seq} is not the one {self.head} "
                                     "recorded: the ledger's end was replaced", hint=_RESTORE)
        return len(records), prev


_RESTORE = ("restore .deparrow-secrets/ledger.jsonl from a backup; the records before this "
            "one are intact")


def _parse_line(line: bytes, number: int, path: Path) -> dict[str, Any]:
    def bad(what: str) -> InputError:
        return InputError(f"line {number} of the ledger is not a ledger record ({what})",
                          file=str(path),
                          hint="the line is not shown; look at it with an editor, or run "
                          "`deparrow-secrets audit --verify` to check the whole chain")

    if len(line) > _LINE_LIMIT:
        raise bad("too long")
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise bad("not JSON; truncated or edited by hand") from None
    if not isinstance(record, dict):
        raise bad("not a JSON object")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise bad("missing " + ", ".join(missing))
    if not isinstance(record["seq"], int) or isinstance(record["seq"], bool):
        raise bad("seq is not a number")
    if not isinstance(record["keys"], list) or not isinstance(record["objects"], list) \
            or not isinstance(record["outcome"], dict):
        raise bad("keys, objects or outcome of the wrong type")
    return record


def _last_record(fd: int, path: Path) -> dict[str, Any] | None:
    """The newest record of the open ledger, read from its end; None when it is empty.

    IntegrityError when the file does not end with a complete record: appending after
    it would chain onto something that is not a record."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    chunk = min(size, _TAIL_CHUNK)
    while True:
        tail = os.pread(fd, chunk, size - chunk)
        if not tail.endswith(b"\n"):
            raise IntegrityError(f"the last line of {path} is incomplete",
                                 hint="run `deparrow-secrets audit --verify`, move the "
                                 "incomplete line out of the file, then run the command "
                                 "again to record it")
        start = tail.rfind(b"\n", 0, len(tail) - 1)
        if start >= 0 or chunk == size:
            line = tail[start + 1:-1]
            break
        if chunk >= _LINE_LIMIT:
            line = tail  # longer than any record: _parse_line refuses it
            break
        chunk = min(size, chunk * 2)
    try:
        return _parse_line(line, 0, path)
    except InputError:
        raise IntegrityError(f"the last line of {path} is not a ledger record",
                             hint="run `deparrow-secrets audit --verify` and restore the "
                             "ledger from a backup") from None
