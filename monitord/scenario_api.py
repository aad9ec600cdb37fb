"""The scenario management API (SPEC §7, seed 004 open-api), behind the admin key.

``/open-api/v1.0/appkey/{appKey}/scenarios``: GET lists, POST creates (a new UUID);
``…/scenarios/{scenarioId}``: GET reads, POST modifies (the whole document), DELETE
deletes. A body is the same document as a scenario file and is validated exactly
like one; its errors come back as ``{"field", "message"}`` objects. Each scenario
created here gets a file of its own in the scenarios folder, written atomically,
and the change applies at once (a reload) before the answer is sent. Scenarios
from hand-written files can be read here but not changed (see
``monitord.scenario_files``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from monitord.config.errors import LoadError
from monitord.config.scenarios import FileLoad, check_unique, load_text
from monitord.envelope import (
    BAD_REQUEST,
    CONFLICT,
    INVALID_SCENARIO,
    UNKNOWN_APP_KEY,
    UNKNOWN_SCENARIO,
    envelope,
    envelope_error,
)
from monitord.httpbase import (
    API,
    Api,
    Handler,
    Refused,
    admin_only,
    read_body,
    require_json,
    strict_json,
)
from monitord.model import Scenario, Source, format_timestamp
from monitord.monitor import Monitor
from monitord.scenario_files import (
    ScenarioFileError,
    amended_time,
    as_json,
    documents_by_id,
    is_managed,
    managed_folder,
    read_text,
    registered_time,
    remove,
    render,
    write_atomically,
)

log = logging.getLogger(__name__)

LIST_PATH = "/open-api/v1.0/appkey/{app_key}/scenarios"
ONE_PATH = "/open-api/v1.0/appkey/{app_key}/scenarios/{scenario_id}"
MAX_DEPTH = 32
# Fields monitord sets itself; a body may repeat them only with the same value.
_OWN_FIELDS = ("scenarioId", "appKey")
# One change at a time: validate, write and apply are one step.
LOCK = web.AppKey("scenario management lock", asyncio.Lock)


def add_routes(app: web.Application, answered: Callable[[Handler], Handler]) -> None:
    app[LOCK] = asyncio.Lock()
    app.router.add_get(LIST_PATH, answered(admin_only(_list)))
    app.router.add_post(LIST_PATH, answered(admin_only(_create)))
    app.router.add_get(ONE_PATH, answered(admin_only(_read)))
    app.router.add_post(ONE_PATH, answered(admin_only(_modify)))
    app.router.add_delete(ONE_PATH, answered(admin_only(_delete)))


def _guarded(handler: Handler) -> Handler:
    """Answers ``ScenarioFileError`` with 409 in the envelope (``Refused`` is answered by
    ``answering_errors``)."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ScenarioFileError as exc:
            log.error("scenario management: %s", exc)
            return envelope_error(409, str(exc), code=CONFLICT)
        return response

    return run


def _services(monitor: Monitor) -> list[str]:
    return [s.app_key for s in monitor.config.services]


def _app_key(request: web.Request) -> str:
    key = request.app[API].monitor.app_key_known(request.match_info["app_key"])
    if key is None:
        raise Refused(404, "unknown appKey", code=UNKNOWN_APP_KEY)
    return key


def _locate(monitor: Monitor, app_key: str, scenario_id: str) -> tuple[Path, Scenario]:
    for path, scenarios in monitor.loaded_files().items():
        for scenario in scenarios:
            if scenario.id == scenario_id and scenario.app_key == app_key:
                return Path(path), scenario
    raise Refused(404, f"no scenario {scenario_id!r} for this appKey", code=UNKNOWN_SCENARIO)


def _describe(
    monitor: Monitor,
    path: Path,
    scenario: Scenario,
    text: str,
    by_id: Mapping[str, tuple[dict[Any, Any], int]] | None = None,
) -> dict[str, Any]:
    """The scenario as its file's ``text`` writes it (``by_id``: that text's
    ``documents_by_id``, when already known), with the fields the seed's answers add."""
    if by_id is None:
        by_id, _ = documents_by_id(text, path, _services(monitor))
    found = by_id.get(scenario.id)
    document = as_json(found[0]) if found is not None else {}
    line = found[1] if found is not None else scenario.source.line
    registered = registered_time(text)
    amended = amended_time(path)
    return {
        **document,
        "scenarioId": scenario.id,
        "appKey": scenario.app_key,
        "scenarioName": scenario.name,
        "scenarioType": scenario.type.value,
        "registeredTime": None if registered is None else format_timestamp(registered),
        "amendedTime": None if amended is None else format_timestamp(amended),
        "status": monitor.status_of(scenario.id) or "notInRegion",
        "source": f"{path}:{line}",
        "managed": is_managed(text),
    }


async def _body(request: web.Request) -> dict[str, Any]:
    require_json(request)
    raw = await read_body(request)
    try:
        data = strict_json(raw)
    except (ValueError, RecursionError):
        raise Refused(400, "the request body is not JSON", code=BAD_REQUEST) from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a scenario (a JSON object)", code=BAD_REQUEST)
    if _depth(data) > MAX_DEPTH:
        # A scenario is a handful of levels deep; writing a deep one as YAML would recurse.
        raise Refused(
            400, f"the body is nested more than {MAX_DEPTH} levels deep", code=BAD_REQUEST
        )
    return data


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _invalid(errors: list[dict[str, str]]) -> Refused:
    what = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return Refused(
        422,
        f"invalid scenario: {what}{more}",
        code=INVALID_SCENARIO,
        body={"errors": errors},
    )


def _document(
    data: Mapping[str, Any], app_key: str, scenario_id: str, *, creating: bool
) -> dict[str, Any]:
    """The file's document: monitord's own fields first, then the body's."""
    errors = []
    given_id = data.get("scenarioId")
    if creating and given_id is not None:
        errors.append(
            {
                "field": "scenarioId",
                "message": "is chosen by monitord on create; to change a scenario, POST it"
                " to …/scenarios/{scenarioId}",
            }
        )
    elif given_id is not None and given_id != scenario_id:
        errors.append({"field": "scenarioId", "message": f"must be {scenario_id} (the path's)"})
    if data.get("appKey") is not None and data.get("appKey") != app_key:
        errors.append({"field": "appKey", "message": f"must be {app_key} (the path's)"})
    if errors:
        raise _invalid(errors)
    rest = {k: v for k, v in data.items() if k not in _OWN_FIELDS}
    return {"scenarioId": scenario_id, "appKey": app_key, **rest}


def _validate(monitor: Monitor, path: Path, text: str) -> None:
    """Load ``text`` as the file ``path`` would load, unique among the other files."""
    loaded = load_text(text, str(path), monitor.config, monitor.environ)
    if loaded.ok:
        ids: dict[str, Source] = {}
        names: dict[tuple[str, str], Source] = {}
        for other, scenarios in monitor.loaded_files().items():
            if other == str(path):
                continue
            for scenario in scenarios:
                ids[scenario.id] = scenario.source
                names[(scenario.app_key, scenario.name)] = scenario.source
        loaded = check_unique(loaded, ids, names)
    if not loaded.ok:
        raise _invalid([_error_json(e) for e in loaded.errors])


def _error_json(error: LoadError) -> dict[str, str]:
    return {"field": error.field, "message": error.message}


async def _apply(api: Api, path: Path, scenario_id: str, *, present: bool) -> FileLoad | None:
    """Reload, and say whether the file now has (or, after a delete, lacks) the scenario;
    the errors of that file when it did not load."""
    report = await api.reload()
    loaded = api.monitor.loaded_files().get(str(path), ())
    if any(s.id == scenario_id for s in loaded) == present:
        return None
    errors = tuple(e for e in report.errors if e.path == str(path))
    return FileLoad(str(path), errors=errors)


async def _write(api: Api, path: Path, text: str, scenario_id: str, before: str | None) -> None:
    """Validate, write and apply a managed file; if it does not load after all, put back
    what was there (``before``, or no file) and refuse with its errors."""
    _validate(api.monitor, path, text)
    write_atomically(path, text)
    failed = await _apply(api, path, scenario_id, present=True)
    if failed is not None:
        if before is None:
            remove(path)
        else:
            write_atomically(path, before)
        await api.reload()
        raise _invalid([_error_json(e) for e in failed.errors])


def _managed_text(monitor: Monitor, path: Path, scenario: Scenario) -> str:
    text = read_text(path)
    by_id, count = documents_by_id(text, path, _services(monitor))
    if not is_managed(text) or scenario.id not in by_id or count != 1:
        raise Refused(
            409,
            f"scenario {scenario.id} is defined in {path}:{scenario.source.line}, a file"
            " not written by this API (it may hold comments and other scenarios);"
            " edit that file, or move the scenario to a file of its own",
            code=CONFLICT,
        )
    return text


@_guarded
async def _list(request: web.Request) -> web.StreamResponse:
    app_key = _app_key(request)
    monitor = request.app[API].monitor
    scenarios: list[dict[str, Any]] = []
    for path_text, loaded in sorted(monitor.loaded_files().items()):
        mine = [s for s in loaded if s.app_key == app_key]
        if not mine:
            continue
        path = Path(path_text)
        text = read_text(path)
        by_id, _ = documents_by_id(text, path, _services(monitor))
        scenarios.extend(_describe(monitor, path, s, text, by_id) for s in mine)
    return envelope(scenarios)


@_guarded
async def _read(request: web.Request) -> web.StreamResponse:
    app_key = _app_key(request)
    monitor = request.app[API].monitor
    path, scenario = _locate(monitor, app_key, request.match_info["scenario_id"])
    return envelope(_describe(monitor, path, scenario, read_text(path)))


@_guarded
async def _create(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    app_key = _app_key(request)
    data = await _body(request)
    folder = managed_folder(api.monitor.config.scenario_paths)
    if folder is None:
        return envelope_error(
            409,
            "no scenarios folder to write to: every configured scenarios path is a file or"
            " a glob; add a folder to the scenarios setting",
            code=CONFLICT,
        )
    scenario_id = str(uuid.uuid4())
    document = _document(data, app_key, scenario_id, creating=True)
    path = folder / f"{scenario_id}.yaml"
    text = render(document, datetime.now(UTC))
    async with request.app[LOCK]:
        await _write(api, path, text, scenario_id, before=None)
        log.info("scenario %s created in %s", scenario_id, path)
        _, scenario = _locate(api.monitor, app_key, scenario_id)
        return envelope(_describe(api.monitor, path, scenario, text))


@_guarded
async def _modify(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    app_key = _app_key(request)
    scenario_id = request.match_info["scenario_id"]
    _locate(api.monitor, app_key, scenario_id)
    data = await _body(request)
    async with request.app[LOCK]:
        path, scenario = _locate(api.monitor, app_key, scenario_id)
        before = _managed_text(api.monitor, path, scenario)
        document = _document(data, app_key, scenario_id, creating=False)
        text = render(document, registered_time(before) or datetime.now(UTC))
        await _write(api, path, text, scenario_id, before=before)
        log.info("scenario %s modified in %s", scenario_id, path)
        _, scenario = _locate(api.monitor, app_key, scenario_id)
        return envelope(_describe(api.monitor, path, scenario, text))


@_guarded
async def _delete(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    app_key = _app_key(request)
    scenario_id = request.match_info["scenario_id"]
    async with request.app[LOCK]:
        path, scenario = _locate(api.monitor, app_key, scenario_id)
        text = _managed_text(api.monitor, path, scenario)
        described = _describe(api.monitor, path, scenario, text)
        remove(path)
        failed = await _apply(api, path, scenario_id, present=False)
        if failed is not None:
            log.warning("scenario %s: file removed but still loaded", scenario_id)
        log.info("scenario %s deleted with %s", scenario_id, path)
        return envelope({**described, "status": "deleted"})
