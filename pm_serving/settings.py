"""Service settings, read once from the environment."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from pm_assets.storage import paths, registry


@dataclass(frozen=True)
class Settings:
    model_alias: str = registry.CHAMPION
    #: The pointer file promotion writes; polled for changes (the registry is asked only when it changes).
    pointer_path: Path = field(default_factory=paths.champion_pointer_path)
    poll_seconds: float = 5.0
    api_key: str | None = None  # when set, every route but /health needs header `X-API-Key`
    inference_log_dir: Path = field(default_factory=lambda: paths.inference_log_dir())
    max_body_bytes: int = 64 * 1024 * 1024
    max_batch_machines: int = 5000
    max_readings: int = 2000

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            poll_seconds=float(os.environ.get("PM_SERVE_POLL_SECONDS", 5.0)),
            api_key=os.environ.get("PM_API_KEY") or None,
        )
