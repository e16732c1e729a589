"""Ratings: one counted rating per served ticket; every other press kept and flagged as misuse."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from ..config import Config, RatingConfig
from .counters import CounterState
from .errors import InvalidInput, NotFound
from .tickets import Ticket, TicketStatus

# A device clock may drift a little; beyond this its own time is not trusted for the window.
DEVICE_CLOCK_SLACK = timedelta(seconds=5)
MAX_REASONS = 8


class MisuseFlag(StrEnum):
    NOTHING_TO_RATE = "nothing_to_rate"  # no ticket finished at this counter awaits a rating
    ALREADY_RATED = "already_rated"  # the ticket already has its counted rating
    AFTER_WINDOW = "after_window"  # pressed after the rating window closed
    WRONG_TICKET = "wrong_ticket"  # names a ticket not finished at this counter


@dataclass(frozen=True)
class Rating:
    """A press as recorded: counted, or kept with the reason it is not counted."""

    counter_id: str
    level: str
    received_at: datetime
    day: date  # the server's local day of receipt: figures use the server's clock
    counted: bool
    flag: MisuseFlag | None = None
    ticket_id: str | None = None
    clerk_id: str | None = None
    dossier_code: str | None = None
    field_id: str | None = None
    reasons: tuple[str, ...] = ()
    device_at: datetime | None = None
    device_id: str | None = None
    msg_id: str | None = None


def validate_press(config: Config, counter_id: str, level: str, reasons: list[str] | None) -> None:
    """Input errors (unknown counter or level) are rejected outright, not stored as ratings."""
    if config.counter(counter_id) is None:
        raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
    if config.level(level) is None:
        known = ", ".join(lv.id for lv in config.rating.levels)
        raise InvalidInput("unknown_level", f"Mức đánh giá không hợp lệ '{level}' / Unknown level '{level}' (known: {known})")
    if reasons is not None and len(reasons) > MAX_REASONS:
        raise InvalidInput("too_many_reasons", f"Tối đa {MAX_REASONS} lý do / At most {MAX_REASONS} reasons")


def judge_press(
    config: Config,
    state: CounterState,
    *,
    level: str,
    received_at: datetime,
    named_ticket_id: str | None,
    candidate: Ticket | None,
    candidate_already_rated: bool,
    device_at: datetime | None = None,
    reasons: list[str] | None = None,
    dossier_code: str | None = None,
    device_id: str | None = None,
    msg_id: str | None = None,
) -> tuple[Rating, CounterState]:
    """Decide whether a press counts, and bind it to its ticket and clerk.

    `candidate` is the ticket named in the press, or else the one the counter awaits a rating
    for (`state.rating_ticket_id`). A press counts only when that ticket was finished at this
    counter, has no counted rating yet and the press falls within the rating window.
    """
    validate_press(config, state.counter_id, level, reasons)
    press = Rating(
        counter_id=state.counter_id,
        level=level,
        received_at=received_at,
        day=received_at.astimezone(config.tz).date(),
        counted=False,
        reasons=tuple(reasons or ()),
        device_at=device_at,
        device_id=device_id,
        msg_id=msg_id,
        dossier_code=dossier_code,
    )
    if candidate is None:
        flag = MisuseFlag.WRONG_TICKET if named_ticket_id else MisuseFlag.NOTHING_TO_RATE
        return dataclasses.replace(press, flag=flag, ticket_id=None), state

    press = dataclasses.replace(press, ticket_id=candidate.id, clerk_id=candidate.clerk_id, field_id=candidate.field_id)
    if (
        candidate.status is not TicketStatus.FINISHED
        or candidate.counter_id != state.counter_id
        or candidate.finished_at is None
    ):
        return dataclasses.replace(press, flag=MisuseFlag.WRONG_TICKET), state
    pressed_at = press_time(candidate.finished_at, received_at, device_at if named_ticket_id else None)
    in_window = pressed_at <= candidate.finished_at + timedelta(seconds=config.rating.window_s)
    if candidate_already_rated:
        # Long after a rated service, an unnamed press has nothing to rate rather than repeating.
        flag = MisuseFlag.ALREADY_RATED if (named_ticket_id or in_window) else MisuseFlag.NOTHING_TO_RATE
        return dataclasses.replace(press, flag=flag), state
    if not in_window:
        return dataclasses.replace(press, flag=MisuseFlag.AFTER_WINDOW), state
    if state.rating_ticket_id == candidate.id:
        state = dataclasses.replace(state, rating_done=True)
    return dataclasses.replace(press, counted=True), state


def press_time(finished_at: datetime, received_at: datetime, device_at: datetime | None) -> datetime:
    """When the press happened. A press that names its ticket (sent from a device's outbox,
    possibly long after) is judged at the device's own time when that time is plausible:
    not before the service ended and not after the server received it."""
    if device_at is not None and finished_at - DEVICE_CLOCK_SLACK <= device_at <= received_at + DEVICE_CLOCK_SLACK:
        return device_at
    return received_at


def level_score(scale: RatingConfig, level_id: str) -> float:
    """A level on a 0–100 scale: the best level is 100, the worst 0, evenly spaced."""
    ids = [level.id for level in scale.levels]
    position = ids.index(level_id)
    return 100.0 * (len(ids) - 1 - position) / (len(ids) - 1)


def is_satisfied(scale: RatingConfig, level_id: str) -> bool:
    return next(level.satisfied for level in scale.levels if level.id == level_id)
