{#- Every sensor reading is null (a flagged fault) or a finite number of plausible size. -#}
{% test sensors_finite(model, max_abs=10000000) %}
{% set sensors = sensor_columns(model) %}
select *
from {{ model }}
where false
{% for s in sensors %}
    or not isfinite({{ s }}) or abs({{ s }}) > {{ max_abs }}
{% endfor %}
{% endtest %}
