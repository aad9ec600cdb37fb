"""API probe: one HTTP request as the scenario describes it; the response as it came.

The session is shared across probes (``monitord.probes.open_probes`` owns it),
but its connector never reuses a connection, and it keeps no cookies: every
probe measures a fresh connection and carries no state from another scenario.
"""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict

from monitord.model import HttpTarget, Observation, Scenario
from monitord.probes.errors import ResponseTooLarge

MAX_REDIRECTS = 10
READ_CHUNK = 64 * 1024

# Statuses that never carry a body, whatever Content-Length says.
_NO_BODY_STATUSES = frozenset({204, 304})


class HttpProbe:
    """Probe for API scenarios, bound to a session and a default User-Agent."""

    def __init__(self, session: aiohttp.ClientSession, *, user_agent: str) -> None:
        self._session = session
        self._user_agent = user_agent

    async def __call__(self, scenario: Scenario) -> Observation:
        target = _http_target(scenario)
        method = target.method.upper()
        headers = CIMultiDict(target.headers)
        headers.setdefault("User-Agent", self._user_agent)
        async with self._session.request(
            method,
            target.url,
            headers=headers,
            data=target.body,
            allow_redirects=target.follow_redirects,
            max_redirects=MAX_REDIRECTS,
            ssl=target.tls_verify,
            # Send exactly the headers the scenario names: no guessed Content-Type.
            skip_auto_headers=("Content-Type",),
        ) as response:
            if method == "HEAD" or response.status in _NO_BODY_STATUSES:
                body = b""
            else:
                body = await read_capped(response, scenario.max_response_bytes)
            return Observation(body=body, status_code=response.status, charset=response.charset)


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The response body, failing as soon as it is known to exceed ``limit`` bytes.

    A declared Content-Length above the limit fails before any of the body is
    read; otherwise at most ``limit`` bytes plus one chunk are ever held.
    """
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _http_target(scenario: Scenario) -> HttpTarget:
    if not isinstance(scenario.target, HttpTarget):
        raise TypeError(f"{scenario.type} scenario {scenario.id} has no HTTP target")
    return scenario.target
