"""End to end: the ``monitord`` executable, run as a subprocess, for ``check`` and ``probe``."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import RESULT_KEYS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "testdata" / "bad"
_SCRIPT = Path(sys.executable).parent / "monitord"
MONITORD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "monitord"]
ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>\S+): (?P<message>.+)$")


def monitord(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MONITORD, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    return write(tmp_path / "empty-config.yaml", "")


# --- check ---------------------------------------------------------------------------------


def test_check_passes_on_the_shipped_configuration_and_examples() -> None:
    done = monitord("check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "7 scenario files checked: 7 valid, 0 invalid; "
        "8 scenarios (5 API, 1 TCP, 1 UDP, 1 BATCH); configuration valid; 0 errors"
    ]
    assert not [line for line in done.stderr.splitlines() if ERROR_LINE.match(line)]


def test_check_reports_every_bad_file_and_keeps_the_good_one(
    tmp_path: Path, empty_config: Path
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for path in BAD.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    shutil.copy(REPO / "scenarios" / "udp-ping.yaml", folder / "good.yaml")
    done = monitord("check", "--config", str(empty_config), str(folder))
    assert done.returncode == 2
    errors = [ERROR_LINE.match(line) for line in done.stderr.splitlines()]
    assert all(errors), done.stderr
    reported = {Path(m["file"]).name for m in errors if m}
    assert reported == {p.name for p in BAD.glob("*.yaml")}
    assert "good.yaml" not in done.stderr
    bad_count = len(reported)
    assert done.stdout.splitlines() == [
        f"{bad_count + 1} scenario files checked: 1 valid, {bad_count} invalid; "
        f"1 scenario (1 UDP); configuration valid; {len(errors)} errors"
    ]
    # One example of the exact format, file and line and field included:
    assert f"{folder / 'wrong_types.yaml'}:4: port: must be an integer, got a string ('7000')" in (
        done.stderr.splitlines()
    )


def test_check_only_the_paths_given_and_python_dash_m(tmp_path: Path, empty_config: Path) -> None:
    good = shutil.copy(REPO / "scenarios" / "udp-ping.yaml", tmp_path / "one.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "monitord", "check", "--config", str(empty_config), str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "1 scenario file checked: 1 valid, 0 invalid; 1 scenario (1 UDP); "
        "configuration valid; 0 errors\n"
    )


def test_check_reports_a_broken_configuration(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", "listen: nowhere\nregion: [KOR]\nscenarios: ./s\n")
    (tmp_path / "s").mkdir()
    done = monitord("check", "--config", str(config), str(REPO / "scenarios" / "udp-ping.yaml"))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-2:] == [
        f"{config}:1: listen: must be HOST:PORT (e.g. 127.0.0.1:9480), got 'nowhere'",
        f"{config}:2: region: must be a string, got a list",
    ]
    assert done.stdout.endswith("configuration invalid; 2 errors\n")


def test_check_with_a_missing_config_file_or_path(tmp_path: Path) -> None:
    missing = monitord("check", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert (
        f"{tmp_path / 'nope.yaml'}:1: -: cannot read: No such file or directory" in missing.stderr
    )
    no_path = monitord("check", "--config", os.devnull, str(tmp_path / "absent"))
    assert no_path.returncode == 2
    assert f"{tmp_path / 'absent'}:0: -: no such file or folder" in no_path.stderr


def test_json_log_lines(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", "adminKey: inline-secret-value\nscenarios: ./s\n")
    (tmp_path / "s").mkdir()
    done = monitord("check", "--log-format", "json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert (
        record["message"] == "adminKey holds an inline secret; prefer {env: NAME} or {file: PATH}"
    )
    assert "inline-secret-value" not in done.stderr


# --- probe -----------------------------------------------------------------------------------


@pytest.fixture
def demo_targets() -> Iterator[dict[str, int]]:
    """examples/targets.py on free ports, as the README tells operators to run it."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "examples" / "targets.py"),
            "--http-port",
            "0",
            "--tcp-port",
            "0",
            "--udp-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def examples_on(ports: dict[str, int], folder: Path) -> Path:
    """The shipped example scenarios, pointed at the demo targets' actual ports."""
    folder.mkdir()
    for path in (REPO / "scenarios").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("127.0.0.1:8480", f"127.0.0.1:{ports['http']}")
        text = text.replace("port: 8481", f"port: {ports['tcp']}")
        text = text.replace("port: 8482", f"port: {ports['udp']}")
        write(folder / path.name, text)
    return folder


def test_probe_json_runs_every_example_against_the_demo_targets(
    tmp_path: Path, demo_targets: dict[str, int]
) -> None:
    folder = examples_on(demo_targets, tmp_path / "scenarios")
    done = monitord("probe", str(folder), "--json", "--config", str(REPO / "config.yaml"))
    assert done.returncode == 0, (done.stdout, done.stderr)
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(list(r) == RESULT_KEYS for r in results)
    assert {(r["scenarioName"], r["scenarioType"], r["result"]) for r in results} == {
        ("shop api health", "API", "success"),
        ("sync customer monitor", "API", "success"),
        ("push service accepts records", "API", "success"),
        ("status page html", "API", "success"),
        ("status feed xml", "API", "success"),
        ("billing gateway", "TCP", "success"),
        ("udp ping", "UDP", "success"),
    }
    push = next(r for r in results if r["scenarioName"] == "push service accepts records")
    assert push["statusCode"] == 201
    assert all(r["reasons"] == [] for r in results)
    assert "skipping BATCH scenario 'nightly export'" in done.stderr


def test_probe_exit_1_on_failure_with_reasons(tmp_path: Path, empty_config: Path) -> None:
    with socket.socket() as bound, socket.socket() as listening:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        listening.bind(("127.0.0.1", 0))
        listening.listen()  # accepts the handshake, never answers
        scenarios = write(
            tmp_path / "s.yaml",
            f"""
- scenarioName: refused
  scenarioType: API
  url: http://127.0.0.1:{bound.getsockname()[1]}/
  monitoringInterval: 30
- scenarioName: silent
  scenarioType: TCP
  ip: 127.0.0.1
  port: {listening.getsockname()[1]}
  monitoringInterval: 30
  validation: {{timeout: 300}}
""",
        )
        as_json = monitord("probe", str(scenarios), "--json", "--config", str(empty_config))
        as_text = monitord("probe", str(scenarios), "--config", str(empty_config))
    assert as_json.returncode == 1
    results = {r["scenarioName"]: r for r in map(json.loads, as_json.stdout.splitlines())}
    assert results["refused"]["result"] == "failure"
    assert results["refused"]["reasons"] == ["connection refused"]
    assert results["refused"]["statusCode"] is None
    assert results["silent"]["reasons"] == ["timeout after 300 ms"]
    assert results["silent"]["durationMs"] >= 300
    assert as_text.returncode == 1
    lines = as_text.stdout.splitlines()
    assert lines[0].startswith("FAIL       refused (API, ")
    assert lines[1] == "           - connection refused"
    assert lines[2].startswith("FAIL       silent (TCP, ")
    assert lines[3] == "           - timeout after 300 ms"


def test_probe_selects_one_scenario_by_name_or_id(
    tmp_path: Path, empty_config: Path, demo_targets: dict[str, int]
) -> None:
    folder = examples_on(demo_targets, tmp_path / "scenarios")
    by_name = monitord(
        "probe",
        str(folder / "status-pages.yaml"),
        "--scenario",
        "status feed xml",
        "--json",
        "--config",
        str(empty_config),
    )
    assert by_name.returncode == 0, by_name.stderr
    (result,) = [json.loads(line) for line in by_name.stdout.splitlines()]
    assert result["scenarioName"] == "status feed xml"
    by_id = monitord(
        "probe",
        str(folder),
        "--scenario",
        result["scenarioId"].upper(),
        "--json",
        "--config",
        str(empty_config),
    )
    assert by_id.returncode == 0, by_id.stderr
    assert [json.loads(line)["scenarioId"] for line in by_id.stdout.splitlines()] == [
        result["scenarioId"]
    ]
    unknown = monitord("probe", str(folder), "--scenario", "nope", "--config", str(empty_config))
    assert unknown.returncode == 2
    assert f"no scenario named or with id 'nope' in {folder}" in unknown.stderr
    assert unknown.stdout == ""


def test_probe_text_output_for_success(
    tmp_path: Path, empty_config: Path, demo_targets: dict[str, int]
) -> None:
    folder = examples_on(demo_targets, tmp_path / "scenarios")
    done = monitord("probe", str(folder / "udp-ping.yaml"), "--config", str(empty_config))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"OK         udp ping \(UDP, 9 bytes, \d+\.\d ms\)\n", done.stdout)


def test_probe_invalid_input_exits_2(tmp_path: Path, empty_config: Path) -> None:
    bad = monitord("probe", str(BAD / "wrong_types.yaml"), "--config", str(empty_config))
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.splitlines()[0] == (
        f"{BAD / 'wrong_types.yaml'}:4: port: must be an integer, got a string ('7000')"
    )
    missing = monitord("probe", str(tmp_path / "nothing-here"), "--config", str(empty_config))
    assert missing.returncode == 2
    batch_only = monitord(
        "probe", str(REPO / "scenarios" / "nightly-export.yaml"), "--config", str(empty_config)
    )
    assert batch_only.returncode == 2
    assert "no API, TCP or UDP scenario to probe" in batch_only.stderr
    broken_config = monitord(
        "probe", str(REPO / "scenarios"), "--config", str(write(tmp_path / "c.yaml", "region: [\n"))
    )
    assert broken_config.returncode == 2
    assert ": yaml: " in broken_config.stderr


def test_usage_errors_exit_2() -> None:
    done = monitord("probe")
    assert done.returncode == 2
    assert "usage: monitord probe" in done.stderr
    assert monitord("frobnicate").returncode == 2
