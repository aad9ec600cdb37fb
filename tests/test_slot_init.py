"""``slot_init``: a frozen, slotted dataclass built through its slots' descriptors is the
same object, with the same parameters, as one built by the generated ``__init__``."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from monitord.model import BatchPayload, Observation, Outcome, Result, ScenarioType, slot_init
from monitord.tracker import ScenarioState, Status

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def record_class() -> type:
    """A new class of the same definition each call: one keeps the generated
    ``__init__``, the other gets ``slot_init``'s."""

    @dataclass(frozen=True, slots=True)
    class Record:
        name: str
        count: int = 0
        status: Status = Status.UNKNOWN
        note: str | None = None

    return Record


Generated = record_class()
Quick = slot_init(record_class())


def as_tuple(value: Any) -> tuple[object, ...]:
    return (value.name, value.count, value.status, value.note)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", 2), {}),
        (("a", 2, Status.OK, "n"), {}),
        ((), {"name": "a", "note": "n"}),
        (("a",), {"status": Status.FAILING, "count": 5}),
    ],
)
def test_the_same_fields_from_the_same_arguments(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    assert as_tuple(Quick(*args, **kwargs)) == as_tuple(Generated(*args, **kwargs))


def test_the_same_parameters_and_the_same_mistakes() -> None:
    assert str(inspect.signature(Quick)) == str(inspect.signature(Generated))
    for args, kwargs in [((), {}), (("a", 1, Status.OK, "n", "extra"), {}), (("a",), {"x": 1})]:
        with pytest.raises(TypeError):
            Generated(*args, **kwargs)
        with pytest.raises(TypeError):
            Quick(*args, **kwargs)


def test_still_frozen_comparable_hashable_replaceable_and_copyable() -> None:
    quick = Quick("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.name = "b"
    assert quick == Quick("a", 1)
    assert hash(quick) == hash(Quick("a", 1))
    assert dataclasses.replace(quick, count=2) == Quick("a", 2)
    assert copy.deepcopy(quick) == quick
    assert repr(quick) == repr(Generated("a", 1))
    assert repr(quick).endswith(
        "Record(name='a', count=1, status=<Status.UNKNOWN: 'unknown'>, note=None)"
    )


def test_the_model_types_that_use_it_build_as_before() -> None:
    result = Result("s", "name", ScenarioType.BATCH, Outcome.SUCCESS, (), T0, 1.5, response_bytes=3)
    assert (result.status_code, result.response_bytes, result.failure_kind) == (None, 3, None)
    payload = BatchPayload("r", T0, "127.0.0.1", b"{}", result)
    assert payload.result is result
    assert Observation() == Observation(b"", None, None, None)
    assert ScenarioState() == ScenarioState(Status.UNKNOWN, 0, None, None, None)
    assert ScenarioState(Status.OK, last_result=result).last_result is result


def test_refuses_what_it_cannot_build_alike() -> None:
    with pytest.raises(TypeError, match="not plain"):

        @slot_init
        @dataclass(frozen=True, slots=True)
        class WithFactory:
            items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match="not plain"):

        @slot_init
        @dataclass(frozen=True, slots=True)
        class KeywordOnly:
            name: str = field(kw_only=True)

    with pytest.raises(TypeError, match="not a plain dataclass"):

        @slot_init
        @dataclass(frozen=True, slots=True)
        class WithPostInit:
            name: str

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="not plain"):

        @slot_init
        @dataclass(frozen=True)
        class WithoutSlots:
            name: str
