"""The drift reference of a model: a profile of the last days of the fleet it was proven on, saved beside the data."""

import datetime as dt
import pickle

import duckdb

from pm_assets.core.drift_reference import build_reference
from pm_assets.core.scoring import with_predictions
from pm_assets.storage import feature_store, paths, registry
from pm_assets.storage.atomic import write_atomic

#: Rows of the champion's training window that its reference profile is fitted on.
REFERENCE_ROWS_PER_LIFE, REFERENCE_MAX_ROWS = 400, 200_000
#: The reference is the last days of the fleet the champion was proven on: its training window's, or the days it was
#: judged on in shadow before its promotion.
REFERENCE_DAYS = 7


def write_reference(con: duckdb.DuckDBPyConnection, version: str, proven_through: dt.datetime | None = None) -> dict:
    """Fit and save the reference of model `version` on a sample of the stored features of the last `REFERENCE_DAYS`
    days it was trained on, or, for a challenger promoted on live rows, the last days up to `proven_through`.

    Not its whole window: a champion retrained after a drift holds months of the old state and days of the new one,
    and a reference of all of it would keep `feature_drift` failing on the state the champion now knows. A challenger
    is trained at the first alarm, on one or two days of the new state, and promoted days later for beating the
    champion on the rows since: the state it is promoted for is those days, so its reference is them."""
    champion = registry.load_version(version).bundle
    tags = registry.version_tags(version)
    end = proven_through or dt.datetime.fromisoformat(tags["data_to"]) + dt.timedelta(microseconds=1)
    start = max(dt.datetime.fromisoformat(tags["data_from"]), end - dt.timedelta(days=REFERENCE_DAYS))
    rows, _ = feature_store.sample_lives(con, end, REFERENCE_ROWS_PER_LIFE, REFERENCE_MAX_ROWS, seed=0, since=start)
    if rows.is_empty():
        raise LookupError(f"no stored features in v{version}'s training window {start}..{end}: backfill machine_features")
    scored = with_predictions(champion, rows)
    reference = build_reference(version, champion.feature_spec, scored)
    write_atomic(paths.reference_path(), pickle.dumps(reference))
    return {"champion_version": version, "rows": scored.height, "columns": len(reference.profile.columns),
            "regimes": len(reference.profile.regimes), "from": str(start), "to": str(end)}
