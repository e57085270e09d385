"""The shadow gate's judgement: is the challenger better than the champion on the rows both predicted, and is the
evidence enough to say so?

Rows of one machine are strongly correlated, so the uncertainty comes from a bootstrap over machines, not rows:
each resample draws machines with replacement and pools their squared errors. The comparison is also made per
segment (an operating regime, say): a challenger that has learned a new segment is not outvoted by many rows of
an old one where both do the same.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Comparison:
    """Challenger's minus champion's pooled RUL RMSE on shared rows, with its bootstrap interval over machines."""

    difference: float
    lower: float
    upper: float
    champion_rmse: float
    challenger_rmse: float
    rows: int
    machines: int
    failed_machines: int  # machines with a matured RUL below the cap among the rows: lives that ended in a failure

    def clearly_better(self) -> bool:
        return self.upper < 0

    def clearly_worse(self) -> bool:
        return self.lower > 0

    def figures(self, prefix: str = "") -> dict[str, float | int]:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items()}


def compare(rows: pl.DataFrame, cap: float, coverage: float = 0.9, resamples: int = 2000, seed: int = 0) -> Comparison:
    """`rows`: machine_id, rul (truth), champion, challenger (predictions), one per shared matured row."""
    per_machine = rows.group_by("machine_id").agg(
        pl.len().alias("n"), ((pl.col("champion") - pl.col("rul")) ** 2).sum().alias("champion"),
        ((pl.col("challenger") - pl.col("rul")) ** 2).sum().alias("challenger"), (pl.col("rul").min() < cap).alias("failed")
    ).sort("machine_id")  # the draws pick machines by position: in an order of their own, the same rows give the same interval
    n, sse_cp, sse_ch = (per_machine[c].to_numpy().astype(float) for c in ("n", "champion", "challenger"))
    if n.sum() == 0:
        nan = float("nan")
        return Comparison(nan, nan, nan, nan, nan, 0, 0, 0)
    champion, challenger = np.sqrt(sse_cp.sum() / n.sum()), np.sqrt(sse_ch.sum() / n.sum())
    draws = np.random.default_rng(seed).integers(0, len(n), size=(resamples, len(n)))
    weights = np.zeros((resamples, len(n)))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    total = weights @ n
    differences = np.sqrt(weights @ sse_ch / total) - np.sqrt(weights @ sse_cp / total)
    tail = (1 - coverage) / 2
    lower, upper = np.quantile(differences, [tail, 1 - tail])
    return Comparison(float(challenger - champion), float(lower), float(upper), float(champion), float(challenger),
                      int(n.sum()), len(n), int(per_machine["failed"].sum()))


def enough(comparison: Comparison, min_rows: int, min_machines: int, min_failures: int) -> bool:
    return comparison.rows >= min_rows and comparison.machines >= min_machines and comparison.failed_machines >= min_failures


def verdict(overall: Comparison, segments: dict[str, Comparison], min_rows: int, min_machines: int, min_failures: int,
            margin: float = 0.0, min_gain: float = 0.05) -> tuple[str, str]:
    """("promoted" | "challenger lost" | "waiting", why).

    Promoted when, on enough evidence, the challenger's RMSE is lower overall (by `margin`), or it is clearly better
    on a segment with enough evidence of its own while not clearly worse overall. Lost when it is clearly worse
    overall and clearly better on no segment, or when the interval leaves it no gain of `min_gain` of the champion's
    RMSE, overall nor on any segment with enough evidence: a trial that cannot end in a worthwhile promotion holds
    back the retraining a failed check asks for. Otherwise the trial goes on: thin or mixed evidence decides nothing."""
    if not enough(overall, min_rows, min_machines, min_failures):
        return "waiting", (f"{overall.rows} shared matured rows of {overall.machines} machines, {overall.failed_machines} of them "
                           f"failed (deciding needs {min_rows}, {min_machines} and {min_failures})")
    interval = f"RMSE difference {overall.difference:+.2f} (90 % over machines: {overall.lower:+.2f} to {overall.upper:+.2f})"
    if overall.challenger_rmse < overall.champion_rmse * (1 - margin):
        return "promoted", f"better overall: {interval}"
    won = [name for name, c in segments.items() if enough(c, min_rows, min_machines, min_failures) and c.clearly_better()]
    if won and not overall.clearly_worse():
        return "promoted", f"clearly better on {', '.join(won)}, not clearly worse overall: {interval}"
    if overall.clearly_worse() and not won:
        return "challenger lost", f"clearly worse: {interval}"
    judged = [c for c in segments.values() if enough(c, min_rows, min_machines, min_failures)]
    if all(c.lower > -min_gain * c.champion_rmse for c in (overall, *judged)):
        return "challenger lost", f"no gain of {min_gain:.0%} left in the interval, overall or on a segment: {interval}"
    return "waiting", f"not clearly worse yet: {interval}"
