"""Frozen records: what `@dataclass(frozen=True)` gives, made without generating code.

The configuration, the catalog, the provider settings and the store's value types are
loaded by every command, `render` included, whose whole run is measured against one
`kubectl kustomize` build. On Python 3.11, `dataclasses` costs about 7 ms to import (it
brings `inspect`, `ast`, `dis` and `tokenize`) and about 0.5 ms per class, because it
compiles each generated method with `exec`: together more than a third of `render`.
`@record` shares one `__init__`, `__eq__`, `__hash__`, `__repr__` and `__setattr__`
among all records instead, and `dataclass_transform` makes the type checker treat a
record exactly as a frozen dataclass (constructor signature, defaults, no assignment).

Records are the typed inputs: what is read from the configuration, the catalog, a store
and the command line (a provider's identity options). The operations' results, which
one command loads and which turn into JSON with `dataclasses.asdict`, stay dataclasses.

Semantics kept from dataclasses (and tested against them in `tests/test_record.py`):
fields in definition order, base class fields first; `ClassVar` annotations are not
fields; defaults and `field(default_factory=...)`; a mutable default is refused; a
field without a default after one with a default is refused; `__post_init__`;
`repr=False` and `compare=False`; equality only between instances of the same class;
a hash of the compared fields; assignment and deletion raise `FrozenRecordError`, an
AttributeError like `dataclasses.FrozenInstanceError`. Methods a class defines itself
are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform

__all__ = ["FrozenRecordError", "field", "field_names", "record", "replace"]

_T = TypeVar("_T")
_MISSING: Any = object()


class FrozenRecordError(AttributeError):
    """An attempt to assign to or delete a field of a record."""


class _Field:
    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any = _MISSING,
                 default_factory: Callable[[], Any] | None = None,
                 repr: bool = True, compare: bool = True) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None,
          repr: bool = True, compare: bool = True) -> Any:
    """A field with options, as `dataclasses.field` (the subset records use)."""
    if default is not _MISSING and default_factory is not None:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr, compare)


def _is_class_var(annotation: object) -> bool:
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return getattr(annotation, "__origin__", annotation) is ClassVar


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen record of its annotated attributes (see the module text)."""
    fields: dict[str, _Field] = dict(getattr(cls, "__record_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_class_var(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, _Field) else _Field(default=value)
        spec.name = name
        if isinstance(spec.default, list | dict | set):
            raise ValueError(f"mutable default {type(spec.default).__name__} for field "
                             f"{name} of {cls.__qualname__}: use default_factory")
        if spec.default is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, spec.default)
        fields[name] = spec
    seen_default = ""
    for name, spec in fields.items():
        if not spec.required:
            seen_default = seen_default or name
        elif seen_default:
            raise TypeError(f"{cls.__qualname__}: field {name} without a default follows "
                            f"{seen_default}, which has one")
    made: Any = cls
    made.__record_fields__ = fields
    setattr(made, "__match_args__", tuple(fields))  # noqa: B010 (mypy refuses the assignment)
    for name, method in _METHODS.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    return cls


class _RecordMethods:
    """The methods every record shares; each reads the fields from the record's class."""

    __record_fields__: dict[str, _Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.__record_fields__
        name_of = type(self).__qualname__
        if len(args) > len(fields):
            raise TypeError(f"{name_of}() takes {len(fields)} positional arguments but "
                            f"{len(args)} were given")
        values = dict(zip(fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{name_of}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{name_of}() got multiple values for argument {name!r}")
            values[name] = value
        missing = [name for name, spec in fields.items()
                   if spec.required and name not in values]
        if missing:
            raise TypeError(f"{name_of}() missing {len(missing)} required argument"
                            f"{'s' if len(missing) > 1 else ''}: "
                            + ", ".join(repr(name) for name in missing))
        for name, spec in fields.items():
            if name in values:
                value = values[name]
            elif spec.default_factory is not None:
                value = spec.default_factory()
            else:
                value = spec.default
            object.__setattr__(self, name, value)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}"
                          for name, spec in self.__record_fields__.items() if spec.repr)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _compared(self) == _compared(other)

    def __hash__(self) -> int:
        return hash(_compared(self))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")


def _compared(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name, spec in record.__record_fields__.items()
                 if spec.compare)


_METHODS = {name: method for name, method in vars(_RecordMethods).items()
            if name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__",
                        "__delattr__")}


def replace(obj: _T, **changes: Any) -> _T:
    """A copy of record `obj` with `changes`, as `dataclasses.replace`."""
    source: Any = obj
    fields: dict[str, _Field] = source.__record_fields__
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {unknown[0]!r}")
    values = {name: getattr(obj, name) for name in fields}
    return type(obj)(**{**values, **changes})


def field_names(record_class: type) -> tuple[str, ...]:
    """The fields of a record class, in order."""
    fields: dict[str, _Field] = getattr(record_class, "__record_fields__")  # noqa: B009
    return tuple(fields)
