"""The one time partitioning of the platform: a day of telemetry."""

import datetime as dt

import dagster as dg

from pm_assets.core.constants import PARTITION_START

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITION_START.isoformat())

#: Backfills of many days run as one run (and one transaction), not one run per day.
single_run_backfill = dg.BackfillPolicy.single_run()


def day_window(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) of a daily partition."""
    start = dt.datetime.fromisoformat(partition_key)
    return start, start + dt.timedelta(days=1)
