"""A secret value that does not show itself.

repr, str, format, logging and exception text all render as a mask; only
`reveal()` returns the value, and only code that must hand the value to a
store SDK, an export file or an explicit `get` calls it.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

MASK = "<redacted>"


class SecretValue:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, SecretValue):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("SecretValue takes a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("SecretValue is immutable")

    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    # A hash of the value would let anyone holding it test guesses offline.
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")
