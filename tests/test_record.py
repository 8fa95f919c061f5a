"""`deparrow_secrets.record` behaves as `@dataclass(frozen=True)` where records use it:
each case builds the same class both ways and compares what they do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from deparrow_secrets.config.catalog import CatalogValue
from deparrow_secrets.config.settings import RemoteRef
from deparrow_secrets.record import FrozenRecordError, field, record, replace

Decorate = Callable[[type[Any]], type[Any]]
Field = Callable[..., Any]
BOTH: list[tuple[Decorate, Field]] = [(dataclasses.dataclass(frozen=True), dataclasses.field),
                                      (record, field)]


def _classes(decorate: Decorate, make_field: Field) -> tuple[type[Any], type[Any]]:
    @decorate
    class Base:
        kind: ClassVar[str] = "base"
        name: str
        size: int = 1

        def doubled(self) -> int:
            return self.size * 2

    @decorate
    class Child(Base):
        kind: ClassVar[str] = "child"
        size: int = 5  # redefined: keeps its place, takes the new default
        tags: tuple[str, ...] = make_field(default_factory=tuple)
        items: list[int] = make_field(default_factory=list)
        note: str | None = make_field(default=None, repr=False, compare=False)

    return Base, Child


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except AttributeError:  # FrozenInstanceError or FrozenRecordError
        return "raised", AttributeError
    except Exception as exc:  # the kind of failure is what is compared
        return "raised", type(exc)


def _behaviour(decorate: Decorate, make_field: Field) -> list[tuple[str, Any]]:
    base_cls, child_cls = _classes(decorate, make_field)
    child = child_cls("a", 2, ("t",), [1], note="hidden")
    same = child_cls("a", 2, ("t",), [1], note="other")
    results = [
        ("repr", repr(child).split(".")[-1]),
        ("base repr", repr(base_cls("b")).split(".")[-1]),
        ("defaults", (child_cls("x").size, child_cls("x").tags, child_cls("x").items)),
        ("factory gives a new list", child_cls("x").items is not child_cls("x").items),
        ("eq ignores compare=False", child == same),
        ("eq with other values", child == child_cls("a", 3, ("t",), [1])),
        ("eq across classes", base_cls("a", 2) == child_cls("a", 2, (), [])),
        ("match args", child_cls.__match_args__),
        ("class vars", (base_cls.kind, child_cls.kind)),
        ("methods", child.doubled()),
        ("keywords", repr(child_cls(name="k", items=[3])).split(".")[-1]),
        ("hash of equal", hash(base_cls("a", 2)) == hash(base_cls("a", 2))),
        ("hash of unhashable", _outcome(lambda: hash(child))),
        ("assign", _outcome(lambda: setattr(child, "size", 3))),
        ("delete", _outcome(lambda: delattr(child, "size"))),
        ("missing", _outcome(lambda: base_cls())),
        ("too many", _outcome(lambda: base_cls("a", 1, 2))),
        ("unknown keyword", _outcome(lambda: base_cls("a", colour=1))),
        ("twice", _outcome(lambda: base_cls("a", name="b"))),
    ]
    return results


def test_records_behave_as_frozen_dataclasses() -> None:
    dataclass_results, record_results = (_behaviour(*pair) for pair in BOTH)
    assert record_results == dataclass_results
    # The comparison is not empty: the cases do differ from each other.
    assert ("eq ignores compare=False", True) in record_results
    assert ("assign", ("raised", AttributeError)) in record_results


@pytest.mark.parametrize(("decorate", "make_field"), BOTH)
def test_definitions_dataclasses_refuse_are_refused(decorate: Decorate,
                                                    make_field: Field) -> None:
    class MutableDefault:
        __annotations__ = {"items": "list[int]"}
        items = [1]

    class DefaultThenRequired:
        __annotations__ = {"size": "int", "name": "str"}
        size = 1

    with pytest.raises(ValueError, match="mutable default"):
        decorate(MutableDefault)
    with pytest.raises(TypeError, match="default"):
        decorate(DefaultThenRequired)
    with pytest.raises(ValueError, match="both default and default_factory"):
        make_field(default=1, default_factory=int)


def test_post_init_runs_after_the_fields_are_set() -> None:
    seen: list[tuple[str, int]] = []

    @record
    class Checked:
        name: str
        size: int = 1

        def __post_init__(self) -> None:
            seen.append((self.name, self.size))

    Checked("a", size=4)
    assert seen == [("a", 4)]


def test_replace_copies_with_changes() -> None:
    value = CatalogValue("API_KEY", "the key", "required", "user")
    changed = replace(value, max_age="1h")
    assert (changed.max_age, changed.name, value.max_age) == ("1h", "API_KEY", None)
    assert replace(value) == value and replace(value) is not value
    with pytest.raises(TypeError, match="no field 'colour'"):
        replace(value, colour="red")


def test_the_configuration_records_are_frozen_and_hashable() -> None:
    ref = RemoteRef("deparrow/dev", "API_KEY")
    with pytest.raises(FrozenRecordError):
        ref.key = "elsewhere"  # type: ignore[misc]
    assert {ref: 1}[RemoteRef("deparrow/dev", "API_KEY")] == 1
    assert repr(ref) == "RemoteRef(key='deparrow/dev', property='API_KEY')"
