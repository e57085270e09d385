"""`pm serve --workers 2` as a user runs it: each worker loads and swaps the champion on its own, `/metrics` adds
up every worker and forgets a killed one's gauges, and a SIGTERM stops cleanly with every served prediction in the
inference log and no metrics folder left behind."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pm_assets.drivers.sample_model import train_and_register
from pm_assets.storage import registry

from .conftest import machine_payload
from .server import free_port


def _metric(text: str, name: str) -> dict[str, float]:
    """Samples of metric `name`, by their label string."""
    samples = {}
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            labels, value = line.rsplit(" ", 1)
            samples[labels[len(name):]] = float(value)
    return samples


def _versions_by_worker(url: str) -> dict[str, str]:
    """Which version each worker serves, from the aggregated `pm_model_version` gauge (one sample per worker pid)."""
    serving = {}
    for labels, value in _metric(httpx.get(f"{url}/metrics").text, "pm_model_version").items():
        if value == 1:
            parts = dict(part.split("=") for part in labels.strip("{}").split(","))
            serving[parts["pid"].strip('"')] = parts["version"].strip('"')
    return serving


def test_workers_swap_on_their_own_aggregate_metrics_and_flush_the_log_on_sigterm(served_data_dir):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PM_DATA_DIR": str(served_data_dir), "PM_SERVE_POLL_SECONDS": "0.3"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_dir = Path(served_data_dir) / "inference"
    before = {f: f.read_text().count("\n") for f in log_dir.glob("*.jsonl")}
    metrics_dirs_before = set(Path(tempfile.gettempdir()).glob("pm-serve-metrics-*"))
    server = subprocess.Popen([str(Path(sys.executable).with_name("pm")), "serve", "--workers", "2", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_versions_by_worker(url) if _up(url) else {}) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        first = _versions_by_worker(url)
        assert len(first) == 2 and len(set(first.values())) == 1, first  # two workers, each with the champion loaded

        served = 0
        for i in range(60):  # a new connection each time, so both workers answer some
            served += httpx.post(f"{url}/predict", json=machine_payload(f"W{i:03d}")).status_code == 200
        assert served == 60
        predictions = _metric(httpx.get(f"{url}/metrics").text, "pm_predictions_total")
        assert sum(predictions.values()) == 60  # every worker's count, whichever worker answered /metrics

        new = train_and_register(library="catboost", iterations=10)  # moves the champion alias
        deadline = time.monotonic() + 60
        while set(_versions_by_worker(url).values()) != {new} and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _versions_by_worker(url) == {pid: new for pid in first}  # both workers swapped, neither restarted
        assert httpx.post(f"{url}/predict", json=machine_payload()).json()["model_version"] == new
        served += 1

        time.sleep(1)  # the log writer has taken what was served (a worker killed outright loses what it had not)
        killed = int(next(iter(first)))  # a worker killed outright cannot remove its gauges: the scrape drops them
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while (str(killed) in _versions_by_worker(url) or len(_versions_by_worker(url)) < 2) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert str(killed) not in _versions_by_worker(url) and len(_versions_by_worker(url)) == 2  # its replacement, not three
        assert sum(_metric(httpx.get(f"{url}/metrics").text, "pm_predictions_total").values()) == 61  # its counts stay
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
        registry.set_alias(first and next(iter(first.values())), registry.CHAMPION)  # leave the LightGBM champion serving
    assert server.returncode == 0, output[-2000:]
    left = set(Path(tempfile.gettempdir()).glob("pm-serve-metrics-*")) - metrics_dirs_before
    assert not left, f"pm serve left its metrics folder behind: {left}"
    written = sum(f.read_text().count("\n") - before.get(f, 0) for f in log_dir.glob("*.jsonl"))
    assert written == served, f"{served} predictions served, {written} logged"
    lines = [json.loads(line) for f in log_dir.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert {e["machine_id"] for e in lines} >= {f"W{i:03d}" for i in range(60)}


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
