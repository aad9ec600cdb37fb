"""The bare loops that bound what monitord's probes can do in Python, and the harness
that runs any load loop as a measured process of its own.

Each loop does what one monitord check does and nothing else: a fresh connection (or
datagram endpoint) per check, the same request, the same validation. The loops run
with bounded concurrency as fast as they can; what counts is checks per CPU-second of
their process, so they may run next to the target without skewing the figure much.

Run as ``python -m bench.ceiling KIND TARGET CONCURRENCY WARM_S WINDOW_S`` (KIND is
http, tcp or udp; TARGET a URL or ``host:port``). The process prints one JSON line
``{"event": "start"}`` when its measured window begins and one
``{"event": "done", ...}`` line with the counts when it ends (see ``drive``).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import cpu_seconds, python_process, stop_process

PING = b"ping"
PONG = b"PONG"
CHECK_TIMEOUT_S = 5.0

Check = Callable[[], Awaitable[bool]]
# Builds a check for a target; also returns what closes its resources.
Factory = Callable[[str], Awaitable[tuple[Check, Callable[[], Awaitable[None]]]]]


# --- the loops -------------------------------------------------------------------------


async def http_check_factory(url: str) -> tuple[Check, Callable[[], Awaitable[None]]]:
    """A check doing monitord's API work: GET on a fresh connection, status 200,
    ``json.loads`` and two JSONPath expressions parsed once (as monitord compiles them
    at load), ``$.status == "ok"`` and ``$.items >= 1``."""
    import aiohttp
    from jsonpath_ng.ext.parser import parse

    status_path = parse("$.status")
    items_path = parse("$.items")
    connector = aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=False)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def check() -> bool:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                return False
        document = json.loads(body)
        statuses = [match.value for match in status_path.find(document)]
        items = [match.value for match in items_path.find(document)]
        return (
            bool(statuses)
            and all(value == "ok" for value in statuses)
            and bool(items)
            and all(isinstance(value, int | float) and value >= 1 for value in items)
        )

    return check, session.close


async def tcp_check_factory(target: str) -> tuple[Check, Callable[[], Awaitable[None]]]:
    """Connect, send ``ping``, read until 4 bytes or end, ``PONG`` at 0, close."""
    host, port = _host_port(target)

    async def check() -> bool:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(PING)
            await writer.drain()
            data = b""
            while len(data) < len(PONG):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            writer.close()
            await writer.wait_closed()
        return data[: len(PONG)] == PONG

    return check, _nothing


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, reply: asyncio.Future[bytes]) -> None:
        self.reply = reply

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def udp_check_factory(target: str) -> tuple[Check, Callable[[], Awaitable[None]]]:
    """A fresh connected datagram endpoint per check: send ``ping``, await one reply."""
    address = _host_port(target)
    loop = asyncio.get_running_loop()

    async def check() -> bool:
        reply: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Reply(reply), remote_addr=address
        )
        try:
            transport.sendto(PING)
            data = await reply
        finally:
            transport.close()
        return data[: len(PONG)] == PONG

    return check, _nothing


async def _nothing() -> None:
    return None


FACTORIES: dict[str, Factory] = {
    "http": http_check_factory,
    "tcp": tcp_check_factory,
    "udp": udp_check_factory,
}


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


@dataclass
class Counts:
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def loop_for(check: Check, concurrency: int, seconds: float, counts: Counts) -> None:
    """``concurrency`` workers running ``check`` back to back for ``seconds``."""
    end = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < end:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    passed = await check()
            except Exception as exc:  # a failed check is counted, not fatal
                counts.failed += 1
                name = type(exc).__name__
                counts.errors[name] = counts.errors.get(name, 0) + 1
                continue
            if passed:
                counts.ok += 1
            else:
                counts.failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure_loop(
    factory: Factory, target: str, concurrency: int, warm_s: float, window_s: float
) -> dict[str, Any]:
    """Warm up, then count checks and this process's CPU over a window."""
    check, close = await factory(target)
    try:
        await loop_for(check, concurrency, warm_s, Counts())
        counts = Counts()
        emit({"event": "start"})
        cpu0, wall0 = time.process_time(), time.monotonic()
        await loop_for(check, concurrency, window_s, counts)
        cpu1, wall1 = time.process_time(), time.monotonic()
    finally:
        await close()
    return {
        "event": "done",
        "checks": counts.ok,
        "failed": counts.failed,
        "errors": counts.errors,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
    }


def emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    kind, target, concurrency, warm_s, window_s = (argv or sys.argv[1:])[:5]
    result = asyncio.run(
        measure_loop(FACTORIES[kind], target, int(concurrency), float(warm_s), float(window_s))
    )
    emit(result)


# --- the harness -----------------------------------------------------------------------


@dataclass
class LoadRun:
    """What a load process reported, and the CPU that watched processes spent in its
    measured window (from /proc, read when its start and done lines arrived)."""

    report: dict[str, Any]
    wall_s: float
    cpu_s: dict[int, float]

    def utilisation(self, pid: int) -> float | None:
        spent = self.cpu_s.get(pid)
        return None if spent is None or self.wall_s <= 0 else spent / self.wall_s


def drive(code: str, args: Sequence[str], watch: Sequence[int], timeout_s: float) -> LoadRun:
    """Run a load process (``python -c code args``) that prints a start and a done line,
    and measure the CPU of the ``watch`` processes between the two."""
    process = python_process(code, *args, stderr=subprocess.PIPE)
    lines = _Lines(process, time.monotonic() + timeout_s)
    try:
        start = lines.next()
        if start.get("event") != "start":
            raise RuntimeError(f"load process said {start!r}")
        wall0 = time.monotonic()
        cpu0 = {pid: _cpu(pid) for pid in watch}
        done = lines.next()
        wall1 = time.monotonic()
        cpu1 = {pid: _cpu(pid) for pid in watch}
        if done.get("event") != "done":
            raise RuntimeError(f"load process said {done!r}")
        spent = {}
        for pid in watch:
            before, after = cpu0[pid], cpu1[pid]
            if before is not None and after is not None:
                spent[pid] = after - before
        return LoadRun(done, wall1 - wall0, spent)
    finally:
        stop_process(process)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


class _Lines:
    """JSON lines from a process's stdout, each read with a deadline."""

    def __init__(self, process: subprocess.Popen[str], deadline: float) -> None:
        assert process.stdout is not None
        self._process = process
        self._fd = process.stdout.fileno()
        self._deadline = deadline
        self._buffer = b""

    def next(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("load process did not report in time")
            ready, _, _ = select.select([self._fd], [], [], min(left, 0.5))
            if not ready:
                if self._process.poll() is not None:
                    raise RuntimeError(self._exited())
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self._process.wait(5)
                raise RuntimeError(self._exited())
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _exited(self) -> str:
        return f"load process exited {self._process.returncode}: {_stderr(self._process)}"


def _stderr(process: subprocess.Popen[str]) -> str:
    if process.stderr is None:
        return ""
    if process.poll() is None:
        return ""
    return process.stderr.read()[-2000:]


if __name__ == "__main__":
    main()
