"""Dagster only: assets, checks, jobs, sensors, schedules, resources, partitions (loaded by `pm_assets.definitions`)."""
