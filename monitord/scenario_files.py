"""Scenario files written by the management API: one file per scenario, written atomically.

A file the API writes starts with ``MANAGED_MARKER``; the API edits and deletes
only such files. A scenario that lives in a hand-written file (which may hold
comments and other scenarios) is read-only through the API: rewriting that file
would lose what the operator wrote, so the API refuses and names the file.

Writes go to a hidden temporary file in the same folder (the loader skips hidden
files), which is flushed to disk, renamed over the target, and followed by a
flush of the folder, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from monitord.config.scenarios import DEFAULT_APP_KEY, derive_scenario_id
from monitord.config.yamlsource import YamlError, YamlList, parse_yaml
from monitord.model import format_timestamp

MANAGED_MARKER = "# monitord: managed by the scenario management API"
_REGISTERED = re.compile(r"^# registered: (\S+)$", re.MULTILINE)
FILE_MODE = 0o640


class ScenarioFileError(Exception):
    """A scenario file cannot be read, parsed or written; the message says why."""


def managed_folder(paths: Iterable[Path]) -> Path | None:
    """Where the API writes: the first configured scenarios path that is a folder."""
    return next((p for p in paths if p.is_dir()), None)


def render(document: dict[str, Any], registered: datetime) -> str:
    """The text of a managed file: the marker, when it was registered, the document."""
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return (
        f"{MANAGED_MARKER}; edits through POST and DELETE /open-api/v1.0/appkey/…/scenarios\n"
        f"# registered: {format_timestamp(registered)}\n"
        f"{body}"
    )


def is_managed(text: str) -> bool:
    return text.startswith(MANAGED_MARKER)


def registered_time(text: str) -> datetime | None:
    match = _REGISTERED.search(text)
    if match is None:
        return None
    try:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
    except ValueError:
        return None


def amended_time(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"cannot read {path}: {exc}") from exc


def documents(text: str, path: Path) -> list[tuple[dict[Any, Any], int]]:
    """The scenario mappings of a file with their lines (the file's shape, as loaded)."""
    try:
        parsed = parse_yaml(text)
    except YamlError as exc:
        raise ScenarioFileError(f"{path}:{exc.line}: {exc.message}") from exc
    if isinstance(parsed, dict):
        return [(parsed, getattr(parsed, "line", 1))]
    if isinstance(parsed, list):
        lines = parsed.item_lines if isinstance(parsed, YamlList) else [1] * len(parsed)
        return [(item, lines[i]) for i, item in enumerate(parsed) if isinstance(item, dict)]
    return []


def document_id(document: dict[Any, Any], default_app_key: str) -> str | None:
    """The id a scenario mapping loads with: its scenarioId, else derived from its name."""
    given = document.get("scenarioId")
    if isinstance(given, str):
        try:
            return str(uuid.UUID(given))
        except ValueError:
            return None
    app_key = document.get("appKey", default_app_key)
    name = document.get("scenarioName")
    if not isinstance(app_key, str) or not isinstance(name, str):
        return None
    return derive_scenario_id(app_key, name)


def documents_by_id(
    text: str, path: Path, services: Sequence[str]
) -> tuple[dict[str, tuple[dict[Any, Any], int]], int]:
    """Each scenario mapping of a file's text with its line, by scenario id, and how many
    scenarios the file holds (the first of a repeated id wins, as at load)."""
    found = documents(text, path)
    default_app_key = services[0] if services else DEFAULT_APP_KEY
    by_id: dict[str, tuple[dict[Any, Any], int]] = {}
    for document, line in found:
        scenario_id = document_id(document, default_app_key)
        if scenario_id is not None:
            by_id.setdefault(scenario_id, (document, line))
    return by_id, len(found)


def as_json(value: Any) -> Any:
    """A parsed YAML value as plain JSON data (dates and other scalars as text)."""
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # YAML's .inf and .nan have no JSON form
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temporary file, fsync, rename, fsync of the folder."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ScenarioFileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def remove(path: Path) -> None:
    try:
        path.unlink()
        _sync_folder(path.parent)
    except OSError as exc:
        raise ScenarioFileError(f"cannot remove {path}: {exc.strerror or exc}") from exc


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
