"""Every prediction, appended as a JSON line to `$PM_DATA_DIR/inference/YYYY-MM-DD.jsonl` (not the warehouse).

The monitoring assets read these files to compare predictions with the failures that follow.
"""

import datetime as dt
from pathlib import Path
from typing import IO

import msgspec

from pm_serving.schemas import Prediction


class InferenceLog:
    def __init__(self, folder: Path):
        self.folder = folder
        self._day: dt.date | None = None
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()

    def append(self, predictions: list[Prediction]) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if today != self._day:
            self.close()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = (self.folder / f"{today.isoformat()}.jsonl").open("ab", buffering=64 * 1024)
            self._day = today
        logged_at = dt.datetime.now(dt.UTC).isoformat()
        for prediction in predictions:
            self._file.write(self._encoder.encode({"logged_at": logged_at, **msgspec.structs.asdict(prediction)}) + b"\n")

    def flush(self) -> None:
        if self._file:
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
