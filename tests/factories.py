"""Build model objects directly, for tests that do not go through the loader."""

from __future__ import annotations

import uuid
from typing import Any

from monitord.model import (
    ByteCheck,
    HttpTarget,
    LengthCheck,
    Scenario,
    ScenarioType,
    Schedule,
    SocketTarget,
    Source,
    TextValidation,
    Validation,
)

# The SPEC §5 result object's keys, in order.
RESULT_KEYS = [
    "scenarioId",
    "scenarioName",
    "scenarioType",
    "result",
    "reasons",
    "startedAt",
    "durationMs",
    "statusCode",
    "responseBytes",
]


def api_scenario(
    url: str,
    *,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | None = None,
    timeout_ms: int = 2000,
    response_codes: tuple[str, ...] | None = None,
    avoiding_text: str | None = None,
    text: TextValidation | None = None,
    follow_redirects: bool = False,
    tls_verify: bool = True,
    max_response_bytes: int = 10 * 1024 * 1024,
    name: str = "test api",
) -> Scenario:
    return Scenario(
        id=str(uuid.uuid4()),
        name=name,
        type=ScenarioType.API,
        app_key="testapp",
        validation=Validation(
            timeout_ms=timeout_ms,
            response_codes=response_codes,
            avoiding_text=avoiding_text,
            text=text,
        ),
        source=Source("test.yaml", 1),
        fingerprint="test",
        schedule=Schedule(interval_s=60),
        target=HttpTarget(
            url=url,
            method=method,
            headers=headers,
            body=body,
            follow_redirects=follow_redirects,
            tls_verify=tls_verify,
        ),
        max_response_bytes=max_response_bytes,
    )


def socket_scenario(
    kind: ScenarioType,
    host: str,
    port: int,
    *,
    request: bytes = b"",
    timeout_ms: int = 2000,
    byte_checks: tuple[ByteCheck, ...] = (),
    length: LengthCheck | None = None,
    max_response_bytes: int = 10 * 1024 * 1024,
    name: str = "test socket",
    **extra: Any,
) -> Scenario:
    return Scenario(
        id=str(uuid.uuid4()),
        name=name,
        type=kind,
        app_key="testapp",
        validation=Validation(timeout_ms=timeout_ms, byte_checks=byte_checks, length=length),
        source=Source("test.yaml", 1),
        fingerprint="test",
        schedule=Schedule(interval_s=60),
        target=SocketTarget(host=host, port=port, request=request),
        max_response_bytes=max_response_bytes,
        **extra,
    )
