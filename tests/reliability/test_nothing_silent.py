"""Every command ends with what its runs set aside and which checks failed, read from the runs' own results."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from pm_assets.drivers import loop
from pm_assets.drivers.cli import main
from pm_assets.drivers.run_report import QUARANTINE_EXIT_CODE, RunReport
from pm_assets.storage import landing, paths

DAY = dt.date(2025, 1, 2)


def _sql(query: str):
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        return con.sql(query).fetchall()[0][0]


def test_ingest_that_sets_data_aside_says_what_and_where_and_exits_3_unless_allowed(data_dir, capsys):
    main(["simulate", "--machines", "6", "--days", "4", "--readings-per-day", "24"])
    [wide] = landing.daily_files(paths.landing_dir(), "telemetry", DAY)
    pl.read_parquet(wide).with_columns(pl.lit(1.0).alias("vibration")).write_parquet(wide)  # a column the schema lacks
    [bad] = landing.daily_files(paths.landing_dir(), "telemetry", DAY + dt.timedelta(days=1))
    frame = pl.read_parquet(bad)
    half = pl.int_range(pl.len()) % 2 == 0
    frame.with_columns(pl.when(half).then(1e9).otherwise(pl.col("sensor_01")).alias("sensor_01")).write_parquet(bad)
    capsys.readouterr()

    with pytest.raises(SystemExit) as stopped:
        main(["ingest"])
    assert stopped.value.code == QUARANTINE_EXIT_CODE
    out, err = capsys.readouterr()
    rows_in_quarantine = _sql("select count(*) from raw.quarantine")
    in_files = _sql("select sum(rows) from raw.quarantined_files")
    assert rows_in_quarantine >= frame.height // 2 and in_files > 0
    assert f"{rows_in_quarantine + in_files:,} quarantined" in out  # the run's own figures, as the warehouse holds them
    assert "impossible sensor_01" in out and "raw.quarantine" in out
    assert "files: 1 set aside whole -> raw.quarantined_files" in out
    assert "failed check raw_telemetry:quarantine_share" in out
    assert "--allow-quarantine" in err and "warehouse ready" in out

    main(["--allow-quarantine", "ingest"])  # accepted: the same report, exit 0; the file stays set aside
    out = capsys.readouterr().out
    assert "impossible sensor_01" in out and "failed check raw_telemetry:quarantine_share" in out


def _one_day_run() -> dg.ExecuteInProcessResult:
    """A real run whose asset fails a warning check and an error check, as the daily job's assets do."""
    @dg.asset(check_specs=[dg.AssetCheckSpec("feature_drift", asset="drift_report"),
                           dg.AssetCheckSpec("prediction_drift", asset="drift_report")])
    def drift_report():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="feature_drift", passed=False)
        yield dg.AssetCheckResult(check_name="prediction_drift", passed=False, severity=dg.AssetCheckSeverity.WARN)

    return dg.materialize([drift_report])


def test_the_days_line_and_the_report_name_every_check_dagster_failed():
    result = _one_day_run()
    failed_in_dagster = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    retraining, warnings = loop._failed_checks(result)
    assert retraining == ["feature_drift"] and warnings == ["prediction_drift (warning)"]
    report = RunReport()
    report.add(result)
    lines = report.lines()
    assert {name for name in failed_in_dagster if any(name in line for line in lines)} == failed_in_dagster
    assert "failed check drift_report:prediction_drift (warning)" in lines and not report.set_aside
