"""What every HTTP handler shares: the application's dependencies, error responses in
the format of each path, and the admin-key guard (constant-time comparison)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from monitord.config.settings import Secret
from monitord.envelope import UNSUPPORTED_MEDIA_TYPE, envelope_error, uses_envelope
from monitord.heartbeat import Heartbeat
from monitord.jsonout import json_response
from monitord.metrics import Metrics
from monitord.monitor import Monitor, ReloadReport
from monitord.store import StoreError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
ADMIN_KEY_HEADER = "TOAST_PRODUCT_APPKEY"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Api:
    monitor: Monitor
    metrics: Metrics
    heartbeat: Heartbeat
    admin_key: Secret | None
    reload: Callable[[], Awaitable[ReloadReport]]


API = web.AppKey("api", Api)


def error_response(status: int, message: str, **headers: str) -> web.Response:
    return json_response(
        {"error": {"status": status, "message": message}}, status=status, headers=headers
    )


def error_for(request: web.Request, status: int, message: str, **headers: str) -> web.Response:
    """An error in the format of the path: the seed's envelope for the receiver and the
    management API, ``{"error": …}`` for the others."""
    if uses_envelope(request.path):
        return envelope_error(status, message, headers=headers)
    return error_response(status, message, **headers)


def answering_errors(max_body_bytes: int) -> Callable[[Handler], Handler]:
    """A wrapper for every route's handler: whatever error the request meets is answered
    in the format of its path, and a bug is a 500, never a dropped connection."""

    def wrap(handler: Handler) -> Handler:
        async def answered(request: web.Request) -> web.StreamResponse:
            length = request.content_length
            if length is not None and length > max_body_bytes:
                return error_for(request, 413, f"request body larger than {max_body_bytes} bytes")
            try:
                return await handler(request)
            except Refused as refused:
                return refused.response(request.path)
            except web.RequestPayloadError as exc:
                return error_for(request, 400, f"the request body could not be read: {exc}")
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                headers = {k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW,)}
                return error_for(request, exc.status, exc.reason, **headers)
            except StoreError as exc:
                log.error("%s %s: %s", request.method, request.path, exc)
                return error_for(request, 503, "the state store is unavailable; see the daemon log")
            except Exception:  # a bug must not turn into a dropped connection
                log.exception("%s %s failed", request.method, request.path)
                return error_for(request, 500, "internal error; see the daemon log")

        return answered

    return wrap


# Added last, this route takes every request no other route takes, so that a wrong path
# or method is answered like any other error (aiohttp's own answers are plain text).
UNROUTED_PATH = "/{unrouted:.*}"


async def unrouted(request: web.Request) -> web.StreamResponse:
    """405 with ``Allow`` when another method of the path has a route, else 404."""
    this = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not this:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def admin_only(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        key = request.app[API].admin_key
        if key is None:
            return error_for(
                request, 401, "the admin API is off: no adminKey is configured", **_challenge()
            )
        if not admin_authorised(request, key):
            return error_for(
                request,
                401,
                f"admin key required in the {ADMIN_KEY_HEADER} header or as a Bearer token",
                **_challenge(),
            )
        return await handler(request)

    return guarded


def _challenge() -> dict[str, str]:
    return {hdrs.WWW_AUTHENTICATE: 'Bearer realm="monitord"'}


def admin_authorised(request: web.Request, key: Secret) -> bool:
    """Whether the request carries the admin key (constant-time comparison)."""
    given = request.headers.get(ADMIN_KEY_HEADER)
    if given is None:
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    if not given:
        return False
    return hmac.compare_digest(_bytes(given), _bytes(key.value))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Refused(Exception):
    """An answer other than success, raised from anywhere in a handler; ``answering_errors``
    renders it in the format of the path (``code`` and ``body`` go into the envelope)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.body = body
        self.headers = headers or {}

    def response(self, path: str) -> web.Response:
        if uses_envelope(path):
            return envelope_error(
                self.status, self.message, code=self.code, body=self.body, headers=self.headers
            )
        return error_response(self.status, self.message, **self.headers)


def json_content_type(request: web.Request) -> bool:
    kind = request.content_type.lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def require_json(request: web.Request) -> None:
    """Refuse (415) a body not declared as JSON."""
    if not json_content_type(request):
        raise Refused(
            415,
            "Content-Type must be application/json",
            code=UNSUPPORTED_MEDIA_TYPE,
            headers={"Accept-Post": "application/json"},
        )


async def read_body(request: web.Request) -> bytes:
    """The request body as sent. A compressed body is refused (415): it could expand past
    the cap, and a broken one can stall aiohttp's reader."""
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if coding != "identity":
        raise Refused(
            415,
            f"Content-Encoding {coding[:40]!r} is not accepted; send the body uncompressed",
            headers={hdrs.ACCEPT_ENCODING: "identity"},
        )
    return await request.read()


def strict_json(raw: bytes) -> Any:
    """``raw`` as JSON, refusing NaN and Infinity (no JSON reader takes them back); raises
    ``ValueError`` (or ``RecursionError`` for absurd nesting)."""
    return json.loads(raw, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
