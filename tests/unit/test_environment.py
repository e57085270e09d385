"""The list of environment variables (`pm_assets.environment`) is the set of names the code mentions."""

import re
from pathlib import Path

from pm_assets import environment

ROOT = Path(__file__).resolve().parents[2]


def test_the_list_names_every_variable_the_code_reads_and_no_other():
    sources = [*ROOT.joinpath("pm_assets").rglob("*.py"), *ROOT.joinpath("pm_serving").rglob("*.py"),
               *ROOT.joinpath("dbt_sensors").rglob("*.yml"), *ROOT.joinpath("dbt_sensors", "models").rglob("*.sql")]
    sources = [p for p in sources if "target" not in p.parts and p.name != "environment.py"]
    mentioned = {name for p in sources for name in re.findall(r"\bPM_[A-Z0-9_]+\b", p.read_text())}
    assert mentioned == set(environment.PLATFORM), (
        f"read but not listed: {sorted(mentioned - set(environment.PLATFORM))}; "
        f"listed but never read: {sorted(set(environment.PLATFORM) - mentioned)}")
    assert all(environment.PLATFORM.values())
