"""The fleet's latest scores and maintenance plan, from the snapshot files the daily pipeline publishes (never the
live warehouse, which its writer locks), hot-swapped like the model.

`fleet_scores` writes `$PM_DATA_DIR/scores/fleet_scores.parquet` and `maintenance_plan` writes
`scores/maintenance_plan.parquet`, `machine_trends` `scores/machine_trends.parquet`, and `drift_report` and
`model_performance` their latest figures (`scores/drift.json`, `scores/performance.json`), each whole (write and
rename). Any of them changing reloads all, so a machine's answer carries its planned day; each machine's answer is encoded once per snapshot, so
`GET /machines/{id}` costs a dictionary look-up. A replica without the data directory reads the same snapshots
from the shared store the pipeline copies them to (`PM_SCORES_URL`, `pm_assets.storage.shared_snapshots`).
"""

import dataclasses
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import polars as pl

from pm_assets.storage.shared_snapshots import SharedSnapshots
from pm_serving.schemas import MachineScore, MachineTrend, PlannedService
from pm_serving.settings import Settings
from pm_serving.watched import WatchedFile

#: The monitoring assets' figures published beside the scores (`shared_snapshots.publish_figures`).
MONITORING_FIGURES = ("drift", "performance")


@dataclass(frozen=True)
class Plan:
    services: list[PlannedService] = field(default_factory=list)  # by day, the largest saving first
    plan_date: dt.date | None = None
    first_day: dt.date | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class Trends:
    """Each machine's rows of the trends snapshot, found by offset: a look-up slices, nothing is copied."""

    frame: pl.DataFrame = field(default_factory=pl.DataFrame)  # sorted by machine, then time
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # machine id -> (first row, row count)

    @classmethod
    def read(cls, frame: pl.DataFrame | None) -> "Trends":
        if frame is None or frame.is_empty():
            return cls()
        frame = frame.sort("machine_id", "ts")
        counts = frame.group_by("machine_id", maintain_order=True).len()
        starts = counts["len"].cum_sum() - counts["len"]
        return cls(frame, dict(zip(counts["machine_id"].to_list(), zip(starts.to_list(), counts["len"].to_list()))))

    def of(self, machine_id: str) -> MachineTrend | None:
        if (at := self.rows.get(machine_id)) is None:
            return None
        rows = self.frame.slice(*at)
        sensors = [c for c in rows.columns if c not in ("machine_id", "ts", "rul_hours", "rul_lower", "rul_upper")]
        return MachineTrend(machine_id=machine_id, ts=[_utc(t) for t in rows["ts"].to_list()], rul_hours=rows["rul_hours"].to_list(),
                            rul_lower=rows["rul_lower"].to_list(), rul_upper=rows["rul_upper"].to_list(),
                            sensors_from_baseline={s: rows[s].to_list() for s in sensors})


@dataclass(frozen=True)
class Snapshot:
    encoded: dict[str, bytes] = field(default_factory=dict)  # machine id -> its MachineScore as JSON
    ranked: list[MachineScore] = field(default_factory=list)  # most urgent first
    scored_at: dt.datetime | None = None
    plan: Plan = field(default_factory=Plan)
    trends: Trends = field(default_factory=Trends)
    figures: dict[str, dict] = field(default_factory=dict)  # "drift", "performance" -> the latest day's figures


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


def read_snapshot(frame: pl.DataFrame, plan_frame: pl.DataFrame | None = None, trends_frame: pl.DataFrame | None = None) -> Snapshot:
    """Scores most urgent first: high, medium, low risk, then the highest failure probability and the shortest RUL."""
    rank = {"high": 0, "medium": 1, "low": 2}
    plan = read_plan(plan_frame)
    planned_day = {s.machine_id: s.planned_day for s in plan.services}
    # why the plan services a machine, or not: every machine's answer and the planner's page carry it
    reasons = {} if plan_frame is None or plan_frame.is_empty() else dict(zip(plan_frame["machine_id"], plan_frame["reason"]))
    has_range = "rul_lower" in frame.columns  # a snapshot from before RUL ranges has none
    scores = [MachineScore(machine_id=row["machine_id"], as_of=_utc(row["ts"]), rul_hours=row["rul_hours"],
                           failure_probability=row["failure_probability"], risk_level=row["risk_level"],
                           top_sensors=list(row["top_sensors"] or []), model_version=str(row["model_version"]),
                           scored_at=_utc(row["scored_at"]), rul_lower=row["rul_lower"] if has_range else None,
                           rul_upper=row["rul_upper"] if has_range else None, planned_day=planned_day.get(row["machine_id"]),
                           plan_reason=reasons.get(row["machine_id"]))
              for row in frame.iter_rows(named=True)]
    scores.sort(key=lambda s: (rank.get(s.risk_level, 3), -s.failure_probability, s.rul_hours))
    encoder = msgspec.json.Encoder()
    return Snapshot(encoded={s.machine_id: encoder.encode(s) for s in scores}, ranked=scores,
                    scored_at=max((s.scored_at for s in scores), default=None), plan=plan, trends=Trends.read(trends_frame))


class FleetScores(WatchedFile):
    """The snapshots from the data directory, or from the shared store (`PM_SCORES_URL`) on a replica without it."""

    def __init__(self, settings: Settings):
        super().__init__(settings.scores_path, settings.poll_seconds, settings.watcher_stale_seconds)
        # read with the scores: the plan, the trends, and the monitoring assets' latest figures (`/metrics`)
        self.figures = tuple(settings.scores_path.with_name(f"{name}.json") for name in MONITORING_FIGURES)
        self.companions = (settings.plan_path, settings.trends_path, *self.figures)
        self.shared = SharedSnapshots(settings.scores_url) if settings.scores_url else None
        if self.shared:
            self.source = f"s3://{self.shared.bucket}/{self.shared.prefix}{self.path.name}"
        self.snapshot: Snapshot | None = None  # None until a snapshot exists

    def current_state(self) -> object:
        if self.shared:
            return tuple(self.shared.version(path.name) for path in (self.path, *self.companions))
        return super().current_state(), *(_mtime(path) for path in self.companions)

    def loaded(self) -> bool:
        # from the store, a new ETag is all that tells a change: a load follows each one
        return self.snapshot is not None or self.shared is not None or not self.path.exists()

    def _bytes(self, path: Path) -> bytes | None:
        if self.shared:
            return self.shared.read(path.name)
        return path.read_bytes() if path.exists() else None

    def _read(self, path: Path) -> pl.DataFrame | None:
        data = self._bytes(path)
        return None if data is None else pl.read_parquet(io.BytesIO(data))

    def load(self) -> None:
        scores = self._read(self.path)
        if scores is None:
            self.snapshot = None
            return
        figures = {name: msgspec.json.decode(data) for name, path in zip(MONITORING_FIGURES, self.figures) if (data := self._bytes(path))}
        snapshot = read_snapshot(scores, self._read(self.companions[0]), self._read(self.companions[1]))
        self.snapshot = dataclasses.replace(snapshot, figures=figures)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
