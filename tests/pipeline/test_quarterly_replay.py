"""The quarterly C-MAPSS replay, shortened (a few engines a quarter, half-hour cycles): the real daily job, checks,
sensor, retraining and gate, on FD001 -> FD002 -> FD003 -> FD004 engines that run to failure."""

import json

from pm_assets.drivers import quarters
from pm_assets.sources.replay import QUARTER_SUBSETS, quarterly_plan
from pm_assets.storage import paths, registry


def _reject(constant: str):
    raise ValueError(f"not strict JSON: {constant}")


def test_the_quarterly_replay_heals_across_operating_regimes(cmapss_dir, data_dir):
    plan = quarterly_plan(cmapss_dir, quarter_days=1, history_engines=6, mix=1, engines_per_subset=3, cycle_hours=0.25)
    table = quarters.run(plan, cooldown_days=1, candidate_config={"iterations": 20, "n_folds": 3}, log=lambda line: None)

    assert [row["quarter"] for row in table] == list(QUARTER_SUBSETS)
    report = json.loads(paths.replay_report_path().read_text(), parse_constant=_reject)
    assert [row["quarter"] for row in report["quarters"]] == list(QUARTER_SUBSETS)
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
        assert all(row[model]["rul_rmse"] > 0 for model in ("serving", "frozen", "cross_validated"))
    # after FD001 the fleet was served by champions trained on the new regimes, not by the frozen one
    assert all(frozen not in row["champions_serving"] for row in table[2:]), [row["champions_serving"] for row in table]
    assert quarters.describe(table)[1].startswith("FD001")
