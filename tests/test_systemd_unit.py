"""systemd/monitord.service: ``systemd-analyze verify`` finds nothing, and the keys §10 needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "monitord.service"
INSTALLED_EXECUTABLE = "/usr/local/bin/monitord"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file: every value of every key, in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {number}: continuation lines are not expected"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals, f"line {number}: not KEY=VALUE: {raw!r}"
        assert current is not None, f"line {number}: a key outside any section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SECTIONS = parse_unit(UNIT.read_text(encoding="utf-8"))


def value(section: str, key: str) -> str:
    values = SECTIONS.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times: {values}"
    return values[0]


def seconds(text: str) -> float:
    """A systemd time span in the forms this unit uses: ``30``, ``30s``, ``1min 30s``."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60}
    parts = re.findall(r"(\d+)\s*([a-z]*)", text)
    assert parts, f"not a time span: {text!r}"
    assert "".join(f"{n}{u}" for n, u in parts) == text.replace(" ", ""), text
    return sum(int(n) * units[u] for n, u in parts)


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ("Unit", "After", "network-online.target"),
        ("Unit", "Wants", "network-online.target"),
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        (
            "Service",
            "ExecStart",
            f"{INSTALLED_EXECUTABLE} run --config /etc/monitord/config.yaml",
        ),
        ("Service", "ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service", "Restart", "on-failure"),
        ("Service", "User", "monitord"),
        ("Service", "Group", "monitord"),
        ("Service", "StateDirectory", "monitord"),
        ("Service", "ConfigurationDirectory", "monitord"),
        ("Service", "ReadWritePaths", "-/etc/monitord/scenarios"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "ProtectHome", "yes"),
        ("Service", "PrivateTmp", "yes"),
        ("Service", "PrivateDevices", "yes"),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectKernelTunables", "yes"),
        ("Service", "ProtectKernelModules", "yes"),
        ("Service", "ProtectControlGroups", "yes"),
        ("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Service", "RestrictNamespaces", "yes"),
        ("Service", "LockPersonality", "yes"),
        ("Service", "SystemCallFilter", "@system-service"),
        ("Service", "CapabilityBoundingSet", ""),
        ("Install", "WantedBy", "multi-user.target"),
    ],
)
def test_unit_sets(section: str, key: str, expected: str) -> None:
    assert value(section, key) == expected


def test_watchdog_and_stop_timeouts() -> None:
    watchdog = seconds(value("Service", "WatchdogSec"))
    assert watchdog == 30
    # The daemon's shutdown grace for runs in flight, plus room to flush and exit.
    assert seconds(value("Service", "TimeoutStopSec")) >= 10 + 5
    assert seconds(value("Service", "RestartSec")) > 0


@cache
def analyze_help(tool: str) -> str:
    result = subprocess.run([tool, "--help"], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def verify(tool: str, unit: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``unit``, with the options this version knows."""
    help_text = analyze_help(tool)
    options = [
        option
        for option in ("--man=no", "--generators=no", "--recursive-errors=no")
        if option.partition("=")[0] in help_text
    ]
    env = {
        **os.environ,
        "SYSTEMD_LOG_LEVEL": "info",
        "SYSTEMD_LOG_COLOR": "0",
        "SYSTEMD_LOG_TARGET": "console",
        "SYSTEMD_PAGER": "cat",
    }
    return subprocess.run(
        [tool, "verify", *options, str(unit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def installable_copy(directory: Path, text: str) -> Path:
    """The unit in ``directory`` with ExecStart= pointing at this environment's monitord."""
    executable = Path(sys.executable).with_name("monitord")
    if not executable.is_file():
        found = shutil.which("monitord")
        if found is None:
            pytest.skip("the monitord script is not installed (pip install the package)")
        executable = Path(found)
    quoted = f'"{executable}"' if " " in str(executable) else str(executable)
    rewritten, count = re.subn(
        rf"^ExecStart={re.escape(INSTALLED_EXECUTABLE)} ",
        lambda _: f"ExecStart={quoted} ",
        text,
        flags=re.MULTILINE,
    )
    assert count == 1, "ExecStart= does not start with the installed executable"
    copy = directory / UNIT.name
    copy.write_text(rewritten, encoding="utf-8")
    return copy


@pytest.fixture
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return tool


def lines_about(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if name in line]


def test_systemd_analyze_verify_finds_nothing(analyze: str, tmp_path: Path) -> None:
    copy = installable_copy(tmp_path, UNIT.read_text(encoding="utf-8"))
    result = verify(analyze, copy)
    output = result.stdout + result.stderr
    # verify exits 0 on warnings; what it says about the unit is what counts.
    assert lines_about(output, UNIT.name) == [], output
    assert result.returncode == 0, output


def test_systemd_analyze_verify_reports_a_broken_copy(analyze: str, tmp_path: Path) -> None:
    """The check above can fail: the same invocation reports mistakes in the unit."""
    text = UNIT.read_text(encoding="utf-8").replace("Type=notify\n", "Type=notfy\nWatchdogSecs=1\n")
    result = verify(analyze, installable_copy(tmp_path, text))
    problems = lines_about(result.stdout + result.stderr, UNIT.name)
    assert any("notfy" in line for line in problems), problems
    assert any("WatchdogSecs" in line for line in problems), problems
