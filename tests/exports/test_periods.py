"""The day-by-day sweep gives exactly the figures period_figures gives with every record, every day."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from queue_server.domain.errors import InvalidInput
from queue_server.domain.figures import period_figures
from queue_server.exports.periods import check_period, days_of, figures_by_day
from tests.exports.conftest import MONTHS_FIRST, MONTHS_LAST


def test_each_day_equals_period_figures_over_all_records(months):
    store, config = months.store, months.config
    tickets = store.tickets_between(MONTHS_FIRST, MONTHS_LAST)
    ratings = store.ratings_between(MONTHS_FIRST, MONTHS_LAST)
    dossiers = store.dossiers_touching(MONTHS_FIRST, MONTHS_LAST)
    swept = figures_by_day(config, MONTHS_FIRST, MONTHS_LAST, tickets, ratings, dossiers)
    assert [day["day"] for day in swept.days] == [d.isoformat() for d in days_of(MONTHS_FIRST, MONTHS_LAST)]
    for day_figures in swept.days:
        day = date.fromisoformat(day_figures["day"])
        expected = period_figures(config, day, day, tickets, ratings, dossiers)
        assert {k: v for k, v in day_figures.items() if k != "day"} == expected, day
    assert swept.period == period_figures(config, MONTHS_FIRST, MONTHS_LAST, tickets, ratings, dossiers)


def test_the_generated_data_has_what_the_report_is_about(months):
    """Not an empty quarter: holidays without tickets, online dossiers at weekends, late and overdue ones."""
    period = months.service.figures(MONTHS_FIRST, MONTHS_LAST)
    assert period["tickets"]["issued"] == months.summary.tickets > 15_000
    assert period["ratings"]["counted"] == months.summary.counted_ratings
    assert period["ratings"]["flagged"] == months.summary.ratings - months.summary.counted_ratings > 0
    resolved = period["dossiers"]["resolved"]
    assert min(resolved["early"], resolved["on_time"], resolved["late"]) > 0
    assert period["dossiers"]["open"]["overdue"] > 0 and period["dossiers"]["received"]["online"] > 0
    tet = months.service.figures(date(2026, 2, 16), date(2026, 2, 20))
    assert tet["tickets"]["issued"] == 0 and tet["dossiers"]["received"]["in_person"] == 0
    assert sum(period["by_field"][f.id]["tickets"]["issued"] for f in months.config.fields) == period["tickets"]["issued"]
    # Tickets transferred to another field count where they were issued (Biểu 06 and the kiosks agree).
    transferred = [t for t in months.store.tickets_between(MONTHS_FIRST, MONTHS_LAST) if t.transfers]
    assert transferred and all(t.field_id != t.issued_field_id for t in transferred)


def test_one_day_is_its_own_period(months):
    day = date(2026, 3, 2)
    store = months.store
    swept = figures_by_day(months.config, day, day, store.tickets_between(day, day), store.ratings_between(day, day),
                           store.dossiers_touching(day, day))
    assert len(swept.days) == 1 and swept.days[0]["day"] == "2026-03-02"
    assert {k: v for k, v in swept.days[0].items() if k != "day"} == swept.period


@pytest.mark.parametrize("first, last, code", [
    (date(2026, 3, 2), date(2026, 3, 1), "bad_range"),
    (date(2024, 12, 31), date(2026, 1, 1), "range_too_long")  # 367 days,
])
def test_bad_periods_are_refused(first, last, code):
    with pytest.raises(InvalidInput) as raised:
        check_period(first, last)
    assert raised.value.code == code


def test_a_leap_year_fits():
    check_period(date(2028, 1, 1), date(2028, 1, 1) + timedelta(days=365))
