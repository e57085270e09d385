"""Posting alerts to a webhook (`PM_ALERT_WEBHOOK_URL`): retried with back-off, bounded in time, never raising.

A message the receiver did not take after every try is appended to `alerts/undelivered.jsonl` in the data
directory, with why, so nothing is lost silently; the pipeline goes on either way.
"""

import datetime as dt
import json
import logging
import time

import httpx

from pm_assets.storage import paths

log = logging.getLogger(__name__)
ATTEMPTS = 4
FIRST_BACKOFF_SECONDS = 0.5  # then 1 s, 2 s: 3.5 s of waiting at most per message
TIMEOUT_SECONDS = 5.0


def post(client: httpx.Client, url: str, payload: dict, attempts: int = ATTEMPTS, backoff: float = FIRST_BACKOFF_SECONDS) -> str | None:
    """None once the receiver took `payload` (2xx); else why not, after `attempts` tries. Network errors, 429 and
    5xx are retried with doubling back-off; another 4xx is the message's fault and is not."""
    problem = "not tried"
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            response = client.post(url, json=payload, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}"
            continue
        if response.is_success:
            return None
        problem = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code < 500 and response.status_code != 429:
            break
    return f"{problem} (after {attempt + 1} tries)"


def record_undelivered(payload: dict, problem: str) -> None:
    path = paths.alerts_dir() / "undelivered.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({"at": dt.datetime.now(dt.UTC).isoformat(), "problem": problem, "payload": payload}) + "\n")
    log.warning("alert not delivered (%s), kept in %s", problem, path)


def send(url: str, payloads: list[dict], backoff: float = FIRST_BACKOFF_SECONDS) -> tuple[int, int]:
    """Post each payload; (delivered, undelivered). Once one has failed every try the receiver is taken to be down
    and the rest are recorded without trying, so an evaluation waits for one message's retries at most."""
    delivered, down = 0, None
    with httpx.Client() as client:
        for payload in payloads:
            problem = down or post(client, url, payload, backoff=backoff)
            if problem is None:
                delivered += 1
                continue
            record_undelivered(payload, problem)
            refused = problem.startswith("HTTP 4") and not problem.startswith("HTTP 429")  # this message's fault, not the receiver's
            down = down or (None if refused else f"not tried: an earlier message failed ({problem})")
    return delivered, len(payloads) - delivered
