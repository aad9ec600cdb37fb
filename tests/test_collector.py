"""The daemon's garbage-collector setting: the young generation is collected less often
than Python's default, the older generations as usual."""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path

import pytest

from monitord import daemon
from tests.test_daemon import running, write_config


def test_the_young_generation_threshold_is_raised_and_the_others_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 9)
        daemon._tune_collector()
        assert gc.get_threshold() == (daemon.YOUNG_GENERATION_THRESHOLD, 7, 9)
        assert daemon.YOUNG_GENERATION_THRESHOLD > 700
    finally:
        gc.set_threshold(*before)


# Loaded by the daemon's interpreter at start (``site`` imports ``sitecustomize`` from
# PYTHONPATH): writes the collector's thresholds as the process exits.
_REPORT_AT_EXIT = """
import atexit, gc, os
atexit.register(
    lambda: open(os.environ["GC_REPORT"], "w").write(",".join(map(str, gc.get_threshold())))
)
"""


@pytest.mark.e2e
async def test_a_running_daemon_has_the_raised_threshold(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_REPORT_AT_EXIT, encoding="utf-8")
    report = tmp_path / "gc.txt"
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "GC_REPORT": str(report)}
    async with running(write_config(tmp_path), env) as monitord:
        monitord.signal(signal.SIGTERM)
        assert await monitord.exit_code() == 0
    young, older, oldest = map(int, report.read_text(encoding="utf-8").split(","))
    assert young == daemon.YOUNG_GENERATION_THRESHOLD
    assert (older, oldest) == gc.get_threshold()[1:]  # Python's defaults, as in this process
