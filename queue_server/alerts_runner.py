"""The alert rules at work: checked after every relevant change and every `evaluate_every_s`,
raised and cleared alerts stored, and each change told to the service's listeners (the MQTT
link publishes `state/alerts` and `events/alert`; managers read GET /api/v1/alerts).

The rules themselves are pure (domain/alerts.py); this module gathers their facts from the
store, keeps the `alerts` table in step with what holds, and runs one background thread that
coalesces bursts of changes (a batch of presses is one evaluation, not hundreds).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from .config import Config
from .domain import alerts as alert_rules
from .domain.alerts import AlertChanges, AlertCondition, DeviceFact, Facts, ShareCount, alert_key, share_counts_of_levels, wait_cutoffs
from .domain.ratings import DEVICE_CLOCK_SLACK
from .domain.timeutil import from_iso, local_day
from .service import Change, QueueService

log = logging.getLogger(__name__)

# Changes after which a rule may hold or stop holding. Not "alert": that would loop.
TRIGGER_KINDS = frozenset({"ticket_issued", "counter", "queue", "rating", "device"})
# Change-triggered evaluations at most this often: under a stream of presses the rules are
# checked about once a second, not once per press.
MIN_GAP_S = 1.0
RECENT_LIMIT = 100
SEVERITY_ORDER = {"critical": 0, "warning": 1}


class AlertRunner:
    """`start()` subscribes to the service and starts the thread; `evaluate()` checks now."""

    def __init__(self, service: QueueService, *, interval_s: float | None = None, min_gap_s: float = MIN_GAP_S) -> None:
        self.service = service
        self.interval_s = float(interval_s if interval_s is not None else service.config.alerts.evaluate_every_s)
        self.min_gap_s = min_gap_s
        self.evaluations = 0  # done by the thread, for tests and logs
        self._evaluate_lock = threading.Lock()
        self._wake = threading.Condition()
        self._dirty = True  # the first pass checks whatever held while the server was down
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        with self._wake:
            self._stopping = False
            self._dirty = True
        self._unsubscribe = self.service.subscribe(self._on_change)
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until no change waits to be evaluated and no evaluation is running."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._dirty and not self._busy, timeout)

    def wait_for_evaluations(self, count: int, timeout: float = 10.0) -> bool:
        """Until the thread has evaluated at least `count` times."""
        with self._wake:
            return self._wake.wait_for(lambda: self.evaluations >= count, timeout)

    def _on_change(self, change: Change) -> None:
        if change.kind in TRIGGER_KINDS:
            with self._wake:
                # Woken once when there is news, not again for every change after it: under a
                # stream of changes the thread would wake each time only to wait for its turn.
                if not self._dirty:
                    self._dirty = True
                    self._wake.notify_all()

    def _run(self) -> None:
        last_started = -math.inf
        while True:
            with self._wake:
                while not self._stopping:
                    since_last = time.monotonic() - last_started
                    due_in = (self.min_gap_s if self._dirty else self.interval_s) - since_last
                    if due_in <= 0:
                        break
                    self._wake.wait(due_in)
                if self._stopping:
                    return
                self._dirty = False
                self._busy = True
            last_started = time.monotonic()
            try:
                self.evaluate()
            except Exception:  # a failed pass is retried on the next one; the thread carries on
                log.exception("alert evaluation failed")
            finally:
                with self._wake:
                    self._busy = False
                    self.evaluations += 1
                    self._wake.notify_all()

    # --- one evaluation -------------------------------------------------------------------------

    def evaluate(self) -> AlertChanges:
        """Check every rule now; store what was raised, cleared or refreshed and tell listeners."""
        service, store = self.service, self.service.store
        with self._evaluate_lock:
            now = service.now()
            current = alert_rules.evaluate(service.config, gather_facts(service, now))
            open_rows = {alert_key(row["rule_id"], row["subject"]): row for row in store.active_alerts()}
            changes = alert_rules.diff_alerts({key: condition_of(row) for key, row in open_rows.items()}, current)
            if not changes:
                return changes
            events: list[tuple[str, int]] = []
            with store.write():
                for condition in changes.raised:
                    events.append(("raised", store.open_alert(condition, now)))
                for key in changes.cleared:
                    store.clear_alert(open_rows[key]["id"], now)
                    events.append(("cleared", open_rows[key]["id"]))
                for condition in changes.updated:
                    store.refresh_alert(open_rows[condition.key]["id"], condition)
                    events.append(("updated", open_rows[condition.key]["id"]))
                views = [(event, alert_view(service.config, store.get_alert(alert_id))) for event, alert_id in events]
        for event, view in views:
            if event != "updated":
                level = logging.WARNING if event == "raised" else logging.INFO
                log.log(level, "alert %s %s: %s", view["rule"], event, view["message"]["en"])
        service.notify([Change("alert", {"event": event, "alert": view}) for event, view in views])
        return changes


def gather_facts(service: QueueService, now: datetime) -> Facts:
    """What the enabled rules need, read from the store (nothing a rule does not use)."""
    config, store = service.config, service.store
    rules = [rule for rule in config.alerts.rules if rule.enabled]
    kinds = {rule.kind for rule in rules}
    shares: dict[int, dict[str, ShareCount]] = {}
    if "unsatisfied_share" in kinds:
        for window_min in {rule.window_min for rule in rules if rule.kind == "unsatisfied_share"}:
            since = now - timedelta(minutes=window_min)
            # A press is received at most DEVICE_CLOCK_SLACK after it is judged to have happened.
            first_day = local_day(since - DEVICE_CLOCK_SLACK, config.tz)
            shares[window_min] = share_counts_of_levels(config, store.counted_ratings_since(since, first_day))
    lines = {}
    if "wait_over_target" in kinds:
        lines = store.waiting_lines(local_day(now, config.tz), wait_cutoffs(config, now))
    devices: list[DeviceFact] = []
    if kinds & {"device_offline", "printer_problem"}:
        devices = [
            DeviceFact(
                device_id=row["device_id"], status=row["status"],
                status_since=from_iso(row["status_since"]) if row["status_since"] else None,
                printer_state=row["printer_state"], printer_detail=row["printer_detail"],
                printer_since=from_iso(row["printer_since"]) if row["printer_since"] else None,
            )
            for row in store.list_devices()
        ]
    return Facts(now=now, devices=devices, lines=lines, shares=shares)


def condition_of(row: dict) -> AlertCondition:
    """A stored open alert as the condition it was raised for."""
    return AlertCondition(row["rule_id"], row["kind"], row["subject"], row["severity"],
                          row["message_vi"], row["message_en"], row["details"])


def alert_view(config: Config, row: dict) -> dict:
    """An alert as GET /api/v1/alerts and MQTT show it; `cleared_at` only once cleared."""
    view = {
        "id": row["id"],
        "rule": row["rule_id"],
        "kind": row["kind"],
        "subject": row["subject"],
        "severity": row["severity"],
        "message": {"vi": row["message_vi"], "en": row["message_en"]},
        "since": row["raised_at"].astimezone(config.tz).isoformat(),
        "details": row["details"],
    }
    if row["cleared_at"] is not None:
        view["cleared_at"] = row["cleared_at"].astimezone(config.tz).isoformat()
    return view


def active_alert_views(service: QueueService) -> list[dict]:
    """Open alerts, critical first, then the oldest first."""
    rows = sorted(service.store.active_alerts(), key=lambda row: (SEVERITY_ORDER.get(row["severity"], 9), row["raised_at"], row["id"]))
    return [alert_view(service.config, row) for row in rows]


def alerts_payload(service: QueueService) -> dict:
    """The body of GET /api/v1/alerts: open alerts, and those cleared in the last `recent_hours`."""
    since = service.now() - timedelta(hours=service.config.alerts.recent_hours)
    recent = service.store.cleared_alerts(since, RECENT_LIMIT)
    return {
        "active": active_alert_views(service),
        "recent": [alert_view(service.config, row) for row in recent],
    }
