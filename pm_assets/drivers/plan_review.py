"""What acting on the maintenance plan would have cost over the streamed days, beside the usual policies (`pm demo`).

The policies are judged on the record (`core.recorded_policies`): the champion serving each day made
the predictions they act on, as logged in `monitoring.predictions`; the lives and failures are the
fleet's own, from `machine_events`. The quarterly C-MAPSS replay judges each quarter's engines the same way.
"""

import datetime as dt

import numpy as np
import polars as pl

from pm_assets.core.constants import PARTITION_START
from pm_assets.core.planning import PlanCosts
from pm_assets.core.policies import compared, tune_interval
from pm_assets.core.recorded_policies import Model, evaluate, lives_from_events
from pm_assets.storage.predictions import PREDICTIONS_TABLE
from pm_assets.storage import paths, registry, warehouse

ORIGIN = dt.datetime.combine(PARTITION_START, dt.time())


def _days(column: str) -> pl.Expr:
    return ((pl.col(column) - ORIGIN).dt.total_microseconds() / 86_400e6).alias("day" if column == "ts" else column)


def policies_over(days: list[dt.date], champions: dict[str, str], costs: PlanCosts = PlanCosts(),
                  machines: list[str] | None = None) -> list[dict]:
    """Per policy, what it would have cost over `days` acting on the logged predictions of each day's champion
    (`champions`: ISO day -> version), on every machine or those of `machines`."""
    start, end = ORIGIN + dt.timedelta(days=(days[0] - PARTITION_START).days), ORIGIN + dt.timedelta(days=(days[-1] - PARTITION_START).days + 1)
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        logged = con.execute(f"select machine_id, ts, model_version, predicted_rul as rul_pred, failure_probability as probability "
                         f"from {PREDICTIONS_TABLE} where ts >= $start and ts < $end", {"start": start, "end": end}).pl()
        events = con.execute("select machine_id, ts, event_type from machine_events where ts < $end", {"end": end}).pl()
        first_seen = con.sql("select machine_id, min(ts) as first from machine_timeseries group by 1").pl()
    served = pl.DataFrame({"date": [dt.date.fromisoformat(d) for d in champions], "model_version": list(champions.values())})
    logged = logged.with_columns(pl.col("ts").dt.date().alias("date")).join(served, on=["date", "model_version"]).with_columns(_days("ts"))
    if machines is not None:
        logged, events, first_seen = (frame.filter(pl.col("machine_id").is_in(machines)) for frame in (logged, events, first_seen))
    first = dict(zip(first_seen["machine_id"], first_seen.select(_days("first"))["first"].to_list()))
    lives = lives_from_events(events.with_columns(_days("ts")), first, (end - ORIGIN) / dt.timedelta(days=1))
    history = np.array([life.end - life.start for life in lives if life.failed and life.end < (start - ORIGIN).days])
    models = {}
    for version in set(champions.values()):
        bundle = registry.load_version(version).bundle
        if bundle.intervals is not None:
            models[version] = Model(bundle.intervals, bundle.threshold)
    interval = tune_interval(history if len(history) else np.array([life.end - life.start for life in lives]), costs)
    first_day = (days[0] - PARTITION_START).days
    outcomes = evaluate(lives, logged, models, range(first_day, first_day + len(days)), costs, interval)
    return compared(outcomes, costs)


def policies_over_stream(summary, costs: PlanCosts = PlanCosts(), since: dt.date | None = None,
                         machines: list[str] | None = None) -> list[dict]:
    """`policies_over` the days a loop streamed (`drivers.loop.LoopSummary`; from `since`), each by its serving champion."""
    champions = {d["day"]: d["champion"] for d in summary.days if since is None or d["day"] >= since.isoformat()}
    if not champions:
        return []
    return policies_over([dt.date.fromisoformat(d) for d in champions], champions, costs, machines)


def plan_lines(limit: int = 10) -> list[str]:
    """The published plan in a few lines: its days' services, the largest savings first."""
    planned = pl.read_parquet(paths.maintenance_plan_snapshot_path())
    services = planned.filter(pl.col("service")).sort("planned_day", pl.col("expected_cost_saved").neg())
    first = planned["plan_date"][0] + dt.timedelta(days=1)
    lines = [f"maintenance plan from {first} (scores of {planned['plan_date'][0]}, model v{planned['model_version'][0]}): "
             f"{services.height} service(s) of {planned.height} machines, expected saving {services['expected_cost_saved'].sum():,.0f}"]
    for row in services.head(limit).iter_rows(named=True):
        why = "early: the crew is short in the days after" if "serviced early" in row["reason"] else f"{row['failure_risk']:.0%} risk of failing first"
        lines.append(f"  {row['planned_day']}  {row['machine_id']:<8} RUL {row['rul_hours']:5.0f} h [{row['rul_lower']:.0f}, {row['rul_upper']:.0f}]"
                     f"  saves {row['expected_cost_saved']:8,.0f}  ({why})")
    if services.height > limit:
        lines.append(f"  … {services.height - limit} more: pm sql \"select * from scores.maintenance_plan where service order by planned_day\"")
    return lines


def plan_against_alert(rows: list[dict], costs: PlanCosts = PlanCosts()) -> str | None:
    """The plan's cost against the alert's, in failures: one fleet's few weeks turn on a handful of failures, so a
    gap of one or two does not rank the policies, and the reader should be told so beside the table."""
    by_policy = {r["policy"]: r for r in rows}
    if not {"plan", "alert"} <= by_policy.keys():
        return None
    plan, alert = by_policy["plan"], by_policy["alert"]
    gap = plan["total_cost"] - alert["total_cost"]
    line = (f"plan against alert: {gap:+,.0f} ({plan['unplanned_failures'] - alert['unplanned_failures']:+d} failure(s), "
            f"{costs.failure_cost:,.0f} each)")
    if abs(gap) <= 2 * costs.failure_cost:
        line += (": within two failures, which one fleet's streamed days do not rank; docs/maintenance-plan.md compares "
                 "the policies over many seeds and on C-MAPSS")
    return line
