{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_days_in_window() }}",
        tags=['daily'],
    )
}}
{#- One clean reading per machine and time step, ready for features: faulty values are nulled.
    Rebuilds only the days in [min_date, max_date). -#}
{%- set sensors = sensor_columns(ref('stg_telemetry')) %}
-- depends_on: {{ ref('stg_telemetry') }}

with window_readings as (

    {{ flagged_telemetry(since="date '" ~ var("min_date") ~ "' - interval " ~ var("lookback_days") ~ " days",
                         until="date '" ~ var("max_date") ~ "'") }}

),

readings as (

    select * from window_readings
    where reading_date >= '{{ var("min_date") }}' and reading_date < '{{ var("max_date") }}'

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
