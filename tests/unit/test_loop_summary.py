"""The loop's summary file is strict JSON: a day with nothing to judge has null figures, not NaN."""

import json
import math

from pm_assets.drivers.loop import LoopSummary
from pm_assets.storage import paths


def _refuse(constant: str):
    raise ValueError(f"not JSON: {constant}")


def test_a_day_without_matured_rows_is_written_as_null(tmp_path, monkeypatch):
    monkeypatch.setenv("PM_DATA_DIR", str(tmp_path))
    summary = LoopSummary(drift_start_day="2025-03-30", metric_before={"live_rul_rmse": math.inf},
                          days=[{"day": "2025-03-27", "live_rul_rmse": math.nan, "matured_rows": 0, "drifted_share": 0.0}])
    summary.write()
    written = json.loads(paths.demo_summary_path().read_text(), parse_constant=_refuse)
    assert written["days"][0]["live_rul_rmse"] is None and written["days"][0]["drifted_share"] == 0.0
    assert written["metric_before"]["live_rul_rmse"] is None
