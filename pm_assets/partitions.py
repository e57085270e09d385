"""The one time partitioning of the platform: a day of telemetry."""

import dagster as dg

from pm_assets.constants import PARTITION_START

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITION_START.isoformat())

#: Backfills of many days run as one run (and one transaction), not one run per day.
single_run_backfill = dg.BackfillPolicy.single_run()
