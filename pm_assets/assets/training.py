"""The training set: point-in-time features of every clean reading joined to its labels."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets import store
from pm_assets.features import FeatureConfig, fit_feature_spec
from pm_assets.labels import LabelConfig
from pm_assets.models import build_training_set
from pm_assets.resources import WarehouseResource

READINGS_SQL = ("select * exclude (reading_date, cycle, n_faulty_sensors, had_duplicate) from machine_timeseries "
                "where ts < $until order by machine_id, ts")
EVENTS_SQL = "select machine_id, ts, event_type from machine_events where ts < $until order by ts"


def read_history(warehouse: WarehouseResource, until: dt.datetime = dt.datetime.max) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clean readings and events from the dbt marts, all of them or those before `until`."""
    with warehouse.connect(read_only=True) as con:
        params = {"until": until}
        return con.sql(READINGS_SQL, params=params).pl(), con.sql(EVENTS_SQL, params=params).pl()


class TrainingSetConfig(dg.Config):
    rul_cap_hours: float = 125.0
    horizon_hours: float = 48.0
    windows: list[int] = [10, 30]


@dg.asset(group_name="models", kinds={"polars"}, deps=["machine_timeseries", "machine_events"])
def training_set(context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Features and labels (RUL capped at `rul_cap_hours`, failure within `horizon_hours`), censoring respected."""
    readings, events = read_history(warehouse)
    if readings.is_empty():
        raise dg.Failure("machine_timeseries is empty: materialize the ingestion and dbt assets first")
    label_config = LabelConfig(rul_cap_hours=config.rul_cap_hours, horizon_hours=config.horizon_hours)
    spec = fit_feature_spec(readings, FeatureConfig(windows=tuple(config.windows)))
    frame = build_training_set(readings, events, spec, label_config)
    path = store.save_training_set(frame, spec, label_config)
    return dg.MaterializeResult(metadata={
        "rows": frame.height,
        "machines": frame["machine_id"].n_unique(),
        "features": len(spec.feature_names),
        "sensors_kept": ", ".join(spec.sensors),
        "operating_regimes": len(spec.regime_centers),
        "failures": int((events["event_type"] == "failure").sum()),
        "rows_with_rul": int(frame["rul"].is_not_null().sum()),
        "positive_share": float(frame["fails_within_horizon"].mean() or 0.0),
        "data_from": str(readings["ts"].min()),
        "data_to": str(readings["ts"].max()),
        "path": dg.MetadataValue.path(str(path)),
    })
