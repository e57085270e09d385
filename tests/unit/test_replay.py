"""The FD001 -> FD003 replay: a model trained on train_FD001 watches test_FD001 units, then test_FD003
units (a fleet with an extra fault mode). The daily drift decision must stay quiet on FD001 and fire on FD003."""

import datetime as dt

import polars as pl

from pm_assets.core.drift_reference import build_reference, compare
from pm_assets.core.features import build_features, fit_feature_spec
from pm_assets.core.labels import LabelConfig
from pm_assets.core.models import TrainConfig, build_training_set, fit_bundle
from pm_assets.core.scoring import with_predictions
from pm_assets.defs.assets.monitoring import DriftConfig
from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.replay import cmapss_phases


def test_replay_flags_fd003_and_not_fd001(cmapss_dir):
    train = load_cmapss(cmapss_dir / "train_FD001.txt")
    spec = fit_feature_spec(train.telemetry)
    training = build_training_set(train.telemetry, train.events, spec, LabelConfig())
    bundle, _ = fit_bundle("lightgbm", training, spec, LabelConfig(), TrainConfig(iterations=30, n_folds=2))
    reference = build_reference("fd001", spec, with_predictions(bundle, build_features(train.telemetry, spec, train.events)))
    config = DriftConfig()

    fd001, fd003 = cmapss_phases([cmapss_dir / "test_FD001.txt", cmapss_dir / "test_FD003.txt"], dt.date(2025, 2, 1))
    assert fd001.last_day < fd003.first_day
    flagged: dict[str, list[bool]] = {}
    for phase in (fd001, fd003):
        scored = with_predictions(bundle, build_features(phase.data.telemetry, spec, phase.data.events))
        flagged[phase.name] = [compare(reference, scored.filter(pl.col("ts").dt.date() == day), config.psi_threshold).drifted_share
                               > config.max_drifted_share for day in phase.days()]
    assert len(flagged["test_FD001"]) >= 15 and not any(flagged["test_FD001"]), flagged
    # days with too few readings are not judged: the first and last days of a phase
    assert sum(flagged["test_FD003"]) >= 0.8 * len(flagged["test_FD003"]) - 4, flagged
