"""What every benchmark shares: rows of the result table, scenario files, a monitord
daemon in a subprocess (with its CPU time, RSS and READY notification), and helpers to
run a Python snippet as a separate measured process.

Everything listens on 127.0.0.1 and every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_KEY = "bench-admin-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the result table.

    ``ratio`` is figure / ceiling when there is a ceiling; ``ok`` says whether the
    target holds (None: no target, the row is information).
    """

    figure: str
    value: float | None
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.ceiling:
            return None
        return self.value / self.ceiling

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "unit": self.unit,
            "ceiling": self.ceiling,
            "ceilingName": self.ceiling_name,
            "ratio": self.ratio,
            "target": self.target,
            "ok": self.ok,
            "note": self.note,
        }


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table (also valid Markdown)."""
    header = ("figure", "value", "ceiling", "ratio", "target", "met")
    lines = [header]
    for row in rows:
        ratio = row.ratio
        lines.append(
            (
                row.figure,
                f"{number(row.value)} {row.unit}".strip(),
                f"{number(row.ceiling)} ({row.ceiling_name})" if row.ceiling else "",
                "" if ratio is None else f"{ratio:.0%}",
                row.target,
                {None: "", True: "yes", False: "NO"}[row.ok]
                + (f" ({row.note})" if row.note else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


# --- measuring processes ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def python_process(
    code: str, *args: str, prefix: Sequence[str] = (), **kwargs: Any
) -> subprocess.Popen[str]:
    """A Python subprocess running ``code`` (stdout piped, text), started through
    ``prefix`` (such as ``valgrind``) when given."""
    return subprocess.Popen(  # noqa: S603
        [*prefix, sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        **kwargs,
    )


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def http_get(url: str, *, timeout_s: float = 30, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
        body: bytes = answer.read()
        return body


def http_post(url: str, body: bytes = b"", *, timeout_s: float = 60) -> bytes:
    request = urllib.request.Request(  # noqa: S310
        url, data=body, method="POST", headers={"TOAST_PRODUCT_APPKEY": ADMIN_KEY}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
        result: bytes = answer.read()
        return result


# --- scenario files --------------------------------------------------------------------


def api_scenario(name: str, url: str, interval_s: int) -> str:
    """An API scenario as one YAML list item: GET, status 200, two JSON checks."""
    return (
        f"- scenarioName: {name}\n"
        "  scenarioType: API\n"
        f"  url: {url}\n"
        "  httpMethod: GET\n"
        f"  monitoringInterval: {interval_s}\n"
        "  validation:\n"
        "    timeout: 5000\n"
        '    responseCodes: ["200"]\n'
        "    textValidation:\n"
        "      textValidationType: JSON\n"
        "      textValidationInfos:\n"
        '        - {expression: $.status, operator: EQ, operand: "ok"}\n'
        '        - {expression: $.items, operator: GTE, operand: "1"}\n'
    )


def socket_scenario(name: str, kind: str, port: int, interval_s: int) -> str:
    """A TCP or UDP scenario: sends ``ping``, expects ``PONG`` at byte 0."""
    return (
        f"- scenarioName: {name}\n"
        f"  scenarioType: {kind}\n"
        "  ip: 127.0.0.1\n"
        f"  port: {port}\n"
        '  request: "ping"\n'
        f"  monitoringInterval: {interval_s}\n"
        "  validation:\n"
        "    timeout: 5000\n"
        '    responseValidation:\n      - {position: 0, validationText: "PONG"}\n'
    )


def batch_scenario(name: str) -> str:
    """A BATCH scenario with two JSON checks and no payload deadline."""
    return (
        f"- scenarioName: {name}\n"
        "  scenarioType: BATCH\n"
        "  validation:\n"
        "    textValidation:\n"
        "      textValidationType: JSON\n"
        "      textValidationInfos:\n"
        '        - {expression: $.status, operator: EQ, operand: "done"}\n'
        '        - {expression: $.failed, operator: EQ, operand: "0"}\n'
    )


def write_scenarios(folder: Path, items: Sequence[str], per_file: int = 1000) -> list[Path]:
    """Write scenario list items into files of ``per_file`` scenarios each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(items), per_file):
        path = folder / f"bench-{start // per_file:05d}.yaml"
        path.write_text("".join(items[start : start + per_file]) or "[]\n")
        paths.append(path)
    return paths


# --- the daemon ------------------------------------------------------------------------


@dataclass
class Daemon:
    """``monitord run`` in a subprocess, in a work folder of its own.

    READY is taken from the sd_notify datagram the daemon sends (as systemd sees it).
    """

    workdir: Path
    extra_config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    prefix: Sequence[str] = ()  # a command the daemon is started through (``valgrind``)
    ready_timeout_s: float = 120.0
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    notify: socket.socket | None = None
    started_at: float = 0.0

    @property
    def scenarios(self) -> Path:
        return self.workdir / "scenarios"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float | None = None) -> float:
        """Start the daemon; return the seconds from spawn to READY=1."""
        self.scenarios.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = {
            "scenarios": "./scenarios",
            "state": "./state.sqlite3",
            "listen": f"127.0.0.1:{self.port}",
            "watchIntervalSeconds": 0,
            "adminKey": ADMIN_KEY,
            **self.extra_config,
        }
        (self.workdir / "config.yaml").write_text(json.dumps(config))
        notify_path = self.workdir / "notify.sock"
        with contextlib.suppress(FileNotFoundError):
            notify_path.unlink()
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), **self.env}
        env.pop("WATCHDOG_USEC", None)
        log = (self.workdir / "monitord.log").open("wb")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 (our own command, and the prefix given)
            [*self.prefix, sys.executable, "-m", "monitord", "run", "--config", "config.yaml"],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_for(b"READY=1", self.ready_timeout_s if timeout_s is None else timeout_s)
        return time.perf_counter() - self.started_at

    def wait_for(self, message: bytes, timeout_s: float) -> float:
        """Wait for a notification holding ``message``; the moment it came."""
        assert self.notify is not None
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {message!r} from monitord in {timeout_s} s: {self.tail()}")
            if self.process.poll() is not None:
                raise RuntimeError(f"monitord exited with {self.process.returncode}: {self.tail()}")
            self.notify.settimeout(min(left, 0.5))
            try:
                datagram = self.notify.recv(4096)
            except TimeoutError:
                continue
            if message in datagram.split(b"\n"):
                return time.perf_counter()

    def tail(self, lines: int = 20) -> str:
        path = self.workdir / "monitord.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def get(self, path: str, timeout_s: float = 60) -> bytes:
        return http_get(self.url + path, timeout_s=timeout_s)

    def metrics(self) -> str:
        return self.get("/metrics").decode()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=30)
            self.process = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None


@contextlib.contextmanager
def daemon(items: Sequence[str], per_file: int = 1000, **kwargs: Any) -> Iterator[Daemon]:
    """A started daemon with ``items`` as its scenarios, stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="monitord-bench-"))
    running = Daemon(workdir, **kwargs)
    try:
        write_scenarios(running.scenarios, items, per_file)
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples called ``name`` in an exposition, with their labels."""
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), sample.value))
    return found


def deadline_loop(timeout_s: float, step_s: float = 0.1) -> Iterator[None]:
    """Yields until ``timeout_s`` has passed (a bounded polling loop)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        yield
        time.sleep(step_s)
