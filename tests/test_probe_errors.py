"""classify_exception: every exchange failure has its own reason, and no secrets in it."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl

import aiohttp
import pytest
from aiohttp import http_exceptions
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from monitord.model import FailureKind, ProbeFailure
from monitord.probes import ClosedWithoutResponse, ProbeError, ResponseTooLarge
from monitord.probes.errors import classify_exception, dns_failure

SECRET_URL = "https://user:pa55@shop.example.com/health?token=s3cret#frag"


def key(host: str = "shop.example.com", port: int = 443) -> ConnectionKey:
    fields = dict.fromkeys(ConnectionKey._fields)
    fields.update(host=host, port=port, is_ssl=True, ssl=True)
    return ConnectionKey(**fields)  # type: ignore[arg-type]


def request_info() -> aiohttp.RequestInfo:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "Api-Token s3cret"}))
    return aiohttp.RequestInfo(URL(SECRET_URL), "GET", headers, URL(SECRET_URL))


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


def cert_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(
        1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message} (_ssl.c:1006)"
    )
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    exc.verify_message = message
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()} (_ssl.c:1006)")
    exc.reason = reason
    return exc


def unavailable(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.UNAVAILABLE, reason)


def wrong(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.WRONG_ANSWER, reason)


REFUSED = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")
NAME_UNKNOWN = socket.gaierror(socket.EAI_NONAME, "Name or service not known")

CASES: list[tuple[str, BaseException, ProbeFailure]] = [
    # refused
    ("refused", REFUSED, unavailable("connection refused")),
    (
        "refused, aiohttp",
        aiohttp.ClientConnectorError(key(), REFUSED),
        unavailable("connection refused"),
    ),
    (
        "refused, errno only",
        OSError(errno.ECONNREFUSED, "Connect call failed"),
        unavailable("connection refused"),
    ),
    # reset
    (
        "reset",
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        unavailable("connection reset by peer"),
    ),
    (
        "reset, aiohttp write",
        aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
        unavailable("connection reset by peer"),
    ),
    (
        "reset, aiohttp read",
        aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
        unavailable("connection reset by peer"),
    ),
    (
        "server disconnected",
        aiohttp.ServerDisconnectedError(),
        unavailable("connection closed by peer without a response"),
    ),
    (
        "closed without response",
        ClosedWithoutResponse(),
        unavailable("connection closed by peer without a response"),
    ),
    # DNS
    ("dns, bare", NAME_UNKNOWN, unavailable("DNS lookup failed: Name or service not known")),
    (
        "dns, aiohttp",
        aiohttp.ClientConnectorDNSError(key("db.example.invalid"), NAME_UNKNOWN),
        unavailable("DNS lookup failed for db.example.invalid: Name or service not known"),
    ),
    (
        "dns, socket probes",
        dns_failure(
            "queue.example.invalid",
            socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
        ),
        unavailable(
            "DNS lookup failed for queue.example.invalid: Temporary failure in name resolution"
        ),
    ),
    # TLS
    (
        "tls, certificate",
        cert_error("self-signed certificate"),
        unavailable("TLS error: certificate verify failed: self-signed certificate"),
    ),
    (
        "tls, aiohttp certificate",
        aiohttp.ClientConnectorCertificateError(key(), cert_error("certificate has expired")),
        unavailable("TLS error: certificate verify failed: certificate has expired"),
    ),
    (
        "tls, aiohttp handshake",
        aiohttp.ClientConnectorSSLError(key(), ssl_error("WRONG_VERSION_NUMBER")),
        unavailable("TLS error: wrong version number"),
    ),
    (
        "tls, bare",
        ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"),
        unavailable("TLS error: tlsv1 alert protocol version"),
    ),
    # too large
    ("too large", ResponseTooLarge(10_485_760), wrong("response larger than 10485760 bytes")),
    # malformed HTTP
    (
        "bad status line",
        caused(
            aiohttp.ClientResponseError(
                request_info(), (), status=400, message="Bad status line:\n  Expected HTTP/"
            ),
            caused(
                http_exceptions.HttpProcessingError(code=400),
                http_exceptions.BadStatusLine("not http"),
            ),
        ),
        wrong("invalid HTTP response: bad status line"),
    ),
    (
        "payload shorter than Content-Length",
        caused(
            aiohttp.ClientPayloadError("Response payload is not completed: <ContentLengthError>"),
            http_exceptions.ContentLengthError("Not enough data to satisfy content length header."),
        ),
        wrong("invalid HTTP response: body shorter than its Content-Length"),
    ),
    (
        "bad chunked encoding",
        caused(
            aiohttp.ClientPayloadError("Response payload is not completed"),
            http_exceptions.TransferEncodingError("bad chunk"),
        ),
        wrong("invalid HTTP response: invalid transfer encoding"),
    ),
    (
        "line too long",
        http_exceptions.LineTooLong("status line", "8190", "9000"),
        wrong("invalid HTTP response: line too long"),
    ),
    (
        "invalid header",
        http_exceptions.InvalidHeader(b"X\x00Y"),
        wrong("invalid HTTP response: invalid header"),
    ),
    (
        "undecodable content",
        caused(
            aiohttp.ClientPayloadError("Can not decode content-encoding: gzip"),
            http_exceptions.ContentEncodingError("Can not decode content-encoding: gzip"),
        ),
        wrong("invalid HTTP response: cannot decode the content encoding"),
    ),
    (
        "unknown response error, message only",
        aiohttp.ClientResponseError(
            request_info(), (), status=400, message="Data after `Connection: close`"
        ),
        wrong("invalid HTTP response: Data after `Connection: close`"),
    ),
    # redirects and URLs
    ("redirect loop", aiohttp.TooManyRedirects(request_info(), ()), wrong("too many redirects")),
    (
        "redirect to a bad URL",
        aiohttp.InvalidUrlRedirectClientError(
            SECRET_URL, "Server attempted redirecting to a location that does not look like a URL"
        ),
        wrong("invalid HTTP response: redirect to an invalid or non-HTTP location"),
    ),
    (
        "redirect to another scheme",
        aiohttp.NonHttpUrlRedirectClientError("ftp://files.example.com/?token=s3cret"),
        wrong("invalid HTTP response: redirect to an invalid or non-HTTP location"),
    ),
    (
        "bad URL",
        aiohttp.InvalidUrlClientError(SECRET_URL),
        wrong("probe error: InvalidUrlClientError: invalid or non-HTTP URL"),
    ),
    # other network errors
    (
        "unreachable",
        OSError(errno.EHOSTUNREACH, "Connect call failed ('10.1.2.3', 80)"),
        unavailable(f"network error: {os.strerror(errno.EHOSTUNREACH)}"),
    ),
    (
        "unreachable, aiohttp",
        aiohttp.ClientConnectorError(key(), OSError(errno.ENETUNREACH, "Connect call failed")),
        unavailable(f"network error: {os.strerror(errno.ENETUNREACH)}"),
    ),
    (
        "broken pipe",
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
        unavailable(f"network error: {os.strerror(errno.EPIPE)}"),
    ),
    (
        "no errno",
        OSError("Multiple exceptions: a, b"),
        unavailable("network error: Multiple exceptions: a, b"),
    ),
    (
        "connection closed",
        aiohttp.ClientConnectionError("Connection closed"),
        unavailable("network error: Connection closed"),
    ),
    # everything else
    ("unexpected", ValueError("boom"), wrong("probe error: ValueError: boom")),
    ("unexpected, no message", RuntimeError(), wrong("probe error: RuntimeError: no detail")),
    (
        "unexpected, URL with secrets",
        RuntimeError(f"failed for {SECRET_URL} after\nsecond line token=s3cret"),
        wrong("probe error: RuntimeError: failed for https://shop.example.com/health after"),
    ),
    (
        "unexpected, long message",
        KeyError("k" * 300),
        wrong("probe error: KeyError: '" + "k" * 198 + "…"),
    ),
    (
        "already classified",
        ProbeError(ProbeFailure(FailureKind.UNAVAILABLE, "custom reason")),
        unavailable("custom reason"),
    ),
]


@pytest.mark.parametrize(
    ("exc", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_classify_exception(exc: BaseException, expected: ProbeFailure) -> None:
    assert classify_exception(exc) == expected


@pytest.mark.parametrize(
    ("exc", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_reasons_carry_no_secrets(exc: BaseException, expected: ProbeFailure) -> None:
    reason = classify_exception(exc).reason
    for secret in ("s3cret", "pa55", "user:", "token", "Api-Token", "frag"):
        assert secret not in reason


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
    ],
    ids=["timeout", "aiohttp timeout", "cancelled", "interrupt"],
)
def test_timeouts_and_cancellation_are_not_classified(exc: BaseException) -> None:
    with pytest.raises(ValueError, match="is not a probe failure; the caller handles it"):
        classify_exception(exc)
