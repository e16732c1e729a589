"""The day's figures (queue, satisfaction, dossiers, Decision 766 score) from plain records.

Each ticket, rating and dossier is turned into its facts once (a ticket's wait, whether it was called
within target, its service time; a rating's counted level or flag; a dossier's place in the period),
with the rules of domain.tickets / ratings / dossiers, and every figure is a count or a list over those
facts. `period_figures` does it for one period from Ticket and Rating objects; `period_and_days` for a
period and each of its days from lean records (TicketRecord, RatingRecord: what a year's export reads
from the Store, without an object per row), computing each ticket's and rating's facts once for the
whole period and grouping them by day, so that a day's figures are the same as period_figures gives.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from typing import NamedTuple

from ..config import Config
from .dossiers import Channel, Dossier, OpenStatus, ReturnOutcome, classify_open, classify_returned, open_status_runs
from .ratings import Rating, is_satisfied, level_score
from .tickets import Ticket, TicketStatus, called_within_target, service_seconds, wait_seconds
from .workdays import WorkCalendar

# Decision 766/QĐ-TTg, indicator 5.4: full marks at or above this score.
GRADING_766_FULL_MARKS_PCT = 90.0


def percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def nearest_rank_sorted(ordered: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of values already sorted."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def calendar_of(config: Config) -> WorkCalendar:
    from ..config import WEEKDAYS

    return WorkCalendar(
        holidays=frozenset(config.holidays),
        working_weekdays=frozenset(WEEKDAYS.index(day) for day in config.working_weekdays),
    )


# --- records: what the figures read of a ticket and of a rating -----------------------------------


class TicketRecord(NamedTuple):
    """What the figures need of a ticket. `Store.ticket_records_between` gives plain tuples in this
    layout (a year holds 320,000 tickets: no object per row); `ticket_record` makes one of a Ticket."""

    service_day: date
    issued_field_id: str
    field_id: str
    status: TicketStatus | str  # a TicketStatus, or its value as stored
    priority: str | None
    issued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    counter_id: str | None
    clerk_id: str | None


class RatingRecord(NamedTuple):
    """What the figures need of a rating (`Store.rating_records_between`, or `rating_record`)."""

    day: date
    counted: bool
    level: str
    flag: str | None
    field_id: str | None
    counter_id: str
    clerk_id: str | None
    ticket_id: str | None
    dossier_code: str | None


def ticket_record(ticket: Ticket) -> TicketRecord:
    return TicketRecord(
        ticket.service_day, ticket.issued_field_id, ticket.field_id, ticket.status, ticket.priority, ticket.issued_at,
        ticket.called_at, ticket.started_at, ticket.finished_at, ticket.counter_id, ticket.clerk_id,
    )


def rating_record(rating: Rating) -> RatingRecord:
    return RatingRecord(
        rating.day, rating.counted, rating.level, None if rating.flag is None else str(rating.flag), rating.field_id,
        rating.counter_id, rating.clerk_id, rating.ticket_id, rating.dossier_code,
    )


# --- facts: each record's rules applied once ------------------------------------------------------

# Tickets and ratings share the positions of what they are grouped by, so one grouping serves both.
DAY, FIELD, COUNTER, CLERK = 0, 1, 2, 3
_CLERK_OF = itemgetter(CLERK)
# A ticket's facts: (day, field, counter, clerk, issued field, kind, wait_s, service_s), its kind being
# the code of (status, priority, called within target) in _TICKET_KINDS: what tickets are counted by.
_ISSUED_FIELD_OF, _KIND_OF, _WAIT_OF, _SERVICE_OF = (itemgetter(i) for i in range(4, 8))
_TICKET_KINDS = [(status, priority, within) for status in TicketStatus for priority in (False, True) for within in (False, True)]
_TICKET_KIND_CODES = {kind: code for code, kind in enumerate(_TICKET_KINDS)}
# A rating's facts: (day, field, counter, clerk, level if counted, flag if not counted,
# ticket and dossier code of a counted unsatisfied rating (for indicator 5.4)).
_COUNTED_LEVEL_OF, _FLAG_OF, _UNSATISFIED_TICKET_OF, _UNSATISFIED_CODE_OF = (itemgetter(i) for i in range(4, 8))


def _targets(config: Config) -> dict[str, timedelta]:
    return {field.id: timedelta(minutes=field.target_wait_min) for field in config.fields}


def _ticket_facts(config: Config, records: Iterable[tuple], targets: dict[str, timedelta] | None = None) -> list[tuple]:
    """Each ticket's facts, from TicketRecord-shaped tuples, with each rule applied once per ticket."""
    if targets is None:
        targets = _targets(config)
    finished = TicketStatus.FINISHED
    kind_codes = _TICKET_KIND_CODES
    facts = []
    append = facts.append
    for (service_day, issued_field_id, field_id, status, priority, issued_at, called_at, started_at, finished_at,
         counter_id, clerk_id) in records:
        wait = wait_seconds(issued_at, called_at)
        target = targets.get(issued_field_id)
        within = wait is not None and target is not None and called_within_target(issued_at, called_at, target)
        service = service_seconds(started_at, finished_at) if status == finished else None
        append((service_day, field_id, counter_id, clerk_id, issued_field_id, kind_codes[(status, priority is not None, within)],
                wait, service))
    return facts


def _level_table(config: Config) -> dict[str, tuple[bool, float]]:
    """Each level's (counts as satisfied, 0–100 score), looked up once per scale, not once per rating."""
    return {level.id: (is_satisfied(config.rating, level.id), level_score(config.rating, level.id)) for level in config.rating.levels}


def _rating_facts(levels: dict, records: Iterable[tuple]) -> list[tuple]:
    """Each rating's facts, from RatingRecord-shaped tuples."""
    facts = []
    append = facts.append
    for day, counted, level, flag, field_id, counter_id, clerk_id, ticket_id, dossier_code in records:
        if counted:
            unsatisfied = not levels[level][0]
            append((day, field_id, counter_id, clerk_id, level, None,
                    (ticket_id or None) if unsatisfied else None, (dossier_code or None) if unsatisfied else None))
        else:
            append((day, field_id, counter_id, clerk_id, None, flag, None, None))
    return facts


def _grouped(facts: list[tuple], position: int) -> dict:
    """Facts by the value at `position`, in their order: one pass, rather than one per group."""
    groups: dict = defaultdict(list)
    for fact in facts:
        groups[fact[position]].append(fact)
    return groups


# --- tickets ----------------------------------------------------------------------------------------


def _us(seconds: float) -> int:
    """Whole microseconds (what a duration between two stored instants is made of): sums of them
    are exact, so a mean is the same whatever order its values were added and taken away in."""
    return round(seconds * 1_000_000)


def _mean_s(total_us: int, count: int) -> float | None:
    return round(total_us / count / 1_000_000, 1) if count else None


class _TicketTally:
    """What a group's ticket figures are made of: tickets per kind, the waits (sorted when a
    percentile is read or one is taken away) and their exact sum, the count and exact sum of the
    service times. Two tallies add up to the tally of both groups (a period's of its days'); one
    ticket's facts can be put in or taken out (`put`), for a day kept up to date ticket by ticket."""

    __slots__ = ("kinds", "waits", "waits_sorted", "wait_us", "services", "service_us")

    def __init__(self, facts: list[tuple] = ()) -> None:
        self.kinds = Tally(map(_KIND_OF, facts))
        self.waits = [wait for wait in map(_WAIT_OF, facts) if wait is not None]
        self.waits_sorted = False
        self.wait_us = sum(map(_us, self.waits))
        services = [service for service in map(_SERVICE_OF, facts) if service is not None]
        self.services = len(services)
        self.service_us = sum(map(_us, services))

    def add(self, other: _TicketTally) -> None:
        self.kinds.update(other.kinds)
        self.waits += other.waits
        self.waits_sorted = False
        self.wait_us += other.wait_us
        self.services += other.services
        self.service_us += other.service_us

    def sorted_waits(self) -> list[float]:
        if not self.waits_sorted:
            self.waits.sort()
            self.waits_sorted = True
        return self.waits

    def put(self, fact: tuple, sign: int) -> None:
        """One ticket's facts in (sign 1) or out again (sign −1: the very facts put in)."""
        _count(self.kinds, fact[5], sign)
        wait, service = fact[6], fact[7]
        if wait is not None:
            waits = self.sorted_waits()
            if sign > 0:
                insort(waits, wait)
            else:
                del waits[bisect_left(waits, wait)]
            self.wait_us += sign * _us(wait)
        if service is not None:
            self.services += sign
            self.service_us += sign * _us(service)


def ticket_figures(config: Config, tickets: Iterable[Ticket]) -> dict:
    return _ticket_totals(_TicketTally(_ticket_facts(config, map(ticket_record, tickets))))


def _ticket_totals(tally: _TicketTally) -> dict:
    status: Tally = Tally()
    issued = priority = within = 0
    for code, count in tally.kinds.items():
        ticket_status, has_priority, is_within = _TICKET_KINDS[code]
        issued += count
        status[ticket_status] += count
        if has_priority:
            priority += count
        if is_within:
            within += count
    waits = tally.sorted_waits()
    return {
        "issued": issued,
        "priority": priority,
        "waiting": status[TicketStatus.WAITING],
        "at_counter": status[TicketStatus.CALLED] + status[TicketStatus.SERVING],
        "served": status[TicketStatus.FINISHED],
        "no_show": status[TicketStatus.NO_SHOW],
        "called": len(waits),
        "within_target": within,
        "within_target_pct": percent(within, len(waits)),
        "avg_wait_s": _mean_s(tally.wait_us, len(waits)),
        "p90_wait_s": nearest_rank_sorted(waits, 90),
        "avg_service_s": _mean_s(tally.service_us, tally.services),
    }


# --- ratings ----------------------------------------------------------------------------------------


class _RatingTally:
    """Counted presses per level and the others per flag, of a group; tallies add up like _TicketTally."""

    __slots__ = ("counted", "flags")

    def __init__(self, facts: list[tuple] = ()) -> None:
        self.counted = Tally(map(_COUNTED_LEVEL_OF, facts))
        self.counted.pop(None, None)
        self.flags = Tally(map(_FLAG_OF, facts))
        self.flags.pop(None, None)

    def add(self, other: _RatingTally) -> None:
        self.counted.update(other.counted)
        self.flags.update(other.flags)

    def put(self, fact: tuple, sign: int) -> None:
        """One rating's facts in (sign 1) or out again (sign −1)."""
        level, flag = fact[4], fact[5]
        if level is not None:
            _count(self.counted, level, sign)
        elif flag is not None:
            _count(self.flags, flag, sign)


def _count(tally: Tally, key: object, sign: int) -> None:
    """`tally[key] += sign`, the key gone at zero (so that a tally lists only what it holds)."""
    count = tally[key] + sign
    if count:
        tally[key] = count
    else:
        del tally[key]


def rating_figures(config: Config, ratings: Iterable[Rating]) -> dict:
    levels = _level_table(config)
    return _rating_totals(config, levels, _RatingTally(_rating_facts(levels, map(rating_record, ratings))))


def _rating_totals(config: Config, levels: dict, tally: _RatingTally) -> dict:
    by_level = {level.id: 0 for level in config.rating.levels}
    for level_id, count in tally.counted.items():
        by_level[level_id] = by_level.get(level_id, 0) + count
    return _ratings_from_tallies(levels, by_level, tally.flags)


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


# --- dossiers ---------------------------------------------------------------------------------------


class _DossierFacts(NamedTuple):
    """The dossiers of one period: a tally of (field, new, channel, carried over, outcome if resolved in
    the period, status if still open at its end), and (code, ticket, late) of each one resolved in it
    (plain values: a year holds 100,000 of these, which the garbage collector then need not track)."""

    states: Tally
    resolved: list[tuple[str, str | None, bool]]


def _dossier_facts(
    calendar: WorkCalendar, dossiers: list[Dossier], outcomes: list[ReturnOutcome | None], first: date, last: date
) -> _DossierFacts:
    """`outcomes` (from _outcomes) holds each dossier's outcome when it was returned within first..last."""
    states: Tally = Tally()
    resolved = []
    for dossier, outcome in zip(dossiers, outcomes):
        received_on, returned_on = dossier.received_on, dossier.returned_on
        new = first <= received_on <= last
        carried_over = received_on < first and (returned_on is None or returned_on >= first)
        is_resolved = returned_on is not None and first <= returned_on <= last
        still_open = received_on <= last and (returned_on is None or returned_on > last)
        if not (new or carried_over or is_resolved or still_open):
            continue
        if is_resolved:
            resolved.append((dossier.code, dossier.ticket_id, outcome is ReturnOutcome.LATE))
        open_status = classify_open(dossier, calendar, last) if still_open else None
        states[(dossier.field_id, new, dossier.channel, carried_over, outcome if is_resolved else None, open_status)] += 1
    return _DossierFacts(states, resolved)


def _dossier_days(
    calendar: WorkCalendar, dossiers: list[Dossier], outcomes: list[ReturnOutcome | None], first: date, last: date
) -> list[_DossierFacts]:
    """The dossier facts of each day first..last, equal in every total to `_dossier_facts(calendar,
    dossiers_touching(day, day), day, day)`, in one pass over the dossiers rather than one per day.

    A dossier is in a day's set from its receipt through its return (what dossiers_touching(day, day)
    selects): new on the day it is received, carried over on the later days through its return,
    resolved on the day it is returned, open at the end of each day before that. Each span adds one
    to its state's count where it starts and takes it off after it ends; running sums give each
    day's counts. The open days come in runs of one status (`open_status_runs`). A state here names
    one of those parts only, which `_dossier_totals` adds up just as it adds up whole dossiers.
    """
    span = (last - first).days + 1
    one_day = timedelta(days=1)
    changes: dict[tuple, list[int]] = {}
    resolved_by_day: list[list] = [[] for _ in range(span)]

    day_zero = first.toordinal()

    def count(state: tuple, start: date, through: date) -> None:
        row = changes.get(state)
        if row is None:
            row = changes[state] = [0] * (span + 1)
        row[start.toordinal() - day_zero] += 1
        row[through.toordinal() - day_zero + 1] -= 1

    for dossier, outcome in zip(dossiers, outcomes):
        received_on, returned_on, field_id = dossier.received_on, dossier.returned_on, dossier.field_id
        if received_on > last or (returned_on is not None and returned_on < max(received_on, first)):
            continue  # in no day's set
        in_set_through = last if returned_on is None else min(returned_on, last)
        if received_on >= first:
            count((field_id, True, dossier.channel, False, None, None), received_on, received_on)
        carried_from = max(received_on + one_day, first)
        if carried_from <= in_set_through:
            count((field_id, False, None, True, None, None), carried_from, in_set_through)
        if returned_on is not None and returned_on <= last:
            count((field_id, False, None, False, outcome, None), returned_on, returned_on)
            resolved_by_day[returned_on.toordinal() - day_zero].append((dossier.code, dossier.ticket_id, outcome is ReturnOutcome.LATE))
        open_from = max(received_on, first)
        open_through = last if returned_on is None else min(returned_on - one_day, last)
        if open_from <= open_through:
            for run_from, run_through, status in open_status_runs(dossier, calendar, open_from, open_through):
                count((field_id, False, None, False, None, status), run_from, run_through)
    running = {state: list(accumulate(row)) for state, row in changes.items()}
    return [
        _DossierFacts(Tally({state: counts[offset] for state, counts in running.items() if counts[offset]}), resolved_by_day[offset])
        for offset in range(span)
    ]


def _outcomes(calendar: WorkCalendar, dossiers: list[Dossier], first: date, last: date) -> list[ReturnOutcome | None]:
    """Early, on time or late for each dossier returned within first..last (else None), classified once:
    the outcome of a returned dossier does not depend on the day a report looks at it."""
    return [
        classify_returned(d, calendar) if d.returned_on is not None and first <= d.returned_on <= last else None
        for d in dossiers
    ]


def dossier_figures(calendar: WorkCalendar, dossiers: Iterable[Dossier], first: date, last: date) -> dict:
    """Biểu 06 columns for the period first..last (whole local dates)."""
    dossiers = list(dossiers)
    return _dossier_totals(_dossier_facts(calendar, dossiers, _outcomes(calendar, dossiers, first, last), first, last).states.items())


def _dossier_totals(states: Iterable[tuple[tuple, int]]) -> dict:
    new = online = in_person = carried_over = 0
    outcomes: Tally = Tally()
    open_status: Tally = Tally()
    for (_, is_new, channel, is_carried_over, outcome, status), count in states:
        if is_new:
            new += count
            if channel == Channel.ONLINE:
                online += count
            elif channel == Channel.IN_PERSON:
                in_person += count
        if is_carried_over:
            carried_over += count
        if outcome is not None:
            outcomes[outcome] += count
        if status is not None:
            open_status[status] += count
    resolved = sum(outcomes.values())
    on_time = outcomes[ReturnOutcome.EARLY] + outcomes[ReturnOutcome.ON_TIME]
    return {
        "received": {
            "total": new + carried_over,
            "new": new,
            "online": online,
            "in_person": in_person,
            "carried_over": carried_over,
        },
        "resolved": {
            "total": resolved,
            "early": outcomes[ReturnOutcome.EARLY],
            "on_time": outcomes[ReturnOutcome.ON_TIME],
            "late": outcomes[ReturnOutcome.LATE],
        },
        "open": {
            "total": sum(open_status.values()),
            "within_time": open_status[OpenStatus.WITHIN_TIME],
            "overdue": open_status[OpenStatus.OVERDUE],
        },
        "on_time_pct": percent(on_time, resolved),
    }


def grading_766(
    config: Config, calendar: WorkCalendar, dossiers: Iterable[Dossier], ratings: Iterable[Rating], first: date, last: date
) -> dict:
    """Indicator 5.4: 100% − (late-dossier rate + rate of dossiers with an unsatisfied rating)."""
    dossiers = list(dossiers)
    facts = _dossier_facts(calendar, dossiers, _outcomes(calendar, dossiers, first, last), first, last)
    tallies = _Tallies((), _rating_facts(_level_table(config), map(rating_record, ratings)))
    return _grading_766(facts.resolved, tallies.unsatisfied_tickets, tallies.unsatisfied_codes)


def _grading_766(resolved: list[tuple[str, str | None, bool]], unsatisfied_tickets: set, unsatisfied_codes: set) -> dict:
    if not resolved:
        return {"score_pct": None, "late_pct": None, "unsatisfied_pct": None, "full_marks": None}
    late = sum(1 for _, _, is_late in resolved if is_late)
    unsatisfied = sum(1 for code, ticket_id, _ in resolved if code in unsatisfied_codes or ticket_id in unsatisfied_tickets)
    late_pct = 100.0 * late / len(resolved)
    unsatisfied_pct = 100.0 * unsatisfied / len(resolved)
    score = max(0.0, 100.0 - late_pct - unsatisfied_pct)
    return {
        "score_pct": round(score, 1),
        "late_pct": round(late_pct, 1),
        "unsatisfied_pct": round(unsatisfied_pct, 1),
        "full_marks": score >= GRADING_766_FULL_MARKS_PCT,
    }


# --- a period, and each of its days -----------------------------------------------------------------


BREAKDOWNS = (("by_field", FIELD), ("by_counter", COUNTER), ("by_clerk", CLERK))


class _Tallies:
    """Everything the ticket and rating figures of a period are made of, overall and per field, counter
    and clerk. A period's tallies are its days' added up, in day order; a day kept up to date puts
    each changed record's facts in and its former facts out (`put_ticket`, `put_rating`)."""

    def __init__(self, ticket_facts: list[tuple] = (), rating_facts: list[tuple] = ()) -> None:
        self.tickets = _TicketTally(ticket_facts)
        self.ratings = _RatingTally(rating_facts)
        self.groups: dict[str, dict] = {}
        for name, position in BREAKDOWNS:
            tickets_by = _grouped(ticket_facts, position)
            ratings_by = _grouped(rating_facts, position)
            self.groups[name] = {
                group_id: (_TicketTally(tickets_by.get(group_id, ())), _RatingTally(ratings_by.get(group_id, ())))
                for group_id in dict.fromkeys([*tickets_by, *ratings_by])
            }
        self.issued_by_field = Tally(map(_ISSUED_FIELD_OF, ticket_facts))
        # Tallies, not sets, so that a rating taken out leaves the others naming the same ticket.
        self.unsatisfied_tickets = Tally(map(_UNSATISFIED_TICKET_OF, rating_facts))
        self.unsatisfied_tickets.pop(None, None)
        self.unsatisfied_codes = Tally(map(_UNSATISFIED_CODE_OF, rating_facts))
        self.unsatisfied_codes.pop(None, None)
        # Records per group, for tallies kept record by record (put_ticket / put_rating).
        self._members: dict[str, Tally] | None = (
            None if ticket_facts or rating_facts else {name: Tally() for name, _ in BREAKDOWNS})

    @property
    def clerk_ids(self) -> set[str]:
        """The clerks who served or were rated (those in the config are listed anyway)."""
        return {clerk_id for clerk_id in self.groups["by_clerk"] if clerk_id}

    def add(self, other: _Tallies) -> None:
        self.tickets.add(other.tickets)
        self.ratings.add(other.ratings)
        for name, groups in other.groups.items():
            mine = self.groups[name]
            for group_id, (tickets, ratings) in groups.items():
                if group_id not in mine:
                    mine[group_id] = (_TicketTally(), _RatingTally())
                mine[group_id][0].add(tickets)
                mine[group_id][1].add(ratings)
        self.issued_by_field.update(other.issued_by_field)
        self.unsatisfied_tickets.update(other.unsatisfied_tickets)
        self.unsatisfied_codes.update(other.unsatisfied_codes)

    def _put(self, fact: tuple, sign: int, which: int) -> None:
        """A ticket's (which 0) or rating's (which 1) facts into or out of every group they are in;
        a group left with no record is dropped, as a group with no records is absent from a batch
        (records are counted, not tallies: a press neither counted nor flagged tallies nothing,
        yet names its clerk)."""
        members = self._members
        assert members is not None, "only tallies started empty are kept record by record"
        for name, position in BREAKDOWNS:
            groups = self.groups[name]
            group_id = fact[position]
            group = groups.get(group_id)
            if group is None:
                group = groups[group_id] = (_TicketTally(), _RatingTally())
            group[which].put(fact, sign)
            _count(members[name], group_id, sign)
            if group_id not in members[name]:
                del groups[group_id]

    def put_ticket(self, fact: tuple, sign: int) -> None:
        self.tickets.put(fact, sign)
        self._put(fact, sign, 0)
        _count(self.issued_by_field, fact[4], sign)

    def put_rating(self, fact: tuple, sign: int) -> None:
        self.ratings.put(fact, sign)
        self._put(fact, sign, 1)
        for tally, value in ((self.unsatisfied_tickets, fact[6]), (self.unsatisfied_codes, fact[7])):
            if value is not None:
                _count(tally, value, sign)


class DayFigures:
    """One day's figures, kept up to date record by record: a changed ticket or rating takes its
    former facts out of the tallies and puts its new ones in, so that the figures after each press
    cost the groups' count, not the day's records. The dossiers' facts are recomputed when one of
    them changed (a day has few changes to them). `figures()` equals `period_and_days` of the same
    records for that day (tested, also after records changed and left the day)."""

    def __init__(self, config: Config, day: date) -> None:
        self.config = config
        self.day = day
        self._levels = _level_table(config)
        self._targets = _targets(config)
        self._calendar = calendar_of(config)
        self._tallies = _Tallies()
        self._tickets: dict[str, tuple] = {}  # each ticket's facts as now in the tallies
        self._ratings: dict[int, tuple] = {}
        self._dossiers: dict[str, Dossier] = {}
        self._dossier_facts: _DossierFacts | None = None

    def put_ticket(self, ticket_id: str, record: tuple | None) -> None:
        """A ticket as now recorded (TicketRecord layout), or None when it is gone; a ticket of
        another day is taken out."""
        old = self._tickets.pop(ticket_id, None)
        if old is not None:
            self._tallies.put_ticket(old, -1)
        if record is not None and record[0] == self.day:
            fact = _ticket_facts(self.config, (record,), self._targets)[0]
            self._tallies.put_ticket(fact, 1)
            self._tickets[ticket_id] = fact

    def put_rating(self, rating_id: int, record: tuple | None) -> None:
        old = self._ratings.pop(rating_id, None)
        if old is not None:
            self._tallies.put_rating(old, -1)
        if record is not None and record[0] == self.day:
            fact = _rating_facts(self._levels, (record,))[0]
            self._tallies.put_rating(fact, 1)
            self._ratings[rating_id] = fact

    def put_dossier(self, code: str, dossier: Dossier | None) -> None:
        """A dossier as now recorded; kept while it touches the day (the rule of
        Store.dossiers_touching(day, day): received by then, not returned before)."""
        self._dossier_facts = None
        if dossier is not None and dossier.received_on <= self.day and (dossier.returned_on is None or dossier.returned_on >= self.day):
            self._dossiers[code] = dossier
        else:
            self._dossiers.pop(code, None)

    @property
    def newest_rating_id(self) -> int:
        return max(self._ratings, default=0)

    def figures(self) -> dict:
        """Every figure of the day, in a dict of the caller's own."""
        if self._dossier_facts is None:
            dossiers = list(self._dossiers.values())
            outcomes = _outcomes(self._calendar, dossiers, self.day, self.day)
            self._dossier_facts = _dossier_facts(self._calendar, dossiers, outcomes, self.day, self.day)
        return _figures(self.config, self._levels, self.day, self.day, self._tallies, self._dossier_facts)


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
    levels = _level_table(config)
    ticket_facts = _ticket_facts(config, (ticket_record(x) for x in tickets if first <= x.service_day <= last))
    rating_facts = _rating_facts(levels, (rating_record(r) for r in ratings if first <= r.day <= last))
    dossiers = list(dossiers)
    dossier_facts = _dossier_facts(calendar, dossiers, _outcomes(calendar, dossiers, first, last), first, last)
    return _figures(config, levels, first, last, _Tallies(ticket_facts, rating_facts), dossier_facts)


def period_and_days(
    config: Config,
    first: date,
    last: date,
    ticket_records: Iterable[tuple],
    rating_records: Iterable[tuple],
    dossiers: Iterable[Dossier],
    *,
    with_days: bool = True,
) -> tuple[dict, list[dict]]:
    """The period's figures and each day's (`with_days`), from TicketRecord / RatingRecord tuples:
    each day's are `period_figures(config, day, day, …)` of the same records, and the period's are
    `period_figures(config, first, last, …)` (for records in day order, as the Store reads them).

    Each record's facts are computed once and grouped by day; the period's tallies are the days'
    added up, not counted again. Each dossier is classified (early, on time, late) once and counted
    into the days it spans (`_dossier_days`).
    """
    calendar = calendar_of(config)
    levels = _level_table(config)
    ticket_facts = _ticket_facts(config, (x for x in ticket_records if first <= x[0] <= last))
    rating_facts = _rating_facts(levels, (r for r in rating_records if first <= r[0] <= last))
    dossiers = list(dossiers)
    outcomes = _outcomes(calendar, dossiers, first, last)
    period_dossiers = _dossier_facts(calendar, dossiers, outcomes, first, last)
    if first == last or not with_days:
        period = _figures(config, levels, first, last, _Tallies(ticket_facts, rating_facts), period_dossiers)
        # One day: the period is that day.
        return period, [period | {"day": first.isoformat()}] if first == last else []
    tickets_by_day = _grouped(ticket_facts, DAY)
    ratings_by_day = _grouped(rating_facts, DAY)
    period_tallies = _Tallies()
    days = []
    for offset, dossier_facts in enumerate(_dossier_days(calendar, dossiers, outcomes, first, last)):
        day = first + timedelta(days=offset)
        tallies = _Tallies(tickets_by_day.get(day, ()), ratings_by_day.get(day, ()))
        figures = _figures(config, levels, day, day, tallies, dossier_facts)
        figures["day"] = day.isoformat()
        days.append(figures)
        period_tallies.add(tallies)
    return _figures(config, levels, first, last, period_tallies, period_dossiers), days


def _figures(config: Config, levels: dict, first: date, last: date, tallies: _Tallies, dossier_facts: _DossierFacts) -> dict:
    """Every figure of one period from its tallies and dossier facts."""
    empty = (_TicketTally(), _RatingTally())

    def breakdown(name: str, ids: Iterable[str]) -> dict:
        groups = tallies.groups[name]
        return {
            group_id: {
                "tickets": _ticket_totals(groups.get(group_id, empty)[0]),
                "ratings": _rating_totals(config, levels, groups.get(group_id, empty)[1]),
            }
            for group_id in ids
        }

    by_field = breakdown("by_field", [f.id for f in config.fields])
    states_by_field: dict = defaultdict(list)
    for state in dossier_facts.states.items():
        states_by_field[state[0][0]].append(state)
    for field in config.fields:
        by_field[field.id]["tickets"]["issued"] = tallies.issued_by_field[field.id]
        by_field[field.id]["dossiers"] = _dossier_totals(states_by_field.get(field.id, []))
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "tickets": _ticket_totals(tallies.tickets),
        "ratings": _rating_totals(config, levels, tallies.ratings),
        "dossiers": _dossier_totals(dossier_facts.states.items()),
        "grading_766": _grading_766(dossier_facts.resolved, tallies.unsatisfied_tickets, tallies.unsatisfied_codes),
        "by_field": by_field,
        "by_counter": breakdown("by_counter", [c.id for c in config.counters]),
        "by_clerk": breakdown("by_clerk", sorted({c.id for c in config.clerks} | tallies.clerk_ids)),
    }
