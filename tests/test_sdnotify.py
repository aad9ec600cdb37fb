"""sd_notify: the exact datagrams on a real AF_UNIX socket, the environment, failures."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitord.sdnotify import Notifier
from tests.targets import notify_receiver

LOGGER = "monitord.sdnotify"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[socket.socket]:
    with notify_receiver(tmp_path, timeout_s=5) as sock:
        yield sock


@pytest.fixture
def socket_path(receiver: socket.socket) -> Path:
    return Path(receiver.getsockname())


@pytest.fixture
def notifier(socket_path: Path, receiver: socket.socket) -> Iterator[Notifier]:
    n = Notifier(str(socket_path))
    yield n
    n.close()


def received(sock: socket.socket) -> str:
    """The next datagram on ``sock`` (waiting up to its timeout)."""
    return sock.recv(4096).decode()


def assert_drained(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        extra = sock.recv(4096)
    except BlockingIOError:
        return
    finally:
        sock.settimeout(5)
    pytest.fail(f"an unexpected datagram: {extra!r}")


def monotonic_us() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda n: n.ready(), "READY=1"),
        (lambda n: n.ready("12 scenarios scheduled"), "READY=1\nSTATUS=12 scenarios scheduled"),
        (lambda n: n.ready("two\nlines"), "READY=1\nSTATUS=two lines"),
        (lambda n: n.stopping(), "STOPPING=1"),
        (lambda n: n.watchdog(), "WATCHDOG=1"),
        (lambda n: n.status("loading"), "STATUS=loading"),
        (lambda n: n.status("a\nb\r\nc\rd"), "STATUS=a b  c d"),
    ],
    ids=[
        "ready",
        "ready-status",
        "ready-status-newline",
        "stopping",
        "watchdog",
        "status",
        "status-newlines",
    ],
)
def test_each_message_is_one_datagram_with_exact_text(
    notifier: Notifier,
    receiver: socket.socket,
    send: Callable[[Notifier], None],
    expected: str,
) -> None:
    assert notifier.enabled
    send(notifier)
    assert received(receiver) == expected
    assert_drained(receiver)


def test_reloading_carries_the_monotonic_clock_in_microseconds(
    notifier: Notifier, receiver: socket.socket
) -> None:
    before = monotonic_us()
    notifier.reloading()
    after = monotonic_us()
    first, second = received(receiver).split("\n")
    assert first == "RELOADING=1"
    key, _, value = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert value.isdigit()
    assert before <= int(value) <= after


def test_messages_share_one_socket_opened_on_first_use(
    notifier: Notifier, receiver: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[socket.socket] = []
    real_socket = socket.socket

    def counting_socket(*args: Any, **kwargs: Any) -> socket.socket:
        opened.append(real_socket(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(socket, "socket", counting_socket)
    assert opened == []
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
    assert [received(receiver) for _ in range(3)] == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
    assert len(opened) == 1
    assert not opened[0].getblocking()


def test_abstract_namespace_socket() -> None:
    name = f"monitord-test-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("\0" + name)
    except OSError as e:
        sock.close()
        pytest.skip(f"no abstract AF_UNIX sockets on {sys.platform}: {e}")
    sock.settimeout(5)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.enabled
        notifier.ready("up")
        assert received(sock) == "READY=1\nSTATUS=up"
    finally:
        notifier.close()
        sock.close()


def test_from_environ_with_a_socket_path(socket_path: Path, receiver: socket.socket) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(socket_path)})
    try:
        assert notifier.enabled
        notifier.watchdog()
        assert received(receiver) == "WATCHDOG=1"
    finally:
        notifier.close()


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"WATCHDOG_USEC": "30000000"}])
def test_without_notify_socket_nothing_is_sent_and_no_socket_opened(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_socket(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("a disabled notifier opened a socket")

    monkeypatch.setattr(socket, "socket", no_socket)
    notifier = Notifier.from_environ(environ)
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.ready("status")
    notifier.reloading()
    notifier.stopping()
    notifier.watchdog()
    notifier.status("status")
    notifier.close()


@pytest.mark.parametrize("value", ["relative/notify.sock", "@", "vsock:2:1234"])
def test_an_unusable_notify_socket_is_ignored_with_one_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": value})
    assert not notifier.enabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NOTIFY_SOCKET" in warnings[0].getMessage()


def watchdog_environ(**extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": "/run/systemd/notify", **extra}


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        (watchdog_environ(), None),
        (watchdog_environ(WATCHDOG_USEC="30000000"), 15.0),
        (watchdog_environ(WATCHDOG_USEC="1"), 0.0000005),
        (watchdog_environ(WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getpid())), 15.0),
        (watchdog_environ(WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getpid() + 1)), None),
    ],
    ids=["unset", "valid", "smallest", "pid-is-this-process", "pid-is-another-process"],
)
def test_watchdog_usec(
    environ: dict[str, str], interval: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert Notifier.from_environ(environ).watchdog_interval_s == interval
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "environ",
    [
        watchdog_environ(WATCHDOG_USEC="0"),
        watchdog_environ(WATCHDOG_USEC="-30000000"),
        watchdog_environ(WATCHDOG_USEC="30s"),
        watchdog_environ(WATCHDOG_USEC=""),
        watchdog_environ(WATCHDOG_USEC=" 30000000"),
        watchdog_environ(WATCHDOG_USEC=str(2**64 - 1)),
        watchdog_environ(WATCHDOG_USEC="30000000", WATCHDOG_PID="me"),
        watchdog_environ(WATCHDOG_USEC="30000000", WATCHDOG_PID="0"),
    ],
    ids=["zero", "negative", "unit", "empty", "space", "infinity", "pid-text", "pid-zero"],
)
def test_invalid_watchdog_values_are_ignored_with_one_warning(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    notifier = Notifier.from_environ(environ)
    assert notifier.enabled
    assert notifier.watchdog_interval_s is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "WATCHDOG_" in warnings[0].getMessage()


def test_watchdog_interval_needs_a_socket_to_send_to() -> None:
    assert Notifier(None, watchdog_usec=30_000_000).watchdog_interval_s is None
    assert Notifier("/run/systemd/notify", watchdog_usec=30_000_000).watchdog_interval_s == 15.0
    assert Notifier("/run/systemd/notify", watchdog_usec=0).watchdog_interval_s is None


def test_a_vanished_socket_warns_once_and_never_raises(
    notifier: Notifier,
    receiver: socket.socket,
    socket_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    notifier.ready()
    assert received(receiver) == "READY=1"
    socket_path.unlink()
    receiver.close()

    notifier.watchdog()
    notifier.watchdog()
    notifier.reloading()
    notifier.status("still here")
    notifier.stopping()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(socket_path) in warnings[0].getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 4


def test_a_socket_that_never_existed_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    notifier = Notifier(str(tmp_path / "never.sock"))
    try:
        notifier.ready()
        notifier.watchdog()
    finally:
        notifier.close()
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]


def test_a_full_receiver_does_not_block_the_sender(
    notifier: Notifier, receiver: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # Nobody reads: the receiver's queue fills, and a blocking send would hang here.
    for _ in range(100_000):
        notifier.watchdog()
        if caplog.records:
            break
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING


def test_close_then_send_opens_a_new_socket(notifier: Notifier, receiver: socket.socket) -> None:
    notifier.ready()
    notifier.close()
    notifier.close()
    notifier.stopping()
    assert [received(receiver) for _ in range(2)] == ["READY=1", "STOPPING=1"]
    assert_drained(receiver)
