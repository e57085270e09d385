with source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        ---------- keys
        machine_id,
        ts,
        cast(ts as date) as event_date,

        ---------- event
        event_type,
        failure_mode,

        ---------- lineage
        _loaded_at

    from source

)

-- the same event delivered twice is one event
select distinct on (machine_id, ts, event_type) *
from renamed
order by machine_id, ts, event_type
