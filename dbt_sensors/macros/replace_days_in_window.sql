{#- Pre-hook of the daily marts: delete the days of [window_start, window_end) before they are inserted again,
    so a day that lost rows upstream loses them here too (delete+insert only deletes keys it re-inserts). -#}
{% macro replace_days_in_window(column='reading_date') %}
    {% if is_incremental() %}
        delete from {{ this }} where {{ column }} >= '{{ window_start() }}' and {{ column }} < '{{ window_end() }}'
    {% else %}
        select 1
    {% endif %}
{% endmacro %}
