"""The planner's page with a fleet of 2,000 machines, in a real browser: how long until the table is drawn, how long a
click takes to draw a machine's trend, and a screenshot.

Takes the snapshots a data directory's daily run published (`--data-dir`, default `data/` after `make demo`),
copies every machine under new ids until the fleet has `--machines` of them (scores, plan and trends alike), serves
them with `pm serve` on a loopback port and opens `GET /` in the distribution's headless Chromium (Playwright):

    python benchmarks/planner_page.py [--data-dir data] [--machines 2000] [--repeat 5] [--screenshot docs/planner-page.png]

Target: the page stays responsive with 2,000 machines (table drawn and a trend opened well within a second).
"""

import argparse
import contextlib
import os
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = ("fleet_scores", "maintenance_plan", "machine_trends")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def grown(scores_dir: Path, machines: int, into: Path) -> int:
    """The snapshots of `scores_dir` with each machine copied as `<id>-<k>` until there are `machines`; returns the count."""
    into.mkdir(parents=True)
    ids = pl.read_parquet(scores_dir / "fleet_scores.parquet")["machine_id"].unique().sort()
    copies = -(-machines // len(ids))
    keep = {f"{m}-{k}" for k in range(copies) for m in ids}
    keep = set(sorted(keep)[:machines])
    for name in SNAPSHOTS:
        frame = pl.read_parquet(scores_dir / f"{name}.parquet")
        frame = pl.concat([frame.with_columns(pl.col("machine_id") + f"-{k}") for k in range(copies)])
        frame.filter(pl.col("machine_id").is_in(keep)).write_parquet(into / f"{name}.parquet")
    return len(keep)


@contextlib.contextmanager
def serving(data_dir: Path, port: int) -> Iterator[str]:
    """`pm serve` (one worker) over `data_dir`'s snapshots, until the block ends."""
    env = {**os.environ, "PM_DATA_DIR": str(data_dir), "PM_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "pm_assets.drivers.cli", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                sys.exit(f"pm serve exited: {server.stdout.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/machines?limit=1", timeout=1).status_code == 200:
                    break
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def first_planned(url: str) -> str:
    services = httpx.get(f"{url}/plan").json().get("services") or []
    return services[0]["machine_id"] if services else httpx.get(f"{url}/machines?limit=1").json()["machines"][0]["machine_id"]


def open_page(browser, url: str, machine: str) -> tuple[float, float, object]:
    """Seconds to the table drawn, seconds from a click on `machine` to its trend drawn, and the open page."""
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    page.locator(f"tr[data-machine='{machine}']").click()
    page.wait_for_selector("#machine h3")
    return loaded, time.perf_counter() - started, page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--screenshot", type=Path, default=REPO / "docs" / "planner-page.png")
    args = parser.parse_args()
    missing = [n for n in SNAPSHOTS if not (args.data_dir / "scores" / f"{n}.parquet").exists()]
    if missing:
        sys.exit(f"{args.data_dir}/scores has no {', '.join(missing)} snapshot: run `make demo` (or the daily job) first")
    chromium = shutil.which("chromium") or sys.exit("no Chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        with serving(args.data_dir, args.port) as url:  # the fleet as published, for the screenshot
            *_, page = open_page(browser, url, first_planned(url))
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot))
        count = grown(args.data_dir / "scores", args.machines, Path(tmp) / "scores")
        loads, opens = [], []
        with serving(Path(tmp), args.port) as url:
            machine = first_planned(url)
            for _ in range(args.repeat):
                loaded, opened, page = open_page(browser, url, machine)
                rows = page.locator("#fleet tbody tr").count()
                loads.append(loaded)
                opens.append(opened)
                page.close()
        browser.close()
    print(f"planner page, {count:,} machines ({rows:,} rows drawn), {args.repeat} loads in headless Chromium:")
    print(f"  page load to table drawn: median {1000 * statistics.median(loads):.0f} ms, max {1000 * max(loads):.0f} ms")
    print(f"  click to trend drawn:     median {1000 * statistics.median(opens):.0f} ms, max {1000 * max(opens):.0f} ms")
    print(f"  screenshot of the published fleet: {args.screenshot}")


if __name__ == "__main__":
    main()
