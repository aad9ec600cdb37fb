"""Instructions per receiver request under load, counted by callgrind: a figure that does
not move with the machine, for comparing two versions of the receiver's path
(docs/performance.md, "Comparing two versions on a noisy machine").

``python -m bench.instructions [monitord|bare|least] [--seconds 20]`` starts the server
under ``valgrind --tool=callgrind`` (some 40 times slower than without), drives it like
``bench.receiver`` (100 connections, the 200-byte payload, 100 BATCH scenarios
round-robin) for 5 s, zeroes the counters, drives it for ``--seconds``, dumps the
counters and divides their total by the requests answered. Under load the group commit
writes dozens of rows a transaction, as in the benchmark. One JSON line:
``{"server": ..., "requests": ..., "instructions": ..., "per_request": ...}``.

Needs ``valgrind`` (Debian); the driver is wrk when installed, else the aiohttp client.
Two runs of the same code differ by up to about 1 %. Run it from the checkout to
measure (``PYTHONPATH`` names it for the server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import batch_scenario, daemon
from bench.receiver import APP_KEY, PATH, _batch_ids, _Ceiling, _driver_name, _load

SCENARIOS = 100
CONNECTIONS = 100
WARM_UP_S = 5
START_TIMEOUT_S = 600  # a daemon under callgrind loads its scenarios slowly
DUMP_TIMEOUT_S = 60
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


def dump_total(text: bytes) -> int:
    """The instruction total of a callgrind dump; ValueError when it has none."""
    found = _TOTALS.search(text)
    if found is None:
        raise ValueError("no 'totals:' line in the callgrind dump")
    return int(found[1])


@contextlib.contextmanager
def _server(kind: str, prefix: list[str]) -> Iterator[tuple[str, int, list[str]]]:
    """The server under callgrind: its URL, its pid and the request paths."""
    if kind == "monitord":
        items = [batch_scenario(f"bench-batch-{n:05d}") for n in range(SCENARIOS)]
        with daemon(items, prefix=prefix, ready_timeout_s=START_TIMEOUT_S) as running:
            paths = [PATH.format(app_key=APP_KEY, scenario_id=i) for i in _batch_ids(running)]
            yield running.url, running.pid, paths
        return
    ids = [f"bench-batch-{n:05d}" for n in range(SCENARIOS)]
    with _Ceiling(kind, prefix=prefix) as ceiling:
        paths = [PATH.format(app_key=APP_KEY, scenario_id=i) for i in ids]
        yield ceiling.url, ceiling.process.pid, paths


def _dumped(folder: Path, before: set[Path]) -> int:
    """The total of the dump ``callgrind_control -d`` writes (a new file in ``folder``)."""
    deadline = time.monotonic() + DUMP_TIMEOUT_S
    while time.monotonic() < deadline:
        for path in sorted(set(folder.glob("callgrind.out*")) - before):
            with contextlib.suppress(ValueError):
                return dump_total(path.read_bytes())
        time.sleep(0.5)
    raise TimeoutError(f"no callgrind dump in {folder} within {DUMP_TIMEOUT_S} s")


def measure(kind: str, seconds: int, valgrind: str, control: str) -> dict[str, object]:
    """Instructions per request of ``kind``, under ``valgrind`` (its path), whose
    counters ``control`` (the path of ``callgrind_control``) zeroes and dumps."""
    driver = _driver_name()
    with tempfile.TemporaryDirectory(prefix="monitord-instructions-") as name:
        folder = Path(name)
        prefix = [valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/callgrind.out"]
        with _server(kind, prefix) as (url, pid, paths):
            _load(driver, url, paths, CONNECTIONS, WARM_UP_S, pid)
            subprocess.run([control, "-z", str(pid)], check=True, capture_output=True)  # noqa: S603
            load = _load(driver, url, paths, CONNECTIONS, seconds, pid)
            if load.problem() or not load.requests:
                raise RuntimeError(f"the load failed: {load.problem() or 'no answers'}")
            before = set(folder.glob("callgrind.out*"))
            subprocess.run([control, "-d", str(pid)], check=True, capture_output=True)  # noqa: S603
            total = _dumped(folder, before)
    return {
        "server": kind,
        "driver": driver,
        "requests": load.requests,
        "instructions": total,
        "per_request": round(total / load.requests),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("server", nargs="?", choices=("monitord", "bare", "least"))
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args(argv)
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        print(
            "bench.instructions needs valgrind and callgrind_control"
            " (Debian: apt-get install valgrind)",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(measure(args.server or "monitord", args.seconds, valgrind, control)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
