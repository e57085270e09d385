"""The loop's summary file is strict JSON: a day with nothing to judge has null figures, not NaN."""

import json
import math

from pm_assets.core.policies import table
from pm_assets.drivers.healing import alarm_days_after
from pm_assets.drivers.loop import LoopSummary
from pm_assets.drivers.plan_review import plan_against_alert
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


def test_the_demo_says_when_plan_and_alert_are_a_failure_or_two_apart():
    def rows(plan_failures: int) -> list[dict]:
        return [{"policy": "alert", "total_cost": 300_000 + 14 * 20_000, "unplanned_failures": 14},
                {"policy": "plan", "total_cost": 300_000 + plan_failures * 20_000, "unplanned_failures": plan_failures}]

    close = plan_against_alert(rows(15))
    assert close.startswith("plan against alert: +20,000 (+1 failure(s), 20,000 each)") and "do not rank" in close
    apart = plan_against_alert(rows(9))
    assert apart.startswith("plan against alert: -100,000 (-5 failure(s)") and "do not rank" not in apart
    assert plan_against_alert(rows(9)[:1]) is None


def test_a_policy_that_never_services_shows_no_share_of_life_used():
    never = {"policy": "run_to_failure", "total_cost": 680_000, "unplanned_failures": 34, "planned_services": 0,
             "mean_life_used_at_service": float("nan"), "crew_utilisation": 0.0, "share_of_oracle_savings": 0.0}
    assert table([never]).splitlines()[1].split() == ["run_to_failure", "680,000", "34", "0", "-", "0%", "0%"]
