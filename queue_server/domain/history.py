"""Rebuild tickets, ratings and dossiers from the append-only history, to recompute any figure."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from .dossiers import Channel, Dossier, Pause
from .ratings import MisuseFlag, Rating
from .tickets import Ticket, TicketStatus

TICKET_KINDS = {"ticket_issued", "ticket_called", "ticket_recalled", "ticket_started", "ticket_finished", "ticket_no_show", "ticket_transferred"}
RATING_KINDS = {"rating_recorded"}
DOSSIER_KINDS = {"dossier_received", "dossier_paused", "dossier_resumed", "dossier_returned", "dossier_rescheduled"}


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def ticket_from_snapshot(data: dict) -> Ticket:
    return Ticket(
        id=data["id"],
        service_day=date.fromisoformat(data["service_day"]),
        issued_field_id=data["issued_field_id"],
        field_id=data["field_id"],
        letter=data["letter"],
        number=data["number"],
        status=TicketStatus(data["status"]),
        issued_at=datetime.fromisoformat(data["issued_at"]),
        queued_at=datetime.fromisoformat(data["queued_at"]),
        priority=data.get("priority"),
        lang=data.get("lang") or "vi",
        device_id=data.get("device_id"),
        called_at=_dt(data.get("called_at")),
        last_called_at=_dt(data.get("last_called_at")),
        started_at=_dt(data.get("started_at")),
        finished_at=_dt(data.get("finished_at")),
        counter_id=data.get("counter_id"),
        clerk_id=data.get("clerk_id"),
        target_counter_id=data.get("target_counter_id"),
        call_count=data.get("call_count", 0),
        transfers=data.get("transfers", 0),
    )


def rating_from_snapshot(data: dict) -> Rating:
    return Rating(
        counter_id=data["counter_id"],
        level=data["level"],
        received_at=datetime.fromisoformat(data["received_at"]),
        day=date.fromisoformat(data["day"]),
        counted=bool(data["counted"]),
        flag=MisuseFlag(data["flag"]) if data.get("flag") else None,
        ticket_id=data.get("ticket_id"),
        clerk_id=data.get("clerk_id"),
        dossier_code=data.get("dossier_code"),
        field_id=data.get("field_id"),
        reasons=tuple(data.get("reasons") or ()),
        device_at=_dt(data.get("device_at")),
        device_id=data.get("device_id"),
        msg_id=data.get("msg_id"),
        pressed_at=_dt(data.get("pressed_at")),
    )


def dossier_from_snapshot(data: dict) -> Dossier:
    return Dossier(
        code=data["code"],
        procedure=data["procedure"],
        field_id=data["field_id"],
        channel=Channel(data["channel"]),
        received_on=date.fromisoformat(data["received_on"]),
        due_date=date.fromisoformat(data["due_date"]),
        returned_on=_day(data.get("returned_on")),
        pauses=tuple(Pause(started_on=date.fromisoformat(p["started_on"]), ended_on=_day(p.get("ended_on"))) for p in data.get("pauses") or ()),
        ticket_id=data.get("ticket_id"),
        counter_id=data.get("counter_id"),
        clerk_id=data.get("clerk_id"),
        delay_reason=data.get("delay_reason"),
        new_due_on=_day(data.get("new_due_on")),
    )


def rebuild(events: Iterable[dict]) -> tuple[list[Ticket], list[Rating], list[Dossier]]:
    """The latest state of every record, from history rows {kind, subject, data} in order."""
    tickets: dict[str, Ticket] = {}
    ratings: dict[str, Rating] = {}
    dossiers: dict[str, Dossier] = {}
    for event in events:
        kind, subject, data = event["kind"], event["subject"], event["data"]
        if kind in TICKET_KINDS:
            tickets[subject] = ticket_from_snapshot(data)
        elif kind in RATING_KINDS:
            ratings[subject] = rating_from_snapshot(data)
        elif kind in DOSSIER_KINDS:
            dossiers[subject] = dossier_from_snapshot(data)
    return list(tickets.values()), list(ratings.values()), list(dossiers.values())
