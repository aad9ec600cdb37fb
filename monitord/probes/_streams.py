"""Helpers shared by the socket probes: target lookup and name resolution."""

from __future__ import annotations

import asyncio
import socket
from typing import NamedTuple

from monitord.model import Scenario, SocketTarget
from monitord.probes.errors import dns_failure


class Address(NamedTuple):
    family: socket.AddressFamily
    host: str  # numeric; an IPv6 scope rides along as "%zone"
    port: int


def socket_target(scenario: Scenario) -> SocketTarget:
    if not isinstance(scenario.target, SocketTarget):
        raise TypeError(f"{scenario.type} scenario {scenario.id} has no socket target")
    return scenario.target


def numeric_address(host: str, port: int) -> Address | None:
    """``host`` as an address when it is a literal IP (with an IPv6 zone, if any), else
    None. asyncio's getaddrinfo always goes through a worker thread, which for a literal
    IP costs more than the whole check it serves."""
    address, percent, zone = host.partition("%")
    if percent and (not zone or "%" in zone):
        return None
    # inet_pton, not the ipaddress module: the same strict forms, a tenth of the cost.
    for family in (socket.AF_INET6,) if percent else (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except (OSError, ValueError):  # ValueError: an embedded NUL
            continue
        return Address(family, host, port)
    return None


async def resolve(host: str, port: int, kind: socket.SocketKind) -> list[Address]:
    """Addresses for ``host:port`` in resolver order; a lookup failure names the host."""
    numeric = numeric_address(host, port)
    if numeric is not None:
        return [numeric]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise dns_failure(host, exc) from exc
    addresses = [
        Address(family, str(sockaddr[0]), port)
        for family, _type, _proto, _name, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    ]
    if not addresses:
        raise dns_failure(host, socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address"))
    return addresses
