"""Real servers on 127.0.0.1 (port 0) for probe tests.

Every target is an async context manager that starts a server, yields where it
listens and what it saw, and on exit releases whatever its handlers are still
holding, so no test leaves a task or a socket behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from aiohttp import web
from multidict import CIMultiDictProxy

from monitord.model import Observation, ProbeFailure, Scenario
from monitord.probes import Probe, classify_exception

LOCALHOST = "127.0.0.1"

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- HTTP --------------------------------------------------------------------------------

JSON_DOCUMENT = {"isSuccess": True, "numErrors": 0, "items": [1, 2]}
HTML_PAGE = "<html><head><title>Café</title></head><body><p id='s'>ok</p></body></html>"
XML_DOCUMENT = b'<?xml version="1.0"?><status><ok>true</ok><count>3</count></status>'
XXE_DOCUMENT = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<status>&xxe;</status>\n"
)
STREAM_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class WebTarget:
    base_url: str
    received: list[Received] = field(default_factory=list)
    # Held handlers wait on this; set when the target shuts down.
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # Bytes a /stream handler managed to write before the client went away.
    streamed: int = 0
    stream_done: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base_url + path


def _web_app(target: WebTarget) -> web.Application:
    async def json_doc(request: web.Request) -> web.Response:
        return web.json_response(JSON_DOCUMENT)

    async def html(request: web.Request) -> web.Response:
        return web.Response(
            body=HTML_PAGE.encode("iso-8859-1"), content_type="text/html", charset="iso-8859-1"
        )

    async def xml(request: web.Request) -> web.Response:
        return web.Response(body=XML_DOCUMENT, content_type="application/xml")

    async def xxe(request: web.Request) -> web.Response:
        return web.Response(body=XXE_DOCUMENT, content_type="application/xml")

    async def gzipped(request: web.Request) -> web.Response:
        response = web.Response(body=XML_DOCUMENT * 50, content_type="application/xml")
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        target.received.append(
            Received(request.method, request.path, request.query_string, request.headers, body)
        )
        return web.Response(text="received")

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/json"}, text="moved")

    async def redirect_loop(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"}, text="again")

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["size"]))

    async def stream(request: web.Request) -> web.StreamResponse:
        """``size`` bytes, chunked (no Content-Length), until the client goes away."""
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            while target.streamed < size:
                n = min(STREAM_CHUNK, size - target.streamed)
                await response.write(b"y" * n)
                target.streamed += n
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            target.stream_done.set()
        return response

    async def declared_huge(request: web.Request) -> web.StreamResponse:
        """Headers that announce a gigabyte, then no body at all until released."""
        response = web.StreamResponse()
        response.content_length = 1024**3
        await response.prepare(request)
        await target.release.wait()
        return response

    app = web.Application()
    app.router.add_get("/json", json_doc)
    app.router.add_get("/html", html)
    app.router.add_get("/xml", xml)
    app.router.add_get("/xxe", xxe)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/status/{code}", status)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", redirect_loop)
    app.router.add_get("/bytes/{size}", sized)
    app.router.add_get("/stream/{size}", stream)
    app.router.add_get("/declared-huge", declared_huge)
    return app


@asynccontextmanager
async def web_target(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[WebTarget]:
    """An aiohttp application with the routes above, over TLS when given a context."""
    target = WebTarget(base_url="")
    runner = web.AppRunner(_web_app(target), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOCALHOST, 0, ssl_context=ssl_context)
        await site.start()
        port = _bound_port(runner)
        scheme = "https" if ssl_context is not None else "http"
        target.base_url = f"{scheme}://{LOCALHOST}:{port}"
        yield target
    finally:
        target.release.set()
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    (address,) = runner.addresses
    return int(address[1])


async def read_http_request(reader: asyncio.StreamReader) -> bytes:
    """The request head (through the blank line) sent by a client."""
    return await reader.readuntil(b"\r\n\r\n")


# --- TLS ---------------------------------------------------------------------------------


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1.

    Made with the ``openssl`` command line, since the test environment does not
    carry the ``cryptography`` package.
    """
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={LOCALHOST}",
            "-addext",
            f"subjectAltName=IP:{LOCALHOST}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# --- TCP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketAddress:
    host: str
    port: int


@asynccontextmanager
async def tcp_target(handler: StreamHandler) -> AsyncIterator[SocketAddress]:
    """``asyncio.start_server`` running ``handler`` per connection.

    Handlers still running when the block exits are cancelled and awaited, and
    every server-side connection is closed.
    """
    running: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: that is what several tests are about
        finally:
            running.discard(task)
            writer.close()

    server = await asyncio.start_server(serve, LOCALHOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield SocketAddress(LOCALHOST, port)
    finally:
        server.close()
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await server.wait_closed()


def frame(body: bytes) -> bytes:
    """The length-prefixed protocol: ``AB 01``, a 4-byte big-endian length, the body."""
    return b"\xab\x01" + len(body).to_bytes(4, "big") + body


async def wait_for_close(reader: asyncio.StreamReader) -> bytes:
    """Keep the connection open until the client closes it; return what else it sent."""
    rest = bytearray()
    while chunk := await reader.read(4096):
        rest += chunk
    return bytes(rest)


def reset_on_close(writer: asyncio.StreamWriter) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextmanager
def refusing_tcp_port() -> Iterator[SocketAddress]:
    """A port that is bound but not listening, so connecting is refused.

    Keeping the socket bound for the whole block means no other process can
    take the port in between.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        yield SocketAddress(LOCALHOST, sock.getsockname()[1])


def closed_udp_port() -> SocketAddress:
    """A UDP port nothing listens on (it was bound a moment ago, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        return SocketAddress(LOCALHOST, sock.getsockname()[1])


# --- UDP ---------------------------------------------------------------------------------


@dataclass
class UdpTarget:
    address: SocketAddress
    received: list[bytes]


class _Answering(asyncio.DatagramProtocol):
    def __init__(self, answer: Callable[[bytes], bytes | None], received: list[bytes]) -> None:
        self.answer = answer
        self.received = received
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.append(data)
        reply = self.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@asynccontextmanager
async def udp_target(answer: Callable[[bytes], bytes | None]) -> AsyncIterator[UdpTarget]:
    """A UDP server that replies ``answer(datagram)`` to each datagram (None: silence)."""
    received: list[bytes] = []
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Answering(answer, received), local_addr=(LOCALHOST, 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        yield UdpTarget(SocketAddress(LOCALHOST, port), received)
    finally:
        transport.close()


def json_bytes(document: object) -> bytes:
    """How ``web.json_response`` serialises a document."""
    return json.dumps(document).encode()


# --- running probes against targets -----------------------------------------------------

# Generous: only a broken probe gets near it. Tests about timeouts use their own.
PROBE_DEADLINE_S = 5.0


async def run_probe(probe: Probe, scenario: Scenario) -> Observation:
    """Run ``probe`` as the runner does, under an outer deadline."""
    async with asyncio.timeout(PROBE_DEADLINE_S):
        return await probe(scenario)


async def probe_failure(probe: Probe, scenario: Scenario) -> ProbeFailure:
    """Run ``probe`` expecting it to raise; the failure its exception stands for."""
    try:
        observation = await run_probe(probe, scenario)
    except TimeoutError:
        raise
    except Exception as exc:
        return classify_exception(exc)
    raise AssertionError(f"the probe did not fail: {observation!r}")


# --- a local systemd notify socket ------------------------------------------------------

SUN_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL


@contextmanager
def notify_receiver(folder: Path, timeout_s: float | None = None) -> Iterator[socket.socket]:
    """A bound AF_UNIX datagram socket, as systemd's ``NOTIFY_SOCKET`` would be.

    ``timeout_s`` None makes it non-blocking. Its address is ``getsockname()``;
    a folder too deep for a socket path falls back to a short temporary one.
    """
    path = folder / "notify.sock"
    short = None
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        short = Path(tempfile.mkdtemp(prefix="md-"))
        path = short / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        if timeout_s is None:
            sock.setblocking(False)
        else:
            sock.settimeout(timeout_s)
        yield sock
    finally:
        sock.close()
        if short is not None:
            shutil.rmtree(short)
