"""The quarterly C-MAPSS replay, shortened (a few engines a quarter, half-hour cycles): the real daily job, checks,
sensor, retraining and gate, on FD001 -> FD002 -> FD003 -> FD004 engines that run to failure."""

import json

import pytest

from pm_assets.experiments import quarters
from pm_assets.sources.replay import QUARTER_SUBSETS, quarterly_plan
from pm_assets.storage import paths, registry

pytestmark = pytest.mark.slow  # the slow end-to-end tier: `make test-slow`


class Stopped(Exception):
    """Stands for Ctrl-C or a killed process."""


def _reject(constant: str):
    raise ValueError(f"not strict JSON: {constant}")


def _stop_on_day(n: int):
    """A log that stops the replay as it reports its `n`th streamed day (that day's sensor not yet evaluated)."""
    days = []

    def log(line: str) -> None:
        if line.startswith("  day "):
            days.append(line)
            if len(days) == n:
                raise Stopped(line)
    return log


def test_the_quarterly_replay_heals_across_operating_regimes(cmapss_dir, data_dir):
    plan = quarterly_plan(cmapss_dir, quarter_days=1, history_engines=6, mix=1, engines_per_subset=3, cycle_hours=0.25)
    candidates = {"iterations": 20, "n_folds": 3}
    with pytest.raises(Stopped):
        quarters.run(plan, cooldown_days=1, candidate_config=candidates, log=_stop_on_day(4))
    stopped = json.loads(paths.replay_report_path().read_text(), parse_constant=_reject)
    assert not stopped["complete"] and stopped["days_done"] == 3 < stopped["days_total"]
    partial = quarters.report_saved(plan, candidates, log=lambda line: None)
    assert partial[0]["champions_serving"] and not partial[-1]["champions_serving"]  # FD001 served, FD004 not yet in service

    resumed: list[str] = []
    table = quarters.run(plan, cooldown_days=1, candidate_config=candidates, log=resumed.append)
    assert resumed[0].startswith("== resuming the replay stopped after")
    assert not any(line.startswith("== first champion") for line in resumed)  # it went on; nothing was trained twice from the start

    assert [row["quarter"] for row in table] == list(QUARTER_SUBSETS)
    report = json.loads(paths.replay_report_path().read_text(), parse_constant=_reject)
    assert report["complete"] and [row["quarter"] for row in report["quarters"]] == list(QUARTER_SUBSETS)
    # each streamed day once, in order, the stopped day redone whole
    streamed = [day["day"] for day in report["summary"]["days"]]
    assert streamed == sorted(set(streamed)) and len(streamed) == report["days_total"]
    frozen = report["summary"]["champion_before"]
    # the first champion knew FD001's single flight condition; FD002's six made a retraining refit the spec
    assert len(registry.load_version(frozen).bundle.feature_spec.regime_centers) == 1
    replaced = [r for r in report["summary"]["retrains"] if r["decision"].startswith("champion replaced")]
    assert replaced and replaced[0]["day"] >= report["summary"]["drift_start_day"], report["summary"]["retrains"]
    final = registry.load_version(registry.alias_version(registry.CHAMPION)).bundle
    assert len(final.feature_spec.regime_centers) == 6
    for row in table:
        # the three models judged on the same matured rows of the quarter's engines
        assert row["serving"]["rul_rows"] == row["frozen"]["rul_rows"] == row["cross_validated"]["rul_rows"] > 0, row
        assert all(row[model]["rul_rmse"] > 0 for model in ("serving", "frozen", "cross_validated", "daily_retrain"))
        # the daily-retrain oracle judged on the same rows (each predicted by a model fitted that morning)
        assert row["daily_retrain"]["rul_rows"] == row["serving"]["rul_rows"], row
    # by the end of a quarter: its last day's rows, a part of the whole
    end = table[0]["last_days"]
    assert 0 < end["serving"]["rul_rows"] == end["cross_validated"]["rul_rows"] < table[0]["serving"]["rul_rows"]
    # after FD001 the fleet was served by champions trained on the new regimes, not by the frozen one
    assert all(frozen not in row["champions_serving"] for row in table[2:]), [row["champions_serving"] for row in table]
    assert quarters.describe(table)[1].startswith("FD001")
    # each maintenance policy on each quarter's engines, acting on the serving champions' logged predictions
    for row in table:
        policies = {p["policy"]: p for p in row["policies"]}
        assert list(policies) == ["run_to_failure", "fixed_interval", "alert", "plan", "oracle"]
        rtf, oracle = policies["run_to_failure"], policies["oracle"]
        assert rtf["planned_services"] == 0 and rtf["unplanned_failures"] > 0  # every engine of C-MAPSS runs to failure
        assert oracle["total_cost"] < rtf["total_cost"] and oracle["unplanned_failures"] < rtf["unplanned_failures"]
