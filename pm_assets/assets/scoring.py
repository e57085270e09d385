"""Fleet scores: every machine's latest state scored by the champion, in DuckDB for SQL and dashboards."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets import registry
from pm_assets.assets.training import read_history
from pm_assets.resources import WarehouseResource
from pm_assets.scoring import score_latest

SCORES_TABLE = "scores.fleet_scores"


@dg.asset(group_name="scoring", kinds={"duckdb"}, deps=["champion_model", "machine_timeseries"])
def fleet_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """RUL, failure probability, risk level and the sensors driving the risk, per machine, in `scores.fleet_scores`."""
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion model in the registry: materialize champion_model first")
    bundle = registry.load_version(version).bundle
    readings, events = read_history(warehouse)
    scores = score_latest(bundle, readings, events).with_columns(
        pl.col("top_sensors").list.join(",").alias("top_sensors"),
        pl.lit(version).alias("model_version"),
        pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)).alias("scored_at"),
    )
    with warehouse.connect() as con:
        con.execute("create schema if not exists scores")
        con.register("_scores", scores.to_arrow())
        con.execute("begin transaction")
        con.execute(f"create or replace table {SCORES_TABLE} as select * from _scores")
        con.execute("commit")
    risk = dict(scores.group_by("risk_level").len().iter_rows())
    return dg.MaterializeResult(metadata={
        "machines": scores.height,
        "model_version": version,
        **{f"machines_{level}_risk": int(risk.get(level, 0)) for level in ("low", "medium", "high")},
        "top_risk": dg.MetadataValue.md(scores.sort("failure_probability", descending=True).head(10)
                                        .select("machine_id", "rul_hours", "failure_probability", "risk_level", "top_sensors")
                                        .to_pandas().to_markdown(index=False)),
    })
