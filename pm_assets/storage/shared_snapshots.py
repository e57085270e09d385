"""The fleet's snapshots (scores, maintenance plan, trends, the monitoring figures) on shared storage, for serving
replicas without a shared disk.

With `PM_SCORES_URL` (`s3://bucket/prefix/`) every snapshot the daily pipeline writes under `$PM_DATA_DIR/scores/`
is also copied there under its file name, whole: an S3 put is atomic, so a reader sees the old object or the new
one. Every replica polls the objects' ETags as it polls the champion alias, and reads a snapshot that changed.
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from pm_assets.storage import lake, paths
from pm_assets.storage.atomic import write_atomic


def scores_url() -> str | None:
    """Where the snapshots are shared (`PM_SCORES_URL`), or None: the local files only."""
    return os.environ.get("PM_SCORES_URL") or None


@dataclass
class SharedSnapshots:
    url: str
    bucket: str = field(init=False)
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.bucket, self.prefix = lake.s3_location(self.url, "PM_SCORES_URL")
        self._client = boto3.client("s3", endpoint_url=lake.s3_endpoint_url())

    def put(self, path: Path) -> str:
        """Copy a snapshot file; return its URL."""
        self._client.upload_file(str(path), self.bucket, self.prefix + path.name)
        return f"s3://{self.bucket}/{self.prefix}{path.name}"

    def version(self, name: str) -> str | None:
        """What tells a change of snapshot `name` (its ETag), None while there is none."""
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self.prefix + name)["ETag"]
        except ClientError as error:
            if _absent(error):
                return None
            raise

    def read(self, name: str) -> bytes | None:
        """Snapshot `name`'s bytes, None while there is none."""
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except ClientError as error:
            if _absent(error):
                return None
            raise


def _absent(error: ClientError) -> bool:
    """Whether S3 answered that the object is not there (HEAD says 404, GET NoSuchKey)."""
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def publish_figures(name: str, figures: dict[str, float | int | str]) -> Path:
    """Write a monitoring asset's latest figures (`paths.monitoring_snapshot_path`) and publish them; a figure that is
    not a finite number (not judged yet) is left out rather than written as NaN. Figures of a day before the published
ones' (a backfill) are not published."""
    kept = {k: v for k, v in figures.items() if not (isinstance(v, float) and not math.isfinite(v))}
    path = paths.monitoring_snapshot_path(name)
    if path.exists() and json.loads(path.read_text()).get("day", "") > str(figures.get("day", "")):
        return path  # a backfill of an earlier day: the latest figures stay
    write_atomic(path, json.dumps(kept))
    publish(path)
    return path


def publish(path: Path) -> str | None:
    """Copy a snapshot the pipeline just wrote to the shared store, when there is one; return where it went."""
    url = scores_url()
    return SharedSnapshots(url).put(path) if url else None
