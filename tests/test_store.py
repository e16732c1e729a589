"""The SQLite store: atomic numbering under concurrency, constraints, migrations, durability."""
from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from queue_server.server import DATABASE_NAME, build
from queue_server.store import MIGRATIONS, Store


def test_fifty_threads_get_fifty_distinct_consecutive_numbers(service):
    barrier = threading.Barrier(50)

    def issue(_):
        barrier.wait()  # all threads ask at the same moment
        view, _created = service.issue_ticket("dat-dai")
        return view["number"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        numbers = list(pool.map(issue, range(50)))
    assert sorted(numbers) == list(range(1, 51))
    rows = service.store.db.execute("SELECT COUNT(DISTINCT number), COUNT(*) FROM tickets").fetchone()
    assert rows == (50, 50)


def test_two_processes_share_the_file_without_duplicates(tmp_path, config, clock):
    # Two independent servers on one database file (as a CLI next to a running server would be).
    first = build(config, tmp_path, clock=clock)
    second = build(config, tmp_path, clock=clock)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            numbers = list(pool.map(lambda i: (first if i % 2 else second).service.issue_ticket("dat-dai")[0]["number"], range(40)))
        assert sorted(numbers) == list(range(1, 41))
    finally:
        first.store.close()
        second.store.close()


def test_the_database_refuses_a_duplicate_number(service):
    service.issue_ticket("dat-dai")
    with pytest.raises(sqlite3.IntegrityError):
        service.store.db.execute(
            "INSERT INTO tickets (id, service_day, issued_field_id, field_id, letter, number, status, issued_at, queued_at) "
            "SELECT 'dup', service_day, issued_field_id, field_id, letter, number, status, issued_at, queued_at FROM tickets"
        )


def test_the_database_refuses_a_second_counted_rating(service):
    service.store.db.execute(
        "INSERT INTO ratings (counter_id, level, received_at, day, counted, ticket_id) VALUES ('quay-1', 'satisfied', 'x', '2026-11-23', 1, 't1')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        service.store.db.execute(
            "INSERT INTO ratings (counter_id, level, received_at, day, counted, ticket_id) VALUES ('quay-1', 'satisfied', 'x', '2026-11-23', 1, 't1')"
        )


def test_wal_mode_and_migrations_recorded(tmp_path):
    store = Store(tmp_path / DATABASE_NAME)
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.migrate() == len(MIGRATIONS)  # running again changes nothing
        assert {"tickets", "counters", "ratings", "dossiers", "history", "users", "devices", "rejects", "idempotency"} <= set(store.db.table_names())
    finally:
        store.close()


def test_a_failed_write_leaves_nothing_behind(service):
    with pytest.raises(RuntimeError):
        with service.store.write():
            service.issue_ticket("dat-dai")  # joins the outer transaction
            raise RuntimeError("power cut")
    assert service.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 0
    assert service.store.db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 0


def test_data_survives_a_restart(tmp_path, config, clock):
    first = build(config, tmp_path, clock=clock)
    view, _ = first.service.issue_ticket("dat-dai")
    first.store.close()
    second = build(config, tmp_path, clock=clock)
    try:
        assert second.service.get_ticket(view["id"]).code == "A001"
        assert second.service.issue_ticket("dat-dai")[0]["code"] == "A002"
    finally:
        second.store.close()


def test_people_ahead_in_sql_equals_the_domain_rule(service, clock):
    """The store counts people ahead in SQL for speed; the domain function is the rule."""
    from queue_server.domain.counters import Action
    from queue_server.domain.tickets import people_ahead

    plan = ["dat-dai", "dat-dai", ("dat-dai", "elderly"), "ho-tich", "dat-dai", ("dat-dai", "merit"), "dat-dai", ("ho-tich", "pregnant")]
    for step in plan:
        field, priority = step if isinstance(step, tuple) else (step, None)
        service.issue_ticket(field, priority)
        clock.advance(seconds=30)
    service.counter_action("quay-1", Action.NEXT, clerk_id="an")  # one leaves the line
    service.counter_action("quay-2", Action.NEXT, clerk_id="binh")
    service.counter_action("quay-2", Action.TRANSFER, transfer_field="dat-dai", keep_place=True)
    waiting = service.store.waiting_tickets(service.today())
    assert len(waiting) == 7
    assert [service.store.count_ahead(ticket) for ticket in waiting] == [people_ahead(ticket, waiting) for ticket in waiting]
    assert sorted(people_ahead(ticket, waiting) for ticket in waiting if ticket.field_id == "dat-dai") == list(range(5))


def test_recent_service_times_give_the_estimate_the_domain_rule_gives(service, clock):
    """The estimate reads only (started_at, finished_at) of a line's latest finished tickets; the
    average over them equals domain.tickets.average_service_s over the whole tickets."""
    from queue_server.domain.counters import Action
    from queue_server.domain.tickets import RECENT_FINISHED, average_service_s, mean_service_s

    for _ in range(RECENT_FINISHED + 5):
        service.issue_ticket("dat-dai")
    service.issue_ticket("ho-tich")
    for minutes in range(1, RECENT_FINISHED + 6):
        service.counter_action("quay-1", Action.NEXT, clerk_id="an")
        clock.advance(minutes=minutes)  # each service a minute longer than the one before
        service.counter_action("quay-1", Action.FINISH)
    day = service.today()
    served = service.store.recent_service_times(day, "dat-dai", RECENT_FINISHED)
    assert len(served) == RECENT_FINISHED
    assert sorted(round((finished - started).total_seconds()) for started, finished in served) == \
        [60 * minutes for minutes in range(6, RECENT_FINISHED + 6)]  # the newest, the oldest five left out
    finished = [ticket for ticket in service.store.tickets_between(day, day) if ticket.field_id == "dat-dai"]
    assert mean_service_s(served, 600) == average_service_s(finished, 600) == 60 * (6 + RECENT_FINISHED + 5) / 2
    assert service.store.recent_service_times(day, "ho-tich", RECENT_FINISHED) == []


def test_lean_records_by_id_are_the_figures_view_of_the_same_rows(service, clock):
    """Today's figures keep tickets and ratings as TicketRecord / RatingRecord tuples read by id:
    each equals the record made from the full Ticket / Rating, unknown ids are left out, and more
    ids than one `IN (…)` may hold are read in chunks."""
    from queue_server.domain.counters import Action
    from queue_server.domain.figures import rating_record, ticket_record

    for n in range(6):
        service.issue_ticket("dat-dai" if n % 2 else "ho-tich", "elderly" if n == 3 else None)
        clock.advance(seconds=20)
    service.counter_action("quay-1", Action.NEXT, clerk_id="an")
    clock.advance(seconds=60)
    service.counter_action("quay-1", Action.FINISH)
    finished = service.store.tickets_between(service.today(), service.today())
    rated = next(t for t in finished if t.status.value == "finished")
    service.record_rating("quay-1", "satisfied", ticket_id=rated.id, msg_id="m-1")
    service.record_rating("quay-1", "unsatisfied", ticket_id=rated.id, msg_id="m-2")  # flagged: rated already
    store = service.store
    tickets = store.tickets_between(service.today(), service.today())
    ratings = store.ratings_with_ids_between(service.today(), service.today())
    assert len(tickets) == 6 and len(ratings) == 2

    by_id = dict(store.ticket_records_by_ids([t.id for t in tickets] + ["no-such-ticket"] * 600))
    assert by_id == {t.id: tuple(ticket_record(t)) for t in tickets}
    assert dict(store.ticket_records_with_ids_between(service.today(), service.today())) == by_id
    assert store.ticket_records_between(service.today(), service.today()) == [by_id[t.id] for t in tickets]

    ratings_by_id = dict(store.rating_records_by_ids([rating_id for rating_id, _ in ratings] + list(range(1000, 1600))))
    assert ratings_by_id == {rating_id: tuple(rating_record(rating)) for rating_id, rating in ratings}
    assert dict(store.rating_records_with_ids_between(service.today(), service.today())) == ratings_by_id
    assert [r[1:4] for r in ratings_by_id.values()] == [(True, "satisfied", None), (False, "unsatisfied", "already_rated")]


def test_open_counters_are_counted_as_counter_state_says(service):
    """One query for the wait estimate's open counters: the same answer as asking each counter."""
    from queue_server.domain.counters import Action

    store = service.store
    ids = ["quay-1", "quay-2", "quay-3"]

    def one_by_one() -> int:
        return sum(1 for counter_id in ids if store.counter_state(counter_id).is_open)

    assert store.count_open_counters(ids) == one_by_one() == 3  # no rows yet: open
    service.counter_action("quay-2", Action.CLOSE, clerk_id="binh")
    assert store.count_open_counters(ids) == one_by_one() == 2
    service.counter_action("quay-2", Action.OPEN, clerk_id="binh")
    service.counter_action("quay-3", Action.CLOSE, clerk_id="cuong")
    service.counter_action("quay-1", Action.CLOSE, clerk_id="an")
    assert store.count_open_counters(ids) == one_by_one() == 1
    assert store.count_open_counters(["quay-1"]) == 0 and store.count_open_counters([]) == 0


def test_callbacks_after_one_commit_share_a_memo_and_nothing_else_does(service):
    store = service.store
    seen, seen_inside = [], []
    assert store.committed_memo() is None
    for _ in range(2):
        with store.write():
            assert store.committed_memo() is None  # a later write of the transaction could change what was read
            store.after_commit(lambda: seen.append(store.committed_memo()))
            store.after_commit(lambda: seen.append(store.committed_memo()))

            def writes_again() -> None:
                with store.write():
                    seen_inside.append(store.committed_memo())

            store.after_commit(writes_again)
    assert store.committed_memo() is None
    assert seen[0] is seen[1] and seen[2] is seen[3] and seen[0] is not seen[2] and seen[0] == {}
    assert seen_inside == [None, None]  # a callback's own transaction gets none


def test_ticket_answers_after_a_batch_equal_answers_read_alone(service, clock):
    """The answers of a batch read each line's service times and open counters once (the memo of
    the commit): every ticket's people ahead and estimate equal what it gets read on its own, for
    lines of several fields, priority tickets, and a line with finished tickets behind it."""
    from queue_server.domain.counters import Action

    for minutes in (3, 9):
        service.issue_ticket("dat-dai")
        service.counter_action("quay-1", Action.NEXT, clerk_id="an")
        clock.advance(minutes=minutes)
        service.counter_action("quay-1", Action.FINISH)
    service.counter_action("quay-3", Action.CLOSE, clerk_id="binh")
    answers = []
    with service.store.write():
        for field, priority in [("dat-dai", None), ("ho-tich", None), ("dat-dai", "elderly"), ("dat-dai", None),
                                ("kinh-doanh", None), ("ho-tich", "merit")]:
            ticket, _ = service.issue(field, priority)
            service.store.after_commit(lambda ticket=ticket: answers.append(service.ticket_view(ticket)))
    assert len(answers) == 6
    alone = [service.ticket_view(service.get_ticket(answer["id"])) for answer in answers]
    assert [(a["people_ahead"], a["est_wait_s"]) for a in answers] == [(a["people_ahead"], a["est_wait_s"]) for a in alone]
    assert len({a["est_wait_s"] for a in answers}) > 2 and answers[0]["est_wait_s"] > 0
