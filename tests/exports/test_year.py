"""A whole generated year (≥ 300,000 tickets): the XLSX export's every day and its totals equal the
figures recomputed from the history alone. Slow (about three minutes on two CPUs, most of it writing
the year and replaying its 1.4 million history rows); timings are the bench's job, not asserted here."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from queue_server.domain.history import rebuild
from queue_server.domain.timeutil import FixedClock
from queue_server.exports.jobs import daily_totals_export
from queue_server.exports.periods import days_of, figures_by_day
from queue_server.service import QueueService
from queue_server.store import Store
from tests.exports.test_daily_totals import OVERALL_HEADERS, SUMMED, TICKET_HEADERS
from tests.exports.yeargen import generate, year_config

FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)


def sheet_rows(sheet) -> list[tuple]:
    """Rows as tuples of the header's width: a read-only sheet drops a row's trailing empty cells."""
    rows = list(sheet.iter_rows(values_only=True))
    width = len(rows[0])
    return [row + (None,) * (width - len(row)) for row in rows]


@pytest.mark.year
def test_a_year_exported_as_xlsx_equals_the_history(tmp_path):
    config = year_config()
    store = Store(tmp_path / "motcua.sqlite3")
    try:
        summary = generate(store, config, FIRST, LAST, per_day=1250)
        assert summary.tickets >= 300_000
        svc = QueueService(config, store, FixedClock(datetime(2027, 1, 4, 2, 0, tzinfo=timezone.utc)))
        workbook = load_workbook(io.BytesIO(daily_totals_export(svc, FIRST, LAST, "xlsx").content), read_only=True)
        tickets, ratings, dossiers = rebuild(store.history())  # what figures_from_history replays
    finally:
        store.close()
    assert len(tickets) == summary.tickets and len(ratings) == summary.ratings and len(dossiers) == summary.dossiers
    # period_figures over the replayed records (= figures_from_history), and each day by the sweep that
    # test_periods holds equal to period_figures day by day.
    replayed = figures_by_day(config, FIRST, LAST, tickets, ratings, dossiers)
    period = replayed.period
    days = {date.fromisoformat(d["day"]): d for d in replayed.days}

    rows = sheet_rows(workbook["Tổng hợp"])
    header, day_rows, totals = rows[0], rows[1:-1], rows[-1]
    columns = {name: index for index, name in enumerate(header)}
    assert [row[0].date() for row in day_rows] == days_of(FIRST, LAST) and totals[0] == "Tổng cộng / Total"
    for row in day_rows:
        for name, value_of in OVERALL_HEADERS.items():
            assert row[columns[name]] == value_of(days[row[0].date()]), (row[0], name)
    last_day_row = 1 + len(day_rows)
    for name in SUMMED:
        letter = get_column_letter(columns[name] + 1)
        assert totals[columns[name]] == f"=SUM({letter}2:{letter}{last_day_row})"
        assert sum(row[columns[name]] for row in day_rows) == OVERALL_HEADERS[name](period), name
    assert sum(row[columns["Số phát / Issued"]] for row in day_rows) == summary.tickets

    rows = sheet_rows(workbook["Cán bộ"])
    columns = {name: index for index, name in enumerate(rows[0])}
    period_rows = [row for row in rows if row[0] == "Cả kỳ / Period"]
    assert {row[1] for row in period_rows} == set(period["by_clerk"])
    for row in period_rows:
        for name, value_of in TICKET_HEADERS.items():
            assert row[columns[name]] == value_of(period["by_clerk"][row[1]]), (row[1], name)
    workbook.close()
