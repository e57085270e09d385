"""Recorded fleets replayed as a stream: C-MAPSS units come into service one after another.

Each file is a phase; its units start `24 / units_per_day` hours apart (one cycle per hour), and the
next phase starts on the day after the previous one's last reading, so every day belongs to one
phase. Replaying `test_FD001` then `test_FD003` after training on `train_FD001` shows how the
monitoring reacts to a fleet with an extra fault mode.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pm_assets.sources.loaders.cmapss import CmapssData, load_cmapss


@dataclass
class Phase:
    name: str
    data: CmapssData
    first_day: dt.date
    last_day: dt.date

    def days(self) -> list[dt.date]:
        return [self.first_day + dt.timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]


def cmapss_phases(files: list[Path], start: dt.date, units_per_day: float = 10.0) -> list[Phase]:
    """The files' units laid out in time from `start`, one phase after the other."""
    if units_per_day <= 0:
        raise ValueError(f"units_per_day must be > 0, got {units_per_day}")
    phases = []
    for path in files:
        data = load_cmapss(path, start=dt.datetime.combine(start, dt.time()), stagger_hours=24 / units_per_day)
        first, last = data.telemetry["ts"].min().date(), data.telemetry["ts"].max().date()
        phases.append(Phase(Path(path).stem, data, first, last))
        start = last + dt.timedelta(days=1)
    return phases
