"""Predictive-maintenance platform: Dagster assets from raw telemetry to a served champion model."""
