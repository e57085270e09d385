"""`pm simulate --advance N` counts days done, not days landed: a run that died after landing its day
does that day's work when repeated, and lands nothing more."""

import dagster as dg
import pytest

from pm_assets.drivers.cli import main
from pm_assets.drivers.runner import instance
from pm_assets.sources import simulation


def _daily_partitions() -> list[str]:
    runs = instance().get_runs(dg.RunsFilter(job_name="daily", statuses=[dg.DagsterRunStatus.SUCCESS]))
    return sorted(run.tags["dagster/partition"] for run in runs)


@pytest.mark.slow
def test_advance_after_a_run_died_past_landing_does_the_missing_day(data_dir, monkeypatch):
    main(["simulate", "--machines", "8", "--days", "33", "--through", "29", "--readings-per-day", "24"])
    main(["ingest"])
    main(["train"])
    # as if `pm simulate --advance 1` had been killed once its day was landed
    main(["simulate", "--advance", "1", "--land-only"])
    assert simulation.load_state()[1] == 31 and _daily_partitions() == []

    main(["simulate", "--advance", "1"])
    assert simulation.load_state()[1] == 31  # nothing more landed
    assert _daily_partitions() == ["2025-01-31"]  # the landed day's work was done

    main(["simulate", "--advance", "1"])
    assert simulation.load_state()[1] == 32 and _daily_partitions() == ["2025-01-31", "2025-02-01"]
