"""UDP probe: send one datagram, wait for one datagram back.

The socket is connected to the target, so the kernel drops datagrams from
anyone else, and an ICMP port-unreachable comes back as ECONNREFUSED
(``connection refused``) instead of looking like silence.

It uses the event loop's socket calls, not a datagram transport: one datagram
each way needs no protocol object, and the transport's set-up and teardown cost
more than the rest of the check.
"""

from __future__ import annotations

import asyncio
import socket

from monitord.model import Observation, Scenario
from monitord.probes._streams import resolve, socket_target
from monitord.probes.errors import ResponseTooLarge

# The largest UDP payload (65,535 minus the IPv4 and UDP headers) fits in one read.
MAX_DATAGRAM = 65_507


async def probe_udp(scenario: Scenario) -> Observation:
    """Send ``request`` once (an empty datagram is allowed); return the first reply."""
    target = socket_target(scenario)
    address = (await resolve(target.host, target.port, socket.SOCK_DGRAM))[0]
    limit = scenario.max_response_bytes
    loop = asyncio.get_running_loop()
    with socket.socket(address.family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        # Connecting a datagram socket sends nothing and never blocks (the address is
        # numeric). A send to a full buffer is retried when the socket is writable.
        sock.connect((address.host, address.port))
        await loop.sock_sendall(sock, target.request)
        # One byte over the limit is enough to tell a reply that is too large.
        data = await loop.sock_recv(sock, min(limit + 1, MAX_DATAGRAM + 1))
    if len(data) > limit:
        raise ResponseTooLarge(limit)
    return Observation(body=data)
