"""monitord's own CPU per run: what a check costs beyond its probe.

N UDP scenarios at a 1 s interval run through the real scheduler, runner, checks,
state tracker, group writer (a real SQLite file) and metrics, but their probe answers
at once without a socket. The CPU per run of that process is the daemon's fixed cost
of a check, which the bare loops of ``bench.ceiling`` do not pay. It is a guide, not a
bound: with real probes the event loop serves timers and socket events in the same
passes, and the timer-only loop here wakes once per run.

Run as ``python -m bench.overhead N WARM_S WINDOW_S``: one JSON line,
``{"runs": ..., "cpu_s": ..., "wall_s": ...}``.

``python -m bench.overhead payloads COUNT`` measures the receiver's side of it: the
CPU per BATCH payload of ``Monitor.receive_payload`` (judging the 200-byte payload of
``bench.receiver``, recording it, its verdict on disk before it returns) without
HTTP: ``{"payloads": ..., "cpu_s": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.common import batch_scenario, socket_scenario, write_scenarios
from monitord.config.settings import load_config
from monitord.metrics import Metrics
from monitord.model import Observation, Scenario, ScenarioType
from monitord.monitor import Monitor
from monitord.probes import Probe
from monitord.runner import Runner
from monitord.store import Store

REPLY = b"PONG"


class AnswerAtOnce:
    """The probe: answers every scenario at once, and counts the runs."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, scenario: Scenario) -> Observation:
        self.runs += 1
        return Observation(body=REPLY)


@contextlib.asynccontextmanager
async def _started(
    items: Sequence[str], probes: Mapping[ScenarioType, Probe]
) -> AsyncIterator[Monitor]:
    """A started Monitor over ``items`` with a real SQLite store, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="monitord-overhead-") as workdir:
        folder = Path(workdir)
        write_scenarios(folder / "s", items)
        (folder / "config.yaml").write_text("scenarios: ./s\nstate: ./state.sqlite3\n")
        config = load_config(folder / "config.yaml", {})
        store = Store.open(config.state_path)
        runner = Runner(probes)
        monitor = Monitor(config, {}, store, runner, Metrics())
        try:
            await monitor.start()
            yield monitor
            await monitor.stop(1.0)
        finally:
            runner.close()
            store.close()


async def measure(scenarios: int, warm_s: float, window_s: float) -> dict[str, float]:
    # Port 9 is never contacted: the probe answers without a socket.
    items = [socket_scenario(f"u{i}", "UDP", 9, 1) for i in range(scenarios)]
    probe = AnswerAtOnce()
    async with _started(items, {ScenarioType.UDP: probe}):
        await asyncio.sleep(warm_s)
        runs0 = probe.runs
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(window_s)
        cpu1, wall1 = time.process_time(), time.monotonic()
        runs = probe.runs - runs0
    return {"runs": runs, "cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0}


# Payloads in flight at once, one per BATCH scenario, as the receiver's 100 connections.
PAYLOAD_CONCURRENCY = 100


async def measure_payloads(payloads: int) -> dict[str, float]:
    from bench.receiver import payload

    body = payload()
    items = [batch_scenario(f"b{i}") for i in range(PAYLOAD_CONCURRENCY)]
    async with _started(items, {}) as monitor:
        ids = [s.id for scenarios in monitor.loaded_files().values() for s in scenarios]

        async def receive(scenario_id: str) -> None:
            receipt = await monitor.receive_payload(
                scenario_id,
                body,
                "utf-8",
                request_id="bench",
                client="127.0.0.1",
                received_at=datetime.now(UTC),
            )
            if receipt.unreadable is not None:
                raise RuntimeError(receipt.unreadable)

        async def rounds(count: int) -> None:
            for _ in range(count):
                await asyncio.gather(*(receive(i) for i in ids))

        await rounds(10)  # warm-up
        done = max(payloads // len(ids), 1)
        cpu0 = time.process_time()
        await rounds(done)
        cpu1 = time.process_time()
    return {"payloads": done * len(ids), "cpu_s": cpu1 - cpu0}


def main() -> None:
    if sys.argv[1] == "payloads":
        print(json.dumps(asyncio.run(measure_payloads(int(sys.argv[2])))), flush=True)
        return
    scenarios, warm_s, window_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(measure(scenarios, warm_s, window_s))), flush=True)


if __name__ == "__main__":
    main()
