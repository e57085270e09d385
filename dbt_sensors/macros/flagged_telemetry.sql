{#- Typed, deduplicated readings of raw.telemetry with sensor faults flagged: the body of stg_telemetry,
    and of machine_timeseries for one window of days. `since`/`until` (SQL date expressions, optional)
    bound the readings read, so a day's rebuild reads that day plus the look-back its flags need. -#}
{% macro flagged_telemetry(since=none, until=none) %}
{% set sensors = sensor_columns(source('raw', 'telemetry')) %}
{% set k = var('spike_threshold') %}
{% set run = var('stuck_run_length') %}

with source as (

    select * from {{ source('raw', 'telemetry') }}
    where true
    {% if since is not none %} and ts >= {{ since }} {% endif %}
    {% if until is not none %} and ts < {{ until }} {% endif %}

),

renamed as (

    select
        ---------- keys
        machine_id,
        ts,
        cast(ts as date) as reading_date,
        cycle,

        ---------- operating settings
        op_setting_1,
        op_setting_2,
        op_setting_3,

        ---------- sensors
        {% for s in sensors %}
        {{ s }},
        {% endfor %}

        ---------- lineage
        _loaded_at

    from source

),

deduplicated as (

    -- flaky gateways re-send readings: keep one per machine and timestamp, remember it happened
    select
        *,
        count(*) over (partition by machine_id, ts) > 1 as had_duplicate
    from renamed
    qualify row_number() over (
        partition by machine_id, ts order by _loaded_at, cycle{% for s in sensors %}, {{ s }}{% endfor %}
    ) = 1

),

flagged as (

    select
        *,
        {% for s in sensors %}
        -- stuck: the last {{ run }} readings are all equal on a sensor that moved in the look-back
        ({% for i in range(1, run) %}{{ s }} = lag({{ s }}, {{ i }}) over ordered and {% endfor %}
            stddev_samp({{ s }}) over recent > 0) is true as {{ s }}__stuck,
        -- spike: far from both neighbours, in the same direction
        coalesce(
            ({{ s }} - lag({{ s }}) over ordered) * ({{ s }} - lead({{ s }}) over ordered) > 0
            and abs({{ s }} - lag({{ s }}) over ordered) > {{ k }} * stddev_samp({{ s }}) over recent
            and abs({{ s }} - lead({{ s }}) over ordered) > {{ k }} * stddev_samp({{ s }}) over recent,
            false
        ) as {{ s }}__spike,
        {% endfor %}
    from deduplicated
    window
        ordered as (partition by machine_id order by ts),
        -- a sensor's spread over the look-back before the reading (not its whole history: a day costs a day)
        recent as (partition by machine_id order by ts range between interval {{ var('lookback_days') }} days preceding and current row)

)

select * from flagged
{% endmacro %}
