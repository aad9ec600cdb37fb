"""UDP probe: send one datagram, wait for one datagram back.

The socket is connected to the target, so the kernel drops datagrams from
anyone else, and an ICMP port-unreachable comes back as ECONNREFUSED
(``connection refused``) instead of looking like silence.
"""

from __future__ import annotations

import asyncio
import socket

from monitord.model import Observation, Scenario
from monitord.probes._streams import resolve, socket_target
from monitord.probes.errors import ResponseTooLarge


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self, reply: asyncio.Future[bytes]) -> None:
        self.reply = reply

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("UDP socket closed"))


async def probe_udp(scenario: Scenario) -> Observation:
    """Send ``request`` once (an empty datagram is allowed); return the first reply."""
    target = socket_target(scenario)
    address = (await resolve(target.host, target.port, socket.SOCK_DGRAM))[0]
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()
    sock = socket.socket(address.family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # Connecting a datagram socket sends nothing and never blocks (the address is
        # numeric): no need for the loop's connect machinery.
        sock.connect((address.host, address.port))
        transport, _ = await loop.create_datagram_endpoint(lambda: _OneReply(reply), sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        if target.request:
            transport.sendto(target.request)
        else:
            # asyncio's datagram transport drops an empty payload without sending
            # anything (CPython 3.11), yet an empty datagram is a legitimate request.
            sock.send(b"")
        data = await reply
    finally:
        transport.close()
        if not reply.done():
            reply.cancel()
    if len(data) > scenario.max_response_bytes:
        raise ResponseTooLarge(scenario.max_response_bytes)
    return Observation(body=data)
