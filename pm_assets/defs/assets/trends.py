"""Each machine's last two weeks for the planner's page: its predicted RUL and range over time, and how far each
sensor has moved from its own life baseline, in six-hour steps, as a snapshot the service reads.

A day's run reads only the last `TREND_DAYS` of `monitoring.predictions` and the feature store, whatever the
fleet's age. Where a challenger was scored in shadow beside the champion, the older version (the champion: a
challenger is always registered after it) gives the RUL, so the line is what was served.
"""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from pm_assets.defs.partitions import daily_partitions, day_window
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, paths, shared_snapshots
from pm_assets.storage.atomic import write_atomic
from pm_assets.storage.predictions import PREDICTIONS_TABLE, SCORES_TABLE
from pm_assets.storage.warehouse import table_columns

TREND_DAYS = 14
STEP = "6 hours"
FROM_BASELINE = "__from_baseline"
RUL_COLUMNS = ("rul_hours", "rul_lower", "rul_upper")


def read_trends(con: duckdb.DuckDBPyConnection, since: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Per scored machine and six-hour step in [since, end): the served RUL and its range at the step's last
    reading, and the mean of each sensor's distance from its life baseline (in its regime's standard deviations)."""
    params = {"since": since, "end": end}
    if table_columns(con, feature_store.FEATURES_TABLE) is None or table_columns(con, SCORES_TABLE) is None:
        raise LookupError("no stored features or fleet scores: materialize machine_features and fleet_scores first")
    sensors = con.execute(f"""
        select machine_id, time_bucket(interval '{STEP}', ts) as ts, avg(columns('.*{FROM_BASELINE}$'))
        from {feature_store.FEATURES_TABLE}
        where ts >= $since and ts < $end and machine_id in (select machine_id from {SCORES_TABLE})
        group by all""", params).pl()
    sensors = sensors.rename({c: c.removesuffix(FROM_BASELINE) for c in sensors.columns})
    if table_columns(con, PREDICTIONS_TABLE) is None:  # right after the first training: nothing served yet
        return sensors.select("machine_id", "ts", *[pl.lit(None, pl.Float64).alias(c) for c in RUL_COLUMNS],
                              pl.exclude("machine_id", "ts")).sort("machine_id", "ts")
    rul = con.execute(f"""
        with served as (
            select * from {PREDICTIONS_TABLE}
            where ts >= $since and ts < $end and machine_id in (select machine_id from {SCORES_TABLE})
            qualify rank() over (partition by machine_id, ts order by try_cast(model_version as bigint), model_version) = 1)
        select machine_id, time_bucket(interval '{STEP}', ts) as ts, arg_max(predicted_rul, ts) as rul_hours,
               arg_max(rul_lower, ts) as rul_lower, arg_max(rul_upper, ts) as rul_upper
        from served group by all""", params).pl()
    return rul.join(sensors, on=["machine_id", "ts"], how="full", coalesce=True).sort("machine_id", "ts")


@dg.asset(group_name="scoring", kinds={"duckdb"}, partitions_def=daily_partitions, deps=["fleet_scores", "champion_predictions"])
def machine_trends(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The last two weeks of each scored machine, for the planner's page: `scores/machine_trends.parquet`."""
    _, end = day_window(context.partition_key)
    with warehouse.connect(read_only=True) as con:
        try:
            trends = read_trends(con, end - dt.timedelta(days=TREND_DAYS), end)
        except LookupError as error:
            raise dg.Failure(str(error)) from None
    snapshot = write_atomic(paths.machine_trends_snapshot_path(), trends.write_parquet)
    shared = shared_snapshots.publish(snapshot)
    return dg.MaterializeResult(metadata={
        "machines": trends["machine_id"].n_unique(),
        "points": trends.height,
        "sensors": trends.width - 2 - len(RUL_COLUMNS),
        "snapshot": dg.MetadataValue.path(str(snapshot)),
        **({"shared_snapshot": dg.MetadataValue.url(shared)} if shared else {}),
    })
