"""The API probe against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitord.model import FailureKind, Observation, ProbeFailure, ScenarioType
from monitord.probes import DEFAULT_USER_AGENT, Probe, open_probes
from tests.factories import api_scenario
from tests.targets import (
    HTML_PAGE,
    JSON_DOCUMENT,
    XML_DOCUMENT,
    XXE_DOCUMENT,
    WebTarget,
    json_bytes,
    openssl_available,
    probe_failure,
    read_http_request,
    refusing_tcp_port,
    run_probe,
    self_signed_context,
    tcp_target,
    wait_for_close,
    web_target,
)


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with open_probes() as probes:
        yield probes[ScenarioType.API]


@pytest.fixture
async def web() -> AsyncIterator[WebTarget]:
    async with web_target() as target:
        yield target


def unavailable(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.UNAVAILABLE, reason)


def wrong_answer(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.WRONG_ANSWER, reason)


# --- what comes back ---------------------------------------------------------------------


async def test_json_body_with_status_and_charset(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/json")))
    assert observation == Observation(
        body=json_bytes(JSON_DOCUMENT), status_code=200, charset="utf-8"
    )


async def test_html_body_keeps_its_declared_charset(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/html")))
    assert observation == Observation(
        body=HTML_PAGE.encode("iso-8859-1"), status_code=200, charset="iso-8859-1"
    )


async def test_xml_body_without_charset(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/xml")))
    assert observation == Observation(body=XML_DOCUMENT, status_code=200, charset=None)


async def test_xxe_document_is_returned_untouched(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/xxe")))
    assert observation == Observation(body=XXE_DOCUMENT, status_code=200, charset=None)


async def test_compressed_body_is_decompressed(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/gzip")))
    assert observation == Observation(body=XML_DOCUMENT * 50, status_code=200, charset=None)


@pytest.mark.parametrize("code", [500, 404])
async def test_error_status_is_observed_not_judged(probe: Probe, web: WebTarget, code: int) -> None:
    observation = await run_probe(probe, api_scenario(web.url(f"/status/{code}")))
    assert observation == Observation(
        body=f"status {code}".encode(), status_code=code, charset="utf-8"
    )


# --- what is sent ------------------------------------------------------------------------


async def test_post_sends_method_headers_and_body(probe: Probe, web: WebTarget) -> None:
    body = b'{"order": 42, "items": ["a", "b"]}'
    scenario = api_scenario(
        web.url("/echo?dry=1"),
        method="POST",
        headers=(("Content-Type", "application/json"), ("X-Request-Id", "abc-123")),
        body=body,
    )
    observation = await run_probe(probe, scenario)
    assert observation == Observation(body=b"received", status_code=200, charset="utf-8")
    (seen,) = web.received
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/echo", "dry=1", body)
    assert seen.headers.getall("Content-Type") == ["application/json"]
    assert seen.headers.getall("X-Request-Id") == ["abc-123"]
    assert seen.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_with_a_body(probe: Probe, web: WebTarget, method: str) -> None:
    scenario = api_scenario(web.url("/echo"), method=method, body=b"payload-" + method.encode())
    observation = await run_probe(probe, scenario)
    assert observation == Observation(body=b"received", status_code=200, charset="utf-8")
    (seen,) = web.received
    assert (seen.method, seen.body) == (method, b"payload-" + method.encode())


async def test_body_without_content_type_is_sent_without_one(probe: Probe, web: WebTarget) -> None:
    await run_probe(probe, api_scenario(web.url("/echo"), method="POST", body=b"raw"))
    (seen,) = web.received
    assert "Content-Type" not in seen.headers
    assert seen.body == b"raw"


async def test_get_sends_no_body(probe: Probe, web: WebTarget) -> None:
    await run_probe(probe, api_scenario(web.url("/echo")))
    (seen,) = web.received
    assert (seen.method, seen.body) == ("GET", b"")
    assert "Content-Type" not in seen.headers


async def test_head_observes_an_empty_body(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/echo"), method="HEAD"))
    assert observation == Observation(body=b"", status_code=200, charset="utf-8")
    (seen,) = web.received
    assert seen.method == "HEAD"


async def test_default_user_agent(probe: Probe, web: WebTarget) -> None:
    await run_probe(probe, api_scenario(web.url("/echo")))
    (seen,) = web.received
    assert DEFAULT_USER_AGENT == "monitord/0.1.0"
    assert seen.headers.getall("User-Agent") == [DEFAULT_USER_AGENT]


async def test_scenario_user_agent_wins_whatever_its_case(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/echo"), headers=(("user-agent", "shop-check/2"),))
    await run_probe(probe, scenario)
    (seen,) = web.received
    assert seen.headers.getall("User-Agent") == ["shop-check/2"]


async def test_user_agent_of_the_probe_table(web: WebTarget) -> None:
    async with open_probes(user_agent="monitord-test/9") as probes:
        await run_probe(probes[ScenarioType.API], api_scenario(web.url("/echo")))
    (seen,) = web.received
    assert seen.headers.getall("User-Agent") == ["monitord-test/9"]


async def test_every_probe_opens_a_fresh_connection(probe: Probe) -> None:
    connections = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:  # would serve any number of requests on one connection
            await read_http_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async with tcp_target(answer) as address:
        scenario = api_scenario(f"http://{address.host}:{address.port}/")
        for _ in range(3):
            assert await run_probe(probe, scenario) == Observation(body=b"ok", status_code=200)
    assert connections == 3


# --- redirects ---------------------------------------------------------------------------


async def test_redirect_is_not_followed_by_default(probe: Probe, web: WebTarget) -> None:
    observation = await run_probe(probe, api_scenario(web.url("/redirect")))
    assert observation == Observation(body=b"moved", status_code=302, charset="utf-8")


async def test_redirect_is_followed_when_asked(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/redirect"), follow_redirects=True)
    observation = await run_probe(probe, scenario)
    assert observation == Observation(
        body=json_bytes(JSON_DOCUMENT), status_code=200, charset="utf-8"
    )


async def test_redirect_loop_fails(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/loop"), follow_redirects=True)
    assert await probe_failure(probe, scenario) == wrong_answer("too many redirects")


# --- body cap ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"), [("/bytes/1000", b"x" * 1000), ("/stream/1000", b"y" * 1000)]
)
async def test_body_of_exactly_the_cap_passes(
    probe: Probe, web: WebTarget, path: str, body: bytes
) -> None:
    observation = await run_probe(probe, api_scenario(web.url(path), max_response_bytes=1000))
    assert observation == Observation(body=body, status_code=200, charset=None)


async def test_declared_length_over_the_cap_fails(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/bytes/1001"), max_response_bytes=1000)
    assert await probe_failure(probe, scenario) == wrong_answer("response larger than 1000 bytes")


async def test_declared_length_over_the_cap_fails_before_any_body(
    probe: Probe, web: WebTarget
) -> None:
    # The server announces a gigabyte and sends none of it: only the header can fail it.
    scenario = api_scenario(web.url("/declared-huge"), max_response_bytes=1000)
    assert await probe_failure(probe, scenario) == wrong_answer("response larger than 1000 bytes")


async def test_head_is_not_failed_by_the_length_it_announces(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/bytes/5000"), method="HEAD", max_response_bytes=1000)
    assert await run_probe(probe, scenario) == Observation(body=b"", status_code=200)


async def test_undeclared_body_over_the_cap_stops_the_read(probe: Probe, web: WebTarget) -> None:
    offered = 1024**3
    scenario = api_scenario(web.url(f"/stream/{offered}"), max_response_bytes=100_000)
    assert await probe_failure(probe, scenario) == wrong_answer("response larger than 100000 bytes")
    async with asyncio.timeout(5):
        await web.stream_done.wait()
    # Only what fit in socket buffers got out before the server saw the connection go.
    assert 100_000 < web.streamed < 64 * 1024**2


# --- failures ----------------------------------------------------------------------------


async def test_timeout_is_left_to_the_caller_and_nothing_leaks(probe: Probe) -> None:
    got_request = asyncio.Event()
    client_closed = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        got_request.set()
        await wait_for_close(reader)  # would send headers after the client gives up
        client_closed.set()

    async with tcp_target(never_answers) as address:
        scenario = api_scenario(f"http://{address.host}:{address.port}/slow")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await probe(scenario)
        assert got_request.is_set()
        async with asyncio.timeout(5):
            await client_closed.wait()
    gc.collect()  # an unclosed socket would raise its ResourceWarning here


async def test_refused_connection(probe: Probe) -> None:
    with refusing_tcp_port() as address:
        scenario = api_scenario(f"http://{address.host}:{address.port}/")
        assert await probe_failure(probe, scenario) == unavailable("connection refused")


async def test_server_closing_without_an_answer(probe: Probe) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)

    async with tcp_target(hang_up) as address:
        scenario = api_scenario(f"http://{address.host}:{address.port}/")
        assert await probe_failure(probe, scenario) == unavailable(
            "connection closed by peer without a response"
        )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"not http\r\n\r\n", "invalid HTTP response: bad status line"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly5",
            "invalid HTTP response: body shorter than its Content-Length",
        ),
    ],
)
async def test_malformed_http_replies(probe: Probe, reply: bytes, reason: str) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        writer.write(reply)
        await writer.drain()

    async with tcp_target(answer) as address:
        # The query string carries a "secret": it must not reach the reason.
        scenario = api_scenario(f"http://{address.host}:{address.port}/?token=s3cret")
        assert await probe_failure(probe, scenario) == wrong_answer(reason)


async def test_dns_failure_names_the_host(probe: Probe) -> None:
    host = "monitord-probe-test.invalid"  # RFC 6761: never resolves
    with pytest.raises(socket.gaierror) as resolver:
        await asyncio.get_running_loop().getaddrinfo(host, 80)
    scenario = api_scenario(f"http://{host}/health?key=s3cret")
    assert await probe_failure(probe, scenario) == unavailable(
        f"DNS lookup failed for {host}: {resolver.value.strerror}"
    )


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    if not openssl_available():
        pytest.skip("needs the openssl command (the cryptography package is not installed)")
    directory: Path = tmp_path_factory.mktemp("tls")
    return self_signed_context(directory)


async def test_self_signed_certificate_is_rejected_by_default(
    probe: Probe, server_tls: ssl.SSLContext
) -> None:
    async with web_target(server_tls) as web:
        failure = await probe_failure(probe, api_scenario(web.url("/json")))
    # OpenSSL 3 writes "self-signed", 1.1 wrote "self signed".
    assert failure in {
        unavailable("TLS error: certificate verify failed: self-signed certificate"),
        unavailable("TLS error: certificate verify failed: self signed certificate"),
    }


async def test_self_signed_certificate_accepted_without_verification(
    probe: Probe, server_tls: ssl.SSLContext
) -> None:
    async with web_target(server_tls) as web:
        observation = await run_probe(probe, api_scenario(web.url("/json"), tls_verify=False))
    assert observation == Observation(
        body=json_bytes(JSON_DOCUMENT), status_code=200, charset="utf-8"
    )


async def test_https_to_a_plain_http_port(probe: Probe, web: WebTarget) -> None:
    scenario = api_scenario(web.url("/json").replace("http://", "https://"))
    assert await probe_failure(probe, scenario) == unavailable("TLS error: wrong version number")
