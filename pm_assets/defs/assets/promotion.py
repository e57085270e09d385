"""The promotion gate: a challenger runs in shadow beside the champion, and replaces it only if its
predictions, judged on the same matured rows as the champion's, are better.

The rows are those whose truth neither model knew: the ones both predicted during the trial, and the champion's
rows from before it whose truth was still unknown when the challenger's training set was drawn (the challenger
predicts them from the same stored features). A like-for-like comparison, which cross-validation estimates (other
rows, other training sets) are not; and with the earlier rows a trial of two days judges each machine that failed
in it on its whole last `rul_cap_hours`, not only on its last cycles.
"""

import datetime as dt

import dagster as dg
import mlflow
import polars as pl

from pm_assets.core.gate import compare, verdict
from pm_assets.core.labels import LabelConfig
from pm_assets.core.metrics import live_metrics
from pm_assets.core.models import ModelBundle
from pm_assets.core.scoring import with_predictions
from pm_assets.defs.partitions import daily_partitions, day_window
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, registry
from pm_assets.storage.predictions import read_matured, with_labels
from pm_assets.storage.reference import write_reference


class GateConfig(dg.Config):
    margin: float = 0.0  # the challenger's live RUL RMSE must be lower than the champion's by this fraction
    min_rows: int = 200  # matured rows both models predicted, needed to decide
    min_machines: int = 10  # ... of at least this many machines (one machine's rows are strongly correlated)
    min_failures: int = 2  # ... of which at least this many failed: RUL near failure is what matters most
    max_shadow_days: int = 14  # a challenger still undecided after this long is dropped
    min_gain: float = 0.05  # ... or sooner, once the interval leaves it no gain of this fraction of the champion's RMSE


@dg.asset(group_name="models", kinds={"mlflow"}, partitions_def=daily_partitions, deps=["champion_predictions", "machine_events"])
def challenger_gate(context: dg.AssetExecutionContext, config: GateConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Promote the challenger if its live RUL RMSE beats the champion's on the same matured rows of enough machines and
    failures, or clearly beats it on one regime while not clearly worse overall; drop it when it is clearly worse, or
    when the interval leaves it no worthwhile gain (a bootstrap over machines, `core.gate`)."""
    champion, challenger = registry.alias_version(registry.CHAMPION), registry.alias_version(registry.CHALLENGER)
    if challenger is None or champion is None or challenger == champion:
        return dg.MaterializeResult(metadata={"decision": "no challenger", "champion_version": str(champion)})
    _, end = day_window(context.partition_key)
    tags = registry.version_tags(challenger)
    shadow_from = dt.datetime.fromisoformat(tags.get("data_to", str(end - dt.timedelta(days=1))))
    bundles = {v: registry.load_version(v).bundle for v in (champion, challenger)}
    label_config = bundles[champion].label_config
    known_then = dt.datetime.fromisoformat(tags["labels_as_of"]) if "labels_as_of" in tags else None
    # rows older than the RUL cap before the training set had their truth known by then
    since = min(shadow_from, known_then - dt.timedelta(hours=label_config.rul_cap_hours)) if known_then else shadow_from
    with warehouse.connect(read_only=True) as con:
        matured = read_matured(con, [champion, challenger], since, end, label_config)
        rows = {v: matured.filter((pl.col("model_version") == v) & pl.col("rul").is_not_null()) for v in (champion, challenger)}
        trial = (rows[champion].select("machine_id", "ts", "rul", pl.col("predicted_rul").alias("champion"))
                 .join(rows[challenger].select("machine_id", "ts", pl.col("predicted_rul").alias("challenger")), on=["machine_id", "ts"])
                 .filter(pl.col("ts") >= shadow_from))  # a day re-run during the trial logs the challenger on its own training days
        before_trial = rows[champion].join(trial, on=["machine_id", "ts"], how="anti").select(
            "machine_id", "ts", "rul", pl.col("predicted_rul").alias("champion"))
        earlier = _matured_since_training(con, before_trial, bundles[challenger], known_then, since, end, label_config) \
            if known_then else trial.clear()
        paired = pl.concat([trial, earlier])
        regimes = feature_store.read_rows(con, paired["ts"].min(), end, ["regime"]) if paired.height else None
    if regimes is not None:
        paired = paired.join(regimes, on=["machine_id", "ts"], how="left")
    shared = trial.select("machine_id", "ts")
    metrics = {v: live_metrics(rows[v].join(shared, on=["machine_id", "ts"]), bundles[v]) for v in (champion, challenger)}
    cap = bundles[champion].label_config.rul_cap_hours
    overall = compare(paired, cap)
    champion_rmse, challenger_rmse = overall.champion_rmse, overall.challenger_rmse  # the figures the verdict is drawn from
    segments = {f"regime {r}": compare(part, cap) for (r,), part in paired.partition_by("regime", as_dict=True).items()} \
        if paired.height and paired["regime"].n_unique() > 1 else {}
    decision, why = verdict(overall, segments, config.min_rows, config.min_machines, config.min_failures, config.margin,
                          config.min_gain)
    if decision == "waiting" and (end - shadow_from).days > config.max_shadow_days:
        decision = "challenger expired"
    metadata = {"decision": decision, "why": why, "basis": f"{paired.height} matured rows of {overall.machines} machines "
                                                           f"({overall.failed_machines} failed): {trial.height} both predicted since "
                                                           f"{shadow_from}, {earlier.height} from before whose truth came after the training set",
                "champion_version_before": champion, "challenger_version": challenger, "margin": config.margin,
                "champion_rul_rmse": float(champion_rmse), "challenger_rul_rmse": float(challenger_rmse), "rows": paired.height,
                "trial_rows": trial.height, "earlier_rows": earlier.height,
                **{k: v for k, v in overall.figures("comparison_").items() if k.endswith(("difference", "lower", "upper", "machines"))},
                "segments": dg.MetadataValue.json({name: {k: round(v, 3) if isinstance(v, float) else v for k, v in c.figures().items()}
                                                   for name, c in segments.items()})}
    if decision == "waiting":
        return dg.MaterializeResult(metadata={**metadata, "champion_version": champion})
    registry.remove_alias(registry.CHALLENGER)
    if decision == "promoted":
        registry.set_alias(challenger, registry.CHAMPION)
        with warehouse.connect(read_only=True) as con:
            metadata["reference"] = dg.MetadataValue.json(write_reference(con, challenger, proven_through=end))
    # a decision is rare: its own MLflow run, not one per daily run
    with mlflow.start_run(run_name=f"promotion-{context.partition_key}", experiment_id=registry.ensure_experiment()):
        mlflow.set_tags({"dagster_run_id": context.run_id, "decision": decision, "basis": metadata["basis"],
                         "champion_version_before": champion, "challenger_version": challenger})
        for role, version in (("champion", champion), ("challenger", challenger)):
            mlflow.log_metrics({f"{role}_live_{k}": float(v) for k, v in metrics[version].items() if v == v})
    context.log.info(f"{decision}: challenger v{challenger} live RMSE {challenger_rmse:.2f} vs champion v{champion} "
                     f"{champion_rmse:.2f} on {paired.height} rows; {why}")
    return dg.MaterializeResult(metadata={**metadata, "champion_version": challenger if decision == "promoted" else champion})



def _matured_since_training(con, champion_rows: pl.DataFrame, challenger: ModelBundle, known_then: dt.datetime,
                            since: dt.datetime, end: dt.datetime, label_config: LabelConfig) -> pl.DataFrame:
    """Of the champion's matured rows outside the trial (machine_id, ts, rul, champion), those whose RUL was unknown
    when the challenger's training set was drawn (`known_then`), with the challenger's prediction of the same stored
    features (`challenger`). Empty when the challenger is of features other than the stored ones (it could not
    predict them)."""
    _, _, stored = feature_store.read_state(con, end.date())
    if champion_rows.is_empty() or stored != feature_store.spec_id(challenger.feature_spec):
        return champion_rows.with_columns(pl.lit(None, pl.Float64).alias("challenger")).clear()
    then = with_labels(con, champion_rows.select("machine_id", "ts"), since, known_then, label_config).filter(pl.col("rul").is_not_null())
    new = champion_rows.join(then, on=["machine_id", "ts"], how="anti")
    if new.is_empty():
        return new.with_columns(pl.lit(None, pl.Float64).alias("challenger"))
    scored = with_predictions(challenger, feature_store.rows_at(con, new, challenger.feature_names))
    return new.join(scored.select("machine_id", "ts", pl.col("predicted_rul").alias("challenger")), on=["machine_id", "ts"])
