"""A simulated fleet that advances day by day, as telemetry would arrive from a plant.

The fleet is drawn once for its whole horizon (`FleetConfig.n_days`, seeded, so the same config
always gives the same fleet) and its days are landed in order: the config and the number of days
landed so far live in `landing/simulation.json`, so `pm simulate --advance 1` lands the next day.
"""

import dataclasses
import datetime as dt
import json

import polars as pl

from pm_assets.sources.simulator import DriftScenario, FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths
from pm_assets.storage.atomic import write_atomic


def save_state(config: FleetConfig, landed_days: int) -> None:
    fields = dataclasses.asdict(config) | {"start_date": config.start_date.isoformat(), "landed_days": landed_days}
    write_atomic(paths.simulation_state_path(), json.dumps(fields, indent=2))


def load_state() -> tuple[FleetConfig, int]:
    """The running fleet's config and how many of its days are landed."""
    if not paths.simulation_state_path().exists():
        raise FileNotFoundError(f"no simulated fleet at {paths.simulation_state_path()}: start one with `pm simulate`")
    fields = json.loads(paths.simulation_state_path().read_text())
    landed = fields.pop("landed_days")
    drift = fields.pop("drift")
    config = FleetConfig(**fields | {"start_date": dt.date.fromisoformat(fields["start_date"]),
                                     "drift": DriftScenario(**drift) if drift else None})
    return config, landed


def land_days(config: FleetConfig, first: int, last: int) -> tuple[list[dt.date], int]:
    """Draw the fleet and land its days `first`..`last` (0-based, inclusive); return them and the readings landed."""
    if not 0 <= first <= last < config.n_days:
        raise ValueError(f"days {first}..{last} are outside the simulated fleet's {config.n_days} days "
                         f"(start a longer one with `pm simulate --days N`)")
    fleet = simulate_fleet(config)
    start = dt.datetime.combine(config.start_date, dt.time()) + dt.timedelta(days=first)
    end = dt.datetime.combine(config.start_date, dt.time()) + dt.timedelta(days=last + 1)
    window = (pl.col("ts") >= start) & (pl.col("ts") < end)
    part = dataclasses.replace(fleet, telemetry=fleet.telemetry.filter(window), events=fleet.events.filter(window))
    landing.land_dataset(part, paths.landing_dir())
    save_state(config, last + 1)
    return [start.date() + dt.timedelta(days=i) for i in range(last - first + 1)], part.telemetry.height
