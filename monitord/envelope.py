"""The response envelope of the seed's APIs (the batch receiver and the scenario
management API): ``{"header": {"isSuccessful", "resultCode", "resultMessage"}, "body": …}``.

``resultCode`` is 0 on success. Errors use the HTTP status as the code, except
for the two lookups a client must tell apart: an unknown appKey and an unknown
scenario (both 404).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from monitord.jsonout import json_response

SUCCESS = 0
BAD_REQUEST = 400
UNAUTHORISED = 401
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
CONFLICT = 409  # not a BATCH scenario; a scenario in a file the API does not manage
TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415
INVALID_SCENARIO = 422
INTERNAL_ERROR = 500
UNAVAILABLE = 503
UNKNOWN_APP_KEY = 4041
UNKNOWN_SCENARIO = 4042

# Paths under these prefixes answer in the envelope; the others in {"error": …}.
SEED_PREFIXES = ("/v1.0/", "/open-api/")


def uses_envelope(path: str) -> bool:
    return path.startswith(SEED_PREFIXES)


def envelope(
    body: Any,
    *,
    status: int = 200,
    code: int = SUCCESS,
    message: str = "SUCCESS",
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(
        {
            "header": {
                "isSuccessful": code == SUCCESS,
                "resultCode": code,
                "resultMessage": message,
            },
            "body": body,
        },
        status=status,
        headers=headers,
    )


def envelope_error(
    status: int,
    message: str,
    *,
    code: int | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return envelope(
        body,
        status=status,
        code=status if code is None else code,
        message=message,
        headers=headers,
    )
