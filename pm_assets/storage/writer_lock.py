"""One writer at a time: the platform-wide lock every writing `pm` command and every dbt build takes.

DuckDB takes one writer process, and dbt opens the warehouse in a process of its own: two commands
writing at once would otherwise race for it, and the loser's error would name dbt's wrapper, not the
cause. The lock is a `flock` on `data/.writer.lock` (released by the OS when its holder dies, however
it dies), held for a whole command; the file names the holder. It is re-entrant within a process, so a
`pm` command's own dbt build runs under the lock it holds. Waiting uses the warehouse's back-off and
limit (`PM_LOCK_WAIT_SECONDS`).
"""

import contextlib
import datetime as dt
import fcntl
import os
import sys
import time
from collections.abc import Iterator

from pm_assets.storage import paths
from pm_assets.storage.warehouse import WarehouseBusy, lock_wait_seconds

_held = 0  # depth of this process's hold


@contextlib.contextmanager
def writer_lock(what: str | None = None) -> Iterator[None]:
    """Hold the platform's writer lock, waiting with back-off while another process holds it; `what` names this holder."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    path = paths.data_dir() / ".writer.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        waited, delay, limit = 0.0, 0.05, lock_wait_seconds()
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= limit:
                    lock.seek(0)
                    holder = lock.read().strip() or "another process"
                    raise WarehouseBusy(f"another writer holds {paths.data_dir()}: {holder}; waited {limit:g}s. Run this again when "
                                        "it ends, or raise PM_LOCK_WAIT_SECONDS") from None
                time.sleep(min(delay, limit - waited))
                waited, delay = waited + delay, min(delay * 2, 2.0)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{what or ' '.join(['pm', *sys.argv[1:]])} (pid {os.getpid()}, since {dt.datetime.now():%Y-%m-%d %H:%M:%S})\n")
        lock.flush()
        _held = 1
        try:
            yield
        finally:
            _held = 0
            fcntl.flock(lock, fcntl.LOCK_UN)
