"""Drift statistics at scale: the platform's binned PSI (numpy) against Evidently's DataDriftPreset.

Both compare a current batch with a reference of the same size, 20 columns, 3 operating regimes;
half the columns of the current batch are shifted by one standard deviation. Prints seconds and what each flagged.

    python benchmarks/drift.py [--rows 1000000] [--columns 20] [--evidently-rows 1000000]
"""

import argparse
import time

import numpy as np
import pandas as pd

from pm_assets.core.drift import drifted_share, fit_reference, fit_relations, psi


def data(rows: int, columns: int, shift: float, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    regimes = rng.choice(3, rows, p=[0.5, 0.3, 0.2])
    base = rng.normal(0, 1, (rows, columns)) + regimes[:, None] * 5.0  # regimes move every column
    base[:, : columns // 2] += shift
    return {f"c{i:02d}": base[:, i] for i in range(columns)}, regimes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--evidently-rows", type=int, default=1_000_000, help="0 skips Evidently")
    args = parser.parse_args()

    reference, ref_regimes = data(args.rows, args.columns, 0.0, 1)
    current, cur_regimes = data(args.rows, args.columns, 1.0, 2)
    start = time.perf_counter()
    profile = fit_reference(reference, ref_regimes)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    result = psi(profile, current, cur_regimes)
    psi_s = time.perf_counter() - start
    heavy = np.random.default_rng(4).choice(3, args.rows, p=[0.2, 0.3, 0.5])  # regime 2 now runs most
    mix = {k: np.random.default_rng(5 + i).normal(0, 1, args.rows) + heavy * 5.0 for i, k in enumerate(reference)}
    mix_result = psi(profile, mix, heavy)
    # the feature-drift check also fits the columns' relations once and scores residuals per batch
    start = time.perf_counter()
    relations = fit_relations(np.column_stack(list(reference.values())), list(reference))
    relations_fit_s = time.perf_counter() - start
    start = time.perf_counter()
    relations.residuals(np.column_stack(list(current.values())))
    residuals_s = time.perf_counter() - start
    print(f"rows: {args.rows:,} x {args.columns} columns, 3 regimes")
    print(f"sensor relations: fit {relations_fit_s:.2f}s, residuals of the batch {residuals_s:.2f}s")
    print(f"binned PSI per regime: fit reference {fit_s:.2f}s, score batch {psi_s:.2f}s; "
          f"drifted share {drifted_share(result.scores):.2f} (expected 0.50); "
          f"regime-mix change alone: drifted share {drifted_share(mix_result.scores):.2f} (expected 0.00)")

    if args.evidently_rows:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        n = args.evidently_rows
        ref_frame = pd.DataFrame({k: v[:n] for k, v in reference.items()})
        cur_frame = pd.DataFrame({k: v[:n] for k, v in current.items()})
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=cur_frame, reference_data=ref_frame)
        evidently_s = time.perf_counter() - start
        share = next(m["value"]["share"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
        print(f"Evidently DataDriftPreset at {n:,} rows: {evidently_s:.1f}s; drifted share {share:.2f}")


if __name__ == "__main__":
    main()
