# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Each installs what it needs into .venv on its first run.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export MLFLOW_DISABLE_TELEMETRY := true
# `pm` keeps its Dagster instance in $PM_DATA_DIR/dagster_home (data/dagster_home by default); the UI opens the same one
UI_HOME := $(or $(DAGSTER_HOME),$(or $(PM_DATA_DIR),$(CURDIR)/data)/dagster_home)

.PHONY: install demo test test-slow ui clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/pm demo

test: install
	$(BIN)/pytest -m "not slow"

# the slow end-to-end tier: scale profile, quarterly replay, self-healing loops, kills (CI runs both)
test-slow: install
	$(BIN)/pytest -m slow

ui: install
	# writes dagster.yaml on first use, and fails runs a killed `pm` left unfinished; the daily partitions end at the
	# last landed day, so "materialize missing" means days that have data
	DAGSTER_HOME=$(UI_HOME) $(BIN)/python -c "from pm_assets.drivers.runner import fail_abandoned_runs, instance; fail_abandoned_runs(instance())"
	DAGSTER_HOME=$(UI_HOME) PM_PARTITION_END=$$($(BIN)/python -c "from pm_assets.drivers.cli import partition_end; print(partition_end())") $(BIN)/dg dev

clean:
	find data -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf dbt_sensors/target
