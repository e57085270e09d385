"""The training set: a bounded sample of each machine life's stored features, joined to its labels."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets.core.constants import FAILURE
from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, model_files


class TrainingSetConfig(dg.Config):
    rul_cap_hours: float = LabelConfig().rul_cap_hours
    horizon_hours: float = LabelConfig().horizon_hours
    rows_per_life: int = 400  # feature rows drawn from each machine life (readings of one life are strongly autocorrelated)
    max_rows: int = 200_000  # fewer per life when the fleet has more lives than this allows: memory depends on this, not on history
    seed: int = 7


@dg.asset(group_name="models", kinds={"polars"}, deps=["machine_features", "machine_events"])
def training_set(context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Sampled feature rows of every machine life with their labels (RUL capped at `rul_cap_hours`, failure within
    `horizon_hours`), censoring respected: labels are what was known at the last stored feature day."""
    spec = model_files.load_feature_spec()
    label_config = LabelConfig(rul_cap_hours=config.rul_cap_hours, horizon_hours=config.horizon_hours)
    with warehouse.connect(read_only=True) as con:
        state, as_of, _ = feature_store.read_state(con, dt.date.max)
        if as_of is None:
            raise dg.Failure("no stored features: materialize feature_spec and machine_features first (`pm train`)")
        until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
        sampled, sampling = feature_store.sample_lives(con, until, config.rows_per_life, config.max_rows, config.seed)
        events = con.execute("select machine_id, ts, event_type from machine_events where ts < $until", {"until": until}).pl()
    if sampled.is_empty():
        raise dg.Failure(f"the feature table has no rows before {until}: backfill machine_features")
    observed_until = state.select("machine_id", pl.col("last_ts").alias("observed_until"))
    labels = build_labels(sampled.select("machine_id", "ts"), events, label_config, observed_until)
    frame = sampled.drop("life_start").join(labels, on=["machine_id", "ts"], how="inner").filter(
        pl.col("rul").is_not_null() | pl.col("fails_within_horizon").is_not_null())
    failures = int((events["event_type"] == FAILURE).sum())
    # what the models trained on it knew: the gate judges them on rows whose truth came later, the retraining
    # sensor counts the failures seen since
    sampling |= {"labelled_rows": frame.height, "seed": config.seed, "max_rows": config.max_rows,
                 "labels_as_of": str(until), "failures": failures}
    path = model_files.save_training_set(frame, spec, label_config, sampling)
    context.log.info(f"training set: {frame.height:,} labelled rows sampled from {sampling['rows_in_window']:,} feature rows "
                     f"({sampling['rows_per_life']} per life, {sampling['lives']} lives)")
    return dg.MaterializeResult(metadata={
        "rows": frame.height,
        "machines": frame["machine_id"].n_unique(),
        "features": len(spec.feature_names),
        **{f"sampling_{k}": v for k, v in sampling.items() if k != "failures"},
        "failures": failures,
        "rows_with_rul": int(frame["rul"].is_not_null().sum()),
        "positive_share": float(frame["fails_within_horizon"].mean() or 0.0),
        "data_from": str(sampled["ts"].min()),
        "data_to": str(sampled["ts"].max()),
        "path": dg.MetadataValue.path(str(path)),
    })
