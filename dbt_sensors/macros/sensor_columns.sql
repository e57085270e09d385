{#- The sensor columns of a relation (sensor_01, sensor_02, …), read from the warehouse, since each
    dataset has its own sensors. Flag columns (sensor_01__stuck) are left out. -#}
{% macro sensor_columns(relation) %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set names = [] %}
    {% for column in adapter.get_columns_in_relation(relation) %}
        {% if column.name.startswith('sensor_') and '__' not in column.name %}
            {% do names.append(column.name) %}
        {% endif %}
    {% endfor %}
    {{ return(names) }}
{% endmacro %}
