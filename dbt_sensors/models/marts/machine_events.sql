{{ config(materialized="view") }}
{#- Every failure, maintenance and repair, for labels and time since maintenance (a view: always current). -#}
select
    machine_id,
    ts,
    event_date,
    event_type,
    failure_mode
from {{ ref('stg_events') }}
