"""The files the scenario management API writes (``monitord.scenario_files``), on real
files: rendering, atomic writes, finding a scenario's document, the managed folder."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitord import scenario_files
from monitord.config.scenarios import (
    DEFAULT_APP_KEY,
    FileLoad,
    derive_scenario_id,
    discover,
    load_scenarios,
    load_text,
)
from monitord.config.settings import Config, Service
from monitord.model import (
    Source,
)
from monitord.scenario_files import MANAGED_MARKER, ScenarioFileError

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = Config()


def load(text: str) -> FileLoad:
    return load_text(text, "s.yaml", CONFIG, {}, NOW)


# --- files written by the management API (monitord.scenario_files) ---------------------

MANAGED_ID = "5f0c1e2d-3a4b-4c5d-8e6f-708192a3b4c5"
MANAGED_DOCUMENT: dict[str, Any] = {
    "scenarioId": MANAGED_ID,
    "appKey": DEFAULT_APP_KEY,
    "scenarioName": "checkout",
    "scenarioType": "API",
    "description": "line one\n--- not a document break\n# not a comment",
    "url": "http://shop.test/checkout",
    "monitoringInterval": 60,
    "validation": {
        "timeout": 3000,
        "textValidation": {
            "textValidationType": "JSON",
            "textValidationInfos": [{"expression": "$.ok", "operator": "EQ", "operand": "true"}],
        },
    },
}
REGISTERED = datetime(2026, 11, 23, 9, 30, 15, 123000, tzinfo=UTC)


@contextmanager
def process_umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_render_starts_with_the_marker_and_loads_back_to_the_same_scenario() -> None:
    """A rendered file is the marker line, the registered line, then the document in its
    order; it loads to the scenario the plain document gives (only the line differs)."""
    text = scenario_files.render(MANAGED_DOCUMENT, REGISTERED)
    first, second, *rest = text.splitlines()
    assert first.startswith(f"{MANAGED_MARKER}; ")
    assert second == "# registered: 2026-11-23T09:30:15.123Z"
    assert rest[:2] == [f"scenarioId: {MANAGED_ID}", "appKey: default"]
    assert scenario_files.is_managed(text)
    assert not scenario_files.is_managed("# notes\n" + text)
    assert not scenario_files.is_managed(" " + text)
    assert list(yaml.safe_load(text)) == list(MANAGED_DOCUMENT)
    assert yaml.safe_load(text) == MANAGED_DOCUMENT

    (scenario,) = load(text).scenarios
    (plain,) = load(yaml.safe_dump(MANAGED_DOCUMENT, sort_keys=False)).scenarios
    assert scenario.source == Source("s.yaml", 3)
    assert dataclasses.replace(scenario, source=plain.source) == plain
    assert (scenario.id, scenario.name) == (MANAGED_ID, "checkout")
    assert scenario.description == MANAGED_DOCUMENT["description"]


@pytest.mark.parametrize(
    "value",
    ["*alias", "&anchor", "!!python/object:os.system", "{a: b}", "- x", "#c", "日本語", "a\x00b"],
)
def test_render_keeps_yaml_looking_strings_as_plain_strings(value: str) -> None:
    """Strings that look like YAML syntax are quoted: they load back as the same text."""
    document = {**MANAGED_DOCUMENT, "description": value}
    if "\x00" not in value:
        document["scenarioName"] = value
    text = scenario_files.render(document, REGISTERED)
    assert yaml.safe_load(text) == document
    (scenario,) = load(text).scenarios
    assert scenario.description == value
    assert scenario.name == document["scenarioName"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (REGISTERED, REGISTERED),
        (
            datetime(2030, 1, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9))),
            datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        ),
    ],
)
def test_registered_time_round_trips_in_utc_to_the_millisecond(
    moment: datetime, expected: datetime
) -> None:
    """The registered line reads back as the same instant, in UTC, to the millisecond."""
    text = scenario_files.render(MANAGED_DOCUMENT, moment)
    found = scenario_files.registered_time(text)
    assert found == expected
    assert found is not None
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "scenarioName: x\n",
        "# registered: yesterday\n",
        "# registered: 2026-13-45T10:00:00.000Z\n",
        "# registered: 2026-11-23T10:00:00.000Z and more\n",
        "# registered:\n",
        "#registered: 2026-11-23T10:00:00.000Z\n",
        "  # registered: 2026-11-23T10:00:00.000Z\n",
    ],
)
def test_registered_time_of_garbage_is_none(text: str) -> None:
    """No registered line, or one that is not a timestamp on a line of its own: None."""
    assert scenario_files.registered_time(text) is None


def test_write_atomically_replaces_the_file_with_mode_0640_and_no_temporary(
    tmp_path: Path,
) -> None:
    """The new text replaces the file by a rename (a reader of the old file keeps the old
    text), the mode is 0640 whatever the old file had, and no temporary file remains."""
    path = tmp_path / "one.yaml"
    with process_umask(0o022):
        scenario_files.write_atomically(path, "first: 1\n")
        assert path.read_bytes() == b"first: 1\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        path.chmod(0o644)
        with path.open(encoding="utf-8") as reader:
            scenario_files.write_atomically(path, "名前: ✓\n")
            assert reader.read() == "first: 1\n"
    assert path.read_bytes() == "名前: ✓\n".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.yaml"]


def test_write_atomically_failure_raises_and_leaves_no_temporary(tmp_path: Path) -> None:
    """When the rename fails (the target is a folder) or the folder is missing, the error
    names the path, the target is untouched and no temporary file remains."""
    taken = tmp_path / "taken.yaml"
    taken.mkdir()
    (taken / "inside").write_text("keep", encoding="utf-8")
    with pytest.raises(ScenarioFileError) as raised:
        scenario_files.write_atomically(taken, "x: 1\n")
    assert str(raised.value).startswith(f"cannot write {taken}: ")
    assert (taken / "inside").read_text(encoding="utf-8") == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.yaml"]
    assert sorted(p.name for p in taken.iterdir()) == ["inside"]

    missing = tmp_path / "gone" / "x.yaml"
    with pytest.raises(ScenarioFileError, match=r"^cannot write .*gone/x\.yaml: No such file"):
        scenario_files.write_atomically(missing, "x: 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.yaml"]


def test_remove_deletes_the_file_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    """remove deletes only its file; removing a file that is gone names it in the error."""
    path = tmp_path / "one.yaml"
    other = tmp_path / "two.yaml"
    scenario_files.write_atomically(path, "a: 1\n")
    scenario_files.write_atomically(other, "b: 2\n")
    scenario_files.remove(path)
    assert not path.exists()
    assert other.read_text(encoding="utf-8") == "b: 2\n"
    with pytest.raises(ScenarioFileError, match=r"^cannot remove .*one\.yaml: No such file"):
        scenario_files.remove(path)


MAPPING_FILE = """\
# one scenario, written by hand

scenarioName: shop
scenarioType: API
url: http://shop.test/
monitoringInterval: 60
"""
LIST_FILE = """\
# three scenarios
- scenarioName: front        # its id comes from appKey and name
  scenarioType: API
  appKey: other
  url: http://shop.test/front
  monitoringInterval: 60

- scenarioName: back         # no appKey: the default one
  scenarioType: API
  url: http://shop.test/back
  monitoringInterval: 60
- scenarioName: fixed
  scenarioId: 5F0C1E2D-3A4B-4C5D-8E6F-708192A3B4C5
  scenarioType: API
  url: http://shop.test/fixed
  monitoringInterval: 60
"""
SERVICES_CONFIG = Config(services=(Service("shop", "shop"), Service("other", "other")))


def test_documents_of_a_mapping_file_and_of_a_list_file(tmp_path: Path) -> None:
    """Each scenario mapping with the line it starts on, as the loader numbers them."""
    path = tmp_path / "s.yaml"
    ((document, line),) = scenario_files.documents(MAPPING_FILE, path)
    assert (document["scenarioName"], line) == ("shop", 3)
    found = scenario_files.documents(LIST_FILE, path)
    assert [(d["scenarioName"], line) for d, line in found] == [
        ("front", 2),
        ("back", 8),
        ("fixed", 12),
    ]
    for text, config in [(MAPPING_FILE, CONFIG), (LIST_FILE, SERVICES_CONFIG)]:
        loaded = load_text(text, str(path), config, {}, NOW)
        default = config.services[0].app_key if config.services else DEFAULT_APP_KEY
        assert {s.id: s.source.line for s in loaded.scenarios} == {
            scenario_files.document_id(d, default): line
            for d, line in scenario_files.documents(text, path)
        }
    # Items that are not mappings, scalars and empty files hold no scenario mappings.
    assert scenario_files.documents("- 42\n- scenarioName: a\n- [x]\n", path) == [
        ({"scenarioName": "a"}, 2)
    ]
    assert scenario_files.documents("just text\n", path) == []
    assert scenario_files.documents("# nothing\n", path) == []
    with pytest.raises(ScenarioFileError, match=rf"^{path}:3: "):
        scenario_files.documents("a: 1\nb: [\nc: : d\n", path)


def test_documents_by_given_or_derived_id(tmp_path: Path) -> None:
    """A scenario is found by its scenarioId (any case), else by the id derived from its
    appKey (the first service's, or "default" without services) and name."""
    path = tmp_path / "s.yaml"

    def find(scenario_id: str, services: list[str]) -> tuple[str, int, int] | None:
        by_id, count = scenario_files.documents_by_id(LIST_FILE, path, services)
        found = by_id.get(scenario_id)
        return None if found is None else (found[0]["scenarioName"], found[1], count)

    front = derive_scenario_id("other", "front")
    assert find(front, []) == ("front", 2, 3)
    assert find(front, ["shop", "other"]) == ("front", 2, 3)
    assert find(derive_scenario_id("default", "back"), []) == ("back", 8, 3)
    assert find(derive_scenario_id("shop", "back"), ["shop", "other"]) == ("back", 8, 3)
    assert find(derive_scenario_id("default", "back"), ["shop", "other"]) is None
    assert find(MANAGED_ID, []) == ("fixed", 12, 3)
    assert find(derive_scenario_id("default", "fixed"), []) is None
    assert find(str(uuid.uuid4()), []) is None
    assert find("not an id", []) is None
    by_id, count = scenario_files.documents_by_id(MAPPING_FILE, path, [])
    assert [(i, line) for i, (_, line) in by_id.items()] == [
        (derive_scenario_id("default", "shop"), 3)
    ]
    assert count == 1
    assert scenario_files.document_id({"scenarioId": "nope", "scenarioName": "x"}, "a") is None
    assert scenario_files.document_id({"appKey": 7, "scenarioName": "x"}, "a") is None


def test_as_json_turns_dates_and_other_scalars_into_text(tmp_path: Path) -> None:
    """Nested mappings and lists keep their shape; dates and non-text keys become text;
    JSON's own scalars stay as they are."""
    value = {
        "day": date(2026, 11, 23),
        "at": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        1: "one",
        "nested": [{"when": date(2026, 1, 2)}, [None, 1.5, True, 7, "x"]],
    }
    converted = scenario_files.as_json(value)
    assert converted == {
        "day": "2026-11-23",
        "at": "2026-11-23 10:00:00+00:00",
        "1": "one",
        "nested": [{"when": "2026-01-02"}, [None, 1.5, True, 7, "x"]],
    }
    assert json.loads(json.dumps(converted)) == converted
    ((document, _),) = scenario_files.documents(
        "scenarioName: dated\nstarts: 2026-11-23\nlist: [2026-01-02, {x: 2026-01-03}]\n",
        tmp_path / "d.yaml",
    )
    assert scenario_files.as_json(document) == {
        "scenarioName": "dated",
        "starts": "2026-11-23",
        "list": ["2026-01-02", {"x": "2026-01-03"}],
    }


def test_managed_folder_is_the_first_configured_folder(tmp_path: Path) -> None:
    """The first path that is a folder, in configured order; None for files, globs and
    missing paths only."""
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    single = tmp_path / "one.yaml"
    single.write_text("", encoding="utf-8")
    glob = tmp_path / "*.yaml"
    missing = tmp_path / "missing"
    assert scenario_files.managed_folder([single, glob, missing, second, first]) == second
    assert scenario_files.managed_folder(iter([glob, first, second])) == first
    assert scenario_files.managed_folder([single, glob, missing]) is None
    assert scenario_files.managed_folder([]) is None


def test_hidden_temporary_files_are_not_scenario_files(tmp_path: Path) -> None:
    """A temporary file left by a crash mid-write (hidden, in the same folder) and other
    hidden files are never discovered, from the folder or from a glob."""
    folder = tmp_path / "s"
    folder.mkdir()
    real = folder / f"{MANAGED_ID}.yaml"
    scenario_files.write_atomically(real, scenario_files.render(MANAGED_DOCUMENT, REGISTERED))
    other = {**MANAGED_DOCUMENT, "scenarioId": str(uuid.uuid4()), "scenarioName": "half"}
    text = scenario_files.render(other, REGISTERED)
    for name in (f".{real.name}.{uuid.uuid4().hex}.tmp", ".half.yaml", f".{real.name}"):
        (folder / name).write_text(text, encoding="utf-8")
    assert discover([folder]) == ([real], [])
    assert discover([folder / "*"]) == ([real], [])
    assert discover([folder / ".*"]) == ([], [])
    loaded = load_scenarios([folder], CONFIG, {}, NOW)
    assert loaded.errors == ()
    assert [s.name for s in loaded.scenarios] == ["checkout"]
