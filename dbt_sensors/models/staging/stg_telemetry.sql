{#- Every reading, deduplicated and flagged (see macros/flagged_telemetry.sql); the daily marts apply
    the same macro to their window of days. -#}
{{ flagged_telemetry() }}
