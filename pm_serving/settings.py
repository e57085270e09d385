"""Service settings, read once from the environment."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from pm_assets.storage import lake, paths, registry, shared_snapshots


@dataclass(frozen=True)
class Settings:
    model_alias: str = registry.CHAMPION
    #: The pointer file promotion writes; polled for changes (the registry is asked only when it changes).
    pointer_path: Path = field(default_factory=paths.champion_pointer_path)
    #: Poll the registry alias instead of the pointer file: replicas on other machines than the pipeline, which
    #: see no pointer file (`PM_SERVE_FOLLOW=alias`; the default when the registry is a tracking server).
    follow_alias: bool = False
    #: The fleet scores the daily pipeline publishes, polled like the pointer.
    scores_path: Path = field(default_factory=paths.fleet_scores_snapshot_path)
    #: The maintenance plan the daily pipeline publishes, polled with the scores.
    plan_path: Path = field(default_factory=paths.maintenance_plan_snapshot_path)
    #: Each machine's recent trends (the planner's page), polled with the scores.
    trends_path: Path = field(default_factory=paths.machine_trends_snapshot_path)
    #: Read both snapshots from the shared store instead (`PM_SCORES_URL`, s3://bucket/prefix/), under the same names.
    scores_url: str | None = None
    poll_seconds: float = 5.0
    api_key: str | None = None  # when set, every route but /health needs header `X-API-Key`
    inference_log_dir: Path = field(default_factory=lambda: paths.inference_log_dir())
    #: Shared storage the log files are copied to (`PM_INFERENCE_LOG_URL`, s3://bucket/prefix/); None: local only.
    inference_log_url: str | None = None
    log_queue_size: int = 10_000  # requests' predictions waiting for the log writer; beyond it they are counted as dropped
    max_body_bytes: int = 64 * 1024 * 1024
    max_batch_machines: int = 5000
    max_readings: int = 2000  # per machine, in single and batch requests
    stale_after_seconds: float | None = None  # default: max(3 x poll_seconds, 10 s)

    @property
    def watcher_stale_seconds(self) -> float:
        """/ready turns 503 when the pointer has not been read for this long."""
        return self.stale_after_seconds or max(3 * self.poll_seconds, 10.0)

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            poll_seconds=float(os.environ.get("PM_SERVE_POLL_SECONDS", 5.0)),
            api_key=os.environ.get("PM_API_KEY") or None,
            follow_alias=_follow_alias(),
            inference_log_url=_s3_url(os.environ.get("PM_INFERENCE_LOG_URL"), "PM_INFERENCE_LOG_URL"),
            scores_url=_s3_url(shared_snapshots.scores_url(), "PM_SCORES_URL"),
        )


def _s3_url(url: str | None, setting: str) -> str | None:
    """`url` once it is an s3:// URL: a wrong one stops `pm serve` in one line, not each worker's start-up."""
    if url:
        lake.s3_location(url, setting)
    return url or None


def _follow_alias() -> bool:
    follow = os.environ.get("PM_SERVE_FOLLOW") or ("alias" if registry.on_tracking_server() else "pointer")
    if follow not in ("alias", "pointer"):
        raise ValueError(f"PM_SERVE_FOLLOW is {follow!r}: it must be 'alias' (poll the registry) or 'pointer' (poll the champion file)")
    return follow == "alias"
