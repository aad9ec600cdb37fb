"""Exchange failures: the exceptions probes raise and how a failure reads in a result.

A probe raises when the exchange itself fails (nothing, or not enough, came
back to judge). ``classify_exception`` turns any such exception into a
``ProbeFailure`` with a short, stable reason. It is a pure function so that the
runner can call it on whatever escaped a probe, and so that it can be tested
with a table instead of sockets.

Reasons are shown to operators, stored, and sent in events, so they never carry
request header values, request bodies, URL user-info or query strings: those
are where scenarios keep their secrets.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import http_exceptions

from monitord.model import FailureKind, ProbeFailure

CONNECTION_REFUSED = "connection refused"
CONNECTION_RESET = "connection reset by peer"
CLOSED_WITHOUT_RESPONSE = "connection closed by peer without a response"
TOO_MANY_REDIRECTS = "too many redirects"

_MAX_DETAIL = 200


class ProbeError(Exception):
    """An exchange failure the probe has already classified.

    Probes raise a subclass (or this class with a ready ``ProbeFailure``) when
    they know more than the exception would tell, for example the host name a
    DNS lookup failed for.
    """

    def __init__(self, failure: ProbeFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class ResponseTooLarge(ProbeError):
    """The response is, or declares itself, larger than the scenario's cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            ProbeFailure(FailureKind.WRONG_ANSWER, f"response larger than {limit} bytes")
        )
        self.limit = limit


class ClosedWithoutResponse(ProbeError):
    """The peer closed the connection before sending a single byte."""

    def __init__(self) -> None:
        super().__init__(ProbeFailure(FailureKind.UNAVAILABLE, CLOSED_WITHOUT_RESPONSE))


def dns_failure(host: str, exc: socket.gaierror) -> ProbeError:
    """The error to raise when resolving ``host`` failed with ``exc``."""
    return ProbeError(_dns(host, exc))


def classify_exception(exc: BaseException) -> ProbeFailure:
    """Map an exception raised by a probe to the failure it stands for.

    Every ``Exception`` maps to a failure: one that is not a known exchange
    failure reads ``probe error: <type>: <message>`` and counts as a wrong
    answer, so a surprise in a probe never crashes the daemon.

    ``TimeoutError`` and ``asyncio.CancelledError`` are not classified: the
    caller owns the deadline, turns its own ``TimeoutError`` into
    ``timeout after N ms``, and cancellation must propagate. They (and any other
    ``BaseException`` that is not an ``Exception``) raise ``ValueError`` here,
    since passing one is a bug in the caller.
    """
    if isinstance(exc, TimeoutError) or not isinstance(exc, Exception):
        raise ValueError(f"{type(exc).__name__} is not a probe failure; the caller handles it")
    for kind, classify in _CLASSIFIERS:
        if isinstance(exc, kind):
            failure = classify(exc)
            if failure is not None:
                return failure
    return _wrong(f"probe error: {type(exc).__name__}: {_detail(str(exc)) or 'no detail'}")


# --- the table ---------------------------------------------------------------------------


def _unavailable(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.UNAVAILABLE, reason)


def _wrong(reason: str) -> ProbeFailure:
    return ProbeFailure(FailureKind.WRONG_ANSWER, reason)


def _probe_error(exc: Exception) -> ProbeFailure | None:
    assert isinstance(exc, ProbeError)
    return exc.failure


def _too_many_redirects(exc: Exception) -> ProbeFailure | None:
    return _wrong(TOO_MANY_REDIRECTS)


def _bad_redirect(exc: Exception) -> ProbeFailure | None:
    # The exception's text is the redirect target, which may carry a query string.
    return _wrong("invalid HTTP response: redirect to an invalid or non-HTTP location")


def _bad_url(exc: Exception) -> ProbeFailure | None:
    return _wrong(f"probe error: {type(exc).__name__}: invalid or non-HTTP URL")


def _tls(exc: Exception) -> ProbeFailure | None:
    cause: BaseException = exc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
    elif isinstance(exc, aiohttp.ClientSSLError):
        cause = exc.os_error
    return _unavailable(f"TLS error: {_tls_detail(cause)}")


def _tls_detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or exc.reason or "unknown reason"
        return f"certificate verify failed: {_detail(message)}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        # OpenSSL's reason codes read WRONG_VERSION_NUMBER; say "wrong version number".
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return _detail(exc.strerror)
    return _detail(str(exc)) or type(exc).__name__


def _connector_dns(exc: Exception) -> ProbeFailure | None:
    assert isinstance(exc, aiohttp.ClientConnectorDNSError)
    return _dns(exc.host, exc.os_error)


def _bare_dns(exc: Exception) -> ProbeFailure | None:
    assert isinstance(exc, socket.gaierror)
    return _unavailable(f"DNS lookup failed: {_strerror(exc)}")


def _dns(host: str, exc: OSError) -> ProbeFailure:
    return _unavailable(f"DNS lookup failed for {host}: {_strerror(exc)}")


def _server_disconnected(exc: Exception) -> ProbeFailure | None:
    return _unavailable(CLOSED_WITHOUT_RESPONSE)


def _invalid_http(exc: Exception) -> ProbeFailure | None:
    return _wrong(f"invalid HTTP response: {_http_detail(exc)}")


# aiohttp re-wraps parser errors (ClientResponseError <- HttpProcessingError <- the
# parser's own type), so the type that says what went wrong sits down the cause chain.
_HTTP_DETAILS: tuple[tuple[type[http_exceptions.HttpProcessingError], str], ...] = (
    (http_exceptions.BadStatusLine, "bad status line"),
    (http_exceptions.LineTooLong, "line too long"),
    (http_exceptions.InvalidHeader, "invalid header"),
    (http_exceptions.ContentLengthError, "body shorter than its Content-Length"),
    (http_exceptions.TransferEncodingError, "invalid transfer encoding"),
    (http_exceptions.DecompressSizeError, "decompressed body too large"),
    (http_exceptions.ContentEncodingError, "cannot decode the content encoding"),
)


def _http_detail(exc: Exception) -> str:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        for kind, detail in _HTTP_DETAILS:
            if isinstance(seen, kind):
                return detail
        seen = seen.__cause__
    # ClientResponseError's str() names the URL; its message is the parser's text.
    if isinstance(exc, aiohttp.ClientResponseError | http_exceptions.HttpProcessingError):
        message = str(exc.message)
    else:
        message = str(exc)
    return _detail(message) or "malformed response"


def _os_error(exc: Exception) -> ProbeFailure | None:
    assert isinstance(exc, OSError)
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    code = cause.errno
    if isinstance(cause, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return _unavailable(CONNECTION_REFUSED)
    if isinstance(cause, ConnectionResetError) or code == errno.ECONNRESET:
        return _unavailable(CONNECTION_RESET)
    return _unavailable(f"network error: {_strerror(cause)}")


def _connection_error(exc: Exception) -> ProbeFailure | None:
    return _unavailable(f"network error: {_detail(str(exc)) or type(exc).__name__}")


_Classifier = Callable[[Exception], ProbeFailure | None]

# Order matters: aiohttp's exceptions inherit from several of these at once (a
# certificate error is an SSLError, a ValueError and a connector OSError).
_CLASSIFIERS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], _Classifier], ...] = (
    (ProbeError, _probe_error),
    (aiohttp.TooManyRedirects, _too_many_redirects),
    (aiohttp.RedirectClientError, _bad_redirect),
    ((aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError), _bad_url),
    ((aiohttp.ClientSSLError, ssl.SSLError), _tls),
    (aiohttp.ClientConnectorDNSError, _connector_dns),
    (socket.gaierror, _bare_dns),
    (aiohttp.ServerDisconnectedError, _server_disconnected),
    (
        (
            aiohttp.ClientResponseError,
            aiohttp.ClientPayloadError,
            http_exceptions.HttpProcessingError,
        ),
        _invalid_http,
    ),
    (OSError, _os_error),
    (aiohttp.ClientConnectionError, _connection_error),
)


# --- text helpers ------------------------------------------------------------------------


def _strerror(exc: OSError) -> str:
    # asyncio puts "Connect call failed (addr)" in strerror; the errno says more.
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    if exc.strerror:
        return _detail(exc.strerror)
    return _detail(str(exc)) or type(exc).__name__


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _scrub_url(match: re.Match[str]) -> str:
    try:
        parts = urlsplit(match.group(0))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _detail(text: str) -> str:
    """First non-empty line of ``text``, URLs without secrets, bounded length."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = _URL.sub(_scrub_url, line.rstrip(":").strip())
    line = " ".join(line.split())
    if len(line) > _MAX_DETAIL:
        line = line[: _MAX_DETAIL - 1] + "…"
    return line
