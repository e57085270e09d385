"""Every environment variable the platform reads, and what it is for: one list.

The code reads them where they are used; `tests/unit/test_environment.py` holds this list equal to the names the
code mentions, and `tests/deploy/test_helm_values.py` checks that the deployment files set only names listed here,
so a renamed setting cannot leave a deployment silently setting a variable nobody reads.
"""

PLATFORM = {
    "PM_DATA_DIR": "where the warehouse, landing files, models, MLflow store and Dagster home live (default ./data)",
    "PM_API_KEY": "the key `pm serve` requires of each request (unset: no key)",
    "PM_SERVE_FOLLOW": "what a serving worker polls for a new champion: `pointer` (the file) or `alias` (the registry)",
    "PM_SERVE_POLL_SECONDS": "how often a serving worker polls for a new champion (default 5)",
    "PM_INFERENCE_LOG_URL": "s3://bucket/prefix/ the service ships its inference log to (unset: kept under PM_DATA_DIR)",
    "PM_SCORES_URL": "s3://bucket/prefix/ the fleet scores and plan snapshots are copied to, and replicas read them from",
    "PM_MLFLOW_TRACKING_URI": "the MLflow tracking store or server (default sqlite under PM_DATA_DIR)",
    "PM_DAGSTER_POSTGRES_URL": "Dagster's instance in PostgreSQL (postgresql+psycopg2://…): the scale profile",
    "PM_MAX_CONCURRENT_RUNS": "runs at once with the scale profile (default 4)",
    "PM_WAREHOUSE_WRITERS": "steps writing the warehouse at once with the scale profile (default 4)",
    "PM_SHARDS": "machine shards of a day's raw load, one run each (default 1)",
    "PM_LAKE_CATALOG": "the DuckLake catalog (postgres:…): the warehouse becomes the lake",
    "PM_LAKE_DATA_PATH": "where the lake's Parquet files go (s3://… or a folder)",
    "PM_S3_ENDPOINT": "host:port of an S3-compatible store other than AWS",
    "PM_S3_URL_STYLE": "`path` or `vhost` addressing for that store",
    "PM_S3_USE_SSL": "`false` for a plain-HTTP store (default true)",
    "PM_DUCKDB_EXTENSIONS": "where DuckDB's extensions are installed from their wheels (default under PM_DATA_DIR)",
    "PM_DUCKDB_MEMORY_LIMIT": "DuckDB's memory limit per connection (default 2GB)",
    "PM_LOCK_WAIT_SECONDS": "how long a command waits for another process's hold on the warehouse (default 60)",
    "PM_RETRAIN_COOLDOWN_HOURS": "the retraining sensor's pause between two retraining requests (default 12)",
    "PM_ALERT_WEBHOOK_URL": "the webhook the alert sensors post to (Slack-compatible JSON; unset: nobody is told)",
    "PM_PAGE_URL": "the planner's page the alerts link machines to (default http://127.0.0.1:8000)",
    "PM_DAGSTER_URL": "the Dagster UI the alerts link runs to (default http://127.0.0.1:3000)",
    "PM_PARTITION_END": "the day after the last daily partition the UI shows (set by `make ui` from the landed days)",
    "PM_WINDOW_START": "set by the platform for dbt: the first day of the run's window",
    "PM_WINDOW_END": "set by the platform for dbt: the day after the run's window",
    "PM_POSTGRES_BIN": "where `pm stack` finds PostgreSQL's initdb and pg_ctl",
    "PM_LOG_LEVEL": "the log level of the Dagster runs `pm` starts (default WARNING)",
    "PM_DEBUG": "`1`: show the full traceback of an error",
}

#: Read by the libraries the platform configures (Dagster, boto3, DuckDB's httpfs through the platform's secret).
LIBRARIES = {
    "DAGSTER_HOME": "Dagster's instance folder (the Helm chart sets it in every pod)",
    "AWS_ACCESS_KEY_ID": "S3 credentials for the lake, MLflow's artifacts and the inference log",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_REGION": "",
}

KNOWN = PLATFORM | LIBRARIES
