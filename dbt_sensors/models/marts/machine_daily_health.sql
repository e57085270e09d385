{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_days_in_window() }}",
        tags=['daily'],
    )
}}
{#- One row per machine and day: how much it ran, how healthy its sensors were, what happened to it. -#}
{% set sensors = sensor_columns(ref('machine_timeseries')) %}

with readings as (

    select * from {{ ref('machine_timeseries') }}
    where reading_date >= '{{ window_start() }}' and reading_date < '{{ window_end() }}'

),

events as (

    select
        machine_id,
        event_date as reading_date,
        count(*) filter (where event_type = 'failure') as failures,
        count(*) filter (where event_type = 'maintenance') as maintenance_events,
        count(*) filter (where event_type = 'repair') as repairs
    from {{ ref('stg_events') }}
    where event_date >= '{{ window_start() }}' and event_date < '{{ window_end() }}'
    group by all

),

daily as (

    select
        machine_id,
        reading_date,
        any_value(model_type) as model_type,
        count(*) as n_readings,
        max(cycle) as last_cycle,
        avg((n_faulty_sensors > 0)::int) as fault_share,
        sum(had_duplicate::int) as duplicated_readings,
        {% for s in sensors %}
        avg({{ s }}) as {{ s }}_mean,
        {% endfor %}
    from readings
    group by machine_id, reading_date

)

select
    daily.*,
    coalesce(events.failures, 0) as failures,
    coalesce(events.maintenance_events, 0) as maintenance_events,
    coalesce(events.repairs, 0) as repairs
from daily
left join events using (machine_id, reading_date)
