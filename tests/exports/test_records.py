"""The lean reads an export makes (ticket and rating records, dossiers by position) hold what the full
objects hold, and the figures from them equal the figures from Ticket and Rating objects."""
from __future__ import annotations

import dataclasses
from datetime import date

from queue_server.domain.dossiers import Dossier
from queue_server.domain.figures import rating_record, ticket_record
from queue_server.exports.jobs import load_period
from queue_server.exports.periods import figures_by_day, figures_by_day_of_records
from tests.exports.conftest import MONTHS_FIRST, MONTHS_LAST


def test_ticket_records_are_the_tickets_figures_read(months):
    store = months.store
    tickets = store.tickets_between(MONTHS_FIRST, MONTHS_LAST)
    records = store.ticket_records_between(MONTHS_FIRST, MONTHS_LAST)
    assert len(records) == len(tickets) == months.summary.tickets
    # Same rows, same order (sums of waits add up in the same order on both paths).
    assert records == [ticket_record(x) for x in tickets]
    # The status stays the stored text, equal to the TicketStatus the figures compare it with.
    assert {record[3] for record in records} == {"finished", "no_show", "waiting"} and all(type(r[3]) is str for r in records)
    assert store.ticket_records_between(date(2026, 2, 16), date(2026, 2, 20)) == []  # Tết


def test_rating_records_are_the_ratings_figures_read(months):
    store = months.store
    ratings = store.ratings_between(MONTHS_FIRST, MONTHS_LAST)
    records = store.rating_records_between(MONTHS_FIRST, MONTHS_LAST)
    assert records == [rating_record(r) for r in ratings]
    assert any(not record[1] and record[3] for record in records)  # flagged presses are in them


def test_dossiers_read_by_position_equal_dossiers_read_by_name(months):
    store = months.store
    rows = store._query(
        "SELECT * FROM dossiers WHERE received_on <= ? AND (returned_on IS NULL OR returned_on >= ?)",
        [MONTHS_LAST.isoformat(), MONTHS_FIRST.isoformat()],
    )
    by_name = [store.dossier_from_row(row) for row in rows]
    by_position = store.dossiers_touching(MONTHS_FIRST, MONTHS_LAST)
    assert by_position == by_name and len(by_position) > 1000
    assert any(d.pauses for d in by_position) and any(d.returned_on is None for d in by_position)
    # A field added to Dossier must be read by position too.
    assert [f.name for f in dataclasses.fields(Dossier)] == [name.strip() for name in store.DOSSIER_SELECT.split(",")]


def test_an_export_from_records_equals_the_figures_from_objects(months):
    store, config = months.store, months.config
    from_objects = figures_by_day(
        config, MONTHS_FIRST, MONTHS_LAST, store.tickets_between(MONTHS_FIRST, MONTHS_LAST),
        store.ratings_between(MONTHS_FIRST, MONTHS_LAST), store.dossiers_touching(MONTHS_FIRST, MONTHS_LAST),
    )
    exported = load_period(months.service, MONTHS_FIRST, MONTHS_LAST)
    assert exported == from_objects
    assert exported.period == months.service.figures(MONTHS_FIRST, MONTHS_LAST)
    pdf_only = load_period(months.service, MONTHS_FIRST, MONTHS_LAST, with_days=False)
    assert pdf_only.days == [] and pdf_only.period == exported.period
    assert figures_by_day_of_records(config, MONTHS_FIRST, MONTHS_LAST, [], [], []).period["tickets"]["issued"] == 0
