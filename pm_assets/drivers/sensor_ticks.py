"""The retraining sensor, evaluated in-process as Dagster's daemon would evaluate it.

`pm demo`, `pm daily` and `pm simulate --advance` run without a daemon. After each day they evaluate
the real `retrain_on_failed_check` against the instance, with the cursor the instance keeps for that
sensor (the one the daemon of `make ui` reads and moves on), and record the evaluation as a tick with
the run it requested, so the UI shows the sensor's ticks and the `retrain` runs they started.

The instance finds a sensor's state and ticks by its selector (code location, repository, name); the
origin recorded with them is that of `workspace.yaml`'s code location.
"""

import sys
import time
from collections.abc import Callable

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.definitions.selector import InstigatorSelector
from dagster._core.definitions.sensor_definition import SensorExecutionData
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from pm_assets.defs.sensors import retrain_on_failed_check
from pm_assets.storage import paths

#: `location_name` in workspace.yaml and `code_location_name` in pyproject's [tool.dg.project].
CODE_LOCATION = "pm_assets"
REPOSITORY = "__repository__"  # the repository every Definitions object becomes
SENSOR_NAME = "retrain_on_failed_check"


def _origin() -> RemoteInstigatorOrigin:
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name="pm_assets.definitions",
                                  working_directory=str(paths.REPO_ROOT))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=CODE_LOCATION)
    return RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, REPOSITORY), SENSOR_NAME)


def _selector_id() -> str:
    return InstigatorSelector(location_name=CODE_LOCATION, repository_name=REPOSITORY, name=SENSOR_NAME).get_id()


def evaluate_retrain_sensor(instance: dg.DagsterInstance, launch: Callable[[dg.RunRequest], str]) -> SensorExecutionData:
    """Evaluate the sensor with its stored cursor, launch what it requests (`launch` returns the run id),
    then store the new cursor and the tick."""
    origin, selector_id = _origin(), _selector_id()
    state = instance.get_instigator_state(origin.get_id(), selector_id)
    data = state.instigator_data if state and isinstance(state.instigator_data, SensorInstigatorData) else SensorInstigatorData()
    started = time.time()
    result = retrain_on_failed_check.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=data.cursor))
    run_ids = [launch(request) for request in result.run_requests or []]
    instance.create_tick(TickData(
        instigator_origin_id=origin.get_id(), instigator_name=SENSOR_NAME, instigator_type=InstigatorType.SENSOR,
        status=TickStatus.SUCCESS if run_ids else TickStatus.SKIPPED, timestamp=started, end_timestamp=time.time(),
        run_ids=run_ids, run_keys=[r.run_key for r in result.run_requests or [] if r.run_key], skip_reason=result.skip_message,
        cursor=result.cursor, selector_id=selector_id,
    ))
    stored = SensorInstigatorData(last_tick_timestamp=started, last_tick_start_timestamp=started, cursor=result.cursor,
                                  last_tick_success_timestamp=time.time(), min_interval=retrain_on_failed_check.minimum_interval_seconds,
                                  sensor_type=retrain_on_failed_check.sensor_type)
    if state is None:
        instance.add_instigator_state(InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.DECLARED_IN_CODE, stored))
    else:
        instance.update_instigator_state(state.with_data(stored))
    return result
