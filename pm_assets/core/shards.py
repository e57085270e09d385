"""Machine shards: the scale profile splits a day's ingestion into `PM_SHARDS` runs by machine, so shards of one
day run in parallel and never write, nor delete from, the same lake file.

A machine's shard is a stable hash of its id (the first 32 bits of its MD5), the same in every process, Python
version and run; the shard count is fixed for a warehouse (changing it means ingesting its days again).
"""

import hashlib
import os

import polars as pl

#: The column of the raw tables that holds a row's shard when the warehouse is sharded.
SHARD_COLUMN = "_shard"
#: The run tag of a shard's run: the scale profile's instance runs one run per shard value at a time.
SHARD_TAG = "pm/shard"


class ShardSettingsError(ValueError):
    """`PM_SHARDS` is not a whole number of at least 1."""


def shard_count() -> int:
    """How many shards a day's ingestion is split into (`PM_SHARDS`, default 1: not sharded)."""
    value = os.environ.get("PM_SHARDS", "1")
    if not value.isdigit() or int(value) < 1:
        raise ShardSettingsError(f"PM_SHARDS={value!r}: set it to a whole number of shards, 1 (the default) or more")
    return int(value)


def shard_of(machine_id: str | None, shards: int) -> int:
    """The shard of a machine; rows without a machine id go to shard 0.

    >>> [shard_of(m, 4) for m in ("M0001", "M0002", None)]
    [2, 1, 0]
    """
    if machine_id is None:
        return 0
    return int(hashlib.md5(machine_id.encode()).hexdigest()[:8], 16) % shards


def rows_of_shard(frame: pl.DataFrame, shard: int, shards: int) -> pl.DataFrame:
    """The rows of `frame` whose `machine_id` falls in `shard`."""
    ids = frame["machine_id"].unique()
    members = [m for m in ids.to_list() if shard_of(m, shards) == shard]
    keep = pl.col("machine_id").is_in(members)
    return frame.filter(keep | pl.col("machine_id").is_null() if shard == 0 else keep)
