"""The sd_notify(3) protocol: tell systemd that the daemon is ready, reloading or stopping.

A ``Type=notify`` service reports its state by sending one datagram of
newline-separated ``KEY=VALUE`` lines to the AF_UNIX socket named in
``NOTIFY_SOCKET``; the watchdog expects ``WATCHDOG=1`` more often than
``WATCHDOG_USEC``. That is the whole protocol, so it is written here in a few
lines rather than taken from a dependency (libsystemd bindings need a C
library and headers at install time).

Sending never raises: a daemon that monitors other services must not die
because systemd's socket went away. Without ``NOTIFY_SOCKET`` (started by hand,
in tests, under another supervisor) every method does nothing.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# sd_watchdog_enabled(3) rejects 0 and USEC_INFINITY; anything in between is a period.
_USEC_INFINITY = 2**64 - 1
_DIGITS = re.compile(r"[0-9]+")
_NEWLINES = str.maketrans({"\n": " ", "\r": " "})


class Notifier:
    """Sends sd_notify(3) datagrams to systemd; does nothing when NOTIFY_SOCKET is unset."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        """``address``: a socket path, or an abstract name as ``@name`` or ``\\0name``;
        ``None`` or empty disables the notifier. ``watchdog_usec``: the watchdog period
        (``WATCHDOG_USEC``); ``None`` or not positive means no watchdog."""
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._socket: socket.socket | None = None
        self._send_failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        """A notifier for the socket and watchdog systemd passed in ``environ``.

        Values that cannot be used are ignored with a warning: the daemon then runs
        without notifications (or without the watchdog) rather than not at all.
        """
        return cls(_notify_address(environ), _watchdog_usec(environ))

    @property
    def enabled(self) -> bool:
        """A socket address is known, so messages are sent."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half the watchdog period, in seconds.

        ``None`` when there is no watchdog or nowhere to send the keep-alives.
        """
        if self._address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> None:
        """Startup (or a reload) is complete."""
        if status is None:
            self._send("READY=1")
        else:
            self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def reloading(self) -> None:
        """A reload has begun; ``ready()`` ends it."""
        if self._address is None:
            return
        now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={now_us}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        """The keep-alive: the daemon is still making progress."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl status``."""
        self._send(f"STATUS={_one_line(text)}")

    def close(self) -> None:
        """Closes the socket; a later message opens a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._socket = sock
            self._socket.sendto(message.encode(), self._address)
        except OSError as e:
            # Warn once: a vanished socket would otherwise log on every keep-alive.
            level = logging.DEBUG if self._send_failed else logging.WARNING
            self._send_failed = True
            log.log(level, "cannot notify systemd at %s: %s", _printable(self._address), e)


def _notify_address(environ: Mapping[str, str]) -> str | None:
    value = environ.get("NOTIFY_SOCKET")
    if not value:
        return None
    if value.startswith("/") or (value.startswith("@") and len(value) > 1):
        return value
    log.warning(
        "NOTIFY_SOCKET=%r is neither an absolute path nor an abstract socket name (@name);"
        " not notifying systemd",
        value,
    )
    return None


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    value = environ.get("WATCHDOG_USEC")
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not 0 < int(value) < _USEC_INFINITY:
        log.warning("WATCHDOG_USEC=%r is not a positive number of microseconds; ignored", value)
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid is not None:
        if not _DIGITS.fullmatch(pid) or int(pid) == 0:
            log.warning("WATCHDOG_PID=%r is not a process id; watchdog ignored", pid)
            return None
        if int(pid) != os.getpid():
            # Inherited from the service's main process: the watchdog is that process's job.
            log.debug(
                "WATCHDOG_PID=%s is not this process (%d); watchdog ignored", pid, os.getpid()
            )
            return None
    return int(value)


def _one_line(text: str) -> str:
    return text.translate(_NEWLINES)


def _printable(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address
