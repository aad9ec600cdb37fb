"""The peer: Prometheus' blackbox_exporter (Debian's ``prometheus-blackbox-exporter``)
probing the same targets, and a load process that asks it for probes.

Its modules do what a monitord scenario does: ``http_2xx`` a GET that must answer
200 with ``"status": "ok"`` in the body (blackbox has no JSONPath, a body regex is its
nearest check), ``tcp_connect`` sends ``ping`` and expects ``PONG``. Each probe opens a
fresh connection to the target (blackbox builds a new client per probe).

The load process (``python -m bench.blackbox URL CONCURRENCY WARM_S WINDOW_S``) keeps
its own connections to the exporter alive, so what it costs the exporter is the probe
and the answer, and prints the same start/done lines as the bare loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.ceiling import Check, emit, measure_loop
from bench.common import free_port, http_get, stop_process

EXECUTABLE = "prometheus-blackbox-exporter"

CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      method: GET
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status": "ok"']
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      query_response:
        - send: "ping"
        - expect: "PONG"
"""


@dataclass(frozen=True)
class Exporter:
    port: int
    pid: int
    version: str

    def probe_url(self, module: str, target: str) -> str:
        return f"http://127.0.0.1:{self.port}/probe?module={module}&target={target}"


def executable() -> str | None:
    return shutil.which(EXECUTABLE)


@contextlib.contextmanager
def exporter(gomaxprocs: int | None = None, timeout_s: float = 15) -> Iterator[Exporter]:
    """A started exporter on 127.0.0.1 with the two modules, stopped afterwards.

    Raises FileNotFoundError when the exporter is not installed."""
    binary = executable()
    if binary is None:
        raise FileNotFoundError(EXECUTABLE)
    folder = Path(tempfile.mkdtemp(prefix="bench-blackbox-"))
    config = folder / "blackbox.yml"
    config.write_text(CONFIG)
    port = free_port()
    env = dict(os.environ)
    if gomaxprocs is not None:
        env["GOMAXPROCS"] = str(gomaxprocs)
    log = (folder / "blackbox.log").open("wb")
    process = subprocess.Popen(  # noqa: S603
        [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=folder,
    )
    log.close()
    try:
        _wait_healthy(port, process, time.monotonic() + timeout_s, folder)
        yield Exporter(port, process.pid, version(binary))
    finally:
        stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_healthy(
    port: int, process: subprocess.Popen[bytes], deadline: float, folder: Path
) -> None:
    while True:
        if process.poll() is not None:
            log = (folder / "blackbox.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"blackbox_exporter exited {process.returncode}: {log}")
        try:
            http_get(f"http://127.0.0.1:{port}/-/healthy", timeout_s=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def version(binary: str) -> str:
    try:
        answer = subprocess.run(  # noqa: S603
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (answer.stdout + answer.stderr).split()
    return text[2] if len(text) > 2 and text[0].rstrip(",") == "blackbox_exporter" else "?"


# --- the load process ------------------------------------------------------------------


async def probe_check_factory(url: str) -> tuple[Check, Callable[[], Awaitable[None]]]:
    """One probe request; it passed when blackbox says ``probe_success 1``."""
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=10),
    )

    async def check() -> bool:
        async with session.get(url) as response:
            body = await response.read()
        return response.status == 200 and b"\nprobe_success 1\n" in body

    return check, session.close


def main(argv: Sequence[str] | None = None) -> None:
    url, concurrency, warm_s, window_s = (argv or sys.argv[1:])[:4]
    result = asyncio.run(
        measure_loop(probe_check_factory, url, int(concurrency), float(warm_s), float(window_s))
    )
    emit(result)


if __name__ == "__main__":
    main()
