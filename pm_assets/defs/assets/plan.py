"""The maintenance plan: which machine to service on which of the next days, from the fleet's RUL ranges, at least
expected cost under the crew's capacity (`core.planning`), in `scores.maintenance_plan` and a snapshot the service reads."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets.core.planning import PlanCosts, PlanInput, plan
from pm_assets.storage.predictions import SCORES_TABLE
from pm_assets.defs.partitions import daily_partitions, partition_day
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import paths, registry, shared_snapshots
from pm_assets.storage.atomic import write_atomic
from pm_assets.storage.warehouse import create_table, transaction

PLAN_TABLE = "scores.maintenance_plan"


class MaintenancePlanConfig(dg.Config):
    """Costs in one currency; defaults of `core.planning.PlanCosts`."""

    failure_cost: float = PlanCosts.failure_cost  # an unplanned failure: repair and downtime
    service_cost: float = PlanCosts.service_cost  # a planned service
    wasted_life_cost_per_hour: float = PlanCosts.wasted_life_cost_per_hour  # each hour of useful life a service throws away
    capacity: int = PlanCosts.capacity  # services the crew can do per day
    horizon_days: int = PlanCosts.horizon_days  # days planned, from the day after the scored one
    booked: dict[str, str] = {}  # machine id -> ISO day it is already scheduled on (takes that day's slot)

    def costs(self) -> PlanCosts:
        return PlanCosts(self.failure_cost, self.service_cost, self.wasted_life_cost_per_hour, self.capacity, self.horizon_days)


def booked_days(booked: dict[str, str], first_day: dt.date) -> dict[str, int]:
    """Booked services as day indexes of the plan; a booking before its first day is over and ignored."""
    days = {}
    for machine, day in booked.items():
        try:
            index = (dt.date.fromisoformat(day) - first_day).days
        except ValueError:
            raise ValueError(f"booked[{machine!r}] is {day!r}: expected an ISO day such as {first_day.isoformat()}") from None
        if index >= 0:
            days[machine] = index
    return days


@dg.asset(group_name="scoring", kinds={"duckdb", "highs"}, partitions_def=daily_partitions, deps=["fleet_scores"])
def maintenance_plan(context: dg.AssetExecutionContext, config: MaintenancePlanConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Each machine serviced or not, and on which of the next `horizon_days` days, chosen by HiGHS to save the most
    expected cost (failures, services, thrown-away life) with at most `capacity` services a day."""
    try:
        costs = config.costs()
    except ValueError as error:
        raise dg.Failure(f"maintenance_plan config: {error}") from None
    day = partition_day(context.partition_key)
    first_day = day + dt.timedelta(days=1)
    with warehouse.connect(read_only=True) as con:
        scores = con.sql(f"select machine_id, ts, rul_hours, failure_probability, model_version from {SCORES_TABLE} order by machine_id").pl()
    if scores.is_empty():
        raise dg.Failure("no fleet scores to plan from: materialize fleet_scores first")
    version = scores["model_version"][0]
    intervals = registry.load_version(version).bundle.intervals
    if intervals is None:
        raise dg.Failure(f"model v{version} has no calibrated RUL ranges (trained before they existed): retrain it (the `retrain` job)")
    start = dt.datetime.combine(first_day, dt.time())
    hours = ((start - scores["ts"]).dt.total_seconds() / 3600).clip(lower_bound=0).to_numpy()
    try:
        planned = plan(intervals, PlanInput(scores["machine_id"].to_list(), scores["rul_hours"].to_numpy(), hours,
                                            booked_days(config.booked, first_day), scores["failure_probability"].to_numpy()), costs)
    except ValueError as error:
        raise dg.Failure(f"maintenance_plan config: {error}") from None
    planned = planned.with_columns(
        pl.lit(day).alias("plan_date"),
        (pl.lit(first_day) + pl.duration(days=pl.col("day_index"))).alias("planned_day"),
        pl.lit(version).alias("model_version"),
    ).select("plan_date", "machine_id", "service", "planned_day", *[c for c in planned.columns if c not in ("machine_id", "service")],
             "model_version")
    with warehouse.connect() as con:
        con.execute("create schema if not exists scores")
        create_table(con, PLAN_TABLE, "(plan_date date, machine_id varchar, service boolean, planned_day date, day_index integer, expected_cost_saved double, "
                                      "failure_risk double, cost_without_service double, rul_hours double, rul_lower double, rul_upper double, "
                                      "reason varchar, model_version varchar)")
        with transaction(con, _planned=planned):
            con.execute(f"delete from {PLAN_TABLE} where plan_date = $day", {"day": day})
            con.execute(f"insert into {PLAN_TABLE} by name select * from _planned")
    snapshot = write_atomic(paths.maintenance_plan_snapshot_path(), planned.write_parquet)
    shared = shared_snapshots.publish(snapshot)  # replicas without the data directory poll it there
    services = planned.filter(pl.col("service")).sort("planned_day", pl.col("expected_cost_saved").neg())
    per_day = services.group_by("planned_day").agg(pl.len().alias("services"), pl.col("expected_cost_saved").sum().alias("saved"))
    context.log.info(f"plan from {first_day}: {services.height} services in {costs.horizon_days} days "
                     f"(capacity {costs.capacity}/day), expected saving {services['expected_cost_saved'].sum():,.0f}")
    return dg.MaterializeResult(metadata={
        "first_day": str(first_day),
        "services_planned": services.height,
        "services_first_day": int((services["day_index"] == 0).sum()),
        "expected_cost_saved": float(services["expected_cost_saved"].sum()),  # plotted over the partitions by the UI
        "expected_cost_saved_first_day": float(services.filter(pl.col("day_index") == 0)["expected_cost_saved"].sum()),
        "crew_utilisation": float(services.height / (costs.capacity * costs.horizon_days)),
        "machines": planned.height,
        "model_version": version,
        "snapshot": dg.MetadataValue.path(str(snapshot)),
        **({"shared_snapshot": dg.MetadataValue.url(shared)} if shared else {}),
        "schedule": dg.MetadataValue.md(services.select("planned_day", "machine_id", pl.col("expected_cost_saved").round(0),
                                                        pl.col("failure_risk").round(3), pl.col("rul_hours").round(1),
                                                        pl.col("rul_lower").round(1), pl.col("rul_upper").round(1), "reason")
                                        .head(50).to_pandas().to_markdown(index=False) if services.height else "no service planned"),
        "per_day": dg.MetadataValue.md(per_day.sort("planned_day").to_pandas().to_markdown(index=False) if per_day.height else "-"),
    })
