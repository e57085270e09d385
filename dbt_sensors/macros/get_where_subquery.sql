{#- dbt's test filter (a test's `where` config), which also knows the daily window: `__window_start__` and
    `__window_end__` in a `where` become the bounds of `daily_window.sql`, read when the test executes. -#}
{% macro get_where_subquery(relation) -%}
    {% set where = config.get('where') %}
    {% if where %}
        {% set where = where | replace('__window_start__', "'" ~ window_start() ~ "'")
                             | replace('__window_end__', "'" ~ window_end() ~ "'") %}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- else -%}
        {% do return(relation) %}
    {%- endif -%}
{%- endmacro %}
