"""What a command's runs did, read back from the runs' own results, so `pm` can never tell a different story than Dagster.

Every run `pm` starts (`runner.materialize`, `runner.run_job`) is added to the process's report; a command ends by
printing it: rows read, loaded and quarantined (with the top reasons and where to look), files set aside, and every
check that failed. Data set aside beyond the ingestion threshold (a failed `quarantine_share` check) makes the
command exit with `QUARANTINE_EXIT_CODE` unless the user accepts it (`--allow-quarantine`); a failed monitoring
check is reported, not an error: it is what starts a retraining.
"""

from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

#: `pm`'s exit code when a command set data aside beyond `max_quarantine_share` (README, "Exit codes").
QUARANTINE_EXIT_CODE = 3
QUARANTINE_CHECK = "quarantine_share"


@dataclass
class RunReport:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    failed_checks: list[dg.AssetCheckEvaluation] = field(default_factory=list)

    def add(self, result: dg.ExecuteInProcessResult) -> None:
        # a single-run backfill gives one event per day, each with the run's totals: one per asset
        per_asset = {e.asset_key: e for e in result.get_asset_materialization_events()}
        for event in per_asset.values():
            meta = {k: v.value for k, v in event.materialization.metadata.items()}
            if "rows_read" in meta and "rows_quarantined" in meta:  # an ingestion asset
                self.rows_read += int(meta["rows_read"]) + int(meta.get("rows_in_quarantined_files", 0))
                self.rows_loaded += int(meta["rows_loaded"])
                self.rows_quarantined += int(meta["rows_quarantined"]) + int(meta.get("rows_in_quarantined_files", 0))
                self.files_quarantined += int(meta.get("files_quarantined", 0))
                self.reasons.update({str(r): int(n) for r, n in (meta.get("quarantine_reasons") or {}).items()})
        self.failed_checks += [e for e in result.get_asset_check_evaluations() if not e.passed]

    @property
    def set_aside(self) -> bool:
        """Data was set aside beyond the ingestion threshold (some `quarantine_share` check failed)."""
        return any(e.check_name == QUARANTINE_CHECK for e in self.failed_checks)

    def lines(self) -> list[str]:
        lines = []
        if self.rows_read:
            line = f"rows: {self.rows_read:,} read, {self.rows_loaded:,} loaded, {self.rows_quarantined:,} quarantined"
            if self.reasons:
                top = ", ".join(f"{reason} ({n:,})" for reason, n in self.reasons.most_common(3))
                line += f" ({top}) -> raw.quarantine"
            lines.append(line)
        if self.files_quarantined:
            lines.append(f"files: {self.files_quarantined} set aside whole -> raw.quarantined_files, landing/_quarantine/")
        by_check: dict[str, list[str]] = {}
        for e in self.failed_checks:
            name = f"{e.asset_key.to_user_string()}:{e.check_name}" + (" (warning)" if e.severity == dg.AssetCheckSeverity.WARN else "")
            partition = e.partition or getattr(e.metadata.get("partition"), "value", None)
            by_check.setdefault(name, []).append(partition or "")
        for name, partitions in by_check.items():
            days = sorted({p for p in partitions if p})
            when = f" on {len(days)} day(s), {days[0]}..{days[-1]}" if days else (f" {len(partitions)} time(s)" if len(partitions) > 1 else "")
            lines.append(f"failed check {name}{when}")
        return lines


#: The report of this process's runs so far.
CURRENT = RunReport()


def reset() -> None:
    """A new command starts with an empty report (tests run several in one process)."""
    global CURRENT
    CURRENT = RunReport()


def record(result: dg.ExecuteInProcessResult) -> dg.ExecuteInProcessResult:
    CURRENT.add(result)
    return result
