"""The platform's one code location: everything in `pm_assets/defs/`, loaded as Dagster's project layout does."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
