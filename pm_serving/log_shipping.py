"""The inference log on shared storage: replicas of the scale profile copy their log files to object storage
(`PM_INFERENCE_LOG_URL`, e.g. `s3://bucket/inference/`), so no prediction lives only on a replica's disk.

The local folder is a spool. Each worker ships its own files: a day's file once the day is over (plus a grace period
for the writer's last batch), all of them when the worker stops; and the files of a process that is gone (a crash,
or a stop while the store was out) on its next pass. An uploaded file is deleted locally. Object names add the host to the file's name
(`YYYY-MM-DD.<host>.<pid>.jsonl`): replicas on different machines never overwrite each other. A failed upload
keeps the file, is counted, shows in `/ready`, and is tried again on the next pass.
"""

import datetime as dt
import logging
import os
import socket
import threading
from pathlib import Path

import boto3
from prometheus_client import Counter

from pm_assets.core.processes import alive
from pm_assets.storage import lake

log = logging.getLogger("pm_serving")
SHIPPED = Counter("pm_inference_log_files_shipped", "Inference log files copied to shared storage")
SHIP_ERRORS = Counter("pm_inference_log_ship_errors", "Failed uploads of inference log files to shared storage")
#: How long after midnight (UTC) a day's file is left to the writer before it is shipped.
GRACE = dt.timedelta(minutes=5)


class LogShipper:
    def __init__(self, folder: Path, url: str, every_seconds: float = 60.0):
        self.folder = folder
        self.bucket, self.prefix = lake.s3_location(url, "PM_INFERENCE_LOG_URL")
        self.error: str | None = None  # the last upload failure, until an upload succeeds
        self._client = boto3.client("s3", endpoint_url=lake.s3_endpoint_url())
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log-shipper", daemon=True)
        self._thread.start()

    def problem(self) -> str | None:
        """What is wrong with the shipping, for /ready."""
        return f"inference log not copied to s3://{self.bucket}/{self.prefix}: {self.error}" if self.error else None

    def ship(self, everything: bool = False) -> int:
        """Upload this worker's finished files (`everything`: all of them) and those of processes that are gone,
        deleting each once it is stored; return how many."""
        finished_before = (dt.datetime.now(dt.UTC) - GRACE).date()
        shipped = 0
        for path in sorted(self.folder.glob("*.jsonl")):
            day, pid = path.name.split(".")[:2]
            mine = int(pid) == os.getpid()
            if (mine and not everything and dt.date.fromisoformat(day) >= finished_before) or (not mine and alive(int(pid))):
                continue
            try:
                self._client.upload_file(str(path), self.bucket, f"{self.prefix}{day}.{socket.gethostname()}.{pid}.jsonl")
            except FileNotFoundError:
                continue  # another worker shipped a dead process's file first
            except Exception as error:  # noqa: BLE001 - any failure of the store keeps the file for the next pass
                SHIP_ERRORS.inc()
                self.error = f"{type(error).__name__}: {error}"
                log.warning("inference log %s not shipped (%s): kept for the next pass", path.name, self.error)
                continue
            path.unlink(missing_ok=True)
            self.error = None
            shipped += 1
            SHIPPED.inc()
        return shipped

    def close(self) -> None:
        """Stop the periodic pass and ship every file (call after the log has written what was queued)."""
        self._stop.set()
        self._thread.join()
        self.ship(everything=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.ship()
