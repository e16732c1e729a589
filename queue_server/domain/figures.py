"""The day's figures (queue, satisfaction, dossiers, Decision 766 score) from plain records."""
from __future__ import annotations

import math
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable, Mapping
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


def _ticket_facts(config: Config, tickets: Iterable[Ticket]) -> list[tuple]:
    """(ticket, wait_s, within target, service_s) with each rule applied once per ticket, so that the
    four breakdowns of period_figures reuse them instead of applying the rules four times."""
    targets = {field.id: field.target_wait_min for field in config.fields}
    finished = TicketStatus.FINISHED
    facts = []
    for ticket in tickets:
        wait = ticket.wait_s()
        target = targets.get(ticket.issued_field_id)
        within = wait is not None and target is not None and served_within_target(ticket, target)
        service = ticket.service_s() if ticket.status is finished else None
        facts.append((ticket, wait, within, service))
    return facts


def ticket_figures(config: Config, tickets: Iterable[Ticket]) -> dict:
    return _ticket_totals(_ticket_facts(config, tickets))


def _ticket_totals(facts: list[tuple]) -> dict:
    waits = [wait for _, wait, _, _ in facts if wait is not None]
    services = [service for _, _, _, service in facts if service is not None]
    within = sum(1 for _, _, is_within, _ in facts if is_within)
    status = Tally(ticket.status for ticket, _, _, _ in facts)
    return {
        "issued": len(facts),
        "priority": sum(1 for ticket, _, _, _ in facts if ticket.priority is not None),
        "waiting": status[TicketStatus.WAITING],
        "at_counter": status[TicketStatus.CALLED] + status[TicketStatus.SERVING],
        "served": status[TicketStatus.FINISHED],
        "no_show": status[TicketStatus.NO_SHOW],
        "called": len(waits),
        "within_target": within,
        "within_target_pct": percent(within, len(waits)),
        "avg_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
        "p90_wait_s": nearest_rank(waits, 90),
        "avg_service_s": round(sum(services) / len(services), 1) if services else None,
    }


def _level_table(config: Config) -> dict[str, tuple[bool, float]]:
    """Each level's (counts as satisfied, 0–100 score), looked up once per scale, not once per rating."""
    return {level.id: (is_satisfied(config.rating, level.id), level_score(config.rating, level.id)) for level in config.rating.levels}


def rating_figures(config: Config, ratings: Iterable[Rating]) -> dict:
    return _rating_totals(config, _level_table(config), list(ratings))


def _rating_totals(config: Config, levels: dict, ratings: list[Rating]) -> dict:
    by_level = {level.id: 0 for level in config.rating.levels}
    for level_id, count in Tally(r.level for r in ratings if r.counted).items():
        by_level[level_id] = by_level.get(level_id, 0) + count
    flags = Tally(str(r.flag) for r in ratings if not r.counted and r.flag is not None)
    return _ratings_from_tallies(levels, by_level, flags)


def _ratings_from_tallies(levels: dict, by_level: dict[str, int], flags: Mapping[str, int]) -> dict:
    """Every rating figure follows from the counted presses per level and the flagged ones per
    reason: satisfaction and the index too (the index is the mean level score)."""
    counted = sum(by_level.values())
    satisfied = sum(count for level_id, count in by_level.items() if count and levels[level_id][0])
    index = round(sum(count * levels[level_id][1] for level_id, count in by_level.items()) / counted, 1) if counted else None
    return {
        "counted": counted,
        "by_level": by_level,
        "satisfied": satisfied,
        "unsatisfied": counted - satisfied,
        "satisfaction_pct": percent(satisfied, counted),
        "index": index,
        "flagged": sum(flags.values()),
        "flagged_by_reason": dict(sorted(flags.items())),
    }


def with_press(config: Config, ratings: dict, level: str, counted: bool, flag: str | None) -> dict:
    """`ratings` (as rating_figures gives them) with one more press, computed from the tallies
    alone: a board can show a press at once instead of waiting for the whole day's figures."""
    by_level = dict(ratings["by_level"])
    flags = dict(ratings["flagged_by_reason"])
    if counted:
        by_level[level] = by_level.get(level, 0) + 1
    elif flag is not None:
        flags[flag] = flags.get(flag, 0) + 1
    return _ratings_from_tallies(_level_table(config), by_level, flags)


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

    facts = _ticket_facts(config, tickets)
    levels = _level_table(config)

    def breakdown(key_ticket, key_rating, ids: list[str]) -> dict:
        # One pass to group, rather than one pass over every record per group.
        facts_by: dict = defaultdict(list)
        for fact in facts:
            facts_by[key_ticket(fact[0])].append(fact)
        ratings_by: dict = defaultdict(list)
        for rating in ratings:
            ratings_by[key_rating(rating)].append(rating)
        return {
            group_id: {
                "tickets": _ticket_totals(facts_by.get(group_id, [])),
                "ratings": _rating_totals(config, levels, ratings_by.get(group_id, [])),
            }
            for group_id in ids
        }

    by_field = breakdown(lambda x: x.field_id, lambda r: r.field_id, [f.id for f in config.fields])
    issued_by_field = Tally(x.issued_field_id for x in tickets)
    dossiers_by_field: dict = defaultdict(list)
    for dossier in dossiers:
        dossiers_by_field[dossier.field_id].append(dossier)
    for field in config.fields:
        by_field[field.id]["tickets"]["issued"] = issued_by_field[field.id]
        by_field[field.id]["dossiers"] = dossier_figures(calendar, dossiers_by_field.get(field.id, []), first, last)
    clerk_ids = sorted({c.id for c in config.clerks} | {x.clerk_id for x in tickets if x.clerk_id} | {r.clerk_id for r in ratings if r.clerk_id})
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "tickets": _ticket_totals(facts),
        "ratings": _rating_totals(config, levels, ratings),
        "dossiers": dossier_figures(calendar, dossiers, first, last),
        "grading_766": grading_766(config, calendar, dossiers, ratings, first, last),
        "by_field": by_field,
        "by_counter": breakdown(lambda x: x.counter_id, lambda r: r.counter_id, [c.id for c in config.counters]),
        "by_clerk": breakdown(lambda x: x.clerk_id, lambda r: r.clerk_id, clerk_ids),
    }
