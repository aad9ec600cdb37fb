"""Loopback targets for the benchmarks, in a process of their own so that their CPU is
not the daemon's: an HTTP server answering a fixed JSON document, a TCP server and a
UDP server answering ``PONG`` to anything.

Run as ``python -m bench.targets``; it prints one JSON line with the ports, then serves
until stdin closes or it is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common import python_process, stop_process

BODY = b'{"status": "ok", "items": 3, "name": "bench target"}'
REPLY = b"PONG"


class _Tcp(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(REPLY)  # type: ignore[attr-defined]
        self.transport.close()


class _Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(REPLY, addr)  # type: ignore[attr-defined]


async def serve() -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    http_port = runner.addresses[0][1]
    loop = asyncio.get_running_loop()
    tcp = await loop.create_server(_Tcp, "127.0.0.1", 0, backlog=4096)
    tcp_port = tcp.sockets[0].getsockname()[1]
    udp, _ = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))
    udp_port = udp.get_extra_info("sockname")[1]
    print(json.dumps({"http": http_port, "tcp": tcp_port, "udp": udp_port}), flush=True)
    # Serve until the parent closes our stdin (or terminates us).
    await loop.run_in_executor(None, sys.stdin.read)
    udp.close()
    tcp.close()
    await runner.cleanup()


@dataclass(frozen=True)
class Targets:
    http_port: int
    tcp_port: int
    udp_port: int
    pid: int

    def http_url(self, path: str = "/health") -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"


@contextlib.contextmanager
def targets() -> Iterator[Targets]:
    """The three targets in a subprocess, stopped afterwards."""
    import subprocess

    process = python_process("from bench.targets import main; main()", stdin=subprocess.PIPE)
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield Targets(ports["http"], ports["tcp"], ports["udp"], process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        stop_process(process)


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
