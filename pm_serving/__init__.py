"""HTTP scoring service for the current champion model (no Dagster, no warehouse)."""
