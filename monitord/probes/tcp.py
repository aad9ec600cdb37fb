"""TCP probe: connect, send the request, read until the response is complete, close.

Reading stops at the first of (SPEC §5):

1. ``lengthValidation`` is set and the size it declares has arrived;
2. the peer closed the connection;
3. there is no length check, and every ``responseValidation`` range has arrived;
4. there are no checks on the bytes at all, and the first chunk has arrived;
5. the deadline, which the caller enforces by cancelling the probe.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from monitord.model import Observation, Scenario, Validation
from monitord.probes._streams import close_writer, resolve, socket_target
from monitord.probes.errors import ClosedWithoutResponse, ResponseTooLarge

READ_CHUNK = 64 * 1024

# When a name has several addresses and all fail, an answer from the host (refused,
# reset) says more than, say, "network unreachable" from the other address family.
_REACHED = (errno.ECONNREFUSED, errno.ECONNRESET)


async def probe_tcp(scenario: Scenario) -> Observation:
    """One fresh connection to ``ip:port``; the observation holds every byte read."""
    target = socket_target(scenario)
    reader, writer = await _connect(target.host, target.port)
    try:
        if target.request:
            writer.write(target.request)
            await writer.drain()
        body = await read_response(reader, scenario.validation, scenario.max_response_bytes)
    finally:
        await close_writer(writer)
    return Observation(body=body)


async def read_response(reader: asyncio.StreamReader, validation: Validation, limit: int) -> bytes:
    """Read until ``response_complete`` or end of stream; at most ``limit`` bytes."""
    data = bytearray()
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            if not data:
                raise ClosedWithoutResponse()
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise ResponseTooLarge(limit)
        if response_complete(data, validation, limit):
            return bytes(data)


def response_complete(data: bytes | bytearray, validation: Validation, limit: int) -> bool:
    """Whether ``data`` holds everything the scenario's checks will look at.

    Raises ``ResponseTooLarge`` as soon as the length field declares more than
    ``limit`` bytes, rather than waiting for them.
    """
    if validation.length is not None:
        length = validation.length
        expected = length.expected_size(bytes(data[: length.field_end]))
        if expected is None:
            return False
        if expected > limit:
            raise ResponseTooLarge(limit)
        return len(data) >= expected
    if validation.byte_checks:
        return len(data) >= max(check.end for check in validation.byte_checks)
    return len(data) > 0


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Try each address of ``host`` in turn, as a plain client would."""
    failures: list[OSError] = []
    for address in await resolve(host, port, socket.SOCK_STREAM):
        try:
            return await asyncio.open_connection(address.host, address.port)
        except OSError as exc:
            failures.append(exc)
    reached = [exc for exc in failures if exc.errno in _REACHED]
    raise (reached or failures)[0]
