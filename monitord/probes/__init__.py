"""Probes: I/O only. Each one runs a scenario's exchange and returns what it saw.

Every probe has the same signature, ``async (scenario) -> Observation``, and
``open_probes`` hands out the table the runner picks from by scenario type.

Contract for every probe:

- It observes and never judges: status codes, byte checks and text checks are
  ``monitord.checks``' business.
- It raises when the exchange fails; ``classify_exception`` says what the
  exception means (``connection refused``, ``response larger than N bytes``…).
- It does not enforce the scenario's timeout. The caller cancels it at its
  deadline and reports ``timeout after N ms``; a probe is
  cancellation-safe and leaves no socket, transport or task behind.
- It opens a fresh connection every time: no keep-alive, no shared cookies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Protocol

import aiohttp

from monitord import __version__
from monitord.model import Observation, Scenario, ScenarioType
from monitord.probes.errors import (
    ClosedWithoutResponse,
    ProbeError,
    ResponseTooLarge,
    classify_exception,
)
from monitord.probes.http import HttpProbe
from monitord.probes.tcp import probe_tcp
from monitord.probes.udp import probe_udp

__all__ = [
    "DEFAULT_USER_AGENT",
    "ClosedWithoutResponse",
    "Probe",
    "ProbeError",
    "ResponseTooLarge",
    "classify_exception",
    "open_probes",
]

DEFAULT_USER_AGENT = f"monitord/{__version__}"


class Probe(Protocol):
    async def __call__(self, scenario: Scenario) -> Observation: ...


@asynccontextmanager
async def open_probes(
    *, user_agent: str = DEFAULT_USER_AGENT
) -> AsyncIterator[Mapping[ScenarioType, Probe]]:
    """The probe table, valid until the context exits (it owns the HTTP session).

    BATCH scenarios have no probe: their payloads arrive through the API.
    """
    connector = aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=False)
    async with aiohttp.ClientSession(
        connector=connector,
        # The caller owns the deadline (connect to last byte), so aiohttp gets none.
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    ) as session:
        probes: dict[ScenarioType, Probe] = {
            ScenarioType.API: HttpProbe(session, user_agent=user_agent),
            ScenarioType.TCP: probe_tcp,
            ScenarioType.UDP: probe_udp,
        }
        yield MappingProxyType(probes)
