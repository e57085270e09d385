"""`pm replay`: C-MAPSS engines streamed day by day through the daily work and the retraining loop.

The first champion is trained on one file's engines; the other files arrive as phases (new operating conditions or
a new fault mode), and the replay reports on which days feature drift was flagged in each. `pm replay --quarters`
is the longer study of `experiments.quarters`.
"""

import datetime as dt
from pathlib import Path

from pm_assets.drivers import loop
from pm_assets.drivers.runner import ingest_stages, materialize, run_stages, train_stages
from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.replay import cmapss_phases
from pm_assets.storage import landing, paths

#: Retraining cooldown of the replay, in replayed days.
COOLDOWN_DAYS = 7


def run(train_file: Path, stream_files: list[Path], units_per_day: float) -> None:
    """Train on `train_file`'s engines, then stream `stream_files` as phases, `units_per_day` engines arriving a day."""
    train = load_cmapss(train_file)
    train_days = sorted(set(train.telemetry["ts"].dt.date()))
    # every file is read and checked before minutes of training
    phases = cmapss_phases(stream_files, train_days[-1] + dt.timedelta(days=1), units_per_day)
    days = landing.land_dataset(train, paths.landing_dir())
    print(f"== training on {train_file.name}: {train.telemetry.height:,} readings of {train.machines.height} engines ({days[0]}..{days[-1]})")
    run_stages(ingest_stages((days[0], days[-1])))
    run_stages(train_stages((days[0], days[-1])))
    for phase in phases:
        landing.land_dataset(phase.data, paths.landing_dir())
        print(f"== replay phase {phase.name}: {phase.data.machines.height} engines, {units_per_day:g} a day, "
              f"{phase.first_day}..{phase.last_day}")
    materialize("machines")  # the new engines, before their readings arrive
    summary = loop.stream([day for phase in phases for day in phase.days()], phases[1].first_day if len(phases) > 1 else None,
                          cooldown_hours=COOLDOWN_DAYS * 24)
    flagged = {c["day"] for c in summary.failed_checks if c["check"] == "feature_drift"}
    print("== feature drift flagged, per phase")
    for phase in phases:
        mine = [day for day in phase.days() if day.isoformat() in flagged]
        print(f"  {phase.name}: {len(mine)} of {len(phase.days())} days" + (f" (first {mine[0]})" if mine else ""))
    for line in summary.describe():
        print(f"  {line}")
    print(f"written to {paths.demo_summary_path()}")
