"""The platform's partitions: a day of telemetry and, on a sharded scale profile, a machine shard of the day."""

import datetime as dt
import os

import dagster as dg

from pm_assets.core.constants import PARTITION_START
from pm_assets.core.shards import shard_count

#: `PM_PARTITION_END` (a day, exclusive): where the daily partitions stop, so the UI's catalog shows the days that exist
#: rather than every day up to today (`make ui` sets it to the day after the last landed one). Unset: up to today.
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITION_START.isoformat(), end_date=os.environ.get("PM_PARTITION_END") or None)

#: Backfills of many days run as one run (and one transaction), not one run per day.
single_run_backfill = dg.BackfillPolicy.single_run()

DAY, SHARD = "day", "shard"
SHARDS = shard_count()
#: The raw tables' partitions: days, or with `PM_SHARDS` > 1 shard × day, so the shards of a day load in parallel runs.
raw_partitions: dg.PartitionsDefinition = daily_partitions if SHARDS == 1 else dg.MultiPartitionsDefinition(
    {DAY: daily_partitions, SHARD: dg.StaticPartitionsDefinition([str(s) for s in range(SHARDS)])})


def raw_partition_key(day: dt.date, shard: int | None) -> str:
    """The raw tables' partition key of a day (and shard, when sharded)."""
    return day.isoformat() if shard is None else dg.MultiPartitionKey({DAY: day.isoformat(), SHARD: str(shard)})


def days_and_shard(partition_keys: list[str]) -> tuple[list[dt.date], int | None]:
    """The days of a run's raw partitions, and its shard (None when not sharded); a run loads one shard."""
    if SHARDS == 1:
        return [dt.date.fromisoformat(key) for key in partition_keys], None
    keys = [raw_partitions.get_partition_key_from_str(key) for key in partition_keys]
    shards = {key.keys_by_dimension[SHARD] for key in keys}
    if len(shards) != 1:
        raise dg.Failure(f"a run loads one machine shard, this one was given shards {sorted(shards)}: launch one run per shard "
                         "(a backfill of several shards fans out into runs by itself)")
    return sorted(dt.date.fromisoformat(key.keys_by_dimension[DAY]) for key in keys), int(shards.pop())


def partition_day(partition_key: str) -> dt.date:
    """The day of a daily partition."""
    return dt.date.fromisoformat(partition_key)


def day_window(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) of a daily partition."""
    start = dt.datetime.combine(partition_day(partition_key), dt.time())
    return start, start + dt.timedelta(days=1)
