"""A file the service polls and reloads when it changes (the champion pointer, the fleet scores snapshot), or
another source that tells a change by a cheap look (the registry alias, `ModelHolder`).

The watch is supervised: an error (a directory briefly unreadable, a file half-replaced by hand) is
logged and retried with back-off instead of ending the task, and `staleness()` says so once the file
has not been read for `stale_seconds`, which /ready turns into a 503: a worker never serves old data
while saying all is well.
"""

import asyncio
import logging
import time
from pathlib import Path

log = logging.getLogger("pm_serving")
MAX_BACKOFF_SECONDS = 30.0


class WatchedFile:
    def __init__(self, path: Path, poll_seconds: float, stale_seconds: float):
        self.path, self.poll_seconds, self.stale_seconds = path, poll_seconds, stale_seconds
        self.last_check: float | None = None  # time.monotonic() of the last successful look
        self.watch_error: str | None = None
        self._state: object = None
        #: What the watch reads, in messages.
        self.source = str(path)

    def load(self) -> None:
        """Read the file anew (it changed, or nothing is loaded yet)."""
        raise NotImplementedError

    def loaded(self) -> bool:
        return True

    def current_state(self) -> object:
        """What tells a change: the file's modification time, None while it does not exist."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def check(self) -> None:
        """One look at the source, loading it when it changed or nothing is loaded. Raises when it cannot be read."""
        state = self.current_state()
        if state != self._state or not self.loaded():
            self.load()
            self._state = state
        self.last_check, self.watch_error = time.monotonic(), None

    def try_check(self) -> None:
        """`check`, recording instead of raising an error (at start-up, before the watch)."""
        try:
            self.check()
        except Exception as error:
            self.watch_error = f"{type(error).__name__}: {error}"
            log.warning("reading %s: %s", self.source, self.watch_error)

    def staleness(self) -> str | None:
        """Why what is loaded may be out of date, or None."""
        if self.last_check is None:
            return None if self.watch_error is None else f"cannot read {self.source}: {self.watch_error}"
        ago = time.monotonic() - self.last_check
        if ago <= self.stale_seconds:
            return None
        return f"{self.source} not read for {ago:.0f} s" + (f": {self.watch_error}" if self.watch_error else "")

    async def watch(self) -> None:
        """Check every `poll_seconds`; on an error, log it and retry with back-off, never giving up."""
        delay = self.poll_seconds
        while True:
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self.check)
                delay = self.poll_seconds
            except Exception as error:
                self.watch_error = f"{type(error).__name__}: {error}"
                delay = min(max(delay, 0.1) * 2, MAX_BACKOFF_SECONDS)
                log.warning("watching %s: %s (retrying in %.1f s)", self.source, self.watch_error, delay)
