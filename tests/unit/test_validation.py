import datetime as dt

import polars as pl
import pytest

from pm_assets.sources.validation import EVENTS, MACHINES, TELEMETRY, validate

DAY = dt.date(2025, 1, 1)
KNOWN = pl.Series(["M1", "M2"])
GOOD = {"machine_id": "M1", "ts": "2025-01-01T05:00:00", "cycle": "3", "op_setting_1": "1", "op_setting_2": "2",
        "op_setting_3": "3", "sensor_01": "10.5", "sensor_02": "7"}


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"machine_id": None}, "missing machine_id"),
        ({"machine_id": "  "}, "missing machine_id"),
        ({"ts": None}, "missing ts"),
        ({"cycle": None}, "missing cycle"),
        ({"ts": "yesterday"}, "unparseable ts"),
        ({"cycle": "three"}, "unparseable cycle"),
        ({"sensor_02": "12,5"}, "unparseable sensor_02"),
        ({"sensor_01": "inf"}, "impossible sensor_01"),
        ({"sensor_01": "1e12"}, "impossible sensor_01"),
        ({"cycle": "-1"}, "impossible cycle"),
        ({"ts": "2025-01-02T00:00:00"}, "ts outside partition 2025-01-01"),
        ({"machine_id": "M9"}, "unknown machine_id"),
    ],
)
def test_each_bad_row_is_quarantined_with_its_reason(change, reason):
    frame = pl.DataFrame([GOOD, {**GOOD, **change}], schema={c: pl.String for c in GOOD})
    result = validate(frame, TELEMETRY, DAY, KNOWN)
    assert result.valid.height == 1
    assert result.quarantined.height == 1
    assert result.quarantined["reason"][0].startswith(reason)
    assert '"machine_id"' in result.quarantined["record"][0]  # the original row is kept


def test_missing_sensor_value_is_valid_and_stays_missing():
    frame = pl.DataFrame([{**GOOD, "sensor_01": None}], schema={c: pl.String for c in GOOD})
    result = validate(frame, TELEMETRY, DAY, KNOWN)
    assert result.valid.height == 1 and result.valid["sensor_01"][0] is None


def test_typed_frames_are_cast_to_the_canonical_schema():
    frame = pl.DataFrame({"machine_id": ["M1"], "ts": [dt.datetime(2025, 1, 1, 3)], "cycle": [1], "op_setting_1": [1.0],
                          "op_setting_2": [1.0], "op_setting_3": [1.0], "sensor_01": [float("nan")]})
    result = validate(frame, TELEMETRY, DAY, KNOWN)
    assert result.valid.schema["cycle"] == pl.Int64 and result.valid["sensor_01"][0] is None


def test_a_wrong_file_layout_is_an_error_naming_the_columns():
    frame = pl.DataFrame({"machine": ["M1"], "ts": ["2025-01-01"]})
    with pytest.raises(ValueError, match=r"missing \['machine_id'.*unexpected \['machine'\]"):
        validate(frame, TELEMETRY, DAY, KNOWN)


def test_events_need_a_known_type_and_machines_a_unique_id():
    events = pl.DataFrame({"machine_id": ["M1", "M2"], "ts": ["2025-01-01T01:00:00"] * 2, "event_type": ["failure", "explosion"],
                           "failure_mode": [None, None]})
    result = validate(events, EVENTS, DAY, KNOWN)
    assert result.quarantined["reason"].to_list() == ["event_type not one of ['failure', 'maintenance', 'repair']"]
    machines = pl.DataFrame({"machine_id": ["M1", "M1"], "model_type": ["A", "B"], "site": ["s", "s"], "install_date": ["2025-01-01"] * 2})
    result = validate(machines, MACHINES)
    assert result.valid.height == 1 and result.quarantined["reason"].to_list() == ["duplicate machine_id"]


def test_rows_read_always_add_up():
    rows = [GOOD, {**GOOD, "ts": "bad"}, {**GOOD, "machine_id": "M7"}, {**GOOD, "sensor_01": "nan"}]
    result = validate(pl.DataFrame(rows, schema={c: pl.String for c in GOOD}), TELEMETRY, DAY, KNOWN)
    assert result.rows_read == 4 == result.valid.height + result.quarantined.height
