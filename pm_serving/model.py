"""The loaded champion, and its hot swap when the `champion` alias moves.

Requests read `holder.current` once and keep that object, so a swap (one attribute assignment)
never changes a model under a request in flight. The holder polls the champion pointer file that
promotion writes (`WatchedFile`) and asks the registry only when it changed, or, where replicas share no disk
(`Settings.follow_alias`, the scale profile), asks the registry which version holds the alias; a new model is loaded
off the event loop, and if it fails to load, the old one keeps serving and the error is reported
by /ready and in the log.
"""

import datetime as dt
import logging
import os
from dataclasses import dataclass

from prometheus_client import Gauge

from pm_assets.core.models import ModelBundle
from pm_assets.storage import registry
from pm_assets.storage.relocation import DamagedPointer, read_pointer
from pm_serving.settings import Settings
from pm_serving.watched import WatchedFile

log = logging.getLogger("pm_serving")
MODEL_VERSION = Gauge("pm_model_version", "The model version each worker serves (1 on the loaded one)", ["version"],
                      multiprocess_mode="liveall")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    bundle: ModelBundle
    loaded_at: dt.datetime
    registered_at: dt.datetime  # when the version was trained and registered


class ModelHolder(WatchedFile):
    def __init__(self, settings: Settings):
        super().__init__(settings.pointer_path, settings.poll_seconds, settings.watcher_stale_seconds)
        self.settings = settings
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._pointer_damage: str | None = None
        self._pointed_version: str | None = None
        if settings.follow_alias:
            self.source = f"alias {settings.model_alias!r} in {registry.tracking_uri()}"

    def current_state(self) -> object:
        """The pointer file's time, or with `follow_alias` the version holding the alias (one registry call). A damaged
        pointer counts as no change, so the model serving stays, and is a `pointer_problem` until it is fixed."""
        if self.settings.follow_alias:
            return registry.alias_version(self.settings.model_alias)
        state = super().current_state()
        self._pointer_damage, self._pointed_version = None, None
        if state is not None:
            try:
                self._pointed_version = str(read_pointer(self.path)["version"])
            except DamagedPointer as error:
                self._pointer_damage = str(error)
                return self._state
        return state

    @property
    def pointer_problem(self) -> str | None:
        """A damaged pointer, or one naming another version than the registry's alias (a dangling one), for /ready."""
        if self._pointer_damage:
            return self._pointer_damage
        if self._pointed_version and self.current is not None and self._pointed_version != self.current.version:
            return (f"the champion pointer {self.path} names v{self._pointed_version}, but the registry's {self.settings.model_alias!r} "
                    f"alias is on v{self.current.version}, which is serving")
        return None

    def loaded(self) -> bool:
        return self.current is not None

    def load(self) -> None:
        self.refresh()

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
            loaded.bundle.prepare_for_serving()
            if self.current is not None:  # set to 0, not removed: a multiprocess gauge keeps what it was last set to
                MODEL_VERSION.labels(self.current.version).set(0)
            self.current = LoadedModel(version=version, bundle=loaded.bundle, loaded_at=dt.datetime.now(dt.UTC),
                                       registered_at=loaded.registered_at)
            self.last_error = None
            MODEL_VERSION.labels(version).set(1)
            log.info("worker %d serving %s v%s (%s)", os.getpid(), registry.MODEL_NAME, version, loaded.bundle.library)
            return True
        except Exception as error:  # a broken new model must not take the old one down
            self.last_error = f"loading {self.settings.model_alias!r} failed: {type(error).__name__}: {error}"
            log.error(self.last_error)
            return False
