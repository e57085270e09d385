"""The scoring service under a real load generator, and where a request's time goes.

Serves the champion of a data directory (`--data-dir`, default `data/` after `make demo`; with none
there, a small sample model in a temporary one) with `pm serve --workers N`, drives it with `wrk`
(Debian: `apt-get install wrk`) on the same machine at 1, 16 and 64 connections, and prints req/s
and p50/p90/p99 for `POST /predict` (one machine, 30 readings), `POST /predict/batch` and
`POST /predict/columns` (1,000 machines x 30 readings) and `GET /machines/{id}`. Then, in-process,
the cost of one request by step: decode, features, model, explanation, encode.

    python benchmarks/serving.py [--data-dir data] [--seconds 10] [--connections 1 16 64] [--workers 2]

Targets: /predict at 16 connections >= 2,500 req/s and p99 <= 10 ms, p50 <= 0.8 ms at 1 connection;
a batch of 1,000 machines x 30 readings <= 100 ms as columns and <= 150 ms as readings (p50 at 1 connection);
/machines/{id} >= 6,000 req/s at 16 connections.
"""

import argparse
import datetime as dt
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def payload(machine_id: str, spec, n: int = 30) -> dict:
    """The example machine of docs/serving.md (`n` hourly readings), with a little noise of its own."""
    rng = np.random.default_rng(sum(map(ord, machine_id)))
    start = dt.datetime(2025, 4, 1)
    settings = dict(zip(spec.settings, (20.0, 0.62, 100.0)))
    return {"machine_id": machine_id, "readings": [
        {"ts": (start + dt.timedelta(hours=i)).isoformat(), "settings": settings,
         "sensors": {s: 100.0 + int(s[-2:]) + float(rng.normal(0, 0.1)) for s in spec.sensors}} for i in range(n)]}


def columns(machine: dict) -> dict:
    readings = machine["readings"]
    return {"machine_id": machine["machine_id"], "ts": [r["ts"] for r in readings],
            "sensors": {s: [r["sensors"][s] for r in readings] for s in readings[0]["sensors"]},
            "settings": {s: [r["settings"][s] for r in readings] for s in readings[0]["settings"]}}


WRK_SCRIPT = """
local f = io.open(os.getenv("PM_WRK_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, connections: int, seconds: float, body: Path | None) -> dict:
    """req/s and latency percentiles (ms) of `wrk --latency` against `url` (POSTing `body` when given)."""
    command = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s", "--latency", url]
    env = dict(os.environ)
    if body is not None:
        script = body.with_suffix(".lua")
        script.write_text(WRK_SCRIPT)
        command[1:1] = ["-s", str(script)]
        env["PM_WRK_BODY"] = str(body)
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    percentiles = {"50": float("nan"), "90": float("nan"), "99": float("nan")}
    percentiles |= {p: ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.MULTILINE)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), **percentiles,
            "errors": int(errors.group(1)) if errors else 0, "socket_errors": "Socket errors" in out}


def wait_ready(url: str, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"pm serve exited: {server.stdout.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit("pm serve did not become ready in 120 s")


def breakdown(machines: list[dict], repeat: int) -> dict[str, float]:
    """Milliseconds per request of each step, in this process, for `machines` sent as one request."""
    import msgspec

    from pm_serving import request_scoring
    from pm_serving.body import decode_batch
    from pm_serving.model import ModelHolder
    from pm_serving.schemas import BatchRequest, BatchResponse, ColumnarBatchRequest, MachineColumns, PredictRequest
    from pm_serving.settings import Settings

    holder = ModelHolder(Settings())
    holder.refresh()
    model = holder.current
    gc.collect()
    gc.freeze()  # as a serving worker does once it has started
    bundle = model.bundle
    rows = json.dumps({"machines": machines}).encode()
    cols = json.dumps({"machines": [columns(m) for m in machines]}).encode()
    encoder = msgspec.json.Encoder()

    def timed(step, *args) -> tuple[float, object]:
        start = time.perf_counter()
        for _ in range(repeat):
            result = step(*args)
        return (time.perf_counter() - start) / repeat * 1e3, result

    figures = {}
    figures["decode (readings)"], batch = timed(decode_batch, rows, BatchRequest, PredictRequest, len(machines))
    figures["decode (columns)"], colbatch = timed(decode_batch, cols, ColumnarBatchRequest, MachineColumns, len(machines))
    figures["checks + arrays (readings)"], checked = timed(
        lambda: request_scoring.checked(model, [request_scoring.from_readings(model, m, "b", 2000) for m in batch.machines]))
    figures["checks + arrays (columns)"], _ = timed(
        lambda: request_scoring.checked(model, [request_scoring.from_columns(model, m, "b", 2000) for m in colbatch.machines]))
    from pm_assets.core.latest_features import latest_features

    figures["features"], X = timed(latest_features, bundle.feature_spec, [m.history for m in checked])
    threads = 1 if len(machines) < 100 else -1
    figures["model"], _ = timed(bundle.predict, X, threads)
    figures["explanation (if every row needed one)"], _ = timed(bundle.sensor_contributions, X, threads)
    predictions = request_scoring.predict(model, checked)
    figures["encode"], _ = timed(encoder.encode, BatchResponse(predictions=predictions, model_version=model.version))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PM_DATA_DIR", REPO / "data")))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-machines", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["PM_DATA_DIR"] = str(args.data_dir.resolve())

    from pm_assets.storage import paths, registry

    if registry.alias_version(registry.CHAMPION) is None:
        os.environ["PM_DATA_DIR"] = tempfile.mkdtemp(prefix="pm-serve-bench-")
        from pm_assets.drivers.sample_model import train_and_register

        print(f"no champion in {args.data_dir}: a sample model in {os.environ['PM_DATA_DIR']}")
        train_and_register()
    version = registry.alias_version(registry.CHAMPION)
    bundle = registry.load_version(version).bundle
    print(f"champion v{version} ({bundle.library}) of {paths.data_dir()}, {args.workers} worker(s), wrk on the same machine")

    work = Path(tempfile.mkdtemp(prefix="pm-wrk-"))
    single = payload("M0001", bundle.feature_spec)
    machines = [payload(f"B{i:05d}", bundle.feature_spec) for i in range(args.batch_machines)]
    (work / "single.json").write_text(json.dumps(single))
    (work / "batch.json").write_text(json.dumps({"machines": machines}))
    (work / "columns.json").write_text(json.dumps({"machines": [columns(m) for m in machines]}))

    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([str(Path(sys.executable).with_name("pm")), "serve", "--port", str(args.port), "--workers", str(args.workers)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(url, server)
        import httpx

        worklist = httpx.get(f"{url}/machines", params={"limit": 1})
        machine = worklist.json()["machines"][0]["machine_id"] if worklist.status_code == 200 else None
        # a batch is 0.3-0.6 s of CPU: more connections than workers only queue them (and the backlog would
        # spill into the next measurement), so batches run at 1 and 2 connections
        cases = [("POST /predict", "/predict", work / "single.json", args.connections),
                 (f"POST /predict/batch x{args.batch_machines}", "/predict/batch", work / "batch.json", [1, 2]),
                 (f"POST /predict/columns x{args.batch_machines}", "/predict/columns", work / "columns.json", [1, 2])]
        if machine:
            cases.append(("GET /machines/{id}", f"/machines/{machine}", None, args.connections))
        else:
            print("no fleet snapshot (scores/fleet_scores.parquet): GET /machines/{id} not measured; run the daily job first")
        wrk(f"{url}/predict", 4, 2, work / "single.json")  # warm-up
        print(f"\n{'endpoint':<32}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
        for name, path, body, connection_counts in cases:
            for connections in connection_counts:
                r = wrk(f"{url}{path}", connections, args.seconds, body)
                print(f"{name:<32}{connections:>6}{r['rps']:>10,.0f}{r['50']:>9.2f}{r['90']:>9.2f}{r['99']:>9.2f}{r['errors']:>9}"
                      + ("  (socket errors)" if r["socket_errors"] else ""))
    finally:
        server.terminate()
        server.wait(timeout=60)

    print("\nin-process cost per request (ms), one worker thread:")
    for label, group, repeat in (("/predict, 1 machine x 30 readings", [single], 300),
                                 (f"batch, {args.batch_machines} machines x 30 readings", machines, 3)):
        figures = breakdown(group, repeat)
        print(f"  {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
