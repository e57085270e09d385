"""Fixed numbers and names shared by the whole platform (tunables live in `dg.Config` beside their asset)."""

import datetime as dt

#: First day of the daily partitions; the simulator and the C-MAPSS loader start their clocks here.
PARTITION_START = dt.date(2025, 1, 1)

#: The operating settings every source is converted to before landing.
SETTING_COLUMNS = ("op_setting_1", "op_setting_2", "op_setting_3")
SENSOR_PREFIX = "sensor_"

EVENT_TYPES = ("failure", "maintenance", "repair")
FAILURE, REPAIR = "failure", "repair"
#: A repair starts a machine's new life; a repair or a maintenance resets the time since service.
SERVICE_EVENTS = ("repair", "maintenance")

#: Any sensor or setting reading beyond this magnitude is physically impossible and quarantined.
MAX_ABS_READING = 1e7


def sensor_name(index: int) -> str:
    """`sensor_01`, `sensor_02`, … (1-based, zero-padded so names sort in order)."""
    return f"{SENSOR_PREFIX}{index:02d}"
