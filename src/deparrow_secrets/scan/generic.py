"""Generic secret detection by detect-secrets' plugins (known token formats, high-entropy
strings, keyword assignments), with its default filters and its `pragma: allowlist
secret` comments. Only the type and position of a finding are kept, never the string."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_GENERIC_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class GenericHit:
    path: Path
    line: int
    type: str


def _detect_secrets() -> tuple[object, object]:
    from deparrow_secrets.deps import require

    purpose = "generic secret detection"
    hint = "pip install 'deparrow-secrets[scan]' (or detect-secrets>=1.5)"
    return (require("detect_secrets.core.scan", "scan", purpose=purpose, hint=hint),
            require("detect_secrets.settings", "scan", purpose=purpose, hint=hint))


def _is_text(path: Path) -> bool:
    try:
        if path.stat().st_size > MAX_GENERIC_BYTES:
            return False
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return False
    return b"\0" not in head


def detect(paths: Iterable[Path]) -> Iterator[GenericHit]:
    scan, settings = _detect_secrets()
    with settings.default_settings():  # type: ignore[attr-defined]
        for path in paths:
            if not _is_text(path):
                continue
            seen: set[tuple[int, str]] = set()
            for secret in scan.scan_file(str(path)):  # type: ignore[attr-defined]
                key = (int(secret.line_number), str(secret.type))
                if key not in seen:
                    seen.add(key)
                    yield GenericHit(path, key[0], key[1])
