"""Recorded fleets replayed as a stream: C-MAPSS units come into service one after another.

Each file is a phase; its units start `24 / units_per_day` hours apart (one cycle per hour), and the
next phase starts on the day after the previous one's last reading, so every day belongs to one
phase. Replaying `test_FD001` then `test_FD003` after training on `train_FD001` shows how the
monitoring reacts to a fleet with an extra fault mode.

`quarterly_plan` is the drift plan on run-to-failure engines (so truth matures): part of FD001 trains
the first champion, then the rest of FD001, FD002, FD003 and FD004 come into service quarter by quarter.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pm_assets.core.constants import PARTITION_START
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


#: The drift plan's quarters: FD001's other engines, then FD002 (six flight conditions), FD003 (a second
#: fault mode), FD004 (both). Each file's engines run to failure, so every prediction's truth matures.
QUARTER_SUBSETS = ("FD001", "FD002", "FD003", "FD004")


@dataclass
class Quarter:
    name: str  # the subset whose engines make most of it
    engines: list[str]  # in order of service, the next subset's first `mix` engines among its last ones
    first_day: dt.date
    last_day: dt.date

    def days(self) -> list[dt.date]:
        return [self.first_day + dt.timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]


@dataclass
class QuarterPlan:
    history: CmapssData  # the first champion's engines, all failed before the stream begins
    stream: CmapssData  # every other engine, in service one after another
    quarters: list[Quarter]


def _shifted(data: CmapssData, starts: dict[str, dt.datetime], source: str) -> CmapssData:
    """`data` (every engine starting at one origin) with each kept engine moved to start at `starts[engine]`."""
    origin = data.telemetry["ts"].min()
    offsets = pl.DataFrame({"machine_id": list(starts), "_offset": [start - origin for start in starts.values()]},
                           schema={"machine_id": pl.String, "_offset": pl.Duration("us")})
    move = lambda frame: frame.join(offsets, on="machine_id").with_columns(pl.col("ts") + pl.col("_offset")).drop("_offset")  # noqa: E731
    machines = data.machines.join(offsets, on="machine_id").with_columns(
        (pl.lit(origin) + pl.col("_offset")).dt.date().alias("install_date")).drop("_offset")
    return CmapssData(move(data.telemetry), move(data.events), machines, source)


def _concat(parts: list[CmapssData], source: str) -> CmapssData:
    return CmapssData(*(pl.concat([getattr(p, name) for p in parts]) for name in ("telemetry", "events", "machines")), source)


def quarterly_plan(data_dir: Path, quarter_days: int = 10, history_engines: int = 50, mix: int = 5,
                   engines_per_subset: int | None = None, cycle_hours: float = 1.0) -> QuarterPlan:
    """The four training files laid out in time: the first `history_engines` of FD001 come into service over
    the first `quarter_days` from the first partition day; from the day after their last reading, each
    quarter's engines come into service evenly over `quarter_days`, the next subset's first `mix` engines
    alternating with each quarter's last ones. `engines_per_subset` keeps each file's first engines only."""
    if quarter_days < 1 or mix < 0 or history_engines < 2:
        raise ValueError(f"quarter_days must be >= 1, mix >= 0 and history_engines >= 2, got {quarter_days}, {mix}, {history_engines}")
    origin = dt.datetime.combine(PARTITION_START, dt.time())
    files = {subset: load_cmapss(Path(data_dir) / f"train_{subset}.txt", start=origin, cycle_hours=cycle_hours) for subset in QUARTER_SUBSETS}
    engines = {subset: sorted(data.machines["machine_id"].to_list()) for subset, data in files.items()}
    if engines_per_subset is not None:
        engines = {subset: ids[:engines_per_subset + (history_engines if subset == "FD001" else 0)] for subset, ids in engines.items()}
    history_ids, engines["FD001"] = engines["FD001"][:history_engines], engines["FD001"][history_engines:]
    if min(len(ids) for ids in engines.values()) < mix + 2:
        # two of its own at least: each quarter's engines are cross-validated against each other
        raise ValueError(f"each quarter needs mix + 2 = {mix + 2} engines or more: {({s: len(ids) for s, ids in engines.items()})}")
    span = dt.timedelta(days=quarter_days)
    history = _shifted(files["FD001"], _evenly(history_ids, origin, span), "cmapss_quarters_history")
    stream_start = dt.datetime.combine(history.telemetry["ts"].max().date() + dt.timedelta(days=1), dt.time())

    order: list[list[str]] = []  # the engines coming into service in each quarter
    for k, subset in enumerate(QUARTER_SUBSETS):
        own = engines[subset][mix if k else 0:]
        if k + 1 < len(QUARTER_SUBSETS) and mix:
            tail, incoming = own[-mix:], engines[QUARTER_SUBSETS[k + 1]][:mix]
            own = own[:-mix] + [engine for pair in zip(tail, incoming) for engine in pair]
        order.append(own)
    starts = {engine: start for k, own in enumerate(order) for engine, start in _evenly(own, stream_start + k * span, span).items()}
    stream = _concat([_shifted(files[subset], {e: t for e, t in starts.items() if e.startswith(subset)}, f"cmapss_quarters_{subset}")
                      for subset in QUARTER_SUBSETS], "cmapss_quarters_stream")
    last_day = stream.telemetry["ts"].max().date()
    quarters = [Quarter(subset, order[k], (stream_start + k * span).date(),
                        (stream_start + (k + 1) * span).date() - dt.timedelta(days=1) if k + 1 < len(order) else last_day)
                for k, subset in enumerate(QUARTER_SUBSETS)]
    return QuarterPlan(history, stream, quarters)


def _evenly(engines: list[str], start: dt.datetime, span: dt.timedelta) -> dict[str, dt.datetime]:
    """Start times spreading `engines`, in order, evenly over `span` from `start`."""
    return {engine: start + i * span / len(engines) for i, engine in enumerate(engines)}
