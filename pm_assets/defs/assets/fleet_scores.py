"""Fleet scores: every machine's latest state scored by the champion, in DuckDB for SQL and dashboards, and as
a snapshot file the scoring service reads (it never opens the warehouse, which a writer locks)."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets.core.models import RISK_LEVELS
from pm_assets.core.scoring import score_rows
from pm_assets.defs.partitions import daily_partitions, partition_day
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, paths, registry, shared_snapshots
from pm_assets.storage.atomic import write_atomic
from pm_assets.storage.predictions import SCORES_TABLE
from pm_assets.storage.warehouse import transaction

#: A machine silent for longer than this is no longer in the fleet's scores.
ACTIVE_WITHIN = dt.timedelta(days=30)


@dg.asset(group_name="scoring", kinds={"duckdb"}, partitions_def=daily_partitions,
          deps=["champion_model", "machine_features", "challenger_gate"])  # after the day's promotion decision
def fleet_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """RUL, failure probability, risk level and (at medium and high risk) the sensors driving the risk of each
    machine's last reading up to the end of the day, by the current champion, in `scores.fleet_scores` and `scores/fleet_scores.parquet`."""
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion model in the registry: materialize champion_model first")
    bundle = registry.load_version(version).bundle
    with warehouse.connect() as con:
        latest = feature_store.latest_rows(con, partition_day(context.partition_key), ACTIVE_WITHIN)
        if latest.is_empty():
            raise dg.Failure(f"no stored features up to {context.partition_key}: materialize machine_features first")
        scored = score_rows(bundle, latest).with_columns(
            pl.lit(version).alias("model_version"),
            pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)).alias("scored_at"),
        )
        scores = scored.with_columns(pl.col("top_sensors").list.join(","))
        con.execute("create schema if not exists scores")
        with transaction(con, _scores=scores):
            con.execute(f"create or replace table {SCORES_TABLE} as select * from _scores")
    snapshot = write_atomic(paths.fleet_scores_snapshot_path(), scored.write_parquet)
    shared = shared_snapshots.publish(snapshot)  # replicas without the data directory poll it there
    risk = dict(scores.group_by("risk_level").len().iter_rows())
    return dg.MaterializeResult(metadata={
        "machines": scores.height,
        "model_version": version,
        "snapshot": dg.MetadataValue.path(str(snapshot)),
        **({"shared_snapshot": dg.MetadataValue.url(shared)} if shared else {}),
        **{f"machines_{level}_risk": int(risk.get(level, 0)) for level in RISK_LEVELS},
        "top_risk": dg.MetadataValue.md(scores.sort("failure_probability", descending=True).head(10)
                                        .select("machine_id", "rul_hours", "failure_probability", "risk_level", "top_sensors")
                                        .to_pandas().to_markdown(index=False)),
    })
