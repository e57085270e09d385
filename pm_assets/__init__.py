"""Predictive-maintenance platform: Dagster assets from raw telemetry to a served champion model.

Models and feature specs are pickled (MLflow's pyfunc, `storage.model_files`), and pickles name the
module of each class: those written before the package was laid out in `core/`, `sources/`,
`storage/`, `defs/` and `drivers/` name the old flat modules, which `_moved` still resolves.
"""

import importlib
import importlib.abc
import importlib.util
import sys

_MOVED = {
    "constants": "core.constants", "features": "core.features", "latest_features": "core.latest_features",
    "labels": "core.labels", "models": "core.models", "metrics": "core.metrics", "drift": "core.drift",
    "drift_reference": "core.drift_reference", "scoring": "core.scoring", "simulator": "sources.simulator",
    "registry": "storage.registry", "paths": "storage.paths",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `pm_assets.<old>` as the module it moved to (the same module object, so classes are identical)."""

    def find_spec(self, name, path=None, target=None):
        old = name.removeprefix(f"{__name__}.")
        if name.startswith(f"{__name__}.") and old in _MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{_MOVED[spec.name.removeprefix(f'{__name__}.')]}")

    def exec_module(self, module):
        pass


sys.meta_path.append(_MovedModules())
