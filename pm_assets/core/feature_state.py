"""The small per-machine state that lets features continue from one day to the next.

After a day, each machine's state says which life it is in (`life_start`, the repair that began it),
when it was first seen, its last reading and where the stored rows it carries begin: the last
`max(windows) - 1` feature rows of its current life, which hold what the next day's rolling windows,
baseline, moving averages and whole-life aggregates need (the last row's features give back the life's
running sums). `features.extend_features` prepends those rows to the new readings and drops them
from its output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl



#: What a life's aggregates continue from: the sums of values, squares and age-weighted values, the extremes.
LIFE_SEEDS = ("life_sum", "life_sq", "life_iz", "life_min", "life_max")


def life_moments(age: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Readings of the life so far and the sums of their ages and squared ages (ages 0 to `age`)."""
    n = age + 1
    return n, age * n / 2, age * n * (2 * age + 1) / 6


def empty_state() -> pl.DataFrame:
    """The feature state of a fleet nothing has been seen of: per machine, its current life, when it was
    first seen, its last reading and where the rows to carry into the next day begin (see `extend_features`)."""
    return pl.DataFrame(schema={"machine_id": pl.String, "life_start": pl.Datetime("us"), "first_seen": pl.Datetime("us"),
                                "last_ts": pl.Datetime("us"), "carry_from": pl.Datetime("us")})


def prepend_carry(new: pl.DataFrame, state: pl.DataFrame, carry: pl.DataFrame | None, sensors: Sequence[str],
                  ewm_spans: Sequence[int], with_life: bool, baseline_readings: int) -> pl.DataFrame:
    """The new rows after their machines' carried rows (current life only), which hold what the windows,
    the baseline, the moving averages and the life aggregates need (of `sensors`, the feature spec's, with its
    moving-average spans and life features); `_age0` is the age of each life's first row in the frame."""
    life = LIFE_SEEDS if with_life else ()
    seeds = [f"{s}__base_sum" for s in sensors] + [f"{s}__ewm_{span}_seed" for s in sensors for span in ewm_spans]
    seeds += [f"{s}__{seed}" for s in sensors for seed in life]
    new = new.with_columns(pl.lit(None, pl.Float64).alias(c) for c in ["_age0", *seeds])
    if carry is None or carry.is_empty():
        return new
    carry = carry.join(state.select("machine_id", "life_start"), on="machine_id").sort("machine_id", "ts")
    last = pl.col("ts") == pl.col("ts").max().over("machine_id")
    base_count = pl.min_horizontal(pl.col("age_readings") + 1, baseline_readings)
    rows = carry.select(
        "machine_id", "ts", "life_start", pl.lit(None, pl.Datetime("us")).alias("_service_ref"),
        pl.col("regime").cast(pl.Int32),
        *(pl.col(f"{s}__now").alias(s) for s in sensors),
        pl.lit(True).alias("_carried"),
        pl.col("age_readings").min().over("machine_id").alias("_age0"),
        *(pl.when(last).then((pl.col(f"{s}__now") - pl.col(f"{s}__from_baseline")) * base_count).alias(f"{s}__base_sum")
          for s in sensors),
        *(pl.when(last).then(pl.col(f"{s}__ewm_{span}")).alias(f"{s}__ewm_{span}_seed") for s in sensors for span in ewm_spans),
        *(pl.when(last).then(_life_seeds(s)[seed]).alias(f"{s}__{seed}") for s in sensors for seed in life),
    )
    return pl.concat([rows, new], how="diagonal_relaxed")


def _life_seeds(s: str) -> dict[str, pl.Expr]:
    """The running sums behind sensor `s`'s life aggregates (`LIFE_SEEDS`), recovered from a stored row's features."""
    n, sum_i, sum_ii = life_moments(pl.col("age_readings"))
    mean, std, slope = (pl.col(f"{s}__{kind}_life") for kind in ("mean", "std", "slope"))
    sum_z = mean * n
    return {
        "life_sum": sum_z,
        "life_sq": std * std * (n - 1) + mean * sum_z,
        "life_iz": (slope * (n * sum_ii - sum_i * sum_i) + sum_i * sum_z) / n,
        "life_min": pl.col(f"{s}__min_life"),
        "life_max": pl.col(f"{s}__max_life"),
    }


def states_after(frame: pl.DataFrame, state: pl.DataFrame, keep: int, days: Sequence[dt.date]) -> pl.DataFrame:
    """The state after each of `days` (column `as_of`), from `frame` (carried and new rows, sorted by machine and time)
    and the state before it: a machine seen by a day takes its current life, first sighting, last reading and the
    start of its last `keep` rows of that life; one not seen yet keeps its earlier state."""
    frame = frame.select("machine_id", "ts", "life_start", "_carried",  # the rest of a wide frame would be copied for nothing
                         pl.int_range(pl.len()).over("machine_id", "life_start").alias("_pos"))
    new = frame.filter(~pl.col("_carried"))
    ends = new.group_by("machine_id", pl.col("ts").dt.date().alias("as_of")).agg(
        pl.col("life_start").last(), pl.col("ts").last().alias("last_ts"), (pl.col("_pos").last() - keep + 1).clip(0).alias("_pos"))
    ends = ends.join(frame.select("machine_id", "life_start", "_pos", pl.col("ts").alias("carry_from")),
                     on=["machine_id", "life_start", "_pos"]).drop("_pos").sort("as_of")
    first = new.group_by("machine_id").agg(pl.col("ts").min().alias("_first"))
    machines = pl.concat([state.select("machine_id"), ends.select("machine_id")]).unique()
    grid = pl.DataFrame({"as_of": sorted(days)}, schema={"as_of": pl.Date}).join(machines, how="cross")
    out = grid.join_asof(ends, on="as_of", by="machine_id", strategy="backward", check_sortedness=False)
    out = out.join(state, on="machine_id", how="left", suffix="_before").join(first, on="machine_id", how="left")
    columns = [pl.coalesce(c, f"{c}_before").alias(c) for c in ("life_start", "last_ts", "carry_from")]
    out = out.select("machine_id", pl.coalesce("first_seen", "_first").alias("first_seen"), *columns, "as_of")
    return out.filter(pl.col("last_ts").is_not_null()).select(*empty_state().columns, "as_of").sort("as_of", "machine_id")
