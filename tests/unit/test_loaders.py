import datetime as dt

import polars as pl
import pytest

from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.loaders.tabular import load_tabular
from pm_assets.sources.validation import TELEMETRY, validate
from pm_assets.storage import landing


def test_cmapss_train_fd001_has_100_engines_run_to_failure(cmapss_dir):
    data = load_cmapss(cmapss_dir / "train_FD001.txt")
    t = data.telemetry
    assert t.height == 20_631
    assert t["machine_id"].n_unique() == 100
    assert [c for c in t.columns if c.startswith("sensor_")] == [f"sensor_{i:02d}" for i in range(1, 22)]
    assert data.events.height == 100 and set(data.events["event_type"]) == {"failure"}
    last = t.group_by("machine_id").agg(pl.col("ts").max()).sort("machine_id")
    assert last["ts"].to_list() == data.events.sort("machine_id")["ts"].to_list()  # failure at the last cycle
    # one cycle per hour from the partition start
    first = t.filter(pl.col("machine_id") == "FD001-train-001").sort("cycle")
    assert first["ts"][0] == dt.datetime(2025, 1, 1) and first["ts"][1] == dt.datetime(2025, 1, 1, 1)


def test_cmapss_test_engines_are_censored_unless_rul_is_given(cmapss_dir, tmp_path):
    data = load_cmapss(cmapss_dir / "test_FD001.txt")
    assert data.telemetry["machine_id"].n_unique() == 100 and data.events.height == 0
    rul = tmp_path / "RUL_FD001.txt"
    rul.write_text("\n".join(["10"] * 100))
    with_truth = load_cmapss(cmapss_dir / "test_FD001.txt", rul_path=rul)
    last = data.telemetry.filter(pl.col("machine_id") == "FD001-test-001")["ts"].max()
    failure = with_truth.events.filter(pl.col("machine_id") == "FD001-test-001")["ts"][0]
    assert failure - last == dt.timedelta(hours=10)


def test_cmapss_refuses_malformed_files(tmp_path):
    bad = tmp_path / "train_FD001.txt"
    bad.write_text("1 1 0.1 0.2\n")
    with pytest.raises(ValueError, match="expected 26 columns"):
        load_cmapss(bad)
    with pytest.raises(ValueError, match="expected a C-MAPSS file name"):
        load_cmapss(tmp_path / "engines.txt")


def test_tabular_folder_with_a_mapping(tmp_path):
    (tmp_path / "readings.csv").write_text(
        "asset,time,load,temp_c,vib\n"
        "P1,2025-03-01 10:00:00,0.5,71.2,0.31\n"
        "P1,2025-03-01 11:00:00,0.5,71.9,oops\n"
        "P1,garbage,0.5,72.0,0.33\n"
        "P2,2025-03-02 09:00:00,0.7,65.0,0.20\n"
    )
    (tmp_path / "events.csv").write_text("asset,time,kind\nP1,2025-03-01 12:00:00,fail\n")
    (tmp_path / "mapping.yaml").write_text(
        "telemetry: {files: readings.csv, machine_id: asset, timestamp: time, timestamp_format: '%Y-%m-%d %H:%M:%S',"
        " settings: [load], sensors: [temp_c, vib]}\n"
        "events: {files: events.csv, machine_id: asset, timestamp: time, event_type: kind, event_map: {fail: failure}}\n"
    )
    data = load_tabular(tmp_path, tmp_path / "mapping.yaml", source="plant")
    days = landing.land_dataset(data, tmp_path / "landing")
    assert days == [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]
    day_one = pl.read_parquet(landing.daily_files(tmp_path / "landing", "telemetry", dt.date(2025, 3, 1)))
    assert day_one.height == 3  # the unparseable timestamp lands on its machine's previous day
    result = validate(day_one, TELEMETRY, dt.date(2025, 3, 1), data.machines["machine_id"])
    assert sorted(result.quarantined["reason"]) == ["unparseable sensor_02", "unparseable ts"]
    assert data.events["event_type"].to_list() == ["failure"]


def test_tabular_mapping_names_missing_columns(tmp_path):
    (tmp_path / "r.csv").write_text("asset,time,temp\nP1,2025-01-01T00:00:00,1\n")
    (tmp_path / "m.yaml").write_text("telemetry: {files: r.csv, machine_id: asset, timestamp: time, sensors: [pressure]}\n")
    with pytest.raises(ValueError, match=r"columns \['pressure'\] not found"):
        load_tabular(tmp_path, tmp_path / "m.yaml")
