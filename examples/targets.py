"""Demo targets for the example scenarios in ``scenarios/``.

    .venv/bin/python examples/targets.py            # HTTP 8480, TCP 8481, UDP 8482

Serves, on 127.0.0.1 only:

* HTTP  GET  /health                      {"isSuccess": true, "numErrors": 0, "items": [...]}
* HTTP  GET  /rest/issuehub/4.0/cmonitor  a sync "customer monitor": {"numErrors": 0}
* HTTP  POST /SyncService/push            a push service: 201 {"Response": "Success", ...}
* HTTP  GET  /status.html, /status.xml    a status page in HTML and in XML
* TCP   a length-prefixed protocol: AB 01, a 4-byte big-endian body length, the body
* UDP   answers "PONG <request>" to every datagram

With ``--http-port 0`` (etc.) the system picks free ports. Once listening, one
JSON line with the bound ports is printed on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import struct
from typing import cast

from aiohttp import web

HEALTH = {
    "isSuccess": True,
    "numErrors": 0,
    "version": "2.4.1",
    "items": [{"name": "db", "latencyMs": 3}, {"name": "cache", "latencyMs": 1}],
}
STATUS_HTML = """<!doctype html>
<html><head><title>Shop status</title></head>
<body><h1 id="status">operational</h1>
<ul class="components"><li>db</li><li>cache</li><li>search</li></ul>
<p>Open incidents: <span id="incidents">0</span></p></body></html>
"""
STATUS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<status><state>ok</state><queue depth="3"/><errors>0</errors></status>
"""


async def health(_: web.Request) -> web.Response:
    return web.json_response(HEALTH)


async def customer_monitor(_: web.Request) -> web.Response:
    return web.json_response({"numErrors": 0})


async def push(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not {"appLinkName", "origin", "id"} <= body.keys():
        return web.json_response(
            {"Response": "Error", "Message": "appLinkName, origin and id are required"},
            status=400,
        )
    message = f"Record {body['appLinkName']}\\{body['id']} successfully pushed into the queue!"
    return web.json_response({"Response": "Success", "Message": message}, status=201)


async def status_html(_: web.Request) -> web.Response:
    return web.Response(text=STATUS_HTML, content_type="text/html")


async def status_xml(_: web.Request) -> web.Response:
    return web.Response(text=STATUS_XML, content_type="application/xml")


def framed(body: bytes) -> bytes:
    return b"\xab\x01" + struct.pack(">I", len(body)) + body


async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await asyncio.wait_for(reader.read(4096), 10)
        writer.write(framed(b"HELLO " + request.strip()))
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


class Pong(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"PONG " + data, addr)


async def serve(host: str, http_port: int, tcp_port: int, udp_port: int) -> None:
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/rest/issuehub/4.0/cmonitor", customer_monitor)
    app.router.add_post("/SyncService/push", push)
    app.router.add_get("/status.html", status_html)
    app.router.add_get("/status.xml", status_xml)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    await site.start()
    tcp = await asyncio.start_server(tcp_client, host, tcp_port)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(Pong, local_addr=(host, udp_port))
    ports = {
        "http": runner.addresses[0][1],
        "tcp": tcp.sockets[0].getsockname()[1],
        "udp": udp.get_extra_info("sockname")[1],
    }
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        udp.close()
        tcp.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8480)
    parser.add_argument("--tcp-port", type=int, default=8481)
    parser.add_argument("--udp-port", type=int, default=8482)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.http_port, args.tcp_port, args.udp_port))


if __name__ == "__main__":
    main()
