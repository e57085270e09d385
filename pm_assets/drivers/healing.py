"""What the self-healing loop was worth: the champion serving at the end beside the first, frozen one, on the same rows."""

import datetime as dt

from pm_assets.core.scoring import with_predictions
from pm_assets.core.metrics import live_metrics
from pm_assets.storage.predictions import with_labels
from pm_assets.storage import feature_store, paths, registry, warehouse


def frozen_vs_healed(frozen: str, healed: str, end: dt.datetime) -> dict | None:
    """Live metrics of model `frozen` and model `healed` on the stored feature rows after `healed`'s training window
    (rows neither was trained on) up to `end`, with their truth as known at `end`; None when no RUL has matured."""
    bundles = {version: registry.load_version(version).bundle for version in (frozen, healed)}
    since = dt.datetime.fromisoformat(registry.version_tags(healed)["data_to"]) + dt.timedelta(microseconds=1)
    label_config = bundles[healed].label_config
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        # each model on features of its own spec (a refit for new operating regimes changes them)
        rows = {version: with_labels(con, feature_store.read_rows_of(con, bundle.feature_spec, since, end), since, end, label_config)
                for version, bundle in bundles.items()}
    if rows[healed].is_empty() or rows[healed]["rul"].null_count() == rows[healed].height:
        return None
    metrics = {version: live_metrics(with_predictions(bundle, rows[version]), bundle) for version, bundle in bundles.items()}
    gain = 1 - metrics[healed]["rul_rmse"] / metrics[frozen]["rul_rmse"]
    return {"rows_from": str(since), "rows_to": str(end), "matured_rul_rows": int(rows[healed]["rul"].is_not_null().sum()),
            "frozen": {"version": frozen, **metrics[frozen]}, "healed": {"version": healed, **metrics[healed]},
            "rul_rmse_gain": gain}


def alarm_days_after(promotions: list[str], alarm_days: list[str], last_day: str) -> list[dict]:
    """For each promotion day, the days `feature_drift` failed after it, up to the next promotion (or `last_day`).

    >>> alarm_days_after(["2025-04-02"], ["2025-03-30", "2025-04-03", "2025-04-04"], "2025-04-10")
    [{'promoted': '2025-04-02', 'alarm_days': 2, 'days_watched': 8}]
    """
    found = []
    for i, promoted in enumerate(promotions):
        until = promotions[i + 1] if i + 1 < len(promotions) else last_day
        days = [day for day in alarm_days if promoted < day <= until]
        watched = (dt.date.fromisoformat(until) - dt.date.fromisoformat(promoted)).days
        found.append({"promoted": promoted, "alarm_days": len(days), "days_watched": watched})
    return found

