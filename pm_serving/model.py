"""The loaded champion, and its hot swap when the `champion` alias moves.

Requests read `holder.current` once and keep that object, so a swap (one attribute assignment)
never changes a model under a request in flight. A new model is loaded off the event loop; if it
fails to load, the old one keeps serving and the error is reported by /ready and in the log.
"""

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from prometheus_client import Gauge

from pm_assets.core.models import ModelBundle
from pm_assets.storage import registry
from pm_serving.settings import Settings

log = logging.getLogger("pm_serving")
MODEL_VERSION = Gauge("pm_model_version", "The model version serving (1 on the loaded one)", ["version"])


@dataclass(frozen=True)
class LoadedModel:
    version: str
    bundle: ModelBundle
    loaded_at: dt.datetime


class ModelHolder:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._pointer_state: float | None = None

    def refresh(self) -> bool:
        """Load the alias's version if it is not the one serving; True when a new model went live."""
        try:
            version = registry.alias_version(self.settings.model_alias)
            if version is None:
                self.last_error = f"no model version has alias {self.settings.model_alias!r} in {registry.tracking_uri()}"
                return False
            if self.current is not None and self.current.version == version:
                return False
            loaded = registry.load_version(version)
            self.current = LoadedModel(version=version, bundle=loaded.bundle, loaded_at=dt.datetime.now(dt.UTC))
            self.last_error = None
            MODEL_VERSION.clear()
            MODEL_VERSION.labels(version).set(1)
            log.info("serving %s v%s (%s)", registry.MODEL_NAME, version, loaded.bundle.library)
            return True
        except Exception as error:  # a broken new model must not take the old one down
            self.last_error = f"loading {self.settings.model_alias!r} failed: {type(error).__name__}: {error}"
            log.error(self.last_error)
            return False

    def _pointer_changed(self) -> bool:
        try:
            state = self.settings.pointer_path.stat().st_mtime_ns
        except FileNotFoundError:
            state = None
        changed = state != self._pointer_state
        self._pointer_state = state
        return changed

    async def watch(self) -> None:
        """Poll the champion pointer file; ask the registry when it changed (or while nothing is loaded)."""
        self._pointer_changed()
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            if self._pointer_changed() or self.current is None:
                await asyncio.to_thread(self.refresh)
