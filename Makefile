# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Each installs what it needs into .venv on its first run.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export MLFLOW_DISABLE_TELEMETRY := true
# `pm` keeps its Dagster instance in $PM_DATA_DIR/dagster_home (data/dagster_home by default); the UI opens the same one
UI_HOME := $(or $(DAGSTER_HOME),$(or $(PM_DATA_DIR),$(CURDIR)/data)/dagster_home)

.PHONY: install demo test ui clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pm demo

test: install
	$(BIN)/pytest

ui: install
	# writes dagster.yaml on first use, and fails runs a killed `pm` left unfinished
	DAGSTER_HOME=$(UI_HOME) $(BIN)/python -c "from pm_assets.drivers.runner import fail_abandoned_runs, instance; fail_abandoned_runs(instance())"
	DAGSTER_HOME=$(UI_HOME) $(BIN)/dg dev

clean:
	find data -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf dbt_sensors/target
