"""The benchmark harness keeps working: ``python -m bench --tiny`` runs every part on a
few dozen scenarios and writes real figures. (The figures themselves are judged by the
full and quick runs, documented in docs/performance.md, never by a timed test.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Every figure that needs nothing beyond the project itself (no Debian tool) must have a
# value; peers such as blackbox_exporter may be missing and say so in a note.
OPTIONAL = ("blackbox", "promtool")


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_tiny_run_of_every_part_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--json", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "| figure" in finished.stdout
    assert "targets missed:" in finished.stdout
    document = json.loads(out.read_text())
    assert document["preset"] == "tiny"
    assert document["machine"]["cores"] >= 1
    rows = document["rows"]
    figures = " | ".join(row["figure"] for row in rows)
    for word in ("API checks", "TCP", "UDP", "lateness", "RSS", "/metrics", "READY", "reload"):
        assert word in figures, (word, figures)
    assert "receiver requests/s" in figures
    assert "least durable receiver requests/s" in figures
    assert "CPU per payload without HTTP" in figures
    assert "CPU per run beyond the probe" in figures
    assert "/metrics size with only the series SPEC" in figures
    assert "scenarioLabels: id" in figures
    for row in rows:
        assert set(row) >= {"figure", "value", "unit", "ceiling", "ratio", "target", "ok"}
        if any(word in row["figure"].lower() for word in OPTIONAL):
            assert row["value"] is not None or row["note"], row
            continue
        assert isinstance(row["value"], (int, float)), row
        assert row["value"] >= 0, row
        if row["ceiling"] is not None:
            assert row["ratio"] == pytest.approx(row["value"] / row["ceiling"])


def test_a_bracketed_ceiling_is_the_mean_of_both_sides() -> None:
    from bench.throughput import Loop, bracketed

    before = Loop(per_cpu_s=1000.0, rate=900.0, utilisation=0.9, target_cpu=0.2, failed=1)
    after = Loop(per_cpu_s=1400.0, rate=1300.0, utilisation=1.0, target_cpu=0.4, failed=2)
    both = bracketed(before, after)
    assert (both.per_cpu_s, both.rate, both.failed) == (1200.0, 1100.0, 3)
    assert both.utilisation == pytest.approx(0.95)
    assert "before 1,000, after 1,400 per CPU-s" in both.note
    failed = Loop(None, None, None, None, 0, "bare loop failed: boom")
    assert bracketed(before, failed) is before
    assert bracketed(failed, after) is after


def test_instruction_counts_read_the_dump_total() -> None:
    from bench.instructions import dump_total

    dump = (
        b"version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 123\n\ntotals: 2523478184\n"
    )
    assert dump_total(dump) == 2523478184
    with pytest.raises(ValueError, match="totals"):
        dump_total(b"version: 1\nevents: Ir\n")


def test_instruction_counts_say_what_is_missing_without_valgrind(tmp_path: Path) -> None:
    # A PATH holding only Python: no valgrind, so a clear message and exit 2, no server.
    (tmp_path / "python").symlink_to(sys.executable)
    finished = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "bare", "--seconds", "1"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert "needs valgrind and callgrind_control" in finished.stderr
    assert finished.stdout == ""
