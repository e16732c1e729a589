"""Chart series for the manager dashboard: arrivals and waits by hour, satisfaction by day, clerks side by side.

Plain records in, plain lists out. The tables' figures come from `figures.period_figures`;
these are the same records seen along a time axis, with the same rules (a ticket belongs to
its service day, a rating to the server's day of receipt, only counted ratings count).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ..config import Config
from .figures import rating_figures
from .ratings import Rating
from .tickets import Ticket


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def opening_hour_span(config: Config) -> tuple[int, int]:
    """The first and last local hour (0–23) in which any field is open on any day."""
    periods = [period for field in config.fields for period in config.hours_for(field)]
    first_hour = min(period.open_minutes // 60 for period in periods)
    # A period closing at 17:00 is open during hour 16, not 17; one closing at 17:30 is open in 17.
    last_hour = max((period.close_minutes - 1) // 60 for period in periods)
    return first_hour, last_hour


def issue_hour(ticket: Ticket, tz: ZoneInfo) -> int:
    return ticket.issued_at.astimezone(tz).hour


def hours_axis(config: Config, tickets: Iterable[Ticket]) -> list[int]:
    """Hours shown on the by-hour charts: the opening hours, widened to any hour a ticket was issued in."""
    first_hour, last_hour = opening_hour_span(config)
    hours_seen = [issue_hour(ticket, config.tz) for ticket in tickets]
    if hours_seen:
        first_hour, last_hour = min(first_hour, *hours_seen), max(last_hour, *hours_seen)
    return list(range(first_hour, last_hour + 1))


def arrivals_by_hour(tickets: Iterable[Ticket], tz: ZoneInfo, hours: list[int]) -> list[int]:
    """Tickets issued in each local hour of `hours`, added up over every day of the records."""
    issued = defaultdict(int)
    for ticket in tickets:
        issued[issue_hour(ticket, tz)] += 1
    return [issued[hour] for hour in hours]


def average_wait_by_hour(tickets: Iterable[Ticket], tz: ZoneInfo, hours: list[int]) -> list[float | None]:
    """Mean wait in seconds (issued → first call) of the tickets issued in each hour and called
    since; None for an hour with no called ticket. By issue hour: what someone arriving then waited."""
    waits: dict[int, list[float]] = defaultdict(list)
    for ticket in tickets:
        wait = ticket.wait_s()
        if wait is not None:
            waits[issue_hour(ticket, tz)].append(wait)
    return [round(sum(waits[hour]) / len(waits[hour]), 1) if waits[hour] else None for hour in hours]


def satisfaction_by_day(config: Config, ratings: Iterable[Rating], first: date, last: date) -> list[dict]:
    """Each day of the period: counted ratings, satisfied among them, satisfaction % (None without ratings)."""
    by_day: dict[date, list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_day[rating.day].append(rating)
    series = []
    for day in days_between(first, last):
        figures = rating_figures(config, by_day.get(day, []))
        series.append({
            "day": day.isoformat(),
            "counted": figures["counted"],
            "satisfied": figures["satisfied"],
            "satisfaction_pct": figures["satisfaction_pct"],
        })
    return series


def clerk_comparison(config: Config, by_clerk: dict) -> list[dict]:
    """The clerks who worked or were rated in the period, side by side, from `period_figures`'s
    `by_clerk`; ordered by name so that the chart reads the same from one refresh to the next."""
    rows = []
    for clerk_id, figures in by_clerk.items():
        tickets, ratings = figures["tickets"], figures["ratings"]
        if not (tickets["issued"] or ratings["counted"]):
            continue
        clerk = config.clerk(clerk_id)
        rows.append({
            "clerk": clerk_id,
            "name": clerk.name if clerk else clerk_id,
            "served": tickets["served"],
            "no_show": tickets["no_show"],
            "avg_wait_s": tickets["avg_wait_s"],
            "avg_service_s": tickets["avg_service_s"],
            "ratings": ratings["counted"],
            "satisfaction_pct": ratings["satisfaction_pct"],
            "index": ratings["index"],
        })
    rows.sort(key=lambda row: (row["name"], row["clerk"]))
    return rows


def dashboard_series(
    config: Config, first: date, last: date, tickets: Iterable[Ticket], ratings: Iterable[Rating], figures: dict
) -> dict:
    """The four charts' data for the period first..last; `figures` is `period_figures` of the same records."""
    tickets = [ticket for ticket in tickets if first <= ticket.service_day <= last]
    ratings = [rating for rating in ratings if first <= rating.day <= last]
    hours = hours_axis(config, tickets)
    return {
        "hours": hours,
        "arrivals_by_hour": arrivals_by_hour(tickets, config.tz, hours),
        "avg_wait_by_hour_s": average_wait_by_hour(tickets, config.tz, hours),
        "satisfaction_by_day": satisfaction_by_day(config, ratings, first, last),
        "clerks": clerk_comparison(config, figures["by_clerk"]),
    }
