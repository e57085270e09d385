"""Features as data: the feature spec (kept sensors, operating regimes, per-regime normaliser), fitted
once (and again when the fleet's operating regimes change), and `machine_features`, a day of point-in-time features at a time in `features.machine_features`.

Each day continues from the state the previous day stored (`pm_assets.storage.feature_store`), so a day
costs a day of readings whatever the history behind it.
"""

import datetime as dt

import dagster as dg

from pm_assets.core.features import FeatureConfig, fit_feature_spec, refit_reason
from pm_assets.defs.partitions import daily_partitions, single_run_backfill
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, model_files


class FeatureSpecConfig(dg.Config):
    windows: list[int] = list(FeatureConfig().windows)  # rolling windows, in readings
    life: bool = FeatureConfig().life  # aggregates of each sensor since the machine's last repair
    sample_rows: int = 300_000  # readings the regimes and normaliser are fitted on (a repeatable sample)
    force_refit: bool = False  # refit even when the stored spec still fits the readings


@dg.asset(group_name="features", kinds={"polars"}, deps=["machine_timeseries"])
def feature_spec(context: dg.AssetExecutionContext, config: FeatureSpecConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Which sensors carry information, the operating regimes and each sensor's per-regime normaliser.

    Fitted once, and again only when asked, when the fleet moved into operating regimes the spec does not
    know, or when a regime it learned from few readings now has many (the retraining job runs this first). A refit recomputes every stored feature day with the new spec,
    since a model and its features must agree; kept, it changes nothing."""
    feature_config = FeatureConfig(windows=tuple(config.windows), life=config.life)
    current = model_files.load_feature_spec() if model_files.has_feature_spec() else None
    with warehouse.connect() as con:
        readings = con.sql(f"select {feature_store.READING_COLUMNS} from machine_timeseries "
                           f"using sample reservoir({config.sample_rows} rows) repeatable (0)").pl()
        if readings.is_empty():
            raise dg.Failure("machine_timeseries is empty: materialize the ingestion and dbt assets first (`pm ingest`)")
        reason = "refit asked for (force_refit)" if config.force_refit and current else refit_reason(current, feature_config, readings)
        if reason is None:
            context.log.info(f"feature spec {feature_store.spec_id(current)} kept: the readings run in its {len(current.regime_centers)} regime(s)")
            return dg.MaterializeResult(metadata={"refitted": False, "spec_id": feature_store.spec_id(current),
                                                  "operating_regimes": len(current.regime_centers),
                                                  "regimes_carried_over": len(current.carried_over)})
        spec = fit_feature_spec(readings, feature_config, previous=current)
        context.log.info(f"feature spec refitted: {reason}; {len(spec.regime_centers)} regime(s)")
        days = feature_store.recompute(con, spec, lambda i, n: context.log.info(f"recomputed the features of {i}/{n} stored days"))
    path = model_files.save_feature_spec(spec)  # last: a run killed before this refits again when re-run
    return dg.MaterializeResult(metadata={
        "refitted": True, "reason": reason, "recomputed_days": days,
        "spec_id": feature_store.spec_id(spec), "sensors_kept": ", ".join(spec.sensors), "operating_regimes": len(spec.regime_centers),
        "regimes_carried_over": len(spec.carried_over), "features": len(spec.feature_names), "fitted_on_rows": readings.height, "path": dg.MetadataValue.path(str(path)),
    })


@dg.asset(group_name="features", kinds={"duckdb", "polars"}, partitions_def=daily_partitions, backfill_policy=single_run_backfill,
          deps=["feature_spec", "machine_timeseries", "machine_events"])
def machine_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Point-in-time features of each clean reading of the day(s), continuing each machine's life from the day before.

    A re-run of day D recomputes D from the stored days before it; later days keep their rows until
    they are re-run too (the metadata says how many there are)."""
    spec = model_files.load_feature_spec()
    sid = feature_store.spec_id(spec)
    days = [dt.date.fromisoformat(key) for key in context.partition_keys]
    with warehouse.connect() as con:
        # a range of days (a backfill, a new fleet's history) is featurised a vectorised chunk of days at a time
        def progress(done: int, rows: int) -> None:
            if len(days) > 1:
                context.log.info(f"features of {done}/{len(days)} days ({rows:,} rows)")

        try:
            totals, later = feature_store.featurise(con, days, spec, progress)
        except ValueError as error:
            raise dg.Failure(str(error)) from None
    if later:
        context.log.warning(f"{later} day(s) after {days[-1]} were computed before this run: re-run machine_features for them "
                            "(a backfill to the last day) for their rows to follow these")
    return dg.MaterializeResult(metadata={**totals, "days": len(days), "spec_id": sid, "later_days_not_recomputed": later})
