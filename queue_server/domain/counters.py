"""Counters: who is called next (strict or interleaved priority) and the clerk's actions."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from ..config import Config, Counter
from . import tickets as t
from .errors import Conflict, DomainError, NotFound
from .tickets import Ticket, TicketStatus


class CounterStatus(StrEnum):
    IDLE = "idle"
    SERVING = "serving"
    RATING = "rating"  # the ticket just finished here may be rated
    CLOSED = "closed"


class Action(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    NEXT = "next"
    RECALL = "recall"
    START = "start"
    NO_SHOW = "no_show"
    FINISH = "finish"
    TRANSFER = "transfer"


@dataclass(frozen=True)
class CounterState:
    counter_id: str
    is_open: bool = True
    clerk_id: str | None = None
    ticket_id: str | None = None  # the ticket called or being served here
    rating_ticket_id: str | None = None  # the ticket last finished here, rateable until rating_until
    rating_until: datetime | None = None
    rating_done: bool = False
    normal_streak: int | None = None  # normal tickets called since the last priority one
    streak_day: date | None = None

    def status(self, now: datetime) -> CounterStatus:
        if not self.is_open:
            return CounterStatus.CLOSED
        if self.ticket_id is not None:
            return CounterStatus.SERVING
        if self.awaiting_rating(now):
            return CounterStatus.RATING
        return CounterStatus.IDLE

    def awaiting_rating(self, now: datetime) -> bool:
        return (
            self.rating_ticket_id is not None
            and not self.rating_done
            and self.rating_until is not None
            and now <= self.rating_until
        )


@dataclass(frozen=True)
class Outcome:
    """What an action changed: the counter, the tickets touched, and whether a call is announced."""

    action: Action
    counter: CounterState
    tickets: list[Ticket] = field(default_factory=list)  # in the order they changed
    announce: Ticket | None = None  # a call to announce (new call or recall)
    repeat: bool = False


def choose_next(config: Config, counter: Counter, state: CounterState, waiting: list[Ticket], today: date) -> Ticket | None:
    """The ticket this counter calls next, among the waiting tickets it may serve.

    strict: any priority ticket goes first. interleaved N: after N normal tickets, one
    priority ticket; a counter starts each day as if N normal tickets had just been called,
    so a priority citizen waiting at opening time is called first.
    """
    eligible = [
        ticket
        for ticket in waiting
        if ticket.status is TicketStatus.WAITING
        and ticket.field_id in counter.fields
        and ticket.target_counter_id in (None, counter.id)
    ]
    if not eligible:
        return None
    # A ticket sent to this very counter is taken before the general line.
    targeted = sorted((x for x in eligible if x.target_counter_id == counter.id), key=Ticket.line_key)
    if targeted:
        return targeted[0]
    priority = sorted((x for x in eligible if x.is_priority), key=Ticket.line_key)
    normal = sorted((x for x in eligible if not x.is_priority), key=Ticket.line_key)
    policy, normal_per_priority = config.policy_for(counter)
    if not priority:
        return normal[0]
    if not normal or policy == "strict":
        return priority[0]
    streak = current_streak(state, today, normal_per_priority)
    return priority[0] if streak >= normal_per_priority else normal[0]


def current_streak(state: CounterState, today: date, normal_per_priority: int) -> int:
    if state.streak_day != today or state.normal_streak is None:
        return normal_per_priority
    return state.normal_streak


def _require_counter(config: Config, counter_id: str) -> Counter:
    counter = config.counter(counter_id)
    if counter is None:
        raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
    return counter


def _require_open(state: CounterState) -> None:
    if not state.is_open:
        raise Conflict("counter_closed", "Quầy đang đóng / The counter is closed")


def _current(state: CounterState, current: Ticket | None) -> Ticket:
    if state.ticket_id is None or current is None:
        raise Conflict("no_current_ticket", "Quầy chưa gọi số nào / No ticket at this counter")
    return current


def _after_finish(state: CounterState, finished: Ticket, config: Config) -> CounterState:
    assert finished.finished_at is not None
    return dataclasses.replace(
        state,
        ticket_id=None,
        rating_ticket_id=finished.id,
        rating_until=finished.finished_at + timedelta(seconds=config.rating.window_s),
        rating_done=False,
    )


def apply_action(
    config: Config,
    state: CounterState,
    action: Action,
    now: datetime,
    *,
    clerk_id: str | None,
    current: Ticket | None,
    waiting: list[Ticket],
    transfer_field: str | None = None,
    transfer_counter: str | None = None,
    keep_place: bool | None = None,
) -> Outcome:
    """Apply one clerk action at a counter; raises the rule it breaks, changes nothing then.

    `current` is the ticket the counter holds (state.ticket_id), `waiting` the tickets in line.
    """
    counter = _require_counter(config, state.counter_id)
    today = now.astimezone(config.tz).date()
    clerk_id = clerk_id or state.clerk_id

    if action is Action.OPEN:
        return Outcome(action, dataclasses.replace(state, is_open=True, clerk_id=clerk_id))
    if action is Action.CLOSE:
        if state.ticket_id is not None:
            raise Conflict("ticket_in_progress", "Hãy kết thúc số đang phục vụ / Finish the current ticket first")
        return Outcome(action, dataclasses.replace(state, is_open=False))

    _require_open(state)
    state = dataclasses.replace(state, clerk_id=clerk_id)

    if action is Action.NEXT:
        changed: list[Ticket] = []
        if state.ticket_id is not None and current is not None:
            # "Next" while holding a ticket finishes it, which opens its rating window.
            finished = t.finish(current, now)
            changed.append(finished)
            state = _after_finish(state, finished, config)
        chosen = choose_next(config, counter, state, waiting, today)
        if chosen is None:
            if changed:
                return Outcome(action, state, changed)
            raise DomainError("queue_empty", "Không còn ai chờ / Nobody is waiting")
        called = t.call(chosen, counter.id, clerk_id, now)
        _, normal_per_priority = config.policy_for(counter)
        streak = current_streak(state, today, normal_per_priority)
        state = dataclasses.replace(
            state,
            ticket_id=called.id,
            normal_streak=0 if called.is_priority else streak + 1,
            streak_day=today,
        )
        return Outcome(action, state, changed + [called], announce=called)

    ticket = _current(state, current)
    if action is Action.RECALL:
        recalled = t.recall(ticket, now)
        return Outcome(action, state, [recalled], announce=recalled, repeat=True)
    if action is Action.START:
        return Outcome(action, state, [t.start(ticket, now)])
    if action is Action.NO_SHOW:
        missed = t.no_show(ticket, now)
        return Outcome(action, dataclasses.replace(state, ticket_id=None), [missed])
    if action is Action.FINISH:
        finished = t.finish(ticket, now)
        return Outcome(action, _after_finish(state, finished, config), [finished])
    if action is Action.TRANSFER:
        field_id, counter_id = _transfer_target(config, ticket, transfer_field, transfer_counter, counter.id)
        moved = t.transfer(
            ticket,
            now,
            field_id=field_id,
            counter_id=counter_id,
            keep_place=config.queue.transfer_keeps_place if keep_place is None else keep_place,
        )
        return Outcome(action, dataclasses.replace(state, ticket_id=None), [moved])
    raise ValueError(f"unhandled action {action}")  # pragma: no cover - the enum is exhaustive


def _transfer_target(
    config: Config, ticket: Ticket, field_id: str | None, counter_id: str | None, from_counter: str
) -> tuple[str, str | None]:
    if field_id is None and counter_id is None:
        raise DomainError("transfer_target_missing", "Chọn lĩnh vực hoặc quầy / Give a field or a counter")
    if counter_id is not None:
        target = config.counter(counter_id)
        if target is None:
            raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
        if counter_id == from_counter:
            raise DomainError("transfer_to_self", "Không thể chuyển về chính quầy này / Cannot transfer to the same counter")
        if field_id is None:
            field_id = ticket.field_id if ticket.field_id in target.fields else target.fields[0]
        elif field_id not in target.fields:
            raise DomainError("counter_does_not_serve_field", f"Quầy {target.number} không phục vụ lĩnh vực này / Counter {target.number} does not serve that field")
    assert field_id is not None
    if config.field(field_id) is None:
        raise NotFound("unknown_field", f"Không có lĩnh vực '{field_id}' / Unknown field of work '{field_id}'")
    return field_id, counter_id
