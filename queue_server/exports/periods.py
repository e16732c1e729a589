"""The figures of a period and of each of its days, from one load of the records.

`period_figures(config, day, day, everything)` for each day of a year would scan every ticket,
rating and dossier of the year once per day (365 × 300,000 tickets). Here tickets and ratings are
grouped by day once, and dossiers are swept: a dossier enters the day's set when it is received and
leaves it once returned, so each day sees exactly the dossiers `Store.dossiers_touching(day, day)`
would give. Every figure is still computed by `domain.figures.period_figures`, so the per-day
figures are the same as calling it with all the records (a test keeps them equal).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ..config import Config
from ..domain.dossiers import Dossier
from ..domain.errors import InvalidInput
from ..domain.figures import period_figures
from ..domain.ratings import Rating
from ..domain.tickets import Ticket

# As QueueService.stats_daily: a year, leap years included.
MAX_EXPORT_DAYS = 366


@dataclass(frozen=True)
class PeriodFigures:
    """The whole period's figures (`period`) and one figures dict per local day, in order."""

    first: date
    last: date
    period: dict
    days: list[dict]


def check_period(first: date, last: date) -> None:
    if last < first:
        raise InvalidInput("bad_range", "'from' phải trước 'to' / 'from' must not be after 'to'")
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise InvalidInput("range_too_long", f"Tối đa {MAX_EXPORT_DAYS} ngày / At most {MAX_EXPORT_DAYS} days")


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def figures_by_day(
    config: Config,
    first: date,
    last: date,
    tickets: Iterable[Ticket],
    ratings: Iterable[Rating],
    dossiers: Iterable[Dossier],
    *,
    with_days: bool = True,
) -> PeriodFigures:
    """Period and daily figures; records outside the period are ignored, as period_figures does.

    `with_days=False` leaves `days` empty, for the PDF report, which shows the period only."""
    check_period(first, last)
    tickets, ratings, dossiers = list(tickets), list(ratings), list(dossiers)
    period = period_figures(config, first, last, tickets, ratings, dossiers)
    if first == last:  # one day: the period is that day
        return PeriodFigures(first, last, period, [period | {"day": first.isoformat()}])
    if not with_days:
        return PeriodFigures(first, last, period, [])
    tickets_by_day: dict[date, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        tickets_by_day[ticket.service_day].append(ticket)
    ratings_by_day: dict[date, list[Rating]] = defaultdict(list)
    for rating in ratings:
        ratings_by_day[rating.day].append(rating)
    by_receipt = sorted(dossiers, key=lambda d: d.received_on)
    next_received = 0
    active: list[Dossier] = []
    days = []
    for day in days_of(first, last):
        while next_received < len(by_receipt) and by_receipt[next_received].received_on <= day:
            active.append(by_receipt[next_received])
            next_received += 1
        # Received by `day` and not returned before it: what dossiers_touching(day, day) selects.
        active = [d for d in active if d.returned_on is None or d.returned_on >= day]
        figures = period_figures(config, day, day, tickets_by_day.get(day, []), ratings_by_day.get(day, []), active)
        figures["day"] = day.isoformat()
        days.append(figures)
    return PeriodFigures(first, last, period, days)
