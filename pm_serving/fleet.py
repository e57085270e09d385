"""The fleet's latest scores and maintenance plan, from the snapshot files the daily pipeline publishes (never the
live warehouse, which its writer locks), hot-swapped like the model.

`fleet_scores` writes `$PM_DATA_DIR/scores/fleet_scores.parquet` and `maintenance_plan` writes
`scores/maintenance_plan.parquet`, each whole (write and rename). Either changing reloads both, so a
machine's answer carries its planned day; each machine's answer is encoded once per snapshot, so
`GET /machines/{id}` costs a dictionary look-up. A replica without the data directory reads the same snapshots
from the shared store the pipeline copies them to (`PM_SCORES_URL`, `pm_assets.storage.shared_snapshots`).
"""

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import polars as pl

from pm_assets.storage.shared_snapshots import SharedSnapshots
from pm_serving.schemas import MachineScore, PlannedService
from pm_serving.settings import Settings
from pm_serving.watched import WatchedFile


@dataclass(frozen=True)
class Plan:
    services: list[PlannedService] = field(default_factory=list)  # by day, the largest saving first
    plan_date: dt.date | None = None
    first_day: dt.date | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class Snapshot:
    encoded: dict[str, bytes] = field(default_factory=dict)  # machine id -> its MachineScore as JSON
    ranked: list[MachineScore] = field(default_factory=list)  # most urgent first
    scored_at: dt.datetime | None = None
    plan: Plan = field(default_factory=Plan)


def _utc(ts: dt.datetime | None) -> dt.datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def read_plan(frame: pl.DataFrame | None) -> Plan:
    if frame is None or frame.is_empty():
        return Plan()
    planned = frame.filter(pl.col("service")).sort("planned_day", pl.col("expected_cost_saved").neg(), "machine_id")
    services = [PlannedService(machine_id=r["machine_id"], planned_day=r["planned_day"], expected_cost_saved=r["expected_cost_saved"],
                               failure_risk=r["failure_risk"], rul_hours=r["rul_hours"], rul_lower=r["rul_lower"], rul_upper=r["rul_upper"],
                               reason=r["reason"]) for r in planned.iter_rows(named=True)]
    first = frame["plan_date"][0] + dt.timedelta(days=1)
    return Plan(services=services, plan_date=frame["plan_date"][0], first_day=first, model_version=str(frame["model_version"][0]))


def read_snapshot(frame: pl.DataFrame, plan_frame: pl.DataFrame | None = None) -> Snapshot:
    """Scores most urgent first: high, medium, low risk, then the highest failure probability and the shortest RUL."""
    rank = {"high": 0, "medium": 1, "low": 2}
    plan = read_plan(plan_frame)
    planned_day = {s.machine_id: s.planned_day for s in plan.services}
    has_range = "rul_lower" in frame.columns  # a snapshot from before RUL ranges has none
    scores = [MachineScore(machine_id=row["machine_id"], as_of=_utc(row["ts"]), rul_hours=row["rul_hours"],
                           failure_probability=row["failure_probability"], risk_level=row["risk_level"],
                           top_sensors=list(row["top_sensors"] or []), model_version=str(row["model_version"]),
                           scored_at=_utc(row["scored_at"]), rul_lower=row["rul_lower"] if has_range else None,
                           rul_upper=row["rul_upper"] if has_range else None, planned_day=planned_day.get(row["machine_id"]))
              for row in frame.iter_rows(named=True)]
    scores.sort(key=lambda s: (rank.get(s.risk_level, 3), -s.failure_probability, s.rul_hours))
    encoder = msgspec.json.Encoder()
    return Snapshot(encoded={s.machine_id: encoder.encode(s) for s in scores}, ranked=scores,
                    scored_at=max((s.scored_at for s in scores), default=None), plan=plan)


class FleetScores(WatchedFile):
    """The snapshots from the data directory, or from the shared store (`PM_SCORES_URL`) on a replica without it."""

    def __init__(self, settings: Settings):
        super().__init__(settings.scores_path, settings.poll_seconds, settings.watcher_stale_seconds)
        self.plan_path = settings.plan_path
        self.shared = SharedSnapshots(settings.scores_url) if settings.scores_url else None
        if self.shared:
            self.source = f"s3://{self.shared.bucket}/{self.shared.prefix}{self.path.name}"
        self.snapshot: Snapshot | None = None  # None until a snapshot exists

    def current_state(self) -> object:
        if self.shared:
            return self.shared.version(self.path.name), self.shared.version(self.plan_path.name)
        state = super().current_state()
        try:
            return state, self.plan_path.stat().st_mtime_ns
        except FileNotFoundError:
            return state, None

    def loaded(self) -> bool:
        # from the store, a new ETag is all that tells a change: a load follows each one
        return self.snapshot is not None or self.shared is not None or not self.path.exists()

    def _read(self, path: Path) -> pl.DataFrame | None:
        if self.shared:
            data = self.shared.read(path.name)
            return None if data is None else pl.read_parquet(io.BytesIO(data))
        return pl.read_parquet(path) if path.exists() else None

    def load(self) -> None:
        scores = self._read(self.path)
        self.snapshot = None if scores is None else read_snapshot(scores, self._read(self.plan_path))
