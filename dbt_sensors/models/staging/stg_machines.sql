with source as (

    select * from {{ source('raw', 'machines') }}

),

renamed as (

    select
        ---------- keys
        machine_id,

        ---------- attributes
        model_type,
        site,
        install_date

    from source

)

select * from renamed
