{#- Every failure, maintenance and repair, for labels (remaining useful life) and time since maintenance. -#}
select
    machine_id,
    ts,
    event_date,
    event_type,
    failure_mode
from {{ ref('stg_events') }}
