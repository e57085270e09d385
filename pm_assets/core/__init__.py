"""Pure domain code, no Dagster: features and their state, labels, models, metrics, drift statistics, scoring."""
