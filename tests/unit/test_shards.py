import polars as pl
import pytest

from pm_assets.core.shards import ShardSettingsError, rows_of_shard, shard_count, shard_of


def test_the_shards_of_a_day_split_its_rows_once_each_by_machine():
    frame = pl.DataFrame({"machine_id": [f"M{i:04d}" for i in range(200)] * 3 + [None], "value": range(601)})
    parts = [rows_of_shard(frame, shard, 4) for shard in range(4)]
    assert sum(part.height for part in parts) == frame.height
    assert pl.concat(parts).sort("value").equals(frame)  # every row once
    for shard, part in enumerate(parts):
        assert 20 < part["machine_id"].n_unique() < 80  # the hash spreads the machines (50 each on average)
        assert all(shard_of(m, 4) == shard for m in part["machine_id"].drop_nulls())
    assert parts[0]["machine_id"].null_count() == 1  # a row without a machine goes to shard 0, where validation rejects it


def test_the_shard_count_is_read_from_the_environment(monkeypatch):
    assert shard_count() == 1
    monkeypatch.setenv("PM_SHARDS", "4")
    assert shard_count() == 4
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("PM_SHARDS", bad)
        with pytest.raises(ShardSettingsError, match="PM_SHARDS"):
            shard_count()
