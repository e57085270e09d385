{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_days_in_window() }}",
        tags=['daily'],
    )
}}
{#- One clean reading per machine and time step, ready for features: faulty values are nulled.
    Rebuilds only the days in [window_start, window_end). -#}
{%- set sensors = sensor_columns(ref('stg_telemetry')) %}
-- depends_on: {{ ref('stg_telemetry') }}

with window_readings as (

    {{ flagged_telemetry(since="date '" ~ window_start() ~ "' - interval " ~ var("lookback_days") ~ " days",
                         until="date '" ~ window_end() ~ "'") }}

),

readings as (

    select * from window_readings
    where reading_date >= '{{ window_start() }}' and reading_date < '{{ window_end() }}'

),

machines as (

    select machine_id, model_type from {{ ref('stg_machines') }}

),

cleaned as (

    select
        readings.machine_id,
        readings.ts,
        readings.reading_date,
        readings.cycle,
        machines.model_type,
        readings.op_setting_1,
        readings.op_setting_2,
        readings.op_setting_3,
        {% for s in sensors %}
        case when {{ s }}__stuck or {{ s }}__spike then null else {{ s }} end as {{ s }},
        {% endfor %}
        0 {% for s in sensors %} + ({{ s }} is null or {{ s }}__stuck or {{ s }}__spike)::int {% endfor %} as n_faulty_sensors,
        readings.had_duplicate
    from readings
    left join machines using (machine_id)

)

select * from cleaned
