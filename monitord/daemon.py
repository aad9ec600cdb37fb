"""``monitord run``: the long-running service.

Start: open the state store, listen, load and schedule the scenarios, then
tell systemd READY. Run: the schedule, the HTTP API, a heartbeat (health and
watchdog), a watch on the scenario files, the refresh of open events, the
deadlines of BATCH payloads and the delivery of the events outbox. SIGHUP,
``POST /-/reload`` and file changes reload. SIGTERM/SIGINT: STOPPING, stop
scheduling, give runs in flight a bounded time, give the outbox a bounded time
to flush, close everything, return.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web

from monitord import __version__
from monitord.api import build_app
from monitord.config.settings import Config, ScenarioLabels
from monitord.events.delivery import Deliverer
from monitord.heartbeat import BEAT_PERIOD_S, Heartbeat
from monitord.httpbase import Api
from monitord.metrics import DURATION_BUCKETS, Metrics
from monitord.monitor import Monitor, ReloadReport
from monitord.probes import open_probes
from monitord.runner import Runner
from monitord.sdnotify import Notifier
from monitord.store import Store, StoreError
from monitord.watch import FolderWatch

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
EVENTS_FLUSH_S = 5.0
REFRESH_CHECK_S = 1.0


class StartupError(Exception):
    """The daemon cannot start with this configuration; the message says why."""


async def serve(
    config: Config,
    environ: Mapping[str, str],
    stop: asyncio.Event | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Run until ``stop`` is set (by default, by SIGTERM or SIGINT)."""
    notifier = notifier or Notifier.from_environ(environ)
    stop = stop or _stop_on_signals()
    _ignore_sighup("still starting")  # its default action would end the process
    try:
        store = Store.open(config.state_path)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    try:
        saved = store.load_states()
    except StoreError as exc:
        store.close()
        raise StartupError(str(exc)) from None
    try:
        async with open_probes(user_agent=f"monitord/{__version__}") as probes:
            runner = Runner(probes, expression_budget_s=config.defaults.expression_budget_ms / 1000)
            try:
                try:
                    monitor = Monitor(config, environ, store, runner, _metrics(config), saved)
                except StoreError as exc:
                    raise StartupError(str(exc)) from None
                await _serve(config, stop, notifier, monitor)
            finally:
                runner.close()
    finally:
        store.close()
        notifier.close()
        _ignore_sighup_after_loop()
    log.info("stopped")


def _metrics(config: Config) -> Metrics:
    buckets = config.metrics.duration_buckets
    return Metrics(
        DURATION_BUCKETS if buckets is None else buckets,
        scenario_id_only=config.metrics.scenario_labels is ScenarioLabels.ID,
    )


async def _serve(config: Config, stop: asyncio.Event, notifier: Notifier, monitor: Monitor) -> None:
    # Beat at least as often as the watchdog wants keep-alives.
    period = min(BEAT_PERIOD_S, notifier.watchdog_interval_s or BEAT_PERIOD_S)
    heartbeat = Heartbeat(lambda: monitor.scheduler_running, notifier, period_s=period)

    async def reload() -> ReloadReport:
        notifier.reloading()
        try:
            return await monitor.reload()
        finally:
            _freeze_heap()
            notifier.ready()

    app = build_app(Api(monitor, monitor.metrics, heartbeat, config.admin_key, reload))
    http = web.AppRunner(app, access_log=None, handle_signals=False)
    await http.setup()
    background = _Background()
    deliverer: Deliverer | None = None
    try:
        await _listen(http, config.listen_host, config.listen_port)
        # Loading creates many long-lived objects and few cycles: with the collector on,
        # it ran full passes over the growing heap (half the start-up time at 10,000
        # scenarios, most of it at 100,000). Off while loading, one pass, then frozen.
        gc.disable()
        try:
            report = await monitor.start()
        finally:
            gc.collect()
            _freeze_heap()
            _tune_collector()
            gc.enable()
        if config.events is not None:
            deliverer = Deliverer(
                monitor.outbox, config.events, monitor.metrics, f"monitord/{__version__}"
            )
            deliverer.start()
        else:
            log.warning(
                "no events sink is configured (events.url): failure events are kept in the"
                " outbox of the state store and logged, and sent once a sink is configured"
            )
        background.spawn(heartbeat.run(), "heartbeat")
        background.spawn(_every_second(monitor), "event refresh and payload deadlines")
        if config.watch_interval_s:
            watch = FolderWatch(config.scenario_paths, reload, config.watch_interval_s)
            background.spawn(watch.run(), "file watch")
        _reload_on_sighup(background, reload)
        log.info(
            "monitord %s running in region %s: %d scenarios%s",
            __version__,
            config.region,
            len(monitor),
            "" if report.ok else f", {len(report.errors)} load errors",
        )
        notifier.ready(f"{len(monitor)} scenarios")
        await stop.wait()
        log.info("stopping: letting runs in flight finish (up to %.0f s)", SHUTDOWN_GRACE_S)
        notifier.stopping()
    finally:
        _ignore_sighup("stopping")
        await background.cancel()
        await monitor.stop(SHUTDOWN_GRACE_S)
        if deliverer is not None:  # after the runs, whose results may close events
            await deliverer.stop(EVENTS_FLUSH_S)
        await http.cleanup()


async def _every_second(monitor: Monitor) -> None:
    """Re-send the open events that are due, and fail the BATCH payloads that are late."""
    while True:
        for work in (monitor.refresh_events, monitor.check_payload_deadlines):
            try:
                work()
            except Exception:  # a bug in one round must not end the checks for good
                log.exception("%s failed; trying again in %.0f s", work.__name__, REFRESH_CHECK_S)
        await asyncio.sleep(REFRESH_CHECK_S)


async def _listen(http: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(http, host, port).start()
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (the listen setting)"
        ) from None
    for address in http.addresses:
        log.info("listening on http://%s:%d", *_host_port(address))


def _host_port(address: Any) -> tuple[str, int]:
    host, port = address[0], address[1]
    return (f"[{host}]" if ":" in host else host), port


class _Background:
    """Long-running tasks of the daemon; a task that dies is logged, not lost silently."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _reload_on_sighup(
    background: _Background, reload: Callable[[], Coroutine[Any, Any, ReloadReport]]
) -> None:
    def on_sighup() -> None:
        log.info("SIGHUP: reloading")
        background.spawn(reload(), "reload")

    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)


def _ignore_sighup(why: str) -> None:
    def on_sighup() -> None:
        log.info("SIGHUP ignored: %s", why)

    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)


def _ignore_sighup_after_loop() -> None:
    """Closing the loop would restore SIGHUP's default action (ending the process)
    while shutdown is still finishing; ignore it instead."""
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


# Objects allocated, net, before the collector looks at the youngest generation (Python's
# default is 700). A receiver answering 100 concurrent requests keeps about a thousand
# short-lived objects alive at any moment, so at 700 the young generation was collected
# every 60-odd requests, 0.2 ms each: 3 % of the CPU. At 10,000 the collector took a
# tenth of that time under the same load, each pass a few milliseconds.
YOUNG_GENERATION_THRESHOLD = 10_000


def _tune_collector() -> None:
    """Collect the youngest generation less often; the older generations' thresholds stay."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


def _freeze_heap() -> None:
    """Exempt what is loaded now (scenarios, compiled expressions, schedules) from the
    garbage collector's full passes. Those passes walk every tracked object: at 10,000
    scenarios each took 100-250 ms on the event loop, every few seconds, as run states
    were promoted. Scenario objects hold no reference cycles, so dropping them at a
    reload still frees them."""
    gc.freeze()
