"""CatBoost's symmetric trees evaluated in numpy, for the few rows of a serving request.

CatBoost's `predict` spends ~0.15 ms setting up each call (a `Pool` and its evaluator) to walk 250 trees in
~0.01 ms: for a request of one machine that was half of its cost. In a symmetric (oblivious) tree every row
meets the same feature and border at each depth, so a row's leaf is the bits of its comparisons read as a
number. The trees come from CatBoost's own JSON export, compared as CatBoost compares them (in float32,
a missing value as the model's `nan_value_treatment` says); a test holds the result equal to `predict`.

>>> from catboost import CatBoostRegressor
>>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0] * 2
>>> model = CatBoostRegressor(iterations=5, depth=2, verbose=0, allow_writing_files=False).fit(X, y)
>>> bool(np.allclose(SymmetricTrees.of(model).raw(X), model.predict(X)))
True
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SymmetricTrees:
    columns: np.ndarray  # (trees x depth,) the feature column each split reads, tree by tree
    borders: np.ndarray  # (trees x depth,) float32: a split is true where the value is greater
    nan_true: np.ndarray  # (trees x depth,) bool: a missing value counts as greater (CatBoost's `AsTrue`)
    leaves: np.ndarray  # (trees x 2**depth,) leaf values, flattened tree by tree
    depth: int
    scale: float
    bias: float

    @classmethod
    def of(cls, model: Any) -> "SymmetricTrees | None":
        """The trees of a fitted CatBoost model, or None where it is not one-dimensional symmetric trees over
        float features only (categorical or text features, another grow policy, several outputs)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.json"
            model.save_model(str(path), format="json")
            exported = json.loads(path.read_text())
        info = exported.get("features_info", {})
        trees = exported.get("oblivious_trees")
        if not trees or set(info) - {"float_features"}:
            return None
        float_features = info.get("float_features", [])
        depth = max(len(tree["splits"]) for tree in trees)
        if any(len(tree["leaf_values"]) != 2 ** len(tree["splits"]) for tree in trees):
            return None  # several values per leaf: a multi-output model
        splits = len(trees) * depth
        columns, borders = np.zeros(splits, dtype=np.intp), np.full(splits, np.inf, dtype=np.float32)
        nan_true, leaves = np.zeros(splits, dtype=bool), np.zeros((len(trees), 2 ** depth))
        for t, tree in enumerate(trees):
            if any(split.get("split_type") != "FloatFeature" for split in tree["splits"]):
                return None
            for d, split in enumerate(tree["splits"]):  # a shallower tree's missing splits stay false (border +inf)
                feature = float_features[split["float_feature_index"]]
                columns[t * depth + d] = feature["flat_feature_index"]
                borders[t * depth + d] = split["border"]
                nan_true[t * depth + d] = feature.get("nan_value_treatment") == "AsTrue"
            leaves[t, :len(tree["leaf_values"])] = tree["leaf_values"]
        scale, bias = exported.get("scale_and_bias", [1.0, [0.0]])
        bias = bias[0] if isinstance(bias, list) else bias
        return cls(columns, borders, nan_true, leaves.ravel(), depth, float(scale), float(bias))

    def raw(self, features: np.ndarray) -> np.ndarray:
        """The model's raw formula value per row (the prediction of a regressor, the log-odds of a classifier)."""
        values = np.ascontiguousarray(features.T, dtype=np.float32)[self.columns]  # (splits, rows)
        if self.nan_true.any():
            values[self.nan_true] = np.where(np.isnan(values[self.nan_true]), np.inf, values[self.nan_true])
        bits = (values > self.borders[:, None]).reshape(-1, self.depth, len(features))
        leaf = np.einsum("tdr,d->tr", bits, 1 << np.arange(self.depth)) + (np.arange(len(bits)) << self.depth)[:, None]
        return self.leaves[leaf].sum(axis=0) * self.scale + self.bias
