"""Notice scenario files that appear, change or disappear, and ask for a reload.

Polling is deliberate: it works the same on every filesystem (bind mounts,
NFS, config-management tools that replace whole folders) and needs no
dependency. A poll stats the files only; reading them is the reload's job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from monitord.config.scenarios import discover

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0
MAX_SETTLE_POLLS = 5  # files still changing after this many polls are reloaded anyway

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """Every scenario file under ``paths`` with its (mtime, size, inode); missing folders too."""
    files, problems = discover(paths)
    seen: Snapshot = {str(problem): (-1, -1, -1) for problem in problems}
    for path in files:
        try:
            status = path.stat()
        except OSError:  # removed between listing and stat: the next poll will tell
            continue
        seen[str(path)] = (status.st_mtime_ns, status.st_size, status.st_ino)
    return seen


class FolderWatch:
    def __init__(
        self,
        paths: Iterable[Path],
        on_change: Callable[[], Awaitable[object]],
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._paths = tuple(paths)
        self._on_change = on_change
        self._interval_s = interval_s

    async def run(self) -> None:
        """Poll until cancelled; call ``on_change`` once a change has held for one poll."""
        last = await asyncio.to_thread(snapshot, self._paths)
        while True:
            await asyncio.sleep(self._interval_s)
            current = await asyncio.to_thread(snapshot, self._paths)
            if current == last:
                continue
            # Wait until the files stop changing, so a file caught half-written
            # (an editor truncating before it writes) is not applied as it stood.
            for _ in range(MAX_SETTLE_POLLS):
                await asyncio.sleep(self._interval_s)
                settled = await asyncio.to_thread(snapshot, self._paths)
                if settled == current:
                    break
                current = settled
            if current != last:
                last = current
                log.info("scenario files changed: reloading")
                try:
                    await self._on_change()
                except Exception:  # a failed reload must not end the watch
                    log.exception("reload after a file change failed")
