"""The planner's page in a real browser (headless Chromium, driven by Playwright) against the real service on a
loopback socket: the plan's machines in plan order, a machine's trend on click, a clear message for an unknown
machine, and the API key asked for and used."""

import datetime as dt
import shutil

import httpx
import polars as pl
import pytest

from pm_assets.storage import paths
from pm_serving.app import create_app
from pm_serving.settings import Settings

from .server import running

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (it is in the `test` extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine: `apt-get install chromium` (.ci/run installs it)")
# what Chromium needs in a closed sandbox: no background connections it would retry, no GPU, no setuid sandbox as root
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def snapshots(served_data_dir, tmp_path) -> Settings:
    """The real fleet scores, a plan servicing three of the machines (not the most urgent ones first, so plan order
    shows), and two weeks of trends of each, in their own directory."""
    scores = pl.read_parquet(paths.fleet_scores_snapshot_path())
    ids = scores.sort("machine_id")["machine_id"].to_list()
    plan_date = scores["ts"].max().date()
    first = plan_date + dt.timedelta(days=1)
    planned = {ids[7]: 0, ids[2]: 0, ids[5]: 1}  # by day, the larger saving first: ids[7], ids[2], then ids[5]
    plan = pl.DataFrame({
        "plan_date": [plan_date] * len(ids), "machine_id": ids, "service": [m in planned for m in ids],
        "planned_day": [first + dt.timedelta(days=planned[m]) if m in planned else None for m in ids],
        "day_index": [planned.get(m) for m in ids], "expected_cost_saved": [900.0 if m == ids[7] else 500.0 if m in planned else 0.0 for m in ids],
        "failure_risk": [0.3] * len(ids), "cost_without_service": [1000.0] * len(ids), "rul_hours": [40.0] * len(ids),
        "rul_lower": [20.0] * len(ids), "rul_upper": [60.0] * len(ids), "reason": [f"reason of {m}" for m in ids], "model_version": ["1"] * len(ids),
    })
    steps = [dt.datetime.combine(plan_date, dt.time()) - dt.timedelta(hours=6 * k) for k in range(55, -1, -1)]
    trends = pl.DataFrame({
        "machine_id": [m for m in ids for _ in steps], "ts": steps * len(ids),
        "rul_hours": [100.0 - k for _ in ids for k in range(len(steps))], "rul_lower": [80.0 - k for _ in ids for k in range(len(steps))],
        "rul_upper": [120.0 - k for _ in ids for k in range(len(steps))], "sensor_02": [0.05 * k for _ in ids for k in range(len(steps))],
        "sensor_07": [-0.02 * k for _ in ids for k in range(len(steps))],
    })
    scores.write_parquet(tmp_path / "fleet_scores.parquet")
    plan.write_parquet(tmp_path / "maintenance_plan.parquet")
    trends.write_parquet(tmp_path / "machine_trends.parquet")
    return Settings(poll_seconds=0.2, scores_path=tmp_path / "fleet_scores.parquet", plan_path=tmp_path / "maintenance_plan.parquet",
                    trends_path=tmp_path / "machine_trends.parquet")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)


def test_the_plan_in_order_a_machine_s_trend_on_click_and_an_unknown_machine(snapshots, browser):
    with running(create_app(snapshots)) as url:
        worklist = [m["machine_id"] for m in httpx.get(f"{url}/machines", params={"limit": 1000}).json()["machines"]]
        services = [s["machine_id"] for s in httpx.get(f"{url}/plan").json()["services"]]
        page = browser.new_page()
        _ready(page, url)
        shown = page.locator("#fleet tbody tr").evaluate_all("rows => rows.map(r => r.dataset.machine)")
        assert len(services) == 3
        assert shown == services + [m for m in worklist if m not in services]  # the plan first, in its order, then the rest by urgency
        assert "3 services planned" in page.locator("#status").inner_text()
        why = page.locator("#fleet tbody tr td.why").all_inner_texts()
        assert why == [f"reason of {m}" for m in shown]  # the plan's reason for every machine, serviced or not

        page.locator(f"tr[data-machine='{services[2]}']").click()
        page.wait_for_selector("#machine svg >> nth=1")  # the RUL chart and the sensors' chart
        detail = page.locator("#machine").inner_text()
        assert services[2] in detail and "service planned on" in detail and "sensor_02" in detail and "life baseline" in detail
        assert page.locator("#machine svg path").count() >= 3  # the range band, the RUL line, the sensors' lines
        assert page.url.endswith(f"#machine={services[2]}")  # a link to this machine's view (what an alert points at)

        page.fill("#find-id", "NO-SUCH-MACHINE")
        page.press("#find-id", "Enter")
        page.wait_for_selector("#machine-message")
        assert "No machine “NO-SUCH-MACHINE” in the fleet snapshot" in page.locator("#machine-message").inner_text()
        page.close()


def test_the_page_asks_for_the_api_key_and_then_uses_it(snapshots, browser):
    settings = Settings(**{**snapshots.__dict__, "api_key": "s3cret"})
    with running(create_app(settings)) as url:
        page = browser.new_page()
        page.goto(url)  # the page itself is open: it holds no data
        page.wait_for_selector("#key:not([hidden])")
        assert "needs an API key" in page.locator("#status").inner_text()
        assert page.locator("#fleet tbody tr").count() == 0
        page.fill("#key-value", "wrong")
        page.press("#key-value", "Enter")
        page.wait_for_function("document.querySelector('#status').textContent.includes('refused')")
        page.fill("#key-value", "s3cret")
        page.press("#key-value", "Enter")
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#fleet tbody tr").count() == 10
        page.close()
