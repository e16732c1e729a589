"""Use cases end to end on a real SQLite file: a scripted day, its figures, and the history."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from queue_server.domain.counters import Action
from queue_server.domain.errors import Conflict, DomainError


def serve_one(service, clock, counter_id, *, wait_min=5, service_min=8):
    clock.advance(minutes=wait_min)
    called = service.counter_action(counter_id, Action.NEXT, clerk_id="nguyen-van-an")
    clock.advance(minutes=service_min)
    service.counter_action(counter_id, Action.FINISH)
    return called["ticket_id"]


def test_tickets_restart_every_day_and_history_is_kept(service, clock):
    assert service.issue_ticket("dat-dai")[0]["code"] == "A001"
    assert service.issue_ticket("dat-dai")[0]["code"] == "A002"
    assert service.issue_ticket("ho-tich")[0]["code"] == "B001"
    clock.advance(days=1)
    assert service.issue_ticket("dat-dai")[0]["code"] == "A001"
    assert service.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 4
    yesterday = service.figures(date(2026, 11, 23), date(2026, 11, 23))
    assert yesterday["tickets"]["issued"] == 3


def test_idempotent_issue(service):
    first, created = service.issue_ticket("dat-dai", idempotency_scope="device:k1", idempotency_key="tx-1")
    again, created_again = service.issue_ticket("dat-dai", idempotency_scope="device:k1", idempotency_key="tx-1")
    other_device, _ = service.issue_ticket("dat-dai", idempotency_scope="device:k2", idempotency_key="tx-1")
    assert created and not created_again and first["id"] == again["id"]
    assert other_device["id"] != first["id"]
    with pytest.raises(Conflict):
        service.issue_ticket("ho-tich", idempotency_scope="device:k1", idempotency_key="tx-1")


def test_a_second_rating_of_the_same_ticket_is_flagged_and_not_counted(service, clock):
    service.issue_ticket("dat-dai")
    ticket_id = serve_one(service, clock, "quay-1")
    clock.advance(seconds=20)
    first, _ = service.record_rating("quay-1", "very_satisfied", msg_id="rt:1:1")
    second, _ = service.record_rating("quay-1", "unsatisfied", msg_id="rt:1:2")
    assert first["counted"] and first["ticket_id"] == ticket_id and first["clerk"] == "nguyen-van-an"
    assert not second["counted"] and second["flag"] == "already_rated"
    ratings = service.stats_today()["ratings"]
    assert ratings["counted"] == 1 and ratings["by_level"]["very_satisfied"] == 1 and ratings["by_level"]["unsatisfied"] == 0
    assert ratings["flagged"] == 1


def test_a_repeated_msg_id_counts_once_and_records_nothing_new(service, clock):
    service.issue_ticket("dat-dai")
    serve_one(service, clock, "quay-1")
    first, created = service.record_rating("quay-1", "satisfied", msg_id="rt:1:7")
    again, created_again = service.record_rating("quay-1", "unsatisfied", msg_id="rt:1:7")
    assert created and not created_again and again == first
    assert service.store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1


def test_counter_view_shows_rating_then_idle(service, clock):
    service.issue_ticket("dat-dai")
    serve_one(service, clock, "quay-1")
    assert service.counter_view("quay-1")["status"] == "rating"
    clock.advance(seconds=service.config.rating.window_s + 1)
    assert service.counter_view("quay-1")["status"] == "idle"


def test_listeners_hear_calls_after_commit(service, clock):
    heard = []
    service.subscribe(heard.append)
    service.issue_ticket("dat-dai")
    service.counter_action("quay-1", Action.NEXT, clerk_id="an")
    service.counter_action("quay-1", Action.RECALL)
    calls = [change.data for change in heard if change.kind == "call"]
    assert [(c["ticket"], c["counter_number"], c["repeat"]) for c in calls] == [("A001", 1, False), ("A001", 1, True)]
    # Boards and announcers need the field and which call of the ticket this is: carried, not read back.
    assert [(c["field"], c["call_count"]) for c in calls] == [("dat-dai", 1), ("dat-dai", 2)]


def test_a_batch_tells_listeners_after_its_commit_and_reads_each_line_once(service):
    """Inside one write transaction (an MQTT batch) nothing is heard before the commit; then each
    changed line gets one `queue` change with its committed state, however many tickets joined it,
    and a message of the batch that is rolled back takes no one else's change with it."""
    heard = []
    service.subscribe(heard.append)
    with service.store.write():
        with pytest.raises(DomainError), service.store.savepoint():
            service.issue("ho-tich")
            raise Conflict("test", "this message of the batch fails after its change was noted")
        for _ in range(3):
            service.issue("dat-dai")
        service.issue("ho-tich", "elderly")
        assert heard == []
    assert [c.kind for c in heard].count("ticket_issued") == 4
    queues = {c.data["field"]: c.data for c in heard if c.kind == "queue"}
    assert [c.kind for c in heard].count("queue") == len(queues) == 2
    assert (queues["dat-dai"]["waiting"], queues["ho-tich"]["waiting"], queues["ho-tich"]["priority_waiting"]) == (3, 1, 1)


def test_a_press_is_heard_before_its_counter_view_is_read(service, clock, monkeypatch):
    """The press goes to the boards as soon as it is committed; reading the counter's new view
    (the tile leaves "rating") comes after, so it never holds the press back."""
    service.issue_ticket("dat-dai")
    serve_one(service, clock, "quay-1")
    events = []
    service.subscribe(lambda change: events.append(change.kind))
    reading = service._counter_change
    monkeypatch.setattr(service, "_counter_change",
                        lambda *args, **kwargs: (events.append("counter view read"), reading(*args, **kwargs))[1])
    service.record_rating("quay-1", "satisfied", msg_id="rt:1:8")
    assert events[:3] == ["rating", "counter view read", "counter"]


def test_a_clerk_action_outside_a_batch_is_heard_at_once_with_its_line(service):
    heard = []
    service.issue_ticket("dat-dai")
    service.issue_ticket("dat-dai")
    service.subscribe(heard.append)
    service.counter_action("quay-1", Action.NEXT, clerk_id="an")
    assert [c.kind for c in heard] == ["counter", "call", "queue"]
    assert heard[0].data["ticket"] == "A001" and heard[2].data["waiting"] == 1


def test_a_failed_action_changes_nothing(service):
    with pytest.raises(DomainError):
        service.counter_action("quay-1", Action.NEXT)
    assert service.store.db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 0


def test_dossier_due_in_working_days_and_on_time_by_local_date(service, clock):
    # Received Friday 2026-12-25 (local), 3 working days; 2026-12-31 and 2027-01-01 are holidays
    # in the test config: Mon 28, Tue 29, Wed 30 -> due Wednesday 30th.
    clock.set(datetime(2026, 12, 25, 2, 0, tzinfo=timezone.utc))
    view = service.receive_dossier("HS-1", "Cấp giấy chứng nhận", "dat-dai", working_days=3)
    assert view["due_date"] == "2026-12-30"
    view = service.receive_dossier("HS-2", "Đăng ký khai sinh", "ho-tich", working_days=4)
    assert view["due_date"] == "2027-01-04"  # skips the weekend and both holidays
    # 16:59:59 UTC on the 30th is 23:59:59 local on the 30th: on time.
    clock.set(datetime(2026, 12, 30, 16, 59, 59, tzinfo=timezone.utc))
    assert service.return_dossier("HS-1")["outcome"] == "on_time"
    # 17:00 UTC on 2027-01-03 is already 4 January local.
    clock.set(datetime(2027, 1, 4, 17, 0, tzinfo=timezone.utc))  # 00:00 on the 5th local
    assert service.return_dossier("HS-2")["outcome"] == "late"


def test_dossier_pause_extends_the_deadline(service, clock):
    view = service.receive_dossier("HS-9", "Xin phép xây dựng", "dat-dai", due_date=date(2026, 11, 25))
    assert view["outcome"] == "within_time"
    clock.advance(days=1)  # Tuesday 24th: waiting for the citizen's documents
    service.pause_dossier("HS-9")
    clock.advance(days=2)  # Thursday 26th: documents supplied
    resumed = service.resume_dossier("HS-9")
    assert resumed["effective_due_date"] == "2026-11-27"  # two working days paused
    with pytest.raises(Conflict):
        service.receive_dossier("HS-9", "again", "dat-dai", working_days=2)


def scripted_day(service, clock):
    """A small but complete day: tickets in three fields, calls, no-shows, transfers,
    ratings of every kind, dossiers received and returned early, on time and late."""
    for field in ["dat-dai", "dat-dai", "ho-tich", "kinh-doanh", "dat-dai"]:
        service.issue_ticket(field)
    service.issue_ticket("dat-dai", "elderly")
    first = serve_one(service, clock, "quay-1", wait_min=3)
    service.record_rating("quay-1", "very_satisfied", msg_id="m1")
    service.record_rating("quay-1", "very_satisfied", msg_id="m2")  # repeat: flagged
    serve_one(service, clock, "quay-2", wait_min=20)
    clock.advance(minutes=10)
    service.record_rating("quay-2", "satisfied", msg_id="m3")  # after the window: flagged
    clock.advance(minutes=1)
    service.counter_action("quay-3", Action.NEXT, clerk_id="le")
    service.counter_action("quay-3", Action.NO_SHOW)
    service.counter_action("quay-1", Action.NEXT)
    service.counter_action("quay-1", Action.TRANSFER, transfer_field="ho-tich")
    serve_one(service, clock, "quay-3", wait_min=1, service_min=4)
    service.record_rating("quay-3", "unsatisfied", msg_id="m4", reasons=["wait"])
    service.record_rating("quay-2", "satisfied", msg_id="m5")  # long after quay-2's service
    service.receive_dossier("D-1", "Cấp GCN", "dat-dai", due_date=date(2026, 11, 23), ticket_id=first)
    service.receive_dossier("D-2", "Khai sinh", "ho-tich", due_date=date(2026, 11, 20), received_on=date(2026, 11, 16))
    service.receive_dossier("D-3", "Thành lập DN", "kinh-doanh", working_days=3)
    service.receive_dossier("D-4", "Kết hôn", "ho-tich", due_date=date(2026, 11, 24), received_on=date(2026, 11, 18), channel="online")
    service.receive_dossier("D-5", "Kết hôn", "ho-tich", due_date=date(2026, 11, 19), received_on=date(2026, 11, 12))
    service.return_dossier("D-1")
    service.return_dossier("D-2")
    service.return_dossier("D-4")


def test_figures_of_a_scripted_day(service, clock):
    scripted_day(service, clock)
    figures = service.stats_today()
    tickets = figures["tickets"]
    assert (tickets["issued"], tickets["served"], tickets["no_show"], tickets["waiting"], tickets["priority"]) == (6, 3, 1, 2, 1)
    ratings = figures["ratings"]
    assert ratings["counted"] == 2 and ratings["satisfaction_pct"] == 50.0 and ratings["index"] == 50.0
    # m5 at quay-2 comes after its unrated ticket's window: after_window, like m3.
    assert ratings["flagged_by_reason"] == {"after_window": 2, "already_rated": 1}
    dossiers = figures["dossiers"]
    assert dossiers["received"] == {"total": 5, "new": 2, "online": 0, "in_person": 2, "carried_over": 3}
    assert dossiers["resolved"] == {"total": 3, "early": 1, "on_time": 1, "late": 1}
    assert dossiers["open"] == {"total": 2, "within_time": 1, "overdue": 1}
    # D-1 (on time) was rated very satisfied; D-2 is late: 100 - (33.3 + 0) = 66.7
    assert figures["grading_766"]["score_pct"] == 66.7 and figures["grading_766"]["full_marks"] is False
    assert figures["by_field"]["ho-tich"]["tickets"]["issued"] == 1
    assert figures["by_counter"]["quay-1"]["ratings"]["counted"] == 1


def test_figures_recomputed_from_history_equal_the_live_ones(service, clock):
    scripted_day(service, clock)
    day = service.today()
    live = service.figures(day, day)
    assert service.figures_from_history(day, day) == live
    week = (day - timedelta(days=7), day)
    assert service.figures_from_history(*week) == service.figures(*week)


def test_ticket_ids_are_safe_everywhere_they_travel(service):
    # Regression: token_urlsafe ids could start with "-" or "_", which the MQTT contract
    # refuses, so about 3% of kiosks got no response.
    import re

    from pydantic import TypeAdapter

    from queue_server.mqtt.contract import TicketRef
    from queue_server.service import new_ticket_id

    ids = {new_ticket_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[a-z2-7]{16}", ticket_id) for ticket_id in ids)
    accept = TypeAdapter(TicketRef).validate_python
    assert all(accept(ticket_id) == ticket_id for ticket_id in ids)


def test_ratings_stuffed_in_a_burst_are_flagged_not_counted(service, clock):
    """A clerk finishing five tickets in ten seconds and pressing each time is not five citizens."""
    for _ in range(6):
        service.issue_ticket("dat-dai")
    results = []
    service.counter_action("quay-1", Action.NEXT, clerk_id="nguyen-van-an")
    for n in range(6):
        clock.advance(seconds=1)
        service.counter_action("quay-1", Action.NEXT if n < 5 else Action.FINISH)
        results.append(service.record_rating("quay-1", "very_satisfied", msg_id=f"stuff:{n}")[0])
    assert [r["counted"] for r in results] == [True, True, True, True, False, False]
    assert [r["flag"] for r in results[4:]] == ["burst", "burst"]
    assert service.stats_today()["ratings"]["flagged_by_reason"] == {"burst": 2}
