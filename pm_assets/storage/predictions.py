"""The logged predictions and the fleet's scores in DuckDB, and the labels of logged rows as known on a given day.

A prediction made at time t is judged only when its label is known as of the day being checked: its RUL
once the machine failed, or ran `rul_cap_hours` more without failing or being serviced; its
failure-within-horizon label once the machine failed within the horizon or ran the whole horizon.
Immature rows (null labels, `pm_assets.core.labels`) are kept with null labels rather than counted as healthy.
"""

import datetime as dt

import duckdb
import polars as pl

from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.storage import feature_store

PREDICTIONS_TABLE = "monitoring.predictions"
SCORES_TABLE = "scores.fleet_scores"


def read_matured(con: duckdb.DuckDBPyConnection, versions: list[str], since: dt.datetime, end: dt.datetime,
                 label_config: LabelConfig) -> pl.DataFrame:
    """The logged predictions of `versions` in [since, end) with their labels as known at `end` (nulls: immature).

    Reads only that window: the predictions, the events after `since`, and how long each machine had
    been watched by `end` (the stored feature state). LookupError when nothing was ever logged."""
    try:
        predictions = con.execute(f"select * from {PREDICTIONS_TABLE} where ts >= $since and ts < $end "
                              "and list_contains($versions, model_version)",
                              {"since": since, "end": end, "versions": versions}).pl()
    except duckdb.CatalogException:
        raise LookupError(f"no {PREDICTIONS_TABLE} table: materialize champion_predictions first") from None
    return with_labels(con, predictions, since, end, label_config)


def with_labels(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, since: dt.datetime, end: dt.datetime,
                label_config: LabelConfig) -> pl.DataFrame:
    """`rows` (machine_id, ts in [since, end)) with their labels as known at `end` (nulls: immature)."""
    events = con.execute("select machine_id, ts, event_type from machine_events where ts >= $since and ts < $end",
                     {"since": since, "end": end}).pl()
    state, _, _ = feature_store.read_state(con, end.date())
    observed_until = state.select("machine_id", pl.col("last_ts").alias("observed_until"))
    labels = build_labels(rows.select("machine_id", "ts").unique(), events, label_config, observed_until)
    return rows.join(labels, on=["machine_id", "ts"], how="inner")
