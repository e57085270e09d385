"""What the platform tells people when something needs them, as Slack-compatible webhook messages: each names the
machine or check, gives the evidence, and links to where to look (the planner's page, the Dagster run).

Machines are debounced by state: a machine is announced when it enters high risk, or when the plan first puts its
service on the plan's first day, and not again until it has left that state and entered it anew.
"""

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

#: Machines announced one by one per evaluation; beyond this, one message counts the rest (a fleet-wide shift
#: should not send a thousand messages).
MAX_MACHINE_ALERTS = 20


@dataclass(frozen=True)
class Alert:
    subject: str  # what it is about: "machine M0007", "check performance_degradation", "run 1a2b3c4d"
    title: str
    evidence: str
    link: str

    def payload(self) -> dict:
        """Slack's incoming-webhook shape: `text` for notifications and other receivers, `blocks` for the layout."""
        return {"text": f"{self.title}: {self.evidence} {self.link}",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{self.title}*\n{self.evidence}\n<{self.link}|Open>"}}]}


def machine_states(scores: pl.DataFrame, plan: pl.DataFrame | None) -> dict[str, dict]:
    """Per machine: whether it is at high risk, and whether the plan services it on its first day. A plan made again
    each day keeps a machine due until it is serviced: that is one state, told once, not one message a day."""
    due: set[str] = set()
    if plan is not None and plan.height:
        first = plan["plan_date"][0] + dt.timedelta(days=1)
        due = set(plan.filter(pl.col("service") & (pl.col("planned_day") == first))["machine_id"])
    return {m: {"high": risk == "high", "due": m in due} for m, risk in zip(scores["machine_id"], scores["risk_level"])}


def machine_alerts(scores: pl.DataFrame, plan: pl.DataFrame | None, known: dict[str, dict], page_url: str) -> tuple[list[Alert], dict]:
    """Alerts for the machines whose state changed into high risk or a service due since `known`, and the states now."""
    now = machine_states(scores, plan)
    rows = {r["machine_id"]: r for r in scores.iter_rows(named=True)}
    reasons = {} if plan is None else dict(zip(plan["machine_id"], plan["reason"]))
    first_day = None if plan is None or not plan.height else plan["plan_date"][0] + dt.timedelta(days=1)
    alerts = []
    for machine, state in now.items():
        before = known.get(machine, {"high": False, "due": False})
        entered = [what for what, new in (("high risk", state["high"] and not before["high"]),
                                          ("service due", state["due"] and not before["due"])) if new]
        if not entered:
            continue
        r = rows[machine]
        title = (f"Machine {machine}: service planned for {first_day}" if "service due" in entered else f"Machine {machine} entered high risk")
        sensors = r.get("top_sensors")
        sensors = ", ".join(sensors) if isinstance(sensors, list) else sensors  # a list in the snapshot, text in SQL
        evidence = (f"RUL {r['rul_hours']:.0f} h (90 %: {_hours(r.get('rul_lower'))}–{_hours(r.get('rul_upper'))} h), "
                    f"failure probability {r['failure_probability']:.0%}, risk {r['risk_level']}"
                    + (f", driving sensors {sensors}" if sensors else "")
                    + (f"; plan: {reasons[machine]}" if "service due" in entered and machine in reasons else ""))
        alerts.append(Alert(f"machine {machine}", title, evidence, f"{page_url.rstrip('/')}/#machine={machine}"))
    if len(alerts) > MAX_MACHINE_ALERTS:
        rest = alerts[MAX_MACHINE_ALERTS:]
        alerts = alerts[:MAX_MACHINE_ALERTS] + [Alert("machines", f"{len(rest)} more machines entered high risk or got a service due",
                                                      ", ".join(a.subject.removeprefix("machine ") for a in rest[:50]), f"{page_url.rstrip('/')}/")]
    return alerts, now


def _hours(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def evidence_of(metadata: dict, limit: int = 8) -> str:
    """A check's or a decision's metadata as one line: numbers rounded, at most `limit` entries."""
    shown = []
    for key, value in metadata.items():
        if isinstance(value, float):
            if not math.isfinite(value):  # not judged: no figure
                continue
            value = f"{value:.3g}"
        elif not isinstance(value, (int, str)):
            continue
        shown.append(f"{key} {value}")
    return ", ".join(shown[:limit]) or "no figures recorded"
