"""Are C-MAPSS FD001's first 50 engines like its last 50? The quarterly replay's first champion trains on
the first ones and serves the others, while its out-of-fold yardstick is cross-validated on the same
engines it is judged on.

Fits each library on one half of the engines and judges it on every labelled row of the other half, beside
engine-grouped CV within each half; the file's order (engines 1-50 against 51-100), then random halves.
If the halves were alike, the fit across halves would score about what CV within them does.

    python benchmarks/cmapss_halves.py --data-dir ../shared/data/cmapss [--subset FD001 --random-splits 2]
"""

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import polars as pl

from pm_assets.core.features import fit_feature_spec
from pm_assets.core.labels import LabelConfig
from pm_assets.core.metrics import rul_metrics
from pm_assets.core.models import LIBRARIES, TrainConfig, build_training_set, cross_validate, fit_bundle
from pm_assets.sources.loaders.cmapss import load_cmapss

LABELS = LabelConfig(rul_cap_hours=125.0)


def _rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    known = ~np.isnan(truth)
    return rul_metrics(truth[known], predicted[known])["rul_rmse"]


def _oof_rmse(library: str, training: pl.DataFrame, features: list[str], config: TrainConfig) -> float:
    oof = cross_validate(library, training, features, config, LABELS, with_failure_model=False).every_rul_prediction
    return _rmse(oof["rul"].to_numpy(), oof["rul_pred"].to_numpy())


def compare(data, first: list[str], second: list[str], config: TrainConfig) -> dict[str, tuple[float, float, float]]:
    """Per library: RUL RMSE fitted on `first` and judged on `second`, and CV within each half."""
    halves = [(data.telemetry.filter(pl.col("machine_id").is_in(ids)), data.events.filter(pl.col("machine_id").is_in(ids)))
              for ids in (first, second)]
    spec = fit_feature_spec(halves[0][0], seed=config.seed)
    train, judged = (build_training_set(readings, events, spec, LABELS) for readings, events in halves)
    out = {}
    for library in LIBRARIES:
        bundle, _ = fit_bundle(library, train, spec, LABELS, config)
        predicted = np.clip(bundle.rul_model.predict(judged.select(spec.feature_names).to_numpy()), 0, LABELS.rul_cap_hours)
        out[library] = (_rmse(judged["rul"].to_numpy(), predicted), _oof_rmse(library, train, spec.feature_names, config),
                        _oof_rmse(library, judged, spec.feature_names, config))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--subset", default="FD001")
    parser.add_argument("--random-splits", type=int, default=2)
    args = parser.parse_args()
    path = args.data_dir / f"train_{args.subset}.txt"
    if not path.exists():
        sys.exit(f"no {path}: give the folder of NASA's C-MAPSS files")
    data = load_cmapss(path)
    engines = sorted(data.machines["machine_id"].to_list())
    middle = len(engines) // 2
    splits = [("file order", engines)] + [(f"random {seed}", random.Random(seed).sample(engines, len(engines)))
                                          for seed in range(1, args.random_splits + 1)]
    print(f"{args.subset}: RUL RMSE (cap {LABELS.rul_cap_hours:.0f}) on every labelled row")
    print(f"{'halves':<12} {'library':<9} {'fit A -> B':>10} {'CV in A':>8} {'CV in B':>8}")
    for name, order in splits:
        for library, (across, within_a, within_b) in compare(data, order[:middle], order[middle:], TrainConfig()).items():
            print(f"{name:<12} {library:<9} {across:>10.2f} {within_a:>8.2f} {within_b:>8.2f}")


if __name__ == "__main__":
    main()
