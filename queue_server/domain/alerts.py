"""Alerts: which configured conditions hold now, and what was raised or cleared since last time.

Pure rules: the caller gathers a snapshot of facts (recent ratings, waiting tickets, devices,
the time) and gets back the conditions that hold, each keyed by its rule and subject (a
counter, a field or a device), with a severity, a message in Vietnamese and English and the
figures behind it. `diff_alerts` compares that with the alerts still open to say which to
raise, which to clear and which only to refresh (same alert, new figures).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

from ..config import AlertRule, Config
from . import tickets as ticket_rules
from .tickets import Ticket, TicketStatus

# Room for a field's name, a device id and a printer's own words in one line.
MAX_MESSAGE_CHARS = 512
MAX_DETAIL_CHARS = 120

PRINTER_STATE_NAMES: dict[str, tuple[str, str]] = {
    "paper_low": ("sắp hết giấy", "paper low"),
    "paper_out": ("hết giấy", "out of paper"),
    "offline": ("mất kết nối", "offline"),
    "error": ("báo lỗi", "error"),
}


@dataclass(frozen=True)
class RatingFact:
    """A stored press, as the unsatisfied-share rule needs it."""

    counter_id: str
    level: str
    satisfied: bool  # whether its level counts as satisfied on the configured scale
    counted: bool  # False: flagged as misuse, never counted
    pressed_at: datetime


@dataclass(frozen=True)
class DeviceFact:
    """What a device last said about itself (birth / Last Will, printer events)."""

    device_id: str
    status: str | None  # online / offline; None when never heard on MQTT (an HTTP-only device)
    status_since: datetime | None = None
    printer_state: str | None = None
    printer_detail: str | None = None
    printer_since: datetime | None = None


class WaitingLine(NamedTuple):
    """A field's waiting line as the wait rule needs it (`waiting_lines`)."""

    waiting: int  # tickets waiting in the line
    over_target: int  # of them, issued longer ago than the field's target wait
    oldest: tuple[str, str, datetime]  # (ticket id, code, issued at) of the first issued (then lowest number)


class ShareCount(NamedTuple):
    """A counter's counted ratings in a rule's window, and how many of them were unsatisfied."""

    counted: int
    unsatisfied: int


@dataclass(frozen=True)
class Facts:
    """A snapshot for the rules. The records (`ratings`, `waiting`) may come summed up instead
    (`shares` per window in minutes, `lines`): what the store counts in SQL, so that a pass does
    not read a busy day's whole line and last hour of presses; the rules give the same conditions
    for either (`waiting_lines` and `share_counts` are the sums, tested against the store's)."""

    now: datetime
    ratings: Sequence[RatingFact] = ()
    waiting: Sequence[Ticket] = ()  # today's waiting tickets, every field
    devices: Sequence[DeviceFact] = ()
    lines: Mapping[str, WaitingLine] | None = None  # by field; a field with nobody waiting may be absent
    shares: Mapping[int, Mapping[str, ShareCount]] | None = None  # by window_min, then by counter


def wait_cutoffs(config: Config, now: datetime) -> dict[str, datetime]:
    """For each field: a ticket issued before this instant has waited longer than its target."""
    return {work_field.id: now - timedelta(minutes=work_field.target_wait_min) for work_field in config.fields}


def waiting_lines(config: Config, tickets: Sequence[Ticket], now: datetime) -> dict[str, WaitingLine]:
    """The waiting lines of the fields with a ticket waiting, from the tickets themselves."""
    cutoffs = wait_cutoffs(config, now)
    by_field: dict[str, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        if ticket.status is TicketStatus.WAITING:
            by_field[ticket.field_id].append(ticket)
    lines = {}
    for field_id, line in by_field.items():
        cutoff = cutoffs.get(field_id)
        oldest = min(line, key=lambda t: (t.issued_at, t.number))
        lines[field_id] = WaitingLine(
            len(line), sum(1 for t in line if cutoff is not None and t.issued_at < cutoff),
            (oldest.id, oldest.code, oldest.issued_at),
        )
    return lines


def share_counts_of_levels(config: Config, counts: Iterable[tuple[str, str, int]]) -> dict[str, ShareCount]:
    """The same per counter from (counter, level, how many) counted presses, each level judged
    on the configured scale (a level since removed from it cannot be judged: left out)."""
    satisfied = {level.id: level.satisfied for level in config.rating.levels}
    counted: dict[str, int] = defaultdict(int)
    unsatisfied: dict[str, int] = defaultdict(int)
    for counter_id, level, count in counts:
        if level in satisfied:
            counted[counter_id] += count
            if not satisfied[level]:
                unsatisfied[counter_id] += count
    return {counter_id: ShareCount(count, unsatisfied[counter_id]) for counter_id, count in counted.items()}


def share_counts(ratings: Sequence[RatingFact], since: datetime) -> dict[str, ShareCount]:
    """Per counter, the counted presses after `since` and the unsatisfied ones among them."""
    counted: dict[str, int] = defaultdict(int)
    unsatisfied: dict[str, int] = defaultdict(int)
    for rating in ratings:
        if rating.counted and rating.pressed_at > since:
            counted[rating.counter_id] += 1
            if not rating.satisfied:
                unsatisfied[rating.counter_id] += 1
    return {counter_id: ShareCount(count, unsatisfied[counter_id]) for counter_id, count in counted.items()}


@dataclass(frozen=True)
class AlertCondition:
    """A rule's condition that holds for one subject."""

    rule_id: str
    kind: str
    subject: str  # the counter, field or device id
    severity: str
    message_vi: str
    message_en: str
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return alert_key(self.rule_id, self.subject)


def alert_key(rule_id: str, subject: str) -> str:
    # Rule ids and subjects are ids ([a-z0-9-]): the ':' cannot occur in either.
    return f"{rule_id}:{subject}"


@dataclass(frozen=True)
class AlertChanges:
    raised: list[AlertCondition]
    cleared: list[str]  # keys of alerts that no longer hold
    updated: list[AlertCondition]  # still holding, with a new message, severity or details

    def __bool__(self) -> bool:
        return bool(self.raised or self.cleared or self.updated)


def evaluate(config: Config, facts: Facts) -> dict[str, AlertCondition]:
    """Every condition of the enabled rules that holds at `facts.now`, by key."""
    conditions: dict[str, AlertCondition] = {}
    for rule in config.alerts.rules:
        if not rule.enabled:
            continue
        for condition in _CHECKS[rule.kind](config, rule, facts):
            conditions[condition.key] = condition
    return conditions


def diff_alerts(previous: Mapping[str, AlertCondition], current: Mapping[str, AlertCondition]) -> AlertChanges:
    """From the alerts open before to the conditions holding now."""
    raised = [current[key] for key in sorted(current.keys() - previous.keys())]
    cleared = sorted(previous.keys() - current.keys())
    updated = [
        current[key] for key in sorted(current.keys() & previous.keys())
        if _content(current[key]) != _content(previous[key])
    ]
    return AlertChanges(raised, cleared, updated)


def _content(condition: AlertCondition) -> tuple:
    return (condition.kind, condition.severity, condition.message_vi, condition.message_en, dict(condition.details))


# --- the rules ----------------------------------------------------------------------------------


def _unsatisfied_share(config: Config, rule: AlertRule, facts: Facts) -> Iterator[AlertCondition]:
    """A counter whose counted ratings of the last `window_min` minutes are at least `share`
    unsatisfied, once there are `min_ratings` of them. Flagged presses are not ratings."""
    if facts.shares is not None:
        shares = facts.shares.get(rule.window_min, {})
    else:
        shares = share_counts(facts.ratings, facts.now - timedelta(minutes=rule.window_min))
    threshold = Fraction(str(rule.share))  # exact: 0.3 of 10 ratings is 3, not 3.0000000000000004
    counter_ids = rule.counters if rule.counters is not None else [c.id for c in config.counters]
    for counter_id in counter_ids:
        counted, unsatisfied = shares.get(counter_id, (0, 0))
        if counted < rule.min_ratings or Fraction(unsatisfied, counted) < threshold:
            continue
        counter = config.counter(counter_id)
        number = counter.number if counter else counter_id
        yield AlertCondition(
            rule.id, rule.kind, counter_id, rule.severity,
            f"Quầy {number}: {unsatisfied}/{counted} đánh giá không hài lòng trong {rule.window_min} phút",
            f"Counter {number}: {unsatisfied} of {counted} ratings unsatisfied in {rule.window_min} min",
            {
                "counter": counter_id, "counter_number": number, "window_min": rule.window_min,
                "ratings": counted, "unsatisfied": unsatisfied, "share": round(unsatisfied / counted, 3),
                "threshold": rule.share, "min_ratings": rule.min_ratings,
            },
        )


def _wait_over_target(config: Config, rule: AlertRule, facts: Facts) -> Iterator[AlertCondition]:
    """A field whose oldest waiting ticket has waited longer than the field's target: that
    ticket will not be served on time (the on-time figure compares the wait with the target)."""
    field_ids = rule.fields if rule.fields is not None else [f.id for f in config.fields]
    lines = facts.lines if facts.lines is not None else waiting_lines(config, facts.waiting, facts.now)
    for field_id in field_ids:
        work_field = config.field(field_id)
        line = lines.get(field_id)
        if work_field is None or line is None or not line.over_target:
            continue
        oldest_id, oldest_code, oldest_issued_at = line.oldest
        # Rounded up: a wait just past a 15-minute target reads 16, never "15 (target 15)".
        waited_min = math.ceil((facts.now - oldest_issued_at).total_seconds() / 60)
        target_min = work_field.target_wait_min
        name = work_field.name
        yield AlertCondition(
            rule.id, rule.kind, field_id, rule.severity,
            f"{name.vi}: số {oldest_code} đã chờ {waited_min} phút (mục tiêu {target_min} phút); "
            f"{line.over_target} người chờ quá mục tiêu",
            f"{name.en}: ticket {oldest_code} has waited {waited_min} min (target {target_min} min); "
            f"{line.over_target} waiting over target",
            {
                "field": field_id, "oldest_ticket": oldest_code, "oldest_ticket_id": oldest_id,
                "waited_min": waited_min, "target_min": target_min, "over_target": line.over_target,
                "waiting": line.waiting,
            },
        )


def _device_offline(config: Config, rule: AlertRule, facts: Facts) -> Iterator[AlertCondition]:
    """A device whose last word is `offline` (its Last Will or a clean shutdown) for at least
    `grace_min` minutes: a reboot or a short network drop is not worth a manager's attention.
    With `only_when_open`, not while the centre is closed (kiosks switched off for the night)."""
    if rule.only_when_open and not centre_open(config, facts.now):
        return
    grace = timedelta(minutes=rule.grace_min)
    for device in _devices_of(rule, facts):
        if device.status != "offline" or device.status_since is None:
            continue
        if facts.now - device.status_since < grace:
            continue
        since_vi, since_en = _local_time(config, device.status_since, facts.now)
        yield AlertCondition(
            rule.id, rule.kind, device.device_id, rule.severity,
            f"Thiết bị {device.device_id} mất kết nối từ {since_vi}",
            f"Device {device.device_id} offline since {since_en}",
            {"device": device.device_id, "offline_since": device.status_since.isoformat(), "grace_min": rule.grace_min},
        )


def _printer_problem(config: Config, rule: AlertRule, facts: Facts) -> Iterator[AlertCondition]:
    """A kiosk whose printer last reported one of the rule's states (out of paper, …)."""
    for device in _devices_of(rule, facts):
        state = device.printer_state
        if state is None or state not in rule.printer_states:
            continue
        name_vi, name_en = PRINTER_STATE_NAMES.get(state, (state, state))
        detail = _clip(device.printer_detail or "", MAX_DETAIL_CHARS)
        suffix = f" ({detail})" if detail else ""
        yield AlertCondition(
            rule.id, rule.kind, device.device_id, rule.severity,
            _clip(f"Máy in của {device.device_id}: {name_vi}{suffix}", MAX_MESSAGE_CHARS),
            _clip(f"Printer of {device.device_id}: {name_en}{suffix}", MAX_MESSAGE_CHARS),
            {
                "device": device.device_id, "printer_state": state, "printer_detail": device.printer_detail,
                "since": device.printer_since.isoformat() if device.printer_since else None,
            },
        )


_CHECKS = {
    "unsatisfied_share": _unsatisfied_share,
    "wait_over_target": _wait_over_target,
    "device_offline": _device_offline,
    "printer_problem": _printer_problem,
}


def centre_open(config: Config, at: datetime) -> bool:
    """Whether any field of work is open at `at` (its own hours or the site's, not a holiday)."""
    return any(ticket_rules.is_open_at(config, work_field, at) for work_field in config.fields)


def _devices_of(rule: AlertRule, facts: Facts) -> list[DeviceFact]:
    if rule.devices is None:
        return list(facts.devices)
    wanted = set(rule.devices)
    return [device for device in facts.devices if device.device_id in wanted]


def _local_time(config: Config, at: datetime, now: datetime) -> tuple[str, str]:
    """'09:05' today, '17:02 22/11' on another day, in the centre's time zone."""
    local, today = at.astimezone(config.tz), now.astimezone(config.tz).date()
    if local.date() == today:
        text = local.strftime("%H:%M")
        return text, text
    return local.strftime("%H:%M ngày %d/%m"), local.strftime("%H:%M on %d/%m")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
