"""The fleet's latest scores, from the snapshot file the daily pipeline publishes (never the live warehouse,
which its writer locks), hot-swapped like the model.

`fleet_scores` writes `$PM_DATA_DIR/scores/fleet_scores.parquet` whole (write and rename) each time it
scores the fleet. Each machine's answer is encoded once per snapshot, so `GET /machines/{id}` costs
a dictionary look-up.
"""

import datetime as dt
from dataclasses import dataclass, field

import msgspec
import polars as pl

from pm_serving.schemas import MachineScore
from pm_serving.settings import Settings
from pm_serving.watched import WatchedFile


@dataclass(frozen=True)
class Snapshot:
    encoded: dict[str, bytes] = field(default_factory=dict)  # machine id -> its MachineScore as JSON
    ranked: list[MachineScore] = field(default_factory=list)  # most urgent first
    scored_at: dt.datetime | None = None


def _utc(ts: dt.datetime | None) -> dt.datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def read_snapshot(frame: pl.DataFrame) -> Snapshot:
    """Scores most urgent first: high, medium, low risk, then the highest failure probability and the shortest RUL."""
    rank = {"high": 0, "medium": 1, "low": 2}
    scores = [MachineScore(machine_id=row["machine_id"], as_of=_utc(row["ts"]), rul_hours=row["rul_hours"],
                           failure_probability=row["failure_probability"], risk_level=row["risk_level"],
                           top_sensors=list(row["top_sensors"] or []), model_version=str(row["model_version"]),
                           scored_at=_utc(row["scored_at"]))
              for row in frame.iter_rows(named=True)]
    scores.sort(key=lambda s: (rank.get(s.risk_level, 3), -s.failure_probability, s.rul_hours))
    encoder = msgspec.json.Encoder()
    return Snapshot(encoded={s.machine_id: encoder.encode(s) for s in scores}, ranked=scores,
                    scored_at=max((s.scored_at for s in scores), default=None))


class FleetScores(WatchedFile):
    def __init__(self, settings: Settings):
        super().__init__(settings.scores_path, settings.poll_seconds, settings.watcher_stale_seconds)
        self.snapshot: Snapshot | None = None  # None until a snapshot file exists

    def loaded(self) -> bool:
        return self.snapshot is not None or not self.path.exists()

    def load(self) -> None:
        self.snapshot = read_snapshot(pl.read_parquet(self.path)) if self.path.exists() else None
