"""Alerts end to end on a real SQLite file with a FixedClock: the rules evaluated after changes
and on the periodic pass, raised and cleared alerts stored, and each change told to listeners."""
from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import timedelta

import pytest

from queue_server.alerts_runner import AlertRunner, alerts_payload
from queue_server.domain.alerts import (
    AlertCondition,
    RatingFact,
    share_counts,
    share_counts_of_levels,
    wait_cutoffs,
    waiting_lines,
)
from queue_server.domain.counters import Action
from queue_server.domain.errors import DomainError
from queue_server.server import Server, build
from queue_server.service import Change

# No periodic pass unless a test asks for one: what happens is caused by the change under test.
NEVER_S = 3600.0


@pytest.fixture
def runner(server: Server) -> Iterator[AlertRunner]:
    alert_runner = AlertRunner(server.service, interval_s=NEVER_S, min_gap_s=0)
    alert_runner.start()
    assert alert_runner.wait_idle()  # the first pass, at start
    yield alert_runner
    alert_runner.stop()


@pytest.fixture
def alert_changes(service) -> list[tuple[str, dict]]:
    """(raised | cleared | updated, alert view) as listeners are told them."""
    seen: list[tuple[str, dict]] = []

    def listen(change: Change) -> None:
        if change.kind == "alert":
            seen.append((change.data["event"], change.data["alert"]))

    unsubscribe = service.subscribe(listen)
    yield seen
    unsubscribe()


def rate_one(service, clock, level: str, counter_id: str = "quay-1") -> None:
    """A ticket served at the counter and rated once, a minute after the last."""
    clock.advance(minutes=1)
    service.issue_ticket("dat-dai")
    service.counter_action(counter_id, Action.NEXT, clerk_id="nguyen-van-an")
    service.counter_action(counter_id, Action.FINISH)
    service.record_rating(counter_id, level)


def events(alert_changes) -> list[tuple[str, str, str]]:
    return [(event, alert["rule"], alert["subject"]) for event, alert in alert_changes]


def test_the_migration_allows_one_open_alert_per_rule_and_subject(server: Server, clock) -> None:
    columns = {row[1] for row in server.store.db.execute("PRAGMA table_info(alerts)")}
    assert columns == {"id", "rule_id", "kind", "subject", "severity", "message_vi", "message_en", "details",
                       "raised_at", "cleared_at"}
    condition = AlertCondition("printer", "printer_problem", "kiosk-01", "critical", "vi", "en", {"n": 1})
    with server.store.write():
        first = server.store.open_alert(condition, clock.now())
    with pytest.raises(sqlite3.IntegrityError), server.store.write():
        server.store.open_alert(condition, clock.now())
    with server.store.write():
        server.store.clear_alert(first, clock.now())
        second = server.store.open_alert(condition, clock.now())  # the same alert again, once cleared
    assert second != first
    assert [row["id"] for row in server.store.active_alerts()] == [second]
    assert server.store.get_alert(first)["details"] == {"n": 1}


def test_ratings_raise_then_clear_the_unsatisfied_alert(service, clock, runner, alert_changes) -> None:
    for level in ("satisfied", "unsatisfied", "unsatisfied"):
        rate_one(service, clock, level)
        assert runner.wait_idle()
    assert alert_changes == [] and service.store.active_alerts() == []  # 2 of 3: too few ratings

    rate_one(service, clock, "unsatisfied")
    assert runner.wait_idle()
    assert events(alert_changes) == [("raised", "unsatisfied", "quay-1")]
    raised = alert_changes[0][1]
    assert raised["message"] == {"vi": "Quầy 1: 3/4 đánh giá không hài lòng trong 15 phút",
                                 "en": "Counter 1: 3 of 4 ratings unsatisfied in 15 min"}
    assert raised["severity"] == "warning" and raised["since"] == clock.now().astimezone(service.config.tz).isoformat()

    for _ in range(3):  # 3 of 5, 3 of 6 (exactly half), then 3 of 7
        rate_one(service, clock, "very_satisfied")
        assert runner.wait_idle()
    assert events(alert_changes) == [
        ("raised", "unsatisfied", "quay-1"), ("updated", "unsatisfied", "quay-1"),
        ("updated", "unsatisfied", "quay-1"), ("cleared", "unsatisfied", "quay-1"),
    ]
    assert {alert["id"] for _, alert in alert_changes} == {raised["id"]}  # one alert throughout
    assert service.store.active_alerts() == []
    cleared = service.store.get_alert(raised["id"])
    assert cleared["cleared_at"] == clock.now() and cleared["details"]["ratings"] == 6  # last refreshed at 3 of 6


def test_flagged_presses_never_raise_it(service, clock, runner, alert_changes) -> None:
    rate_one(service, clock, "satisfied")
    for n in range(6):  # the ticket is rated already: each press kept, flagged, not counted
        clock.advance(seconds=15)
        view, _ = service.record_rating("quay-1", "unsatisfied", msg_id=f"rt:1:{n}")
        assert not view["counted"] and view["flag"] in ("already_rated", "nothing_to_rate")
    assert runner.wait_idle()
    assert alert_changes == []


def test_the_periodic_pass_clears_it_once_the_ratings_are_older_than_the_window(service, clock, runner, alert_changes) -> None:
    for _ in range(4):  # pressed at 09:01, 09:02, 09:03 and 09:04
        rate_one(service, clock, "unsatisfied")
    assert runner.wait_idle()
    assert events(alert_changes) == [("raised", "unsatisfied", "quay-1")]
    clock.advance(minutes=11)  # 09:15: the first press is 14 minutes old, still inside
    assert not runner.evaluate()
    clock.advance(minutes=1)  # 09:16: three presses left in the window, fewer than four
    runner.evaluate()
    assert events(alert_changes)[-1] == ("cleared", "unsatisfied", "quay-1")
    assert service.store.active_alerts() == []


def test_a_wait_passing_its_target_is_raised_by_the_periodic_pass(service, clock, runner, alert_changes) -> None:
    service.issue_ticket("dat-dai")  # target 15 min
    assert runner.wait_idle()
    clock.advance(minutes=15)
    runner.evaluate()
    assert alert_changes == []  # exactly the target: still on time
    clock.advance(seconds=1)
    runner.evaluate()
    assert events(alert_changes) == [("raised", "wait-over-target", "dat-dai")]
    assert alert_changes[0][1]["details"]["oldest_ticket"] == "A001"

    service.counter_action("quay-1", Action.NEXT, clerk_id="nguyen-van-an")  # called: nobody waits now
    assert runner.wait_idle()
    assert events(alert_changes)[-1] == ("cleared", "wait-over-target", "dat-dai")


def test_the_timer_alone_raises_a_wait_when_nothing_else_happens(server: Server, service, clock, alert_changes) -> None:
    service.issue_ticket("ho-tich")  # target 10 min
    alert_runner = AlertRunner(service, interval_s=0.05, min_gap_s=0)
    alert_runner.start()
    try:
        assert alert_runner.wait_for_evaluations(1)
        assert alert_changes == []
        clock.advance(minutes=11)  # no event at all: only the timer can notice
        done = alert_runner.evaluations
        assert alert_runner.wait_for_evaluations(done + 2)  # a whole pass after the clock moved
        assert events(alert_changes) == [("raised", "wait-over-target", "ho-tich")]
    finally:
        alert_runner.stop()


def test_a_device_offline_beyond_its_grace(service, clock, runner, alert_changes) -> None:
    service.record_device_status("kiosk-01", "online")
    clock.advance(minutes=1)
    service.record_device_status("kiosk-01", "offline")
    assert runner.wait_idle()
    clock.advance(minutes=4, seconds=59)
    runner.evaluate()
    assert alert_changes == []  # within the 5-minute grace: a reboot
    clock.advance(seconds=1)
    runner.evaluate()
    assert events(alert_changes) == [("raised", "device-offline", "kiosk-01")]
    alert = alert_changes[0][1]
    assert alert["severity"] == "critical"
    assert alert["message"] == {"vi": "Thiết bị kiosk-01 mất kết nối từ 09:01", "en": "Device kiosk-01 offline since 09:01"}
    clock.advance(minutes=10)
    assert not runner.evaluate()  # still offline, nothing new to say: no write, no event

    service.record_device_status("kiosk-01", "online")
    assert runner.wait_idle()
    assert events(alert_changes)[-1] == ("cleared", "device-offline", "kiosk-01")


def test_a_removed_device_stops_alerting(service, clock, runner, alert_changes) -> None:
    service.record_device_status("rating-03", "offline")
    clock.advance(minutes=30)
    runner.evaluate()
    assert events(alert_changes) == [("raised", "device-offline", "rating-03")]
    service.record_device_status("rating-03", "removed")  # its retained status cleared
    assert runner.wait_idle()
    assert events(alert_changes)[-1] == ("cleared", "device-offline", "rating-03")


def test_a_printer_out_of_paper_is_raised_at_once_and_cleared_when_fixed(service, clock, runner, alert_changes) -> None:
    service.record_printer_state("kiosk-01", "paper_out", "Hết giấy")
    assert runner.wait_idle()
    assert events(alert_changes) == [("raised", "printer", "kiosk-01")]
    assert alert_changes[0][1]["message"]["vi"] == "Máy in của kiosk-01: hết giấy (Hết giấy)"
    service.record_printer_state("kiosk-01", "paper_low", None)  # not one of the rule's states
    assert runner.wait_idle()
    assert events(alert_changes)[-1] == ("cleared", "printer", "kiosk-01")


def test_open_alerts_survive_a_restart_without_being_raised_again(tmp_path, config, clock) -> None:
    first = build(config, tmp_path, clock=clock)
    first.service.record_printer_state("kiosk-01", "error", "Kẹt giấy")
    AlertRunner(first.service).evaluate()
    first.store.close()

    again = build(config, tmp_path, clock=clock)
    try:
        seen: list[Change] = []
        again.service.subscribe(seen.append)
        changes = AlertRunner(again.service).evaluate()
        assert not changes and seen == []
        assert [a["subject"] for a in alerts_payload(again.service)["active"]] == ["kiosk-01"]
    finally:
        again.store.close()


def test_the_payload_lists_active_critical_first_and_recent_cleared(service, clock, runner) -> None:
    service.issue_ticket("dat-dai")
    clock.advance(minutes=20)
    service.record_printer_state("kiosk-01", "paper_out", None)
    assert runner.wait_idle()
    payload = alerts_payload(service)
    assert [(a["severity"], a["rule"]) for a in payload["active"]] == [("critical", "printer"), ("warning", "wait-over-target")]
    assert payload["recent"] == []

    service.record_printer_state("kiosk-01", "ok", None)
    assert runner.wait_idle()
    payload = alerts_payload(service)
    assert [a["rule"] for a in payload["active"]] == ["wait-over-target"]
    assert [a["rule"] for a in payload["recent"]] == ["printer"]
    assert payload["recent"][0]["cleared_at"] == clock.now().astimezone(service.config.tz).isoformat()

    clock.advance(hours=24, seconds=1)  # [alerts].recent_hours later
    assert alerts_payload(service)["recent"] == []


def test_the_store_counts_lines_and_shares_as_the_rules_count_the_records(service, clock) -> None:
    """What a pass reads (SQL counts) equals domain.alerts.waiting_lines / share_counts of the
    records themselves, on a day with every case: lines of several fields, tickets called,
    served and transferred, issued just before and after a cutoff, flagged presses, old presses."""
    rng = random.Random(11)
    for minute in range(90):
        clock.advance(seconds=rng.choice([20, 40, 60, 61]))
        field_id = "ho-tich" if minute in (1, 2, 3) else rng.choice(["dat-dai", "kinh-doanh"])  # Hộ tịch: 5 a day
        service.issue_ticket(field_id, priority=rng.choice([None, None, "elderly"]))
        if minute % 4:
            continue
        counter_id = rng.choice(["quay-1", "quay-2", "quay-3"])
        try:
            service.counter_action(counter_id, Action.NEXT, clerk_id="nguyen-van-an")
        except DomainError as exc:
            assert exc.code == "queue_empty"
            continue
        if minute % 8 == 0:  # sent to another line, where it waits again with its first issue time
            service.counter_action(counter_id, Action.TRANSFER, transfer_field="kinh-doanh")
            continue
        service.counter_action(counter_id, Action.FINISH)
        service.record_rating(counter_id, rng.choice(["very_satisfied", "satisfied", "unsatisfied"]))
        if minute % 3 == 0:
            service.record_rating(counter_id, "unsatisfied")  # flagged: already rated
    now, day, store = service.now(), service.today(), service.store
    over_target = []
    for offset_min in (0, -7, 13):
        at = now + timedelta(minutes=offset_min)
        expected = waiting_lines(service.config, store.waiting_tickets(day), at)
        assert store.waiting_lines(day, wait_cutoffs(service.config, at)) == expected
        over_target.append(sum(line.over_target for line in expected.values()))
    assert len(set(over_target)) == 3 and min(over_target) > 0  # three cutoffs, three different counts
    satisfied = {level.id: level.satisfied for level in service.config.rating.levels}
    facts = [RatingFact(r.counter_id, r.level, satisfied[r.level], r.counted, r.pressed_at)
             for r in store.ratings_between(day, day)]
    assert any(not fact.counted for fact in facts)
    for window_min in (5, 30, 240):
        since = now - timedelta(minutes=window_min)
        expected_shares = share_counts(facts, since)
        assert share_counts_of_levels(service.config, store.counted_ratings_since(since, day)) == expected_shares
    assert expected_shares and any(share.unsatisfied for share in expected_shares.values())
