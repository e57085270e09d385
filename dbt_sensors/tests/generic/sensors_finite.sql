{#- Every sensor reading is null (a flagged fault) or a finite number of plausible size. On a daily
    mart (`window_column` set) only the rows of the rebuilt window [window_start, window_end) are checked. -#}
{% test sensors_finite(model, max_abs=10000000, window_column=none) %}
{% set sensors = sensor_columns(model) %}
select *
from {{ model }}
where (false
{% for s in sensors %}
    or not isfinite({{ s }}) or abs({{ s }}) > {{ max_abs }}
{% endfor %})
{% if window_column %}
    and {{ window_column }} >= '{{ window_start() }}' and {{ window_column }} < '{{ window_end() }}'
{% endif %}
{% endtest %}
