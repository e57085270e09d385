# The one image of the Kubernetes deployment (deploy/helm/): the Dagster code location, its run pods and `pm serve`.
# Installs the project as `make` does (uv, the ranges pinned in pyproject.toml, bytecode compiled at build time), with
# the `k8s` extra: dagster-k8s, which run pods need to load the instance the chart configures.
#   docker build -t registry.example.com/pm-platform:0.1.0 .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    PM_DATA_DIR=/var/lib/pm

# libgomp: LightGBM's and CatBoost's OpenMP threads
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md workspace.yaml ./
COPY pm_assets ./pm_assets
COPY pm_serving ./pm_serving
COPY dbt_sensors ./dbt_sensors
# editable, as `make install`: the dbt project is found beside the package (pm_assets.storage.paths.REPO_ROOT);
# loading the definitions once writes dbt's manifest into the image, so no pod parses the project at start
RUN pip install --no-cache-dir uv \
    && uv pip install --system --no-cache --compile-bytecode -e ".[k8s]" \
    && python -c 'import pm_assets.definitions' \
    && useradd --create-home --uid 10001 pm && mkdir -p /var/lib/pm && chown -R pm /var/lib/pm /app/dbt_sensors

USER pm
EXPOSE 8000 3030
CMD ["pm", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
