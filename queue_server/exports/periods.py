"""The figures of a period and of each of its days, from one load of the records.

`period_figures(config, day, day, everything)` for each day of a year would scan every ticket,
rating and dossier of the year once per day (365 × 300,000 tickets). Here
`domain.figures.period_and_days` computes each record's facts once, groups them by day and counts each
dossier into the days it spans, so the per-day figures are the same as calling period_figures with all
the records (tests keep them equal). An export reads lean records from the Store
(`figures_by_day_of_records`); `figures_by_day` takes Ticket and Rating objects (a history replay).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ..config import Config
from ..domain.dossiers import Dossier
from ..domain.errors import InvalidInput
from ..domain.figures import period_and_days, rating_record, ticket_record
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
    return figures_by_day_of_records(
        config, first, last, map(ticket_record, tickets), map(rating_record, ratings), dossiers, with_days=with_days
    )


def figures_by_day_of_records(
    config: Config,
    first: date,
    last: date,
    ticket_records: Iterable[tuple],
    rating_records: Iterable[tuple],
    dossiers: Iterable[Dossier],
    *,
    with_days: bool = True,
) -> PeriodFigures:
    """As figures_by_day, from TicketRecord / RatingRecord tuples (`Store.ticket_records_between`,
    `Store.rating_records_between`): what an export of a year reads."""
    check_period(first, last)
    period, days = period_and_days(config, first, last, ticket_records, rating_records, dossiers, with_days=with_days)
    return PeriodFigures(first, last, period, days)
