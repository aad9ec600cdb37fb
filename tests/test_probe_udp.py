"""The UDP probe against real datagram servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator

import pytest

from monitord.model import FailureKind, Observation, ProbeFailure, ScenarioType
from monitord.probes import Probe, open_probes
from tests.factories import socket_scenario
from tests.targets import closed_udp_port, probe_failure, run_probe, udp_target


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with open_probes() as probes:
        yield probes[ScenarioType.UDP]


def pong(datagram: bytes) -> bytes:
    return b"pong:" + datagram


async def test_reply_datagram_is_observed(probe: Probe) -> None:
    async with udp_target(pong) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, request=b"ping"
        )
        assert await run_probe(probe, scenario) == Observation(body=b"pong:ping")
    assert target.received == [b"ping"]


async def test_binary_request_is_sent_once_and_exactly(probe: Probe) -> None:
    request = bytes.fromhex("00ff7f80 0d0a")
    async with udp_target(pong) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, request=request
        )
        assert await run_probe(probe, scenario) == Observation(body=b"pong:" + request)
    assert target.received == [request]


async def test_empty_request_is_an_empty_datagram(probe: Probe) -> None:
    async with udp_target(pong) as target:
        scenario = socket_scenario(ScenarioType.UDP, target.address.host, target.address.port)
        assert await run_probe(probe, scenario) == Observation(body=b"pong:")
    assert target.received == [b""]


async def test_silent_server_is_left_to_the_callers_timeout(probe: Probe) -> None:
    async with udp_target(lambda datagram: None) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, request=b"ping"
        )
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await probe(scenario)
    assert target.received == [b"ping"]
    gc.collect()  # an unclosed socket would raise its ResourceWarning here


async def test_closed_port_is_refused(probe: Probe) -> None:
    # On loopback the kernel answers with ICMP port-unreachable, which the
    # connected socket reports as ECONNREFUSED.
    address = closed_udp_port()
    scenario = socket_scenario(ScenarioType.UDP, address.host, address.port, request=b"ping")
    assert await probe_failure(probe, scenario) == ProbeFailure(
        FailureKind.UNAVAILABLE, "connection refused"
    )


async def test_datagram_over_the_cap_fails(probe: Probe) -> None:
    async with udp_target(lambda datagram: b"d" * 11) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, max_response_bytes=10
        )
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.WRONG_ANSWER, "response larger than 10 bytes"
        )


async def test_datagram_of_exactly_the_cap_passes(probe: Probe) -> None:
    async with udp_target(lambda datagram: b"d" * 10) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, max_response_bytes=10
        )
        assert await run_probe(probe, scenario) == Observation(body=b"d" * 10)


async def test_largest_datagram_is_observed_whole(probe: Probe) -> None:
    largest = bytes(range(256)) * 255 + b"x" * 227  # 65,507 bytes, the UDP maximum
    assert len(largest) == 65_507
    async with udp_target(lambda datagram: largest) as target:
        scenario = socket_scenario(
            ScenarioType.UDP, target.address.host, target.address.port, request=b"ping"
        )
        assert await run_probe(probe, scenario) == Observation(body=largest)


async def test_dns_failure_names_the_host(probe: Probe) -> None:
    host = "monitord-probe-test.invalid"
    with pytest.raises(socket.gaierror) as resolver:
        await asyncio.get_running_loop().getaddrinfo(host, 5353, type=socket.SOCK_DGRAM)
    scenario = socket_scenario(ScenarioType.UDP, host, 5353, request=b"ping")
    assert await probe_failure(probe, scenario) == ProbeFailure(
        FailureKind.UNAVAILABLE, f"DNS lookup failed for {host}: {resolver.value.strerror}"
    )
