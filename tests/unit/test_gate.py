"""The shadow gate's judgement (`core.gate`) on constructed rows whose answer is known."""

import numpy as np
import polars as pl

from pm_assets.core.gate import compare, verdict

CAP = 125.0


def _rows(machines: int, per_machine: int, champion_noise: float, challenger_noise: float, seed: int = 0,
          regime: int = 0, prefix: str = "M") -> pl.DataFrame:
    """Each machine runs to failure (RUL from 60 down): both models' predictions are the truth plus their own noise, of
    which half is the machine's own (a bias that lasts its life: its rows are not independent)."""
    rng = np.random.default_rng(seed)
    rul = np.tile(np.linspace(60, 0, per_machine), machines)

    def predicted(noise: float) -> np.ndarray:
        return rul + np.repeat(rng.normal(0, noise / np.sqrt(2), machines), per_machine) + rng.normal(0, noise / np.sqrt(2), rul.size)

    return pl.DataFrame({"machine_id": np.repeat([f"{prefix}{i}" for i in range(machines)], per_machine), "rul": rul,
                         "champion": predicted(champion_noise), "challenger": predicted(challenger_noise), "regime": regime})


def test_the_interval_is_over_machines_and_holds_a_known_difference():
    rows = _rows(machines=40, per_machine=30, champion_noise=10, challenger_noise=6)
    c = compare(rows, CAP)
    assert c.machines == 40 and c.failed_machines == 40 and c.rows == 1200
    assert c.lower < c.difference < c.upper < 0 and abs(c.difference - (6 - 10)) < 1.5
    # as many rows from 4 machines: their own biases dominate, and the interval says the difference is not clear
    few = compare(_rows(machines=4, per_machine=300, champion_noise=10, challenger_noise=6), CAP)
    assert few.rows == 1200 and c.clearly_better() and not few.clearly_better()


def test_the_same_rows_in_any_order_give_the_same_interval():
    rows = _rows(machines=40, per_machine=30, champion_noise=10, challenger_noise=9)
    assert {compare(rows.sample(fraction=1.0, shuffle=True, seed=s), CAP) for s in range(5)} == {compare(rows, CAP)}


def test_thin_evidence_decides_nothing_and_a_clearly_worse_challenger_loses():
    thin = compare(_rows(machines=5, per_machine=60, champion_noise=6, challenger_noise=10), CAP)
    decision, why = verdict(thin, {}, min_rows=200, min_machines=10, min_failures=2)
    assert decision == "waiting" and "5 machines" in why  # 300 rows, but of 5 machines only
    worse = compare(_rows(machines=30, per_machine=30, champion_noise=6, challenger_noise=10), CAP)
    assert verdict(worse, {}, 200, 10, 2)[0] == "challenger lost"
    healthy = _rows(machines=30, per_machine=30, champion_noise=6, challenger_noise=6).with_columns(pl.col("rul") + CAP)
    assert verdict(compare(healthy, CAP), {}, 200, 10, 2)[0] == "waiting"  # no machine failed: nothing known near failure


def test_a_challenger_better_on_a_new_segment_is_not_outvoted_by_the_old_one():
    old = _rows(machines=60, per_machine=30, champion_noise=5, challenger_noise=5.6, seed=1, regime=0, prefix="old")
    new = _rows(machines=12, per_machine=30, champion_noise=12, challenger_noise=5, seed=2, regime=1, prefix="new")
    rows = pl.concat([old, new])
    overall = compare(rows, CAP)
    segments = {f"regime {r}": compare(part, CAP) for (r,), part in rows.partition_by("regime", as_dict=True).items()}
    assert segments["regime 1"].clearly_better() and not overall.clearly_worse()
    decision, why = verdict(overall, segments, 200, 10, 2, margin=0.5)  # a margin the overall figure does not clear
    assert decision == "promoted" and "regime 1" in why
    assert verdict(overall, {"regime 0": segments["regime 0"]}, 200, 10, 2, margin=0.5)[0] == "waiting"


def test_a_challenger_with_no_worthwhile_gain_left_is_dropped_once_the_evidence_is_clear():
    # a retraining on much the same data: the challenger makes the champion's errors, plus a little of its own
    def alike(machines: int) -> pl.DataFrame:
        rows = _rows(machines=machines, per_machine=30, champion_noise=8, challenger_noise=8, seed=4)
        rho = 0.95  # its errors' correlation with the champion's, at the same size
        return rows.with_columns(challenger=pl.col("rul") + rho * (pl.col("champion") - pl.col("rul"))
                                 + np.sqrt(1 - rho ** 2) * (pl.col("challenger") - pl.col("rul")))

    same = compare(alike(80), CAP)
    assert not same.clearly_worse() and not same.clearly_better()
    decision, why = verdict(same, {}, 200, 10, 2, margin=0.05)  # a margin it does not clear
    assert decision == "challenger lost" and "no gain of 5%" in why
    # the same on a dozen machines: the interval still holds a worthwhile gain, so the trial goes on
    few = compare(alike(12), CAP)
    assert verdict(few, {}, 200, 10, 2, margin=0.05)[0] == "waiting"
