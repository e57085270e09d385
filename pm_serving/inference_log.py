"""Every prediction served, as JSON lines in `$PM_DATA_DIR/inference/YYYY-MM-DD.<pid>.jsonl` (one file per worker
and UTC day), written off the request path.

Requests put their predictions on a bounded queue; one thread takes what has queued, encodes it and
appends it with one write. A write that fails (disk full, directory read-only) is cut back to the
last whole line, kept, and retried with back-off while requests go on being answered: the failures
and anything the full queue had to refuse are counted (`/metrics`) and shown in `/ready`. `close()`
writes what is queued before the process exits (uvicorn calls it on SIGTERM and SIGINT).
"""

import datetime as dt
import logging
import os
import queue
import threading
import time
from pathlib import Path

import msgspec
from prometheus_client import Counter

from pm_serving.schemas import Prediction

log = logging.getLogger("pm_serving")
WRITE_ERRORS = Counter("pm_inference_log_write_errors", "Failed attempts to append to the inference log")
DROPPED = Counter("pm_inference_log_dropped", "Predictions served but not logged (queue full, or unwritable at shutdown)")
LOGGED = Counter("pm_inference_log_written", "Predictions appended to the inference log")

_STOP = object()
MAX_BACKOFF_SECONDS = 5.0
BATCH_SECONDS = 0.05


class InferenceLog:
    def __init__(self, folder: Path, max_queued: int = 10_000, shutdown_retry_seconds: float = 2.0):
        self.folder = folder
        self.error: str | None = None  # the last write failure, until a write succeeds
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._encoder = msgspec.json.Encoder()
        self._shutdown_retry_seconds = shutdown_retry_seconds
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def append(self, predictions: list[Prediction]) -> None:
        """Queue predictions for the log; never blocks the caller."""
        try:
            self._queue.put_nowait((dt.datetime.now(dt.UTC), predictions))
        except queue.Full:
            self._drop(len(predictions), "the inference log queue is full")

    def problem(self) -> str | None:
        """What is wrong with the log, for /ready."""
        if self.error:
            return f"inference log not written: {self.error}"
        if self.dropped:
            return f"{self.dropped} predictions were served but not logged"
        return None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what is queued now is written (or given up on); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        self._stopping = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        DROPPED.inc(count)
        log.error("%d predictions not logged: %s", count, why)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[0] is not _STOP:
                # let a batch gather: a wake-up per request would cost each request a GIL hand-over
                time.sleep(BATCH_SECONDS)
            while len(items) < 10_000:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            batch = [item for item in items if item is not _STOP]
            if batch:
                self._write_with_retry(batch)
            for _ in items:
                self._queue.task_done()
            if stop:
                return

    def _write_with_retry(self, batch: list) -> None:
        by_day: dict[dt.date, bytearray] = {}
        count = 0
        for logged_at, predictions in batch:
            lines = by_day.setdefault(logged_at.date(), bytearray())
            stamp = b'{"logged_at":"' + logged_at.isoformat().encode() + b'",'
            for prediction in predictions:  # the prediction's own JSON object with `logged_at` put first
                lines += stamp
                lines += memoryview(self._encoder.encode(prediction))[1:]
                lines += b"\n"
            count += len(predictions)
        delay, gave_up_at = 0.1, None
        pending = dict(by_day)
        while pending:
            day, data = next(iter(pending.items()))
            try:
                self._append(self.folder / f"{day.isoformat()}.{os.getpid()}.jsonl", bytes(data))
                del pending[day]
                self.error = None
            except OSError as error:
                WRITE_ERRORS.inc()
                self.error = f"{type(error).__name__}: {error}"
                log.warning("inference log write failed (%s), retrying in %.1f s", self.error, delay)
                if self._stopping:
                    gave_up_at = gave_up_at or time.monotonic() + self._shutdown_retry_seconds
                    if time.monotonic() > gave_up_at:
                        self._drop(sum(d.count(b"\n") for d in pending.values()), f"still failing at shutdown ({self.error})")
                        return
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        LOGGED.inc(count)

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        """Append whole lines or nothing: a short or failed write is cut back to where the file ended."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            end = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)
