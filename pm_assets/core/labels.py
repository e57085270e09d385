"""Labels: remaining useful life (capped) and failure within a horizon, with censoring.

A reading's trajectory is observed until the next failure, the next maintenance or repair (which
changes the machine's health, so what follows is another story), or the end of the data, whichever
comes first. Only a failure ends it with a known outcome; otherwise the reading is censored:

* RUL: known exactly if a failure ends the trajectory; known to be the cap if the trajectory was
  observed for at least the cap without failing; otherwise unknown (null).
* Failure within horizon: 1 if a failure comes within the horizon; 0 only if the machine was
  observed for the whole horizon without failure or service; otherwise unknown (null).
"""

from dataclasses import dataclass

import polars as pl

from pm_assets.core.constants import FAILURE, SERVICE_EVENTS


@dataclass(frozen=True)
class LabelConfig:
    rul_cap_hours: float = 125.0  # piecewise-linear cap; 125 cycles of C-MAPSS at one cycle per hour
    horizon_hours: float = 48.0

    def __post_init__(self) -> None:
        if self.rul_cap_hours <= 0 or self.horizon_hours <= 0:
            raise ValueError(f"rul_cap_hours and horizon_hours must be > 0, got {self.rul_cap_hours}, {self.horizon_hours}")


def _next_event(readings: pl.DataFrame, events: pl.DataFrame, types: list[str], name: str, same_time: bool) -> pl.DataFrame:
    """The first event of `types` after each reading (or at its time, if `same_time`)."""
    chosen = events.filter(pl.col("event_type").is_in(types)).select("machine_id", pl.col("ts").cast(pl.Datetime("us")).alias(name)).sort(name)
    return readings.sort("ts").join_asof(chosen, left_on="ts", right_on=name, by="machine_id", strategy="forward",
                                         allow_exact_matches=same_time, check_sortedness=False)


def build_labels(readings: pl.DataFrame, events: pl.DataFrame, config: LabelConfig = LabelConfig(),
                 observed_until: pl.DataFrame | None = None) -> pl.DataFrame:
    """`machine_id, ts, rul, fails_within_horizon` for each reading (nulls where censored).

    Also `hours_to_failure` (uncapped, null unless a failure ends the trajectory) and `failure_id`
    (which failure, -1 for none), for lead-time metrics.

    `observed_until` (machine_id, observed_until) says until when each machine was watched; by
    default, its last reading.
    """
    frame = readings.select("machine_id", pl.col("ts").cast(pl.Datetime("us")))
    if observed_until is None:
        observed_until = frame.group_by("machine_id").agg(pl.col("ts").max().alias("observed_until"))
    # a reading taken as the machine fails has RUL 0 (C-MAPSS's last cycle); one taken at a service predates it
    frame = _next_event(frame, events, [FAILURE], "_failure", same_time=True)
    frame = _next_event(frame, events, list(SERVICE_EVENTS), "_service", same_time=False)
    frame = frame.join(observed_until, on="machine_id", how="left")
    hours = lambda end: (pl.col(end) - pl.col("ts")).dt.total_seconds() / 3600  # noqa: E731
    failed = pl.col("_failure").is_not_null() & (pl.col("_service").is_null() | (pl.col("_failure") <= pl.col("_service")))
    end = pl.min_horizontal(pl.col("_service"), pl.col("observed_until"))
    watched = (end - pl.col("ts")).dt.total_seconds() / 3600
    cap, horizon = config.rul_cap_hours, config.horizon_hours
    return frame.select(
        "machine_id",
        "ts",
        pl.when(failed).then(pl.min_horizontal(hours("_failure"), cap)).when(watched >= cap).then(pl.lit(cap)).otherwise(None).alias("rul"),
        pl.when(failed & (hours("_failure") <= horizon)).then(1).when(failed | (watched >= horizon)).then(0).otherwise(None).cast(pl.Int8).alias("fails_within_horizon"),
        pl.when(failed).then(hours("_failure")).alias("hours_to_failure"),
        pl.when(failed).then(pl.struct("machine_id", "_failure").rank("dense")).otherwise(0).cast(pl.Int64).sub(1).alias("failure_id"),
    ).sort("machine_id", "ts")
