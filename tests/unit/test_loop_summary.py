"""The loop's summary file is strict JSON: a day with nothing to judge has null figures, not NaN."""

import json
import math

from pm_assets.drivers.healing import alarm_days_after
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


def test_alarm_days_are_counted_after_each_promotion_until_the_next():
    found = alarm_days_after(["2025-04-02", "2025-04-06"], ["2025-03-30", "2025-04-03", "2025-04-06", "2025-04-09"], "2025-04-10")
    assert found == [{"promoted": "2025-04-02", "alarm_days": 2, "days_watched": 4},
                     {"promoted": "2025-04-06", "alarm_days": 1, "days_watched": 4}]
