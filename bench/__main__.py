"""Run the benchmark suite: ``python -m bench [--quick | --tiny] [--only PART] [--json FILE]``.

Prints the machine, then one table of figure, ceiling, ratio and target. The exit code
says whether the harness worked (0), not whether every target was met: the table says
that, and ``--json`` keeps it for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import receiver, scale, throughput
from bench.common import Row, table

PARTS = ("throughput", "scale", "receiver")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from monitord import __version__

    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "monitord": __version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, under 3 minutes")
    size.add_argument("--tiny", action="store_true", help="a few dozen scenarios: harness check")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    preset = "TINY" if args.tiny else "QUICK" if args.quick else "FULL"
    parts = args.only or list(PARTS)

    described = machine()
    print(f"monitord benchmarks ({preset.lower()}) on {json.dumps(described)}", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    max_rate: float | None = None

    def part(name: str, run: Callable[[], list[Row]]) -> list[Row]:
        begun = time.monotonic()
        found = run()
        print(f"{name}: {len(found)} figures in {time.monotonic() - begun:.0f} s", flush=True)
        print(table(found), flush=True)
        return found

    if "throughput" in parts:
        found = part("throughput", lambda: throughput.run(getattr(throughput, preset)))
        max_rate = throughput.http_max_rate(found)
        rows += found
    if "scale" in parts:
        rows += part("scale", lambda: scale.run(getattr(scale, preset), max_rate))
    if "receiver" in parts:
        rows += part("receiver", lambda: receiver.run(getattr(receiver, preset)))

    elapsed = time.monotonic() - started
    print(f"\nall figures ({preset.lower()}, {elapsed:.0f} s):\n{table(rows)}")
    missed = [row.figure for row in rows if row.ok is False]
    print(f"targets missed: {', '.join(missed) if missed else 'none'}")
    if args.json is not None:
        document = {
            "preset": preset.lower(),
            "machine": described,
            "seconds": round(elapsed),
            "rows": [row.as_json() for row in rows],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
