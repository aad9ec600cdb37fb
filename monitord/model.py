"""Immutable data shared by every layer: scenarios, observations, verdicts, results.

Nothing here does I/O. Scenarios are built once at load time and never mutated;
runtime state (consecutive failures, last result) lives elsewhere.
"""

from __future__ import annotations

import dataclasses
import enum
import time
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict, TypeVar

_T = TypeVar("_T")


def slot_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that sets each field through its
    slot's descriptor, with the same parameters and defaults as the generated one.

    The generated ``__init__`` calls ``object.__setattr__`` per field, the dearest part
    of building such an object; results, payloads and states are built for every run
    and payload (callgrind: 544k -> 522k instructions a receiver request under load).
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not fields or hasattr(cls, "__post_init__"):
        raise TypeError(f"slot_init: {cls.__name__} is not a plain dataclass")
    params, lines = [], []
    names: dict[str, Any] = {}
    for item in fields:
        slot = cls.__dict__.get(item.name)
        plain = item.init and not item.kw_only and item.default_factory is dataclasses.MISSING
        if not plain or not isinstance(slot, types.MemberDescriptorType):
            raise TypeError(f"slot_init: field {item.name} of {cls.__name__} is not plain")
        names[f"_set_{item.name}"] = slot.__set__
        if item.default is dataclasses.MISSING:
            params.append(item.name)
        else:
            names[f"_default_{item.name}"] = item.default
            params.append(f"{item.name}=_default_{item.name}")
        lines.append(f"    _set_{item.name}(self, {item.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines)
    exec(source, names)  # noqa: S102 (the source is built from the class's own field names)
    init = names["__init__"]
    init.__annotations__ = {item.name: item.type for item in fields} | {"return": None}
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


# Code that runs per result or payload reads enum members it compares against from module
# constants (``_SUCCESS = Outcome.SUCCESS``): under Python 3.11 every ``Outcome.SUCCESS``
# goes through ``EnumType.__getattr__``'s lookup hook, over ten times the cost of a module
# constant, and those lookups were 4 % of a receiver request's instructions.


class ScenarioType(enum.StrEnum):
    API = "API"
    TCP = "TCP"
    UDP = "UDP"
    BATCH = "BATCH"


class Operator(enum.StrEnum):
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"


NUMERIC_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})


class TextKind(enum.StrEnum):
    JSON = "JSON"
    HTML = "HTML"
    XML = "XML"


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    SUPPRESSED = "suppressed"


class FailureKind(enum.StrEnum):
    """Why a run failed, as far as events care (SPEC §6 event types)."""

    UNAVAILABLE = "unavailable"  # refused, reset, DNS, TLS, closed without answer
    TIMEOUT = "timeout"
    WRONG_ANSWER = "wrong_answer"  # the target answered, the answer failed a check


class EventType(enum.StrEnum):
    AVAILABILITY_EVENT = "AVAILABILITY_EVENT"
    ERROR_EVENT = "ERROR_EVENT"


class Endian(enum.StrEnum):
    BIG = "BIG"
    LITTLE = "LITTLE"


class IntType(enum.StrEnum):
    BYTE = "BYTE"
    SHORT = "SHORT"
    INT = "INT"
    LONG = "LONG"

    @property
    def size(self) -> int:
        return _INT_SIZES[self]


_INT_SIZES = {IntType.BYTE: 1, IntType.SHORT: 2, IntType.INT: 4, IntType.LONG: 8}


# --- compiled pieces -------------------------------------------------------------------


class Expression(Protocol):
    """A compiled JSONPath or XPath expression (see ``monitord.expressions``)."""

    @property
    def source(self) -> str:
        """The expression as written in the scenario file."""
        ...

    def evaluate(self, document: Any, deadline: float) -> list[Any]:
        """Select values from a parsed document.

        ``deadline`` is a ``time.monotonic()`` instant; evaluation that passes it
        raises ``monitord.expressions.ExpressionTimeout``.
        """
        ...


class CronSchedule(Protocol):
    """A validated cron expression bound to a time zone (see ``monitord.config.cron``)."""

    @property
    def expression(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (both aware, returned in UTC).

        Raises ``ValueError`` when the schedule never fires again (a year that is over).
        """
        ...


# --- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextCheck:
    expression: Expression
    operator: Operator
    operand: str


@dataclass(frozen=True, slots=True)
class TextValidation:
    kind: TextKind
    checks: tuple[TextCheck, ...]


@dataclass(frozen=True, slots=True)
class ByteCheck:
    """``responseValidation[i]``: ``expected`` must sit at ``position``."""

    position: int
    expected: bytes
    is_hex: bool = False  # written as validationHex: show bytes as hex in messages

    @property
    def end(self) -> int:
        return self.position + len(self.expected)


@dataclass(frozen=True, slots=True)
class LengthCheck:
    """``lengthValidation``: the response is ``value(int_type at position) + base`` long."""

    endian: Endian
    position: int
    int_type: IntType
    base: int

    @property
    def field_end(self) -> int:
        return self.position + self.int_type.size

    def field_value(self, data: bytes) -> int | None:
        """The unsigned length field in ``data``, or None while it has not fully arrived."""
        if len(data) < self.field_end:
            return None
        order: Literal["big", "little"] = "big" if self.endian is Endian.BIG else "little"
        return int.from_bytes(data[self.position : self.field_end], order, signed=False)

    def expected_size(self, data: bytes) -> int | None:
        """Total response size the length field declares (value + base), if readable."""
        value = self.field_value(data)
        return None if value is None else value + self.base


@dataclass(frozen=True, slots=True)
class Validation:
    timeout_ms: int
    response_codes: tuple[str, ...] | None = None  # "200" or a class such as "2xx"
    avoiding_text: str | None = None
    text: TextValidation | None = None
    byte_checks: tuple[ByteCheck, ...] = ()
    length: LengthCheck | None = None


@dataclass(frozen=True, slots=True)
class HttpTarget:
    url: str
    method: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    follow_redirects: bool = False
    tls_verify: bool = True
    # The url as the file writes it, ``${NAME}`` references unresolved: safe to show.
    url_as_written: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SocketTarget:
    host: str
    port: int
    request: bytes = b""


@dataclass(frozen=True, slots=True)
class Schedule:
    """Exactly one of ``interval_s`` and ``cron`` is set."""

    interval_s: int | None = None
    cron: CronSchedule | None = None


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    name: str
    type: ScenarioType
    app_key: str
    validation: Validation
    source: Source
    fingerprint: str  # digest of the scenario's definition: equal digests, equal scenario
    description: str = ""
    schedule: Schedule | None = None  # None only for BATCH without an expected rhythm
    regions: frozenset[str] = frozenset()
    error_limit: int = 0
    event_type: EventType | None = None
    entity_selector: str | None = None
    target: HttpTarget | SocketTarget | None = None  # None only for BATCH
    max_response_bytes: int = 10 * 1024 * 1024
    grace_seconds: int | None = None  # BATCH only

    def runs_in(self, region: str) -> bool:
        return not self.regions or region in self.regions


# --- what a run produces ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """The exchange itself failed: nothing (or not enough) came back to judge."""

    kind: FailureKind
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class Observation:
    """What a probe saw. Probes observe; ``monitord.checks`` judges."""

    body: bytes = b""
    status_code: int | None = None  # HTTP only
    charset: str | None = None  # declared by the response, if any
    failure: ProbeFailure | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    failure_kind: FailureKind | None = None
    unreadable: str | None = None  # why the body did not parse for the text checks


class ResultJSON(TypedDict):
    scenarioId: str
    scenarioName: str
    scenarioType: str
    result: str
    reasons: list[str]
    startedAt: str
    durationMs: float
    statusCode: int | None
    responseBytes: int | None


@slot_init
@dataclass(frozen=True, slots=True)
class Result:
    scenario_id: str
    scenario_name: str
    scenario_type: ScenarioType
    outcome: Outcome
    reasons: tuple[str, ...]
    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    response_bytes: int | None = None
    failure_kind: FailureKind | None = None

    def to_json(self) -> ResultJSON:
        """The SPEC §5 result object."""
        return {
            "scenarioId": self.scenario_id,
            "scenarioName": self.scenario_name,
            # StrEnum members are their text (``.value`` is a Python-level property).
            "scenarioType": str(self.scenario_type),
            "result": str(self.outcome),
            "reasons": list(self.reasons),
            "startedAt": format_timestamp(self.started_at),
            "durationMs": round(self.duration_ms, 1),
            "statusCode": self.status_code,
            "responseBytes": self.response_bytes,
        }


@slot_init
@dataclass(frozen=True, slots=True)
class BatchPayload:
    """A payload a batch job posted for a BATCH scenario, and the verdict on it."""

    request_id: str
    received_at: datetime
    client: str  # the peer address of the request
    body: bytes
    result: Result


def format_timestamp(moment: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix: ``2026-11-23T10:00:00.000Z``."""
    text = utc_isoformat(moment)
    return text[:23] + "Z" if moment.microsecond else text[:19] + ".000Z"


# A payload's arrival is written three times (its answer, its result, its stored row),
# and isoformat is the dearest step of each: the text of recent moments is kept, keyed
# by the object's id. The entry holds the object, so its id cannot be reused meanwhile.
_ISOFORMAT_KEPT = 512
_isoformats: dict[int, tuple[datetime, str]] = {}


def utc_isoformat(moment: datetime) -> str:
    """``moment.astimezone(UTC).isoformat()``: ``2026-11-23T10:00:00[.123456]+00:00``."""
    kept = _isoformats.get(id(moment))
    if kept is not None and kept[0] is moment:
        return kept[1]
    # isoformat without arguments: the fastest form (timespec= doubles its cost), with
    # four-digit years everywhere; it leaves out a fraction of 0.
    text = (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat()
    if len(_isoformats) >= _ISOFORMAT_KEPT:
        _isoformats.clear()
    _isoformats[id(moment)] = (moment, text)
    return text


class Clock(Protocol):
    """The one source of time; tests inject their own."""

    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
