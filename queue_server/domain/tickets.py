"""Tickets: numbering per field per local day, opening hours and caps, and ticket states."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..config import Config, FieldOfWork
from .errors import DomainError, InvalidInput, NotFound
from .timeutil import local_day


class TicketStatus(StrEnum):
    WAITING = "waiting"  # in line (also after a transfer)
    CALLED = "called"  # called to a counter, citizen on the way
    SERVING = "serving"  # the clerk has started the service
    FINISHED = "finished"
    NO_SHOW = "no_show"


ACTIVE_AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)


@dataclass(frozen=True)
class Ticket:
    """One queue ticket. Its display code (A015) is derived from the letter and number."""

    id: str
    service_day: date
    issued_field_id: str
    field_id: str  # where it waits now; differs from issued_field_id after a transfer
    letter: str
    number: int
    status: TicketStatus
    issued_at: datetime
    queued_at: datetime  # its place in line: issue time, or transfer time when not keeping place
    priority: str | None = None  # priority reason id, None for a normal ticket
    lang: str = "vi"
    device_id: str | None = None
    called_at: datetime | None = None  # first call: the queue's on-time figure uses it
    last_called_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counter_id: str | None = None
    clerk_id: str | None = None
    target_counter_id: str | None = None  # set when transferred to one specific counter
    call_count: int = 0
    transfers: int = 0

    @property
    def code(self) -> str:
        return f"{self.letter}{self.number:03d}"

    @property
    def is_priority(self) -> bool:
        return self.priority is not None

    def line_key(self) -> tuple:
        """Order within a line: earlier place first, then lower number."""
        return (self.queued_at, self.number, self.id)

    def wait_s(self) -> float | None:
        return wait_seconds(self.issued_at, self.called_at)

    def service_s(self) -> float | None:
        return service_seconds(self.started_at, self.finished_at)


# The three queue rules, on plain instants: Ticket's methods and the figures' lean path (a year of
# tickets read as plain rows, domain.figures) both use them, so each rule is written once.


def wait_seconds(issued_at: datetime, called_at: datetime | None) -> float | None:
    """Issue to first call; None while not called yet."""
    if called_at is None:
        return None
    return (called_at - issued_at).total_seconds()


def service_seconds(started_at: datetime | None, finished_at: datetime | None) -> float | None:
    """Start of service to its end (never negative); None until both are known."""
    if finished_at is None or started_at is None:
        return None
    return max(0.0, (finished_at - started_at).total_seconds())


def called_within_target(issued_at: datetime, called_at: datetime | None, target_wait: timedelta) -> bool | None:
    """Called within the field's target wait; None while not called yet."""
    if called_at is None:
        return None
    return called_at - issued_at <= target_wait


def format_code(letter: str, number: int) -> str:
    return f"{letter}{number:03d}"


def parse_code(code: str) -> tuple[str, int] | None:
    """'A015' -> ('A', 15); None when it does not look like a ticket code."""
    if len(code) < 2 or not code[0].isalpha() or not code[0].isupper() or not code[1:].isdigit():
        return None
    return code[0], int(code[1:])


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def within_opening_hours(periods: Iterable, holidays: Iterable[date], tz: ZoneInfo, at: datetime) -> bool:
    """Whether `at` falls in one of the periods (objects with days, open "HH:MM", close "HH:MM")
    on a local day that is not a holiday. Used by the server and by kiosks (from state/config)."""
    local = at.astimezone(tz)
    if local.date() in set(holidays):
        return False
    minute_of_day = local.hour * 60 + local.minute
    weekday = WEEKDAY_NAMES[local.weekday()]
    return any(
        weekday in period.days and _minutes(period.open) <= minute_of_day < _minutes(period.close)
        for period in periods
    )


def is_open_at(config: Config, field: FieldOfWork, at: datetime) -> bool:
    """Whether the field issues tickets at this instant (local opening hours, weekdays, holidays)."""
    return within_opening_hours(config.hours_for(field), config.holidays, config.tz, at)


def check_issue(
    config: Config,
    field_id: str,
    priority: str | None,
    now: datetime,
    issued_today: int,
) -> FieldOfWork:
    """Raise the reason a ticket cannot be issued now, or return the field to issue in."""
    field = config.field(field_id)
    if field is None:
        raise NotFound("unknown_field", f"Không có lĩnh vực '{field_id}' / Unknown field of work '{field_id}'")
    if priority is not None and config.priority_reason(priority) is None:
        raise InvalidInput(
            "unknown_priority",
            f"Không có đối tượng ưu tiên '{priority}' / Unknown priority reason '{priority}'",
        )
    if field.closed:
        raise DomainError("field_closed", f"Lĩnh vực {field.name.vi} đang tạm dừng / {field.name.en} is closed")
    if not is_open_at(config, field, now):
        raise DomainError(
            "outside_opening_hours",
            "Ngoài giờ làm việc, chưa cấp số / Outside opening hours, no tickets now",
        )
    if field.daily_cap is not None and issued_today >= field.daily_cap:
        raise DomainError(
            "daily_cap_reached",
            f"Đã hết số hôm nay cho {field.name.vi} / Today's tickets for {field.name.en} are all taken",
            cap=field.daily_cap,
        )
    return field


def new_ticket(
    ticket_id: str,
    field: FieldOfWork,
    number: int,
    now: datetime,
    config: Config,
    priority: str | None = None,
    lang: str = "vi",
    device_id: str | None = None,
) -> Ticket:
    """The ticket after `check_issue`; `number` is one more than the day's highest in the field."""
    if number < 1:
        raise ValueError("ticket numbers start at 1")
    return Ticket(
        id=ticket_id,
        service_day=local_day(now, config.tz),
        issued_field_id=field.id,
        field_id=field.id,
        letter=field.letter,
        number=number,
        status=TicketStatus.WAITING,
        issued_at=now,
        queued_at=now,
        priority=priority,
        lang=lang,
        device_id=device_id,
    )


def call(ticket: Ticket, counter_id: str, clerk_id: str | None, now: datetime) -> Ticket:
    return dataclasses.replace(
        ticket,
        status=TicketStatus.CALLED,
        called_at=ticket.called_at or now,
        last_called_at=now,
        counter_id=counter_id,
        clerk_id=clerk_id,
        target_counter_id=None,
        call_count=ticket.call_count + 1,
    )


def recall(ticket: Ticket, now: datetime) -> Ticket:
    if ticket.status not in ACTIVE_AT_COUNTER:
        raise DomainError("not_called", f"Số {ticket.code} không ở quầy / {ticket.code} is not at a counter")
    return dataclasses.replace(ticket, last_called_at=now, call_count=ticket.call_count + 1)


def start(ticket: Ticket, now: datetime) -> Ticket:
    if ticket.status is not TicketStatus.CALLED:
        raise DomainError("not_called", f"Số {ticket.code} chưa được gọi / {ticket.code} has not been called")
    return dataclasses.replace(ticket, status=TicketStatus.SERVING, started_at=now)


def finish(ticket: Ticket, now: datetime) -> Ticket:
    if ticket.status not in ACTIVE_AT_COUNTER:
        raise DomainError("not_called", f"Số {ticket.code} không ở quầy / {ticket.code} is not at a counter")
    # Without an explicit start, service is taken to begin at the last call.
    started_at = ticket.started_at or ticket.last_called_at or now
    return dataclasses.replace(ticket, status=TicketStatus.FINISHED, started_at=started_at, finished_at=now)


def no_show(ticket: Ticket, now: datetime) -> Ticket:
    if ticket.status is not TicketStatus.CALLED:
        raise DomainError(
            "not_waiting_for_citizen",
            f"Số {ticket.code} đang được phục vụ hoặc đã xong / {ticket.code} is being served or done",
        )
    return dataclasses.replace(ticket, status=TicketStatus.NO_SHOW, finished_at=now)


def transfer(
    ticket: Ticket,
    now: datetime,
    *,
    field_id: str,
    counter_id: str | None,
    keep_place: bool,
) -> Ticket:
    """Send a ticket back into a line: another field's, or one counter's."""
    if ticket.status not in ACTIVE_AT_COUNTER:
        raise DomainError("not_called", f"Số {ticket.code} không ở quầy / {ticket.code} is not at a counter")
    return dataclasses.replace(
        ticket,
        status=TicketStatus.WAITING,
        field_id=field_id,
        target_counter_id=counter_id,
        queued_at=ticket.queued_at if keep_place else now,
        counter_id=None,
        started_at=None,
        transfers=ticket.transfers + 1,
    )


def estimate_wait_s(people_ahead: int, open_counters: int, avg_service_s: float) -> int:
    """People ahead share the open counters of the field, each taking the average service time."""
    return int(round(people_ahead * avg_service_s / max(1, open_counters)))


RECENT_FINISHED = 20  # how many of a line's latest finished tickets the estimate averages


def average_service_s(finished: list[Ticket], fallback_s: float, recent: int = RECENT_FINISHED) -> float:
    """Mean service time of the most recent finished tickets, or the configured figure."""
    latest = sorted(finished, key=lambda t: t.finished_at or t.issued_at)[-recent:]
    return mean_service_s([(t.started_at, t.finished_at) for t in latest], fallback_s)


def mean_service_s(served: Iterable[tuple[datetime | None, datetime | None]], fallback_s: float) -> float:
    """Mean of the positive service times among (started_at, finished_at) pairs, or the configured
    figure: the estimate's rule on plain instants, which the store reads without whole tickets
    (the estimate is made for every ticket issued and every queue state sent)."""
    times = [s for s in (service_seconds(started_at, finished_at) for started_at, finished_at in served)
             if s is not None and s > 0]
    return sum(times) / len(times) if times else fallback_s


def people_ahead(ticket: Ticket, waiting: list[Ticket]) -> int:
    """Tickets in the same line that will be called first (priority tickets go ahead of normal)."""
    ahead = 0
    for other in waiting:
        if other.id == ticket.id or other.field_id != ticket.field_id:
            continue
        if other.is_priority and not ticket.is_priority:
            ahead += 1
        elif other.is_priority == ticket.is_priority and other.line_key() < ticket.line_key():
            ahead += 1
    return ahead


def served_within_target(ticket: Ticket, target_wait_min: int) -> bool | None:
    """Called within the field's target wait; None while not called yet."""
    return called_within_target(ticket.issued_at, ticket.called_at, timedelta(minutes=target_wait_min))
