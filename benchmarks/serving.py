"""Throughput and latency of the scoring service, over loopback, one uvicorn worker.

Trains and registers a small sample model in a temporary PM_DATA_DIR, starts `pm serve` in its own
process, then drives it with an asyncio load generator (keep-alive connections, pre-encoded
requests) for a fixed time at several concurrencies, and prints requests/s and p50/p95/p99.

    python benchmarks/serving.py [--seconds 5] [--concurrency 1 4 16] [--batch-machines 1000]
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def payload(machine_id: str, n: int = 40) -> dict:
    rng = np.random.default_rng(sum(map(ord, machine_id)))
    start = dt.datetime(2025, 3, 1)
    return {"machine_id": machine_id, "model_type": "A", "readings": [
        {"ts": (start + dt.timedelta(hours=i)).isoformat(),
         "settings": {"op_setting_1": 20.0, "op_setting_2": 0.62, "op_setting_3": 100.0},
         "sensors": {f"sensor_{j:02d}": float(100 + j + rng.normal()) for j in range(1, 11)}} for i in range(n)]}


def http_post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return status


async def drive(port: int, request: bytes, concurrency: int, seconds: float) -> tuple[np.ndarray, int, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - sent)
            errors += status != 200
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return np.array(latencies), errors, time.perf_counter() - start


def report(name: str, concurrency: int, latencies: np.ndarray, errors: int, elapsed: float) -> None:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    print(f"{name:<24}{concurrency:>6}{len(latencies) / elapsed:>12,.0f}{p50:>10.2f}{p95:>10.2f}{p99:>10.2f}{errors:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--batch-machines", type=int, default=1000)
    parser.add_argument("--library", default="lightgbm", choices=["lightgbm", "catboost"])
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    os.environ.setdefault("PM_DATA_DIR", tempfile.mkdtemp(prefix="pm-serve-bench-"))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from pm_assets.drivers.sample_model import train_and_register

    version = train_and_register(library=args.library)
    print(f"sample {args.library} model v{version} in {os.environ['PM_DATA_DIR']}")
    server = subprocess.Popen([sys.executable, "-m", "pm_assets.drivers.cli", "serve", "--port", str(args.port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{args.port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            sys.exit(f"server did not become ready: {server.stderr.read().decode()[-2000:] if server.poll() is not None else ''}")
        single = http_post("/predict", json.dumps(payload("M0001")).encode())
        batch = http_post("/predict/batch", json.dumps({"machines": [payload(f"M{i:04d}") for i in range(args.batch_machines)]}).encode())
        print(f"{'endpoint':<24}{'conns':>6}{'req/s':>12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'errors':>8}")
        asyncio.run(drive(args.port, single, 4, 1.0))  # warm-up
        for concurrency in args.concurrency:
            report("POST /predict", concurrency, *asyncio.run(drive(args.port, single, concurrency, args.seconds)))
        report(f"POST /predict/batch x{args.batch_machines}", 1, *asyncio.run(drive(args.port, batch, 1, args.seconds)))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
