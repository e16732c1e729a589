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
    BURST = "burst"  # one of many presses at a counter within a few seconds


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
    pressed_at: datetime | None = None  # when it is judged to have happened (see when_pressed)


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
    recent_presses: int = 0,
) -> tuple[Rating, CounterState]:
    """Decide whether a press counts, and bind it to its ticket and clerk.

    `candidate` is the ticket named in the press, or else the one the counter awaits a rating
    for (`state.rating_ticket_id`). A press counts only when that ticket was finished at this
    counter, has no counted rating yet and the press falls within the rating window, and
    `recent_presses` (presses at this counter in the `burst_window_s` before `when_pressed`)
    is not a burst.
    """
    validate_press(config, state.counter_id, level, reasons)
    flag, state = _flag_for(config, state, received_at, named_ticket_id, candidate, candidate_already_rated,
                            device_at, recent_presses)
    bound = candidate is not None
    return Rating(
        pressed_at=when_pressed(candidate, received_at, named_ticket_id, device_at),
        counter_id=state.counter_id,
        level=level,
        received_at=received_at,
        day=received_at.astimezone(config.tz).date(),
        counted=flag is None,
        flag=flag,
        ticket_id=candidate.id if bound else None,
        clerk_id=candidate.clerk_id if bound else None,
        field_id=candidate.field_id if bound else None,
        reasons=tuple(reasons or ()),
        device_at=device_at,
        device_id=device_id,
        msg_id=msg_id,
        dossier_code=dossier_code,
    ), state


def _flag_for(
    config: Config,
    state: CounterState,
    received_at: datetime,
    named_ticket_id: str | None,
    candidate: Ticket | None,
    candidate_already_rated: bool,
    device_at: datetime | None,
    recent_presses: int,
) -> tuple[MisuseFlag | None, CounterState]:
    """Why a press does not count (None: it counts), and the counter after it."""
    if candidate is None:
        return (MisuseFlag.WRONG_TICKET if named_ticket_id else MisuseFlag.NOTHING_TO_RATE), state
    if (
        candidate.status is not TicketStatus.FINISHED
        or candidate.counter_id != state.counter_id
        or candidate.finished_at is None
    ):
        return MisuseFlag.WRONG_TICKET, state
    pressed_at = when_pressed(candidate, received_at, named_ticket_id, device_at)
    in_window = pressed_at <= candidate.finished_at + timedelta(seconds=config.rating.window_s)
    if candidate_already_rated:
        # Long after a rated service, an unnamed press has nothing to rate rather than repeating.
        return (MisuseFlag.ALREADY_RATED if (named_ticket_id or in_window) else MisuseFlag.NOTHING_TO_RATE), state
    if not in_window:
        return MisuseFlag.AFTER_WINDOW, state
    if recent_presses >= config.rating.burst_presses - 1:
        # Many presses at one counter in a few seconds is someone stuffing, not citizens rating.
        return MisuseFlag.BURST, state
    if state.rating_ticket_id == candidate.id:
        state = dataclasses.replace(state, rating_done=True)
    return None, state


def when_pressed(candidate: Ticket | None, received_at: datetime, named_ticket_id: str | None, device_at: datetime | None) -> datetime:
    """The instant a press is judged at (window and bursts): see press_time."""
    if candidate is None or candidate.finished_at is None:
        return received_at
    return press_time(candidate.finished_at, received_at, device_at if named_ticket_id else None)


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
