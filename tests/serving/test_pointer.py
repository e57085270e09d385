"""A damaged or dangling champion pointer names the file, keeps the last good model serving and shows in /ready until
fixed; relocating a copied data directory does nothing until it can finish."""

import shutil
import sqlite3
import time

import httpx
import pytest

from pm_assets.storage import paths, registry
from pm_assets.storage.relocation import DamagedPointer, relocate
from pm_serving.app import create_app
from pm_serving.settings import Settings

from .conftest import machine_payload
from .server import running


def _problems(url: str, until, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(f"{url}/ready")
        if until(ready.json()["problems"]) or time.monotonic() > deadline:
            assert ready.status_code == 200, ready.text  # a pointer problem never takes the worker out of service
            return ready.json()["problems"]
        time.sleep(0.1)


@pytest.mark.parametrize("damage, problem", [
    ('{"model": "pm_machine_health", "vers', "is damaged"),
    ('{"model": "pm_machine_health", "version": "99"}', "names v99, but the registry's 'champion' alias is on v"),
])
def test_a_bad_pointer_keeps_the_model_serving_and_shows_in_ready_until_fixed(served_data_dir, damage, problem):
    pointer = paths.champion_pointer_path()
    good = pointer.read_text()
    with running(create_app(Settings(poll_seconds=0.1))) as url:
        version = httpx.get(f"{url}/ready").json()["model_version"]
        assert _problems(url, lambda p: True) == []
        try:
            pointer.write_text(damage)
            problems = _problems(url, lambda p: any(problem in x for x in p))
            assert any(problem in x and str(pointer) in x for x in problems), problems
            answer = httpx.post(f"{url}/predict", json=machine_payload())
            assert answer.status_code == 200 and answer.json()["model_version"] == version
        finally:
            pointer.write_text(good)
        assert _problems(url, lambda p: p == []) == []


def test_relocating_a_copy_with_a_damaged_pointer_names_it_and_changes_nothing(served_data_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(served_data_dir, copy)
    (copy / "models" / "champion.json").write_text("{")
    database = copy / "mlflow.db"
    with sqlite3.connect(database) as con:
        before = con.execute("select artifact_location from experiments where name = ?", (registry.EXPERIMENT,)).fetchone()
    with pytest.raises(DamagedPointer, match=f"the champion pointer {copy / 'models' / 'champion.json'} is damaged"):
        relocate(database, copy, registry.EXPERIMENT, copy / "models" / "champion.json")
    with sqlite3.connect(database) as con:
        after = con.execute("select artifact_location from experiments where name = ?", (registry.EXPERIMENT,)).fetchone()
    assert after == before and str(served_data_dir) in after[0]  # nothing rewritten
