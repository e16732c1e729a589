"""The MQTT contract in one place: every topic, its direction, retain flag, QoS and payload schema.

The server, the kiosks, the simulator, the board and the tests all import this module, so a
topic or a field is spelled exactly once. docs/mqtt.md documents it (a test keeps them in step).

Receiving side: `parse_inbound` (what the server accepts from devices) and `parse_from_server`
(what devices and boards accept from the server) turn a raw MQTT message into a typed
`Inbound`, or raise `PayloadRejected` whose `reason` is a stable machine code from
`REJECT_REASONS`. Whatever the bytes, nothing else is raised: the caller records and counts
the rejection and carries on.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

PREFIX = "motcua"
QOS = 1
MAX_PAYLOAD_BYTES = 4096
"""What a device may send (PROTOCOL.md)."""
MAX_SERVER_PAYLOAD_BYTES = 256 * 1024
"""What the server may publish: state/config and state/today of a big centre outgrow 4 KiB."""
# A device clock may be a little ahead, or a terminal may replay a backlog after an outage.
MAX_CLOCK_AHEAD = timedelta(days=1)
MAX_EVENT_AGE = timedelta(days=30)
MAX_REASONS = 8

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""Sites, devices, counters and fields (they appear in topics)."""
KEY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""Configured keys that never appear in topics: rating levels, priorities, rating reasons."""


# --------------------------------------------------------------------------- reject reasons

REJECT_REASONS: dict[str, str] = {
    "topic_not_ours": "the topic is not under motcua/{site}/",
    "unknown_topic": "under our prefix, but no topic of the contract has this shape",
    "wrong_direction": "a topic the other side publishes (e.g. a device publishing state/… or response/ticket)",
    "bad_device_id": "the {device} segment of the topic is not an id",
    "bad_counter_id": "a counter id (topic segment or `counter` field) is not an id, or payload and topic disagree",
    "bad_field_id": "a field-of-work id (topic segment or `field`) is not an id, or payload and topic disagree",
    "payload_too_large": f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes (from a device) "
                         f"or {MAX_SERVER_PAYLOAD_BYTES} bytes (from the server)",
    "empty_payload": "an empty payload on a topic that is not retained",
    "invalid_utf8": "the payload is not valid UTF-8",
    "not_json": "the payload is not JSON (or is nested too deeply to parse)",
    "nan_or_infinity": "the JSON contains NaN, Infinity or a number too large for a float",
    "duplicate_keys": "a JSON object repeats a key",
    "not_object": "the JSON is valid but not an object",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong JSON type (e.g. a number where a string is expected)",
    "string_too_long": "a string field exceeds its maximum length",
    "bad_msg_id": "msg_id is not 1–128 visible ASCII characters",
    "bad_level": "level is not a level key ([a-z0-9][a-z0-9_-]{0,31}); whether the scale has it is checked later",
    "bad_ticket": "ticket is not a ticket reference (letters, digits, . _ : -, up to 64)",
    "bad_time": "a time is not ISO-8601 with a UTC offset",
    "time_out_of_range": "`at` is more than 1 day ahead of or 30 days behind the receiver's clock",
    "reasons_not_list": "reasons is not a list",
    "too_many_reasons": f"reasons has more than {MAX_REASONS} entries",
    "bad_reason": "an entry of reasons is not a reason key",
    "bad_action": "keypad action is not next, recall, no_show or finish",
    "bad_state": "printer state is not ok, paper_low, paper_out, offline or error",
    "bad_transaction": "transaction is not 1–64 visible ASCII characters",
    "bad_priority": "priority is not a priority key",
    "bad_lang": "lang is not vi or en",
    "bad_status": "a status payload is not one of the allowed words",
    "bad_response": "a ticket response whose status does not match its data/error",
    "bad_value": "any other value outside its allowed range or format",
}


class PayloadRejected(Exception):
    """A message that does not meet the contract. `reason` is stable (see REJECT_REASONS)."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unregistered reject reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- field types


def _parse_time(value: Any) -> datetime:
    """ISO-8601 with an offset, as a string on the wire (numbers are not accepted as times)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if len(value) > 40:
            raise PydanticCustomError("bad_time", "time string longer than 40 characters")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("bad_time", "not an ISO-8601 time") from None
    else:
        raise PydanticCustomError("wrong_type", "a time must be an ISO-8601 string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError("bad_time", "time without a UTC offset")
    return parsed


def _parse_date(value: Any) -> date:
    """A local date as YYYY-MM-DD."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("wrong_type", "a date must be a YYYY-MM-DD string")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("bad_time", "not a YYYY-MM-DD date")


Time = Annotated[datetime, BeforeValidator(_parse_time)]
Day = Annotated[date, BeforeValidator(_parse_date)]
Id = Annotated[str, StringConstraints(pattern=f"^{ID_RE.pattern}$")]
Key = Annotated[str, StringConstraints(pattern=f"^{KEY_RE.pattern}$")]
MsgId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
Transaction = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]
TicketRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
ShortText = Annotated[str, StringConstraints(max_length=256)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Count = Annotated[int, Field(ge=0)]
Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


class Message(BaseModel):
    """A payload: strict JSON types, unknown fields ignored (the protocol lets either side add fields)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# --------------------------------------------------------------------------- device → server


class RatingEvent(Message):
    """One press on a rating terminal or button box."""

    msg_id: MsgId
    counter: Id
    level: Key
    ticket: TicketRef | None = None
    reasons: Annotated[list[Key], Field(max_length=MAX_REASONS)] | None = None
    at: Time


class KeypadEvent(Message):
    """A clerk's key on a counter keypad."""

    msg_id: MsgId
    counter: Id
    action: Literal["next", "recall", "no_show", "finish"]


class PrinterEvent(Message):
    """A ticket kiosk's printer changed state."""

    msg_id: MsgId
    state: Literal["ok", "paper_low", "paper_out", "offline", "error"]
    detail: ShortText | None = None


class TicketRequest(Message):
    """A kiosk asks for a ticket; the same transaction from the same device gets the same ticket."""

    transaction: Transaction
    field: Id
    priority: Key | None = None
    lang: Literal["vi", "en"] | None = None


# --------------------------------------------------------------------------- server → devices


class TicketData(Message):
    """What a kiosk prints."""

    ticket_id: TicketRef
    code: TicketRef  # display code, e.g. "A015"
    field: Id
    priority: Key | None = None
    ahead: Count
    est_wait_s: Count
    issued_at: Time
    url: Annotated[str, StringConstraints(max_length=512)] | None = None  # for the QR code


class ResponseError(Message):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: ShortText


class TicketResponse(Message):
    """The answer to a TicketRequest, echoing its transaction."""

    transaction: Transaction
    status: Literal["ok", "error"]
    data: TicketData | None = None
    error: ResponseError | None = None

    @model_validator(mode="after")
    def _status_matches_body(self) -> TicketResponse:
        if self.status == "ok" and self.data is None:
            raise PydanticCustomError("bad_response", "status ok without data")
        if self.status == "error" and self.error is None:
            raise PydanticCustomError("bad_response", "status error without error")
        return self


class Bilingual(Message):
    vi: Name
    en: Name


class OpeningPeriod(Message):
    days: Annotated[list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]], Field(min_length=1)]
    open: ClockTime
    close: ClockTime


class FieldInfo(Message):
    id: Id
    letter: Annotated[str, StringConstraints(pattern=r"^[A-Z]$")]
    name: Bilingual
    target_wait_min: Annotated[int, Field(ge=1)] | None = None
    closed: bool = False  # issuing closed for this field
    opening_hours: list[OpeningPeriod] | None = None  # overrides the site's hours


class CounterInfo(Message):
    id: Id
    number: Annotated[int, Field(ge=1, le=999)]  # spoken and shown: "quầy số 3"
    fields: list[Id]


class RatingLevel(Message):
    id: Key
    name: Bilingual
    colour: Colour
    satisfied: bool


class Choice(Message):
    """A configured key with its names: a priority reason or a rating reason."""

    id: Key
    name: Bilingual


class ConfigState(Message):
    """What kiosks and boards need to draw their screens, re-published whenever it changes."""

    site: Id
    name: Bilingual
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    fields: list[FieldInfo]
    counters: list[CounterInfo]
    rating_scale: Annotated[list[RatingLevel], Field(min_length=2, max_length=5)]  # best first
    rating_reasons: list[Choice] = Field(default_factory=list)
    rating_window_s: Annotated[int, Field(ge=1)]
    priorities: list[Choice] = Field(default_factory=list)
    opening_hours: list[OpeningPeriod] = Field(default_factory=list)
    holidays: list[Day] = Field(default_factory=list)
    updated_at: Time


class CounterState(Message):
    counter: Id
    clerk: Name | None = None  # display name of the clerk on duty
    status: Literal["idle", "serving", "rating", "closed"]
    ticket: TicketRef | None = None  # display code being served or waiting for its rating
    rating_until: Time | None = None
    # The ticket (id) a press at this counter rates now, also while the next one is served:
    # a terminal names it so that a press delivered late still binds to the right ticket.
    rating_ticket_id: TicketRef | None = None
    # The server's clock when this state was published: a terminal whose own clock is off
    # measures rating_until against the server's time, not its own.
    at: Time | None = None


class QueueState(Message):
    field: Id
    waiting: Count
    priority_waiting: Count
    est_wait_s: Count
    last_called: TicketRef | None = None
    cap_reached: bool = False  # today's daily cap of the field is used up


# state/today: the figures of GET /api/v1/stats/today (queue_server/domain/figures.py).
Percent = Annotated[float, Field(ge=0, le=100)]
Seconds = Annotated[float, Field(ge=0)]


class TicketFigures(Message):
    issued: Count
    priority: Count
    waiting: Count
    at_counter: Count
    served: Count
    no_show: Count
    called: Count
    within_target: Count
    within_target_pct: Percent | None = None
    avg_wait_s: Seconds | None = None
    p90_wait_s: Seconds | None = None
    avg_service_s: Seconds | None = None


class RatingFigures(Message):
    counted: Count
    by_level: dict[str, Count]
    satisfied: Count
    unsatisfied: Count
    satisfaction_pct: Percent | None = None
    index: Percent | None = None  # mean level scaled to 0–100
    flagged: Count
    flagged_by_reason: dict[str, Count] = Field(default_factory=dict)


class DossiersReceived(Message):
    total: Count
    new: Count
    online: Count
    in_person: Count
    carried_over: Count


class DossiersResolved(Message):
    total: Count
    early: Count
    on_time: Count
    late: Count


class DossiersOpen(Message):
    total: Count
    within_time: Count
    overdue: Count


class DossierFigures(Message):
    received: DossiersReceived
    resolved: DossiersResolved
    open: DossiersOpen
    on_time_pct: Percent | None = None


class Grading766(Message):
    """Decision 766/QĐ-TTg indicator 5.4; all null when no dossier was resolved."""

    score_pct: Percent | None = None
    late_pct: Percent | None = None
    unsatisfied_pct: Percent | None = None
    full_marks: bool | None = None


class GroupFigures(Message):
    tickets: TicketFigures
    ratings: RatingFigures
    dossiers: DossierFigures | None = None  # per field only


class TodayState(Message):
    """Today's figures, the same shape as GET /api/v1/stats/today."""

    site: Id
    day: Day
    generated_at: Time
    tickets: TicketFigures
    ratings: RatingFigures
    dossiers: DossierFigures
    grading_766: Grading766
    by_field: dict[str, GroupFigures] = Field(default_factory=dict)
    by_counter: dict[str, GroupFigures] = Field(default_factory=dict)
    by_clerk: dict[str, GroupFigures] = Field(default_factory=dict)


class CallEvent(Message):
    """A ticket called to a counter, for announcers and boards."""

    ticket: TicketRef
    counter: Id
    at: Time
    repeat: bool
    field: Id | None = None
    call_id: Transaction | None = None  # lets an announcer drop a QoS 1 redelivery


AlertLine = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class AlertText(Message):
    """An alert's message; longer than a Bilingual name (it quotes names and a printer's words)."""

    vi: AlertLine
    en: AlertLine


class AlertInfo(Message):
    """One alert, as GET /api/v1/alerts shows it."""

    id: Annotated[int, Field(ge=1)]
    rule: Id  # the rule's id in [alerts].rules of the site config
    kind: Key  # unsatisfied_share, wait_over_target, device_offline, printer_problem (more may come)
    subject: Id  # the counter, field or device it is about
    severity: Literal["warning", "critical"]
    message: AlertText
    since: Time
    details: dict[str, Any] = Field(default_factory=dict)  # the figures behind it, per kind
    cleared_at: Time | None = None


class AlertsState(Message):
    """The alerts open now, for dashboards."""

    active: list[AlertInfo]
    updated_at: Time


class AlertEvent(Message):
    """An alert raised or cleared."""

    event: Literal["raised", "cleared"]
    alert: AlertInfo


# --------------------------------------------------------------------------- the topic map


class Direction(StrEnum):
    FROM_DEVICE = "device"
    FROM_SERVER = "server"


class Kind(StrEnum):
    SERVER_STATUS = "server_status"
    DEVICE_STATUS = "device_status"
    RATING = "rating"
    KEYPAD = "keypad"
    PRINTER = "printer"
    TICKET_REQUEST = "ticket_request"
    TICKET_RESPONSE = "ticket_response"
    CONFIG = "config"
    COUNTER_STATE = "counter_state"
    QUEUE_STATE = "queue_state"
    TODAY = "today"
    CALL = "call"
    ALERTS = "alerts"
    ALERT = "alert"


class Status(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"  # server only: shut down on purpose, as opposed to lost (offline)


# Which reject reason a bad id in a topic segment gets.
_SEGMENT_REASONS = {"device": "bad_device_id", "counter": "bad_counter_id", "field": "bad_field_id"}


@dataclass(frozen=True)
class TopicDef:
    """One topic of the contract. `pattern` is relative to motcua/{site}/."""

    kind: Kind
    pattern: str
    direction: Direction
    retained: bool
    payload: type[Message] | None  # None: a plain status word
    statuses: tuple[Status, ...] = ()
    description: str = ""
    qos: int = QOS

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("/"))

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(s[1:-1] for s in self.segments if s.startswith("{"))

    @property
    def full_pattern(self) -> str:
        return f"{PREFIX}/{{site}}/{self.pattern}"

    def topic(self, site: str, **ids: str) -> str:
        """The concrete topic; every id is checked, a bad one is a programming error (ValueError)."""
        _require_id("site", site)
        if set(ids) != set(self.placeholders):
            raise ValueError(f"{self.kind}: expected ids {self.placeholders}, got {tuple(ids)}")
        parts = []
        for segment in self.segments:
            if segment.startswith("{"):
                name = segment[1:-1]
                _require_id(name, ids[name])
                parts.append(ids[name])
            else:
                parts.append(segment)
        return f"{PREFIX}/{site}/" + "/".join(parts)

    def filter(self, site: str) -> str:
        """A subscription filter matching this topic for every id."""
        _require_id("site", site)
        rest = "/".join("+" if s.startswith("{") else s for s in self.segments)
        return f"{PREFIX}/{site}/{rest}"


TOPICS: dict[Kind, TopicDef] = {
    t.kind: t
    for t in (
        TopicDef(Kind.SERVER_STATUS, "server/status", Direction.FROM_SERVER, True, None,
                 (Status.ONLINE, Status.OFFLINE, Status.STOPPED),
                 "server availability; `offline` is its Last Will"),
        TopicDef(Kind.DEVICE_STATUS, "device/{device}/status", Direction.FROM_DEVICE, True, None,
                 (Status.ONLINE, Status.OFFLINE),
                 "device availability; `offline` is its Last Will"),
        TopicDef(Kind.RATING, "device/{device}/event/rating", Direction.FROM_DEVICE, False,
                 RatingEvent, description="a rating button press"),
        TopicDef(Kind.KEYPAD, "device/{device}/event/keypad", Direction.FROM_DEVICE, False,
                 KeypadEvent, description="a clerk keypad action"),
        TopicDef(Kind.PRINTER, "device/{device}/event/printer", Direction.FROM_DEVICE, False,
                 PrinterEvent, description="a kiosk printer state change"),
        TopicDef(Kind.TICKET_REQUEST, "device/{device}/request/ticket", Direction.FROM_DEVICE,
                 False, TicketRequest, description="a kiosk asks for a ticket"),
        TopicDef(Kind.TICKET_RESPONSE, "device/{device}/response/ticket", Direction.FROM_SERVER,
                 False, TicketResponse, description="the server's answer to a ticket request"),
        TopicDef(Kind.CONFIG, "state/config", Direction.FROM_SERVER, True, ConfigState,
                 description="fields, counters, rating scale, priorities, labels, opening hours"),
        TopicDef(Kind.COUNTER_STATE, "state/counter/{counter}", Direction.FROM_SERVER, True,
                 CounterState, description="one counter's current state"),
        TopicDef(Kind.QUEUE_STATE, "state/queue/{field}", Direction.FROM_SERVER, True,
                 QueueState, description="one field's queue"),
        TopicDef(Kind.TODAY, "state/today", Direction.FROM_SERVER, True, TodayState,
                 description="today's totals"),
        TopicDef(Kind.CALL, "events/call", Direction.FROM_SERVER, False, CallEvent,
                 description="a ticket called to a counter"),
        TopicDef(Kind.ALERTS, "state/alerts", Direction.FROM_SERVER, True, AlertsState,
                 description="the alerts open now"),
        TopicDef(Kind.ALERT, "events/alert", Direction.FROM_SERVER, False, AlertEvent,
                 description="an alert raised or cleared"),
    )
}


def _require_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValueError(f"{name} id {value!r} does not match {ID_RE.pattern}")


def is_id(value: str) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


# Builders: one per topic, so callers never format a topic string themselves.
def topic_server_status(site: str) -> str:
    return TOPICS[Kind.SERVER_STATUS].topic(site)


def topic_device_status(site: str, device: str) -> str:
    return TOPICS[Kind.DEVICE_STATUS].topic(site, device=device)


def topic_rating(site: str, device: str) -> str:
    return TOPICS[Kind.RATING].topic(site, device=device)


def topic_keypad(site: str, device: str) -> str:
    return TOPICS[Kind.KEYPAD].topic(site, device=device)


def topic_printer(site: str, device: str) -> str:
    return TOPICS[Kind.PRINTER].topic(site, device=device)


def topic_ticket_request(site: str, device: str) -> str:
    return TOPICS[Kind.TICKET_REQUEST].topic(site, device=device)


def topic_ticket_response(site: str, device: str) -> str:
    return TOPICS[Kind.TICKET_RESPONSE].topic(site, device=device)


def topic_config(site: str) -> str:
    return TOPICS[Kind.CONFIG].topic(site)


def topic_counter_state(site: str, counter: str) -> str:
    return TOPICS[Kind.COUNTER_STATE].topic(site, counter=counter)


def topic_queue_state(site: str, field: str) -> str:
    return TOPICS[Kind.QUEUE_STATE].topic(site, field=field)


def topic_today(site: str) -> str:
    return TOPICS[Kind.TODAY].topic(site)


def topic_call(site: str) -> str:
    return TOPICS[Kind.CALL].topic(site)


def topic_alerts(site: str) -> str:
    return TOPICS[Kind.ALERTS].topic(site)


def topic_alert_event(site: str) -> str:
    return TOPICS[Kind.ALERT].topic(site)


# --------------------------------------------------------------------------- subscriptions


def server_subscriptions(site: str) -> list[tuple[str, int]]:
    """What the server subscribes to. `event/+` and `request/+` (not each name) so that an
    unknown event or request is received and counted as unknown_topic instead of vanishing."""
    _require_id("site", site)
    base = f"{PREFIX}/{site}/device/+"
    return [(f"{base}/status", QOS), (f"{base}/event/+", QOS), (f"{base}/request/+", QOS)]


# Each device kind subscribes to what it draws and nothing more: at a busy centre state/today,
# state/counter/… and events/call are most of the server's messages, and a device that hears
# them only spends its CPU and the broker's on acking them. Provisioning's Mosquitto ACL
# (firmware_config/provision.py) grants each kind read on exactly these filters.


def ticket_kiosk_subscriptions(site: str, device: str) -> list[tuple[str, int]]:
    """A ticket kiosk: its own responses, the config (tiles), every field's queue (waiting,
    estimated wait, cap reached) and the server's status. Not state/today, state/counter/…,
    state/alerts or the events."""
    return [
        (topic_ticket_response(site, device), QOS),
        (topic_config(site), QOS),
        (TOPICS[Kind.QUEUE_STATE].filter(site), QOS),
        (topic_server_status(site), QOS),
    ]


def rating_terminal_subscriptions(site: str, counter: str) -> list[tuple[str, int]]:
    """A rating terminal at `counter`: the config (scale, reasons, window), its counter's state
    and the server's status. It sends its presses and receives nothing addressed to itself."""
    return [
        (topic_config(site), QOS),
        (topic_counter_state(site, counter), QOS),
        (topic_server_status(site), QOS),
    ]


def button_box_subscriptions(site: str, counter: str) -> list[tuple[str, int]]:
    """An ESPHome rating button box at `counter`: only its counter's state, to light its LED while
    the counter waits for a rating (firmware_config/esphome/common/rating_box.yaml)."""
    return [(topic_counter_state(site, counter), QOS)]


def display_subscriptions(site: str) -> list[tuple[str, int]]:
    """What a board or announcer subscribes to."""
    _require_id("site", site)
    return [(f"{PREFIX}/{site}/state/#", QOS), (topic_call(site), QOS), (topic_server_status(site), QOS)]


# --------------------------------------------------------------------------- encoding


def encode(message: Message | Status | str) -> bytes:
    """Compact UTF-8 JSON (Vietnamese letters as themselves), or a status word as-is."""
    if isinstance(message, BaseModel):
        return message.model_dump_json(exclude_none=True).encode("utf-8")
    if isinstance(message, str):
        return str(message).encode("utf-8")
    raise TypeError(f"cannot encode {type(message).__name__}")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Inbound:
    """A received message that met the contract."""

    kind: Kind
    topic: str
    device_id: str | None
    message: Message | Status | None  # None: an empty payload clearing a retained topic
    ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def cleared(self) -> bool:
        return self.message is None


def parse_inbound(site: str, topic: str, payload: bytes, *, now: datetime) -> Inbound:
    """A message the server received from a device. `now` is the server's clock, for the
    plausibility window of `at`. Raises PayloadRejected."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return _parse(site, topic, payload, expect=Direction.FROM_DEVICE, now=now)


def parse_from_server(site: str, topic: str, payload: bytes, *, now: datetime | None = None) -> Inbound:
    """A message a device or board received from the server. Raises PayloadRejected."""
    return _parse(site, topic, payload, expect=Direction.FROM_SERVER, now=now)


def match_topic(site: str, topic: str) -> tuple[TopicDef, dict[str, str]]:
    """Which topic definition a concrete topic is, with its ids. Raises PayloadRejected."""
    definition, ids = _match_topic(site, topic)
    return definition, dict(ids)


@functools.lru_cache(maxsize=4096)  # a site has a bounded set of topics; misses raise, uncached
def _match_topic(site: str, topic: str) -> tuple[TopicDef, tuple[tuple[str, str], ...]]:
    prefix = f"{PREFIX}/{site}/"
    if not topic.startswith(prefix):
        raise PayloadRejected("topic_not_ours", f"{_clip(topic)} is not under {prefix}")
    segments = topic[len(prefix):].split("/")
    for definition in TOPICS.values():
        pattern = definition.segments
        if len(pattern) != len(segments):
            continue
        ids: dict[str, str] = {}
        for expected, actual in zip(pattern, segments):
            if expected.startswith("{"):
                ids[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            for name, value in ids.items():
                if not ID_RE.fullmatch(value):
                    raise PayloadRejected(_SEGMENT_REASONS[name], f"{name} {_clip(value)!r} in topic")
            return definition, tuple(ids.items())
    raise PayloadRejected("unknown_topic", _clip(topic))


def _parse(site: str, topic: str, payload: bytes, *, expect: Direction,
           now: datetime | None) -> Inbound:
    definition, ids = match_topic(site, topic)
    if definition.direction is not expect:
        raise PayloadRejected("wrong_direction",
                              f"{definition.pattern} is published by the {definition.direction.value}")
    device_id = ids.get("device")
    limit = MAX_PAYLOAD_BYTES if expect is Direction.FROM_DEVICE else MAX_SERVER_PAYLOAD_BYTES
    if len(payload) > limit:
        raise PayloadRejected("payload_too_large", f"{len(payload)} bytes > {limit}")
    if not payload:
        if definition.retained:
            return Inbound(definition.kind, topic, device_id, None, ids)
        raise PayloadRejected("empty_payload", definition.pattern)
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadRejected("invalid_utf8", str(exc)) from None

    if definition.payload is None:
        try:
            status = Status(text)
        except ValueError:
            status = None
        if status not in definition.statuses:
            allowed = ", ".join(s.value for s in definition.statuses)
            raise PayloadRejected("bad_status", f"{_clip(text)!r} is not one of {allowed}")
        return Inbound(definition.kind, topic, device_id, status, ids)

    document = _load_json(text)
    if not isinstance(document, dict):
        raise PayloadRejected("not_object", f"JSON {type(document).__name__}, expected an object")
    try:
        message = definition.payload.model_validate(document)
    except ValidationError as exc:
        raise _rejection(exc) from None
    _check_consistency(definition, ids, message, now)
    return Inbound(definition.kind, topic, device_id, message, ids)


class _DuplicateKey(Exception):
    pass


class _NotFinite(Exception):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _finite_float(text: str) -> float:
    value = float(text)  # "1e999" becomes inf without complaint
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _reject_constant(text: str) -> Any:
    raise _NotFinite(text)  # NaN, Infinity, -Infinity: Python accepts them, JSON does not


# Made once: json.loads with hooks builds a decoder on every call (one per message).
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates,
                                 parse_float=_finite_float, parse_constant=_reject_constant)


def _load_json(text: str) -> Any:
    try:
        return _JSON_DECODER.decode(text)
    except _DuplicateKey as exc:
        raise PayloadRejected("duplicate_keys", f"key {_clip(str(exc.args[0]))!r} repeated") from None
    except _NotFinite as exc:
        raise PayloadRejected("nan_or_infinity", _clip(str(exc.args[0]))) from None
    except RecursionError:
        raise PayloadRejected("not_json", "nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() limits
        raise PayloadRejected("not_json", str(exc)) from None


# pydantic error type → reason, whatever the field.
_TYPE_REASONS = {
    "missing": "missing_field",
    "string_too_long": "string_too_long",
    "bad_time": "bad_time",
    "bad_response": "bad_response",
    "wrong_type": "wrong_type",
}
# The reason for "any other bad value" depends on the field it is in.
_FIELD_REASONS = {
    "msg_id": "bad_msg_id",
    "counter": "bad_counter_id",
    "level": "bad_level",
    "ticket": "bad_ticket",
    "at": "bad_time",
    "action": "bad_action",
    "state": "bad_state",
    "transaction": "bad_transaction",
    "field": "bad_field_id",
    "priority": "bad_priority",
    "lang": "bad_lang",
    "reasons": "bad_reason",
}


def _rejection(exc: ValidationError) -> PayloadRejected:
    """Map pydantic's first error to one stable reason: generic kinds first, then by field."""
    error = exc.errors(include_url=False)[0]
    kind, loc, given = error["type"], error["loc"], error.get("input")
    path = ".".join(str(part) for part in loc) or "(payload)"
    detail = f"{path}: {error['msg']}"
    top = str(loc[0]) if loc else ""
    # null counts as absent, also for a field of fixed words (action, state, status…).
    if kind == "missing" or (given is None and (kind.endswith("_type") or kind == "literal_error")):
        return PayloadRejected("missing_field", detail)
    if top == "reasons" and len(loc) == 1 and kind in ("list_type", "too_long"):
        return PayloadRejected("reasons_not_list" if kind == "list_type" else "too_many_reasons", detail)
    if kind in _TYPE_REASONS:
        return PayloadRejected(_TYPE_REASONS[kind], detail)
    if kind.endswith("_type") or (kind == "literal_error" and not isinstance(given, str)):
        return PayloadRejected("wrong_type", detail)
    return PayloadRejected(_FIELD_REASONS.get(top, "bad_value"), detail)


def _check_consistency(definition: TopicDef, ids: Mapping[str, str], message: Message,
                       now: datetime | None) -> None:
    for name in ("counter", "field"):
        if name in ids and getattr(message, name, ids[name]) != ids[name]:
            raise PayloadRejected(_SEGMENT_REASONS[name],
                                  f"topic {name} {ids[name]!r}, payload {getattr(message, name)!r}")
    at = getattr(message, "at", None)
    if now is not None and definition.direction is Direction.FROM_DEVICE and at is not None:
        if at > now + MAX_CLOCK_AHEAD or at < now - MAX_EVENT_AGE:
            raise PayloadRejected("time_out_of_range", f"at {at.isoformat()} vs now {now.isoformat()}")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
