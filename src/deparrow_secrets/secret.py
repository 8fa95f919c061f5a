"""A secret value that does not show itself.

repr, str, format, logging and exception text all render as a mask; only
`reveal()` returns the value, and only code that must hand the value to a
store SDK, an export file or an explicit `get` calls it.
"""

from __future__ import annotations

from typing import NoReturn

MASK = "<redacted>"


class SecretValue:
    __slots__ = ("_value",)

    def __init__(self, value: str | SecretValue) -> None:
        # `object`: the check below is for callers the type checker does not see.
        text: object = value.reveal() if isinstance(value, SecretValue) else value
        if not isinstance(text, str):
            raise TypeError("SecretValue takes a str")
        object.__setattr__(self, "_value", text)

    def reveal(self) -> str:
        value: str = _VALUE_SLOT.__get__(self, SecretValue)
        return value

    def __getattribute__(self, name: str) -> object:
        # str.format resolves "{0._value}" through attribute access: the slot is
        # reachable only through reveal().
        if name == "_value":
            raise AttributeError("SecretValue shows its value only through reveal()")
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("SecretValue is immutable")

    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __len__(self) -> int:
        return len(self.reveal())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        import hmac  # on first comparison: its import costs render's start-up

        return hmac.compare_digest(self.reveal().encode(), other.reveal().encode())

    # A hash of the value would let anyone holding it test guesses offline.
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    # A copy would be one more place the value lives, outside whatever owns this one.
    def __copy__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("SecretValue cannot be copied")


_VALUE_SLOT = SecretValue.__dict__["_value"]
