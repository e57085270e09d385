"""The retraining sensor against a real temporary Dagster instance with real check evaluations."""

import datetime as dt
import json

import dagster as dg
import pytest

from pm_assets.defs.sensors import FailedCheck, data_clock, decide, retrain_on_failed_check


@pytest.fixture(autouse=True)
def _empty_registry(data_dir):
    """The sensor asks the registry whether a challenger is in shadow: a fresh, empty one."""


class DriftOutcome(dg.Config):
    feature_drift_passes: bool = True


# a stand-in `drift_report` whose checks pass or fail on command: the sensor reads only their evaluations
@dg.asset(
    name="drift_report",
    check_specs=[dg.AssetCheckSpec("feature_drift", asset="drift_report"), dg.AssetCheckSpec("prediction_drift", asset="drift_report")],
)
def drift_report_outcome(config: DriftOutcome):
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="feature_drift", passed=config.feature_drift_passes, metadata={"partition": "2025-04-02"})
    yield dg.AssetCheckResult(check_name="prediction_drift", passed=True, metadata={"partition": "2025-04-02"})


@dg.asset(
    name="drift_report",
    check_specs=[dg.AssetCheckSpec("feature_drift", asset="drift_report"), dg.AssetCheckSpec("prediction_drift", asset="drift_report")],
)
def prediction_drift_only():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="feature_drift", passed=True)
    yield dg.AssetCheckResult(check_name="prediction_drift", passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset(name="model_performance", check_specs=[dg.AssetCheckSpec("performance_degradation", asset="model_performance")])
def accuracy_dropped():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="performance_degradation", passed=False, metadata={"partition": "2025-04-09"})


def _evaluate(instance, passes: bool, cursor: str | None):
    dg.materialize([drift_report_outcome], instance=instance,
                   run_config={"ops": {"drift_report": {"config": {"feature_drift_passes": passes}}}})
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = retrain_on_failed_check(context)
    return result, context.cursor


def test_a_failed_check_requests_retraining_tagged_with_the_check(instance):
    result, cursor = _evaluate(instance, passes=False, cursor=None)
    assert isinstance(result, dg.RunRequest)
    assert result.tags["pm/trigger_check"] == "feature_drift"
    assert result.tags["pm/trigger_partition"] == "2025-04-02"
    assert "last_request_at" in json.loads(cursor)


def test_a_failed_accuracy_check_requests_retraining(instance):
    dg.materialize([accuracy_dropped], instance=instance)
    result = retrain_on_failed_check(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.RunRequest)
    assert (result.tags["pm/trigger_check"], result.tags["pm/trigger_partition"]) == ("performance_degradation", "2025-04-09")


def test_a_prediction_drift_warning_alone_requests_nothing(instance):
    dg.materialize([prediction_drift_only], instance=instance)
    result = retrain_on_failed_check(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)


def test_passing_checks_request_nothing(instance):
    result, _ = _evaluate(instance, passes=True, cursor=None)
    assert isinstance(result, dg.SkipReason)


def test_cooldown_holds_and_then_releases(instance, monkeypatch):
    first, cursor = _evaluate(instance, passes=False, cursor=None)
    assert isinstance(first, dg.RunRequest)
    again, cursor = _evaluate(instance, passes=False, cursor=cursor)  # drift persists the next day
    assert isinstance(again, dg.SkipReason) and "cooldown" in again.skip_message
    monkeypatch.setenv("PM_RETRAIN_COOLDOWN_HOURS", "0")
    after, _ = _evaluate(instance, passes=False, cursor=cursor)
    assert isinstance(after, dg.RunRequest)


def test_no_retraining_while_a_challenger_is_in_shadow():
    failure = [FailedCheck("feature_drift", "2025-04-02", 10, "run")]
    result, cursor = decide(failure, {}, 0, challenger="7")
    assert isinstance(result, dg.SkipReason) and "challenger v7 is in shadow" in result.skip_message
    assert cursor == {"last_record_id": 10}  # acknowledged; the cooldown clock is untouched


@pytest.mark.parametrize("elapsed_hours, expect_request", [(1, False), (13, True)])
def test_decide_respects_the_cooldown_window_on_the_data_clock(elapsed_hours, expect_request):
    failure = [FailedCheck("feature_drift", "2025-04-02", 10, "run")]
    day_end = data_clock("2025-04-02")
    assert day_end == dt.datetime(2025, 4, 3, tzinfo=dt.UTC).timestamp()
    result, cursor = decide(failure, {"last_record_id": 5, "last_request_at": day_end - elapsed_hours * 3600}, 12 * 3600)
    assert isinstance(result, dg.RunRequest) is expect_request
    assert cursor["last_record_id"] == 10  # seen either way: a storm of failures makes one request
