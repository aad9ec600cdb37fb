"""The TCP probe against real servers on 127.0.0.1, and its stop rules."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator

import pytest

from monitord.model import (
    ByteCheck,
    Endian,
    FailureKind,
    IntType,
    LengthCheck,
    Observation,
    ProbeFailure,
    ScenarioType,
    Validation,
)
from monitord.probes import Probe, ResponseTooLarge, open_probes
from monitord.probes.tcp import response_complete
from tests.factories import socket_scenario
from tests.targets import (
    StreamHandler,
    frame,
    probe_failure,
    refusing_tcp_port,
    reset_on_close,
    run_probe,
    tcp_target,
    wait_for_close,
)

# SPEC §5: "AB 01", a 4-byte big-endian body length at byte 2, then the body.
FRAMED = LengthCheck(Endian.BIG, 2, IntType.INT, 6)
PAUSE_S = 0.02  # between the pieces of a reply, so they arrive as separate reads


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with open_probes() as probes:
        yield probes[ScenarioType.TCP]


class Conversation:
    """What one server connection saw, for assertions after the probe returned."""

    def __init__(self) -> None:
        self.request = b""
        self.after_reply = b""
        self.client_closed = asyncio.Event()

    async def wait_closed(self) -> None:
        async with asyncio.timeout(5):
            await self.client_closed.wait()


def replying(
    pieces: list[bytes], *, request_size: int = 0, hold_open: bool = True
) -> tuple[Conversation, StreamHandler]:
    """A handler that reads ``request_size`` bytes, then writes ``pieces`` with pauses."""
    seen = Conversation()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if request_size:
            seen.request = await reader.readexactly(request_size)
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(PAUSE_S)
            writer.write(piece)
            await writer.drain()
        if hold_open:
            seen.after_reply = await wait_for_close(reader)
            seen.client_closed.set()

    return seen, handler


# --- stop rules --------------------------------------------------------------------------


async def test_length_rule_reply_sent_at_once(probe: Probe) -> None:
    reply = frame(b"0123456789")
    seen, handler = replying([reply], request_size=4)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP, address.host, address.port, request=b"PING", length=FRAMED
        )
        assert await run_probe(probe, scenario) == Observation(body=reply)
        await seen.wait_closed()
    assert len(reply) == 16
    assert seen.request == b"PING"
    assert seen.after_reply == b""


async def test_length_rule_reply_split_over_several_writes(probe: Probe) -> None:
    reply = frame(b"split body of 25 bytes...")
    pieces = [reply[:1], reply[1:4], reply[4:9], reply[9:20], reply[20:]]
    seen, handler = replying(pieces, request_size=4)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP, address.host, address.port, request=b"PING", length=FRAMED
        )
        assert await run_probe(probe, scenario) == Observation(body=reply)
        await seen.wait_closed()


async def test_length_rule_declared_size_over_the_cap_fails_at_once(probe: Probe) -> None:
    header_only = frame(b"x" * 1_000_000)[:6]  # declares a megabyte, sends none of it
    seen, handler = replying([header_only])
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP, address.host, address.port, length=FRAMED, max_response_bytes=1000
        )
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.WRONG_ANSWER, "response larger than 1000 bytes"
        )
        await seen.wait_closed()


async def test_byte_range_rule_waits_for_every_range(probe: Probe) -> None:
    seen, handler = replying([b"Hello ", b"World", b"!"])
    checks = (ByteCheck(0, b"Hello"), ByteCheck(6, b"World"))
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, byte_checks=checks)
        # Stops at byte 11, when "World" has arrived; the "!" that follows is not awaited.
        assert await run_probe(probe, scenario) == Observation(body=b"Hello World")
        await seen.wait_closed()


async def test_first_chunk_rule_without_checks(probe: Probe) -> None:
    seen, handler = replying([b"220 banner\r\n", b"never read"])
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port)
        assert await run_probe(probe, scenario) == Observation(body=b"220 banner\r\n")
        await seen.wait_closed()


async def test_peer_close_rule_returns_what_arrived(probe: Probe) -> None:
    _, handler = replying([b"short", b" reply"], hold_open=False)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP, address.host, address.port, byte_checks=(ByteCheck(90, b"x"),)
        )
        assert await run_probe(probe, scenario) == Observation(body=b"short reply")


async def test_peer_close_before_the_declared_length(probe: Probe) -> None:
    truncated = frame(b"0123456789")[:10]
    _, handler = replying([truncated], hold_open=False)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, length=FRAMED)
        assert await run_probe(probe, scenario) == Observation(body=truncated)


async def test_more_than_the_cap_fails(probe: Probe) -> None:
    seen, handler = replying([b"z" * 600, b"z" * 600])
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP,
            address.host,
            address.port,
            byte_checks=(ByteCheck(5000, b"z"),),
            max_response_bytes=1000,
        )
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.WRONG_ANSWER, "response larger than 1000 bytes"
        )
        await seen.wait_closed()


@pytest.mark.parametrize(
    ("data", "validation", "complete"),
    [
        (b"", Validation(1000), False),
        (b"a", Validation(1000), True),
        (b"Hello Worl", Validation(1000, byte_checks=(ByteCheck(6, b"World"),)), False),
        (b"Hello World", Validation(1000, byte_checks=(ByteCheck(6, b"World"),)), True),
        (b"\xab\x01\x00\x00", Validation(1000, length=FRAMED), False),
        (b"\xab\x01\x00\x00\x00\x02a", Validation(1000, length=FRAMED), False),
        (b"\xab\x01\x00\x00\x00\x02ab", Validation(1000, length=FRAMED), True),
        # The length rule wins over byte checks that reach further.
        (
            b"\xab\x01\x00\x00\x00\x00",
            Validation(1000, byte_checks=(ByteCheck(20, b"x"),), length=FRAMED),
            True,
        ),
    ],
)
def test_response_complete(data: bytes, validation: Validation, complete: bool) -> None:
    assert response_complete(data, validation, limit=1000) is complete


def test_response_complete_rejects_a_declared_size_over_the_limit() -> None:
    validation = Validation(1000, length=FRAMED)
    header = b"\xab\x01" + (995).to_bytes(4, "big")  # 995 + 6 = 1001 bytes
    with pytest.raises(ResponseTooLarge):
        response_complete(header, validation, limit=1000)
    assert response_complete(b"\xab\x01" + (994).to_bytes(4, "big"), validation, 1000) is False


# --- what is sent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        "Hello World! ü".encode(),  # request: UTF-8 text
        bytes.fromhex("00ff10 0d0a 7f80"),  # requestHex: raw bytes
    ],
)
async def test_request_is_delivered_exactly(probe: Probe, request_bytes: bytes) -> None:
    seen, handler = replying([b"ok"], request_size=len(request_bytes))
    async with tcp_target(handler) as address:
        scenario = socket_scenario(
            ScenarioType.TCP, address.host, address.port, request=request_bytes
        )
        assert await run_probe(probe, scenario) == Observation(body=b"ok")
        await seen.wait_closed()
    assert seen.request == request_bytes
    assert seen.after_reply == b""


async def test_request_larger_than_the_socket_buffers_is_delivered_whole(probe: Probe) -> None:
    request = bytes(range(256)) * (32 * 1024)  # 8 MiB: the send waits for the peer to read
    seen, handler = replying([b"ok"], request_size=len(request))
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, request=request)
        assert await run_probe(probe, scenario) == Observation(body=b"ok")
        await seen.wait_closed()
    assert seen.request == request


async def test_empty_request_sends_nothing(probe: Probe) -> None:
    seen, handler = replying([b"banner"])
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port)
        assert await run_probe(probe, scenario) == Observation(body=b"banner")
        await seen.wait_closed()
    assert seen.after_reply == b""


# --- failures ----------------------------------------------------------------------------


async def test_timeout_is_left_to_the_caller_and_nothing_leaks(probe: Probe) -> None:
    seen, handler = replying([], request_size=4)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, request=b"PING")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await probe(scenario)
        await seen.wait_closed()
    assert seen.request == b"PING"
    gc.collect()  # an unclosed socket would raise its ResourceWarning here


async def test_server_closing_at_once(probe: Probe) -> None:
    _, handler = replying([], request_size=4, hold_open=False)
    async with tcp_target(handler) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, request=b"PING")
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.UNAVAILABLE, "connection closed by peer without a response"
        )


async def test_refused_connection(probe: Probe) -> None:
    with refusing_tcp_port() as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, request=b"x")
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.UNAVAILABLE, "connection refused"
        )


async def test_reset_by_peer(probe: Probe) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        reset_on_close(writer)

    async with tcp_target(reset) as address:
        scenario = socket_scenario(ScenarioType.TCP, address.host, address.port, request=b"PING")
        assert await probe_failure(probe, scenario) == ProbeFailure(
            FailureKind.UNAVAILABLE, "connection reset by peer"
        )


async def test_dns_failure_names_the_host(probe: Probe) -> None:
    host = "monitord-probe-test.invalid"
    with pytest.raises(socket.gaierror) as resolver:
        await asyncio.get_running_loop().getaddrinfo(host, 7000, type=socket.SOCK_STREAM)
    scenario = socket_scenario(ScenarioType.TCP, host, 7000)
    assert await probe_failure(probe, scenario) == ProbeFailure(
        FailureKind.UNAVAILABLE, f"DNS lookup failed for {host}: {resolver.value.strerror}"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "fe80::1%1"])
async def test_a_literal_ip_is_not_sent_to_the_resolver_thread(host: str) -> None:
    """A literal address needs no lookup: with the loop's worker threads gone it is still
    an address, of the family getaddrinfo gives; a name still goes to the resolver."""
    from concurrent.futures import ThreadPoolExecutor

    from monitord.probes._streams import resolve

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(1)
    loop.set_default_executor(executor)
    executor.shutdown()
    (address,) = await resolve(host, 80, socket.SOCK_STREAM)
    family = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)[0][0]
    assert (address.family, address.host, address.port) == (family, host, 80)
    with pytest.raises(RuntimeError):
        await resolve("localhost", 80, socket.SOCK_STREAM)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "0.0.0.0", "::", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "::1%1",
        "1.2.3", "01.2.3.4", "1.2.3.04", "256.1.1.1", "0x7f.1.1.1", " 1.2.3.4", "1.2.3.4 ",
        "1.2.3.4%x", "fe80::1%", "::1%%", "%eth0", "[::1]", "1::2::3", "1.2.3.4\x00",
        "\uff11.2.3.4", "", "example.com",
    ],
)  # fmt: skip
def test_literal_ips_are_told_apart_as_the_ipaddress_module_does(host: str) -> None:
    import ipaddress

    from monitord.probes._streams import numeric_address

    try:
        version: int | None = ipaddress.ip_address(host).version
    except ValueError:
        version = None
    expected = {None: None, 4: socket.AF_INET, 6: socket.AF_INET6}[version]
    found = numeric_address(host, 80)
    assert (None if found is None else found.family) == expected
