"""The scenario-folder watch: snapshots of the files, and reloads when they change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PosixPath

import pytest

from monitord.watch import MAX_SETTLE_POLLS, FolderWatch, snapshot

SCENARIO = (
    "scenarioName: shop\nscenarioType: API\nurl: http://127.0.0.1:9/\nmonitoringInterval: 30\n"
)


def write(path: Path, text: str = SCENARIO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def replace_file(path: Path, text: str = SCENARIO) -> Path:
    """Write ``path`` in one step (temp file + rename), so no poll sees it half-written."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.replace(path)
    return path


# --- snapshot ----------------------------------------------------------------------------


def test_snapshot_lists_scenario_files_with_mtime_size_inode(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml")
    b = write(tmp_path / "sub" / "b.yml", "x: 1\n")
    stat_a, stat_b = a.stat(), b.stat()
    assert snapshot([tmp_path]) == {
        str(a): (stat_a.st_mtime_ns, stat_a.st_size, stat_a.st_ino),
        str(b): (stat_b.st_mtime_ns, 5, stat_b.st_ino),
    }


def test_snapshot_ignores_hidden_and_other_files(tmp_path: Path) -> None:
    shown = write(tmp_path / "a.yaml")
    write(tmp_path / ".hidden.yaml")
    write(tmp_path / ".git" / "inside.yaml")
    write(tmp_path / "a.yaml~")
    write(tmp_path / "notes.txt")
    assert list(snapshot([tmp_path])) == [str(shown)]


def test_snapshot_sees_new_changed_and_removed_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml")
    before = snapshot([tmp_path])

    new = write(tmp_path / "new.yaml")
    after_new = snapshot([tmp_path])
    assert set(after_new) == {str(a), str(new)}
    assert after_new[str(a)] == before[str(a)]

    write(a, SCENARIO + "description: longer now\n")  # a different size
    after_edit = snapshot([tmp_path])
    assert after_edit != after_new
    assert after_edit[str(a)][1] == len(SCENARIO) + len("description: longer now\n")
    assert after_edit[str(new)] == after_new[str(new)]

    # Same size, only the modification time differs (an editor that restores the size).
    mtime = a.stat().st_mtime_ns
    os.utime(a, ns=(mtime, mtime - 5_000_000_000))
    after_touch = snapshot([tmp_path])
    assert after_touch != after_edit
    assert after_touch[str(a)][1:] == after_edit[str(a)][1:]
    assert after_touch[str(a)][0] == mtime - 5_000_000_000

    new.unlink()
    assert set(snapshot([tmp_path])) == {str(a)}


def test_snapshot_reports_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    present = write(tmp_path / "here" / "a.yaml")
    seen = snapshot([missing, tmp_path / "here"])
    assert seen[f"{missing}:0: -: no such file or folder"] == (-1, -1, -1)
    assert set(seen) == {f"{missing}:0: -: no such file or folder", str(present)}
    # The folder coming back is a change too.
    created = write(missing / "b.yaml")
    again = snapshot([missing, tmp_path / "here"])
    assert set(again) == {str(created), str(present)}


# --- FolderWatch on the real loop ---------------------------------------------------------


def counting_path(root: Path) -> tuple[Path, Callable[[], int]]:
    """``root`` as a path that counts the polls made over it (each poll asks is_dir once)."""
    polls = [0]

    class Counted(PosixPath):
        def is_dir(self) -> bool:
            if str(self) == str(root):
                polls[0] += 1
            return super().is_dir()

    return Counted(root), lambda: polls[0]


class Reloads:
    """An on_change callback that records its calls and can be told to fail."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("reload failed")


@contextlib.asynccontextmanager
async def watching(folder: Path, on_change: Reloads) -> AsyncIterator[Callable[[], int]]:
    """Run a FolderWatch over ``folder``; yields a count of the polls it has begun."""
    path, polls = counting_path(folder)
    task = asyncio.create_task(FolderWatch([path], on_change, interval_s=0.05).run())
    try:
        # The first poll is the baseline; once the second begins, the baseline is taken.
        await until(lambda: polls() >= 2)
        yield polls
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()  # it was still watching: nothing ended it


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_no_change_no_reload(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml")
    reloads = Reloads()
    async with watching(tmp_path, reloads) as polls:
        seen = polls()
        await until(lambda: polls() >= seen + 3)  # three full polls over unchanged files
        assert reloads.calls == 0
        # And half a second more: a bounded wait is the point of this test.
        await asyncio.sleep(0.5)
        assert reloads.calls == 0


async def test_a_change_triggers_a_reload(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml")
    reloads = Reloads()
    async with watching(tmp_path, reloads) as polls:
        replace_file(a, SCENARIO + "description: changed\n")
        await until(lambda: reloads.calls >= 1)
        seen = polls()
        await until(lambda: polls() >= seen + 3)
        assert reloads.calls == 1  # one change, one reload


@pytest.mark.parametrize("change", ["new", "removed", "touched"])
async def test_each_kind_of_change_triggers_a_reload(tmp_path: Path, change: str) -> None:
    a = write(tmp_path / "a.yaml")
    reloads = Reloads()
    async with watching(tmp_path, reloads):
        if change == "new":
            replace_file(tmp_path / "b.yaml")
        elif change == "removed":
            a.unlink()
        else:
            mtime = a.stat().st_mtime_ns
            os.utime(a, ns=(mtime, mtime + 3_000_000_000))
        await until(lambda: reloads.calls >= 1)
        assert reloads.calls == 1


async def test_the_watch_goes_on_after_a_failed_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="monitord.watch")
    a = write(tmp_path / "a.yaml")
    reloads = Reloads(fail_first=1)
    async with watching(tmp_path, reloads):
        replace_file(a, SCENARIO + "description: first\n")
        await until(lambda: reloads.calls >= 1)
        failed = [r for r in caplog.records if r.name == "monitord.watch"]
        assert [r.getMessage() for r in failed] == ["reload after a file change failed"]
        assert failed[0].exc_info is not None
        replace_file(a, SCENARIO + "description: second change\n")
        await until(lambda: reloads.calls >= 2)
        assert reloads.calls == 2


async def test_a_file_still_being_written_is_reloaded_once_it_settles(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml")
    reloads = Reloads()
    async with watching(tmp_path, reloads) as polls:
        # Change the file at every poll, as a slow writer would: no reload meanwhile
        # (up to the settle limit of MAX_SETTLE_POLLS polls).
        for step in range(MAX_SETTLE_POLLS - 1):
            seen = polls()
            a.write_text(SCENARIO + f"description: step {step}\n" + "#" * step, encoding="utf-8")
            await until(lambda seen=seen: polls() >= seen + 1)
            assert reloads.calls == 0, f"reloaded while the file was still changing ({step})"
        await until(lambda: reloads.calls >= 1)
        seen = polls()
        await until(lambda: polls() >= seen + 3)
        assert reloads.calls == 1
