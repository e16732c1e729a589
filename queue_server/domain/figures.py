"""The day's figures (queue, satisfaction, dossiers, Decision 766 score) from plain records."""
from __future__ import annotations

import math
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from ..config import Config
from .dossiers import Dossier, OpenStatus, ReturnOutcome, classify_open, classify_returned
from .ratings import Rating, is_satisfied, level_score
from .tickets import Ticket, TicketStatus, served_within_target
from .workdays import WorkCalendar

# Decision 766/QĐ-TTg, indicator 5.4: full marks at or above this score.
GRADING_766_FULL_MARKS_PCT = 90.0


def percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def nearest_rank(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def calendar_of(config: Config) -> WorkCalendar:
    from ..config import WEEKDAYS

    return WorkCalendar(
        holidays=frozenset(config.holidays),
        working_weekdays=frozenset(WEEKDAYS.index(day) for day in config.working_weekdays),
    )


def ticket_figures(config: Config, tickets: Iterable[Ticket]) -> dict:
    tickets = list(tickets)
    called = [x for x in tickets if x.called_at is not None]
    waits = [x.wait_s() for x in called]
    services = [s for s in (x.service_s() for x in tickets if x.status is TicketStatus.FINISHED) if s is not None]
    targets = {field.id: field.target_wait_min for field in config.fields}
    within = sum(
        1 for ticket in called
        if ticket.issued_field_id in targets and served_within_target(ticket, targets[ticket.issued_field_id])
    )
    status = Tally(x.status for x in tickets)
    return {
        "issued": len(tickets),
        "priority": sum(1 for x in tickets if x.is_priority),
        "waiting": status[TicketStatus.WAITING],
        "at_counter": status[TicketStatus.CALLED] + status[TicketStatus.SERVING],
        "served": status[TicketStatus.FINISHED],
        "no_show": status[TicketStatus.NO_SHOW],
        "called": len(called),
        "within_target": within,
        "within_target_pct": percent(within, len(called)),
        "avg_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
        "p90_wait_s": nearest_rank(waits, 90),
        "avg_service_s": round(sum(services) / len(services), 1) if services else None,
    }


def rating_figures(config: Config, ratings: Iterable[Rating]) -> dict:
    ratings = list(ratings)
    counted = [r for r in ratings if r.counted]
    by_level = {level.id: 0 for level in config.rating.levels}
    for rating in counted:
        by_level[rating.level] = by_level.get(rating.level, 0) + 1
    satisfied = sum(1 for r in counted if is_satisfied(config.rating, r.level))
    index = (
        round(sum(level_score(config.rating, r.level) for r in counted) / len(counted), 1) if counted else None
    )
    flags = Tally(str(r.flag) for r in ratings if not r.counted and r.flag is not None)
    return {
        "counted": len(counted),
        "by_level": by_level,
        "satisfied": satisfied,
        "unsatisfied": len(counted) - satisfied,
        "satisfaction_pct": percent(satisfied, len(counted)),
        "index": index,
        "flagged": sum(flags.values()),
        "flagged_by_reason": dict(sorted(flags.items())),
    }


def dossier_figures(calendar: WorkCalendar, dossiers: Iterable[Dossier], first: date, last: date) -> dict:
    """Biểu 06 columns for the period first..last (whole local dates)."""
    dossiers = list(dossiers)
    received = [d for d in dossiers if first <= d.received_on <= last]
    carried_over = [d for d in dossiers if d.received_on < first and (d.returned_on is None or d.returned_on >= first)]
    resolved = [d for d in dossiers if d.returned_on is not None and first <= d.returned_on <= last]
    still_open = [d for d in dossiers if d.received_on <= last and (d.returned_on is None or d.returned_on > last)]
    outcomes = Tally(classify_returned(d, calendar) for d in resolved)
    open_status = Tally(classify_open(d, calendar, last) for d in still_open)
    on_time = outcomes[ReturnOutcome.EARLY] + outcomes[ReturnOutcome.ON_TIME]
    return {
        "received": {
            "total": len(received) + len(carried_over),
            "new": len(received),
            "online": sum(1 for d in received if d.channel == "online"),
            "in_person": sum(1 for d in received if d.channel == "in_person"),
            "carried_over": len(carried_over),
        },
        "resolved": {
            "total": len(resolved),
            "early": outcomes[ReturnOutcome.EARLY],
            "on_time": outcomes[ReturnOutcome.ON_TIME],
            "late": outcomes[ReturnOutcome.LATE],
        },
        "open": {
            "total": len(still_open),
            "within_time": open_status[OpenStatus.WITHIN_TIME],
            "overdue": open_status[OpenStatus.OVERDUE],
        },
        "on_time_pct": percent(on_time, len(resolved)),
    }


def grading_766(
    config: Config, calendar: WorkCalendar, dossiers: Iterable[Dossier], ratings: Iterable[Rating], first: date, last: date
) -> dict:
    """Indicator 5.4: 100% − (late-dossier rate + rate of dossiers with an unsatisfied rating)."""
    resolved = [d for d in dossiers if d.returned_on is not None and first <= d.returned_on <= last]
    if not resolved:
        return {"score_pct": None, "late_pct": None, "unsatisfied_pct": None, "full_marks": None}
    unsatisfied_tickets = {r.ticket_id for r in ratings if r.counted and r.ticket_id and not is_satisfied(config.rating, r.level)}
    unsatisfied_codes = {r.dossier_code for r in ratings if r.counted and r.dossier_code and not is_satisfied(config.rating, r.level)}
    late = sum(1 for d in resolved if classify_returned(d, calendar) is ReturnOutcome.LATE)
    unsatisfied = sum(1 for d in resolved if d.code in unsatisfied_codes or (d.ticket_id in unsatisfied_tickets))
    late_pct = 100.0 * late / len(resolved)
    unsatisfied_pct = 100.0 * unsatisfied / len(resolved)
    score = max(0.0, 100.0 - late_pct - unsatisfied_pct)
    return {
        "score_pct": round(score, 1),
        "late_pct": round(late_pct, 1),
        "unsatisfied_pct": round(unsatisfied_pct, 1),
        "full_marks": score >= GRADING_766_FULL_MARKS_PCT,
    }


def period_figures(
    config: Config,
    first: date,
    last: date,
    tickets: Iterable[Ticket],
    ratings: Iterable[Rating],
    dossiers: Iterable[Dossier],
) -> dict:
    """All figures for a period of local days, overall and per field, counter and clerk.

    Tickets belong to their service day, ratings to the server's day of receipt, dossiers
    to the dates they were received and returned.
    """
    calendar = calendar_of(config)
    tickets = [x for x in tickets if first <= x.service_day <= last]
    ratings = [r for r in ratings if first <= r.day <= last]
    dossiers = list(dossiers)

    def breakdown(key_ticket, key_rating, ids: list[str]) -> dict:
        # One pass to group, rather than one pass over every record per group.
        tickets_by: dict = defaultdict(list)
        for ticket in tickets:
            tickets_by[key_ticket(ticket)].append(ticket)
        ratings_by: dict = defaultdict(list)
        for rating in ratings:
            ratings_by[key_rating(rating)].append(rating)
        return {
            group_id: {
                "tickets": ticket_figures(config, tickets_by.get(group_id, [])),
                "ratings": rating_figures(config, ratings_by.get(group_id, [])),
            }
            for group_id in ids
        }

    by_field = breakdown(lambda x: x.field_id, lambda r: r.field_id, [f.id for f in config.fields])
    for field in config.fields:
        by_field[field.id]["tickets"]["issued"] = sum(1 for x in tickets if x.issued_field_id == field.id)
        by_field[field.id]["dossiers"] = dossier_figures(calendar, [d for d in dossiers if d.field_id == field.id], first, last)
    clerk_ids = sorted({c.id for c in config.clerks} | {x.clerk_id for x in tickets if x.clerk_id} | {r.clerk_id for r in ratings if r.clerk_id})
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "tickets": ticket_figures(config, tickets),
        "ratings": rating_figures(config, ratings),
        "dossiers": dossier_figures(calendar, dossiers, first, last),
        "grading_766": grading_766(config, calendar, dossiers, ratings, first, last),
        "by_field": by_field,
        "by_counter": breakdown(lambda x: x.counter_id, lambda r: r.counter_id, [c.id for c in config.counters]),
        "by_clerk": breakdown(lambda x: x.clerk_id, lambda r: r.clerk_id, clerk_ids),
    }
