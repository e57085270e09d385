# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Each installs what it needs into .venv on its first run.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export MLFLOW_DISABLE_TELEMETRY := true
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: install demo test ui clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pm demo

test: install
	$(BIN)/pytest

ui: install
	mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf data/landing data/warehouse.duckdb data/dagster_home data/logs dbt_sensors/target
