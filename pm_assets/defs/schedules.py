"""The daily work: load the day's landing files, rebuild its marts, compute its features, score it (champion,
and challenger in shadow), decide on the challenger, check drift and accuracy, refresh the fleet's scores.

Sharded (`PM_SHARDS` > 1), loading the day's raw tables is a job of its own, `ingest_shard`, one run per machine
shard (tagged `pm/shard`, so the instance runs shards in parallel, one run per shard at a time); the `daily` job
then does the rest of the day once every shard has landed (sensor `daily_after_shards`).
"""

import datetime as dt

import dagster as dg

from pm_assets.core.shards import SHARD_TAG
from pm_assets.defs.jobs import RAW_ASSETS, daily_job, ingest_shard_job
from pm_assets.defs.partitions import DAY, SHARD, SHARDS, raw_partition_key, raw_partitions

if SHARDS == 1:
    daily_schedule = dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=1)
else:
    @dg.schedule(job=ingest_shard_job, cron_schedule="0 1 * * *", default_status=dg.DefaultScheduleStatus.STOPPED)
    def ingest_shards_schedule(context: dg.ScheduleEvaluationContext):
        """Every shard of yesterday, one run each."""
        day = (context.scheduled_execution_time - dt.timedelta(days=1)).date()
        for shard in range(SHARDS):
            yield dg.RunRequest(run_key=f"{day}-{shard}", partition_key=raw_partition_key(day, shard), tags={SHARD_TAG: str(shard)})

    def _days_of_every_shard(instance: dg.DagsterInstance) -> set[str]:
        """The days that every shard of both raw tables has loaded."""
        per_asset = []
        for name in RAW_ASSETS:
            keys = [raw_partitions.get_partition_key_from_str(key) for key in instance.get_materialized_partitions(dg.AssetKey(name))]
            shards_of: dict[str, set[str]] = {}
            for key in keys:
                shards_of.setdefault(key.keys_by_dimension[DAY], set()).add(key.keys_by_dimension[SHARD])
            per_asset.append({day for day, shards in shards_of.items() if len(shards) == SHARDS})
        return set.intersection(*per_asset)

    @dg.sensor(job=daily_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
    def daily_after_shards(context: dg.SensorEvaluationContext):
        """Request the `daily` run of a day once every machine shard of it is loaded (once per day: the run key)."""
        days = sorted(_days_of_every_shard(context.instance))[-7:]
        if not days:
            return dg.SkipReason("no day has all its shards loaded yet")
        return [dg.RunRequest(run_key=f"daily-{day}", partition_key=day) for day in days]
