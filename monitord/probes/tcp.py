"""TCP probe: connect, send the request, read until the response is complete, close.

Reading stops at the first of (SPEC §5):

1. ``lengthValidation`` is set and the size it declares has arrived;
2. the peer closed the connection;
3. there is no length check, and every ``responseValidation`` range has arrived;
4. there are no checks on the bytes at all, and the first chunk has arrived;
5. the deadline, which the caller enforces by cancelling the probe.

It uses the event loop's socket calls, not streams: a check writes once and reads
a few chunks, and a stream's transport, protocol, reader and writer cost more to
set up and tear down than the rest of the check.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from monitord.model import Observation, Scenario, Validation
from monitord.probes._streams import resolve, socket_target
from monitord.probes.errors import ClosedWithoutResponse, ResponseTooLarge

READ_CHUNK = 64 * 1024

# When a name has several addresses and all fail, an answer from the host (refused,
# reset) says more than, say, "network unreachable" from the other address family.
_REACHED = (errno.ECONNREFUSED, errno.ECONNRESET)


async def probe_tcp(scenario: Scenario) -> Observation:
    """One fresh connection to ``ip:port``; the observation holds every byte read."""
    target = socket_target(scenario)
    loop = asyncio.get_running_loop()
    with await _connect(loop, target.host, target.port) as sock:
        if target.request:
            await loop.sock_sendall(sock, target.request)
        body = await read_response(loop, sock, scenario.validation, scenario.max_response_bytes)
    return Observation(body=body)


async def read_response(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, validation: Validation, limit: int
) -> bytes:
    """Read until ``response_complete`` or end of stream; at most ``limit`` bytes."""
    data = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, READ_CHUNK)
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


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """Try each address of ``host`` in turn, as a plain client would."""
    failures: list[OSError] = []
    for address in await resolve(host, port, socket.SOCK_STREAM):
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            # As asyncio's streams do: a request's last partial segment goes out at once,
            # not after the peer's (possibly delayed) acknowledgement of the others.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, (address.host, address.port))
        except OSError as exc:
            sock.close()
            failures.append(exc)
        except BaseException:  # cancelled by the deadline, or stopping
            sock.close()
            raise
        else:
            return sock
    reached = [exc for exc in failures if exc.errno in _REACHED]
    raise (reached or failures)[0]
