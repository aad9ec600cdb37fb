"""Logging: one line per record on stderr, as text or JSON lines.

Records about a scenario carry its id and name (pass ``extra=scenario_fields(s)``
or use ``ScenarioLog``), and both formats print them on every such line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from monitord.model import Scenario, format_timestamp

LOG_FORMATS = ("text", "json")


def scenario_fields(scenario: Scenario) -> dict[str, str]:
    return {"scenario_id": scenario.id, "scenario_name": scenario.name}


class ScenarioLog(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every record names one scenario."""

    def __init__(self, logger: logging.Logger, scenario: Scenario) -> None:
        super().__init__(logger, scenario_fields(scenario))

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


class Throttle:
    """At most one line per key and window: the first occurrence is logged, the next ones
    within the window are only counted, and the first line after the window says how
    many were held back. Keys quiet for two windows are forgotten."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (last line at, held since)
        self._pruned_at = clock()

    def allow(self, key: str, count: int = 1) -> int | None:
        """None: hold this occurrence (of ``count`` events) back. Otherwise log it now,
        and the number is how many events were held back since the key's last line."""
        now = self._clock()
        if now - self._pruned_at >= self.window_s:
            self._prune(now)
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            self._seen[key] = (seen[0], seen[1] + count)
            return None
        self._seen[key] = (now, 0)
        return 0 if seen is None else seen[1]

    def _prune(self, now: float) -> None:
        # A key quiet for two windows has nothing held that its next line could still
        # report as recent; the counters in metrics keep every event.
        self._pruned_at = now
        horizon = now - 2 * self.window_s
        self._seen = {k: v for k, v in self._seen.items() if v[0] >= horizon}


def _timestamp(record: logging.LogRecord) -> str:
    return format_timestamp(datetime.fromtimestamp(record.created, UTC))


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        scenario_id = getattr(record, "scenario_id", None)
        if scenario_id is not None:
            line += f" scenario_id={scenario_id}"
            name = getattr(record, "scenario_name", None)
            if name is not None:
                line += f" scenario_name={json.dumps(name, ensure_ascii=False)}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info)
        return _one_line(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("scenario_id", "scenario_name"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(fmt: str = "text", level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorFilter) for f in server.filters):
        server.addFilter(ClientErrorFilter())


class ClientErrorFilter(logging.Filter):
    """aiohttp logs a request it could not parse (a broken compressed body, say) as an
    error with a traceback. That is the client's mistake, which any client can repeat:
    one warning line, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (HttpProcessingError, RequestPayloadError)):
            record.msg, record.args = "bad request from a client: %s", (_one_line(str(exc)),)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
