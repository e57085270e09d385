{#- The day range [window_start, window_end) that the daily marts rebuild: Dagster's partition window,
    passed in the environment (PM_WINDOW_START, PM_WINDOW_END), not as `--vars`. dbt re-parses the whole
    project (~4 s) whenever `--vars` change, and a file that reads an environment variable while it is
    parsed whenever that variable changes; read only when executing, a new window re-parses nothing.
    Unset: every day. -#}
{% macro window_start() %}
    {{ return(env_var('PM_WINDOW_START', '1900-01-01') if execute else '1900-01-01') }}
{% endmacro %}

{% macro window_end() %}
    {{ return(env_var('PM_WINDOW_END', '2999-12-31') if execute else '2999-12-31') }}
{% endmacro %}
