"""Alert rules alone: which conditions hold for a snapshot of facts, and raised/cleared diffs."""
from __future__ import annotations

import typing
from datetime import timedelta

import pytest

from queue_server.config import AlertKind
from queue_server.domain import alerts
from queue_server.domain import tickets as t
from queue_server.domain.alerts import AlertCondition, DeviceFact, Facts, RatingFact, diff_alerts, evaluate
from tests.conftest import MONDAY_9AM, make_config

NOW = MONDAY_9AM + timedelta(hours=1)  # 10:00 in Hà Nội
CONFIG = make_config()  # the four default rules


def config_with(*rules: dict):
    return make_config(alerts={"rules": list(rules)})


def rating(counter: str, satisfied: bool, *, minutes_ago: float = 1, counted: bool = True) -> RatingFact:
    level = "satisfied" if satisfied else "unsatisfied"
    return RatingFact(counter, level, satisfied, counted, NOW - timedelta(minutes=minutes_ago))


def ratings(counter: str, satisfied: int, unsatisfied: int, **options) -> list[RatingFact]:
    return [rating(counter, True, **options) for _ in range(satisfied)] + [
        rating(counter, False, **options) for _ in range(unsatisfied)
    ]


def waiting(field_id: str, number: int, *, waited: timedelta, config=CONFIG) -> t.Ticket:
    return t.new_ticket(f"{field_id}-{number}", config.field(field_id), number, NOW - waited, config)


def only(conditions: dict[str, AlertCondition]) -> AlertCondition:
    assert len(conditions) == 1, conditions
    return next(iter(conditions.values()))


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_the_four_example_rules_enabled():
    rules = {rule.id: rule for rule in CONFIG.alerts.rules}
    assert [rule.kind for rule in rules.values()] == ["unsatisfied_share", "wait_over_target", "device_offline", "printer_problem"]
    assert all(rule.enabled for rule in rules.values())
    share = rules["unsatisfied"]
    assert (share.window_min, share.min_ratings, share.share) == (15, 4, 0.5)
    assert rules["device-offline"].grace_min == 5 and rules["device-offline"].severity == "critical"
    assert "paper_out" in rules["printer"].printer_states
    # Every kind the config accepts has a rule behind it.
    assert set(typing.get_args(AlertKind)) == set(alerts._CHECKS)


def test_nothing_holds_on_a_quiet_morning():
    assert evaluate(CONFIG, Facts(now=NOW)) == {}


# --- unsatisfied share ---------------------------------------------------------------------------


def test_three_of_four_unsatisfied_at_a_counter_raises_with_both_languages():
    condition = only(evaluate(CONFIG, Facts(now=NOW, ratings=ratings("quay-3", 1, 3))))
    assert condition.key == "unsatisfied:quay-3"
    assert (condition.kind, condition.subject, condition.severity) == ("unsatisfied_share", "quay-3", "warning")
    assert condition.message_vi == "Quầy 3: 3/4 đánh giá không hài lòng trong 15 phút"
    assert condition.message_en == "Counter 3: 3 of 4 ratings unsatisfied in 15 min"
    assert condition.details == {
        "counter": "quay-3", "counter_number": 3, "window_min": 15, "ratings": 4, "unsatisfied": 3,
        "share": 0.75, "threshold": 0.5, "min_ratings": 4,
    }


def test_exactly_at_the_share_raises_and_just_under_does_not():
    assert evaluate(CONFIG, Facts(now=NOW, ratings=ratings("quay-1", 2, 2)))  # 2/4 = 50 %
    assert evaluate(CONFIG, Facts(now=NOW, ratings=ratings("quay-1", 3, 2))) == {}  # 2/5 = 40 %


def test_a_share_that_is_not_a_binary_fraction_is_compared_exactly():
    config = config_with({"id": "thirty", "kind": "unsatisfied_share", "share": 0.3, "min_ratings": 10})
    assert evaluate(config, Facts(now=NOW, ratings=ratings("quay-1", 7, 3)))  # 3/10 is 0.3, not under it
    assert evaluate(config, Facts(now=NOW, ratings=ratings("quay-1", 8, 2))) == {}


def test_fewer_ratings_than_the_minimum_never_alert_even_all_unsatisfied():
    assert evaluate(CONFIG, Facts(now=NOW, ratings=ratings("quay-1", 0, 3))) == {}
    assert evaluate(CONFIG, Facts(now=NOW, ratings=ratings("quay-1", 0, 4)))


def test_flagged_presses_are_not_ratings():
    # Three counted unsatisfied and a pile of misuse: still fewer than four ratings.
    facts = Facts(now=NOW, ratings=ratings("quay-1", 0, 3) + ratings("quay-1", 2, 6, counted=False))
    assert evaluate(CONFIG, facts) == {}
    # Four counted, one unsatisfied: flagged unsatisfied presses do not tip the share.
    facts = Facts(now=NOW, ratings=ratings("quay-1", 3, 1) + ratings("quay-1", 0, 9, counted=False))
    assert evaluate(CONFIG, facts) == {}


def test_only_ratings_inside_the_window_count():
    inside = ratings("quay-1", 0, 3, minutes_ago=14.99)
    assert evaluate(CONFIG, Facts(now=NOW, ratings=inside + [rating("quay-1", False, minutes_ago=15)])) == {}
    assert evaluate(CONFIG, Facts(now=NOW, ratings=inside + [rating("quay-1", False, minutes_ago=14.5)]))


def test_counters_are_judged_separately_and_a_rule_may_name_its_counters():
    facts = Facts(now=NOW, ratings=ratings("quay-1", 2, 2) + ratings("quay-2", 2, 2) + ratings("quay-3", 4, 0))
    assert set(evaluate(CONFIG, facts)) == {"unsatisfied:quay-1", "unsatisfied:quay-2"}
    config = config_with({"id": "q2", "kind": "unsatisfied_share", "counters": ["quay-2"], "severity": "critical"})
    condition = only(evaluate(config, facts))
    assert (condition.key, condition.severity) == ("q2:quay-2", "critical")


def test_a_disabled_rule_raises_nothing():
    config = config_with({"id": "off", "kind": "unsatisfied_share", "enabled": False})
    assert evaluate(config, Facts(now=NOW, ratings=ratings("quay-1", 0, 8))) == {}


# --- wait over target ----------------------------------------------------------------------------


def test_a_wait_of_exactly_the_target_is_on_time_and_a_second_more_alerts():
    on_time = waiting("dat-dai", 1, waited=timedelta(minutes=15))
    assert evaluate(CONFIG, Facts(now=NOW, waiting=[on_time])) == {}
    late = waiting("dat-dai", 1, waited=timedelta(minutes=15, seconds=1))
    condition = only(evaluate(CONFIG, Facts(now=NOW, waiting=[late])))
    assert condition.key == "wait-over-target:dat-dai"
    assert condition.message_vi == "Đất đai: số A001 đã chờ 16 phút (mục tiêu 15 phút); 1 người chờ quá mục tiêu"
    assert condition.message_en == "Land: ticket A001 has waited 16 min (target 15 min); 1 waiting over target"


def test_the_oldest_ticket_is_named_and_each_field_has_its_own_target():
    tickets = [
        waiting("dat-dai", 2, waited=timedelta(minutes=20)),
        waiting("dat-dai", 1, waited=timedelta(minutes=31)),
        waiting("dat-dai", 3, waited=timedelta(minutes=2)),
        waiting("ho-tich", 1, waited=timedelta(minutes=12)),  # target 10
        waiting("kinh-doanh", 1, waited=timedelta(minutes=12)),  # target 15 (the default)
    ]
    found = evaluate(CONFIG, Facts(now=NOW, waiting=tickets))
    assert set(found) == {"wait-over-target:dat-dai", "wait-over-target:ho-tich"}
    land = found["wait-over-target:dat-dai"].details
    assert (land["oldest_ticket"], land["waited_min"], land["over_target"], land["waiting"]) == ("A001", 31, 2, 3)
    assert found["wait-over-target:ho-tich"].details["target_min"] == 10


def test_tickets_no_longer_waiting_do_not_count_and_a_rule_may_name_its_fields():
    called = t.call(waiting("dat-dai", 1, waited=timedelta(hours=1)), "quay-1", None, NOW)
    assert evaluate(CONFIG, Facts(now=NOW, waiting=[called])) == {}
    config = config_with({"id": "land", "kind": "wait_over_target", "fields": ["dat-dai"]})
    tickets = [waiting("dat-dai", 1, waited=timedelta(hours=1)), waiting("ho-tich", 1, waited=timedelta(hours=1))]
    assert set(evaluate(config, Facts(now=NOW, waiting=tickets))) == {"land:dat-dai"}


# --- devices -------------------------------------------------------------------------------------


def offline(device_id: str, minutes_ago: float) -> DeviceFact:
    return DeviceFact(device_id, "offline", NOW - timedelta(minutes=minutes_ago))


def test_offline_within_grace_does_not_alert_and_at_grace_does():
    assert evaluate(CONFIG, Facts(now=NOW, devices=[offline("kiosk-01", 4.99)])) == {}
    condition = only(evaluate(CONFIG, Facts(now=NOW, devices=[offline("kiosk-01", 5)])))
    assert (condition.key, condition.severity) == ("device-offline:kiosk-01", "critical")
    assert condition.message_vi == "Thiết bị kiosk-01 mất kết nối từ 09:55"
    assert condition.message_en == "Device kiosk-01 offline since 09:55"


def test_offline_since_another_day_names_the_day():
    condition = only(evaluate(CONFIG, Facts(now=NOW, devices=[offline("rating-03", 17 * 60)])))
    assert condition.message_vi == "Thiết bị rating-03 mất kết nối từ 17:00 ngày 22/11"
    assert condition.message_en == "Device rating-03 offline since 17:00 on 22/11"


def test_online_unknown_and_removed_devices_do_not_alert():
    devices = [
        DeviceFact("kiosk-01", "online", NOW - timedelta(hours=3)),
        DeviceFact("kiosk-02", None),  # a token, never heard on MQTT
        DeviceFact("kiosk-03", "removed", NOW - timedelta(hours=3)),
    ]
    assert evaluate(CONFIG, Facts(now=NOW, devices=devices)) == {}


def test_devices_switched_off_while_the_centre_is_closed_do_not_alert():
    evening = MONDAY_9AM + timedelta(hours=9)  # 18:00, after closing at 17:00
    kiosk = DeviceFact("kiosk-01", "offline", evening - timedelta(minutes=50))
    assert evaluate(CONFIG, Facts(now=evening, devices=[kiosk])) == {}
    lunch = MONDAY_9AM + timedelta(hours=3)  # 12:00, between the morning and afternoon periods
    assert evaluate(CONFIG, Facts(now=lunch, devices=[DeviceFact("kiosk-01", "offline", lunch - timedelta(hours=1))])) == {}
    # Still off when the afternoon opens: alerted at once, its grace long past.
    opening = MONDAY_9AM + timedelta(hours=4, minutes=30)  # 13:30
    assert evaluate(CONFIG, Facts(now=opening, devices=[DeviceFact("kiosk-01", "offline", lunch)]))
    config = config_with({"id": "always", "kind": "device_offline", "only_when_open": False})
    assert set(evaluate(config, Facts(now=evening, devices=[kiosk]))) == {"always:kiosk-01"}


def test_a_field_with_longer_hours_keeps_the_centre_open():
    hours = [{"days": ["mon"], "open": "07:00", "close": "20:00"}]
    config = make_config(fields=[dict(f, opening_hours=hours) if f["id"] == "ho-tich" else f
                                 for f in make_config().model_dump(mode="json")["fields"]])
    evening = MONDAY_9AM + timedelta(hours=9)  # 18:00
    kiosk = DeviceFact("kiosk-01", "offline", evening - timedelta(minutes=50))
    assert evaluate(config, Facts(now=evening, devices=[kiosk]))
    holiday = make_config(holidays=["2026-11-23"])
    assert evaluate(holiday, Facts(now=NOW, devices=[offline("kiosk-01", 60)])) == {}


def test_a_rule_may_name_its_devices_and_its_grace():
    config = config_with({"id": "boards", "kind": "device_offline", "devices": ["board-1"], "grace_min": 0})
    found = evaluate(config, Facts(now=NOW, devices=[offline("board-1", 0), offline("kiosk-01", 60)]))
    assert set(found) == {"boards:board-1"}


def test_a_printer_out_of_paper_alerts_with_its_own_words():
    kiosk = DeviceFact("kiosk-01", "online", NOW - timedelta(hours=1), "paper_out", "Hết giấy in", NOW - timedelta(minutes=1))
    condition = only(evaluate(CONFIG, Facts(now=NOW, devices=[kiosk])))
    assert condition.key == "printer:kiosk-01"
    assert condition.message_vi == "Máy in của kiosk-01: hết giấy (Hết giấy in)"
    assert condition.message_en == "Printer of kiosk-01: out of paper (Hết giấy in)"
    assert condition.details["printer_state"] == "paper_out"


def test_printer_states_that_alert_are_the_rules_own():
    low = DeviceFact("kiosk-01", "online", NOW, "paper_low", None, NOW)
    fine = DeviceFact("kiosk-02", "online", NOW, "ok", None, NOW)
    assert evaluate(CONFIG, Facts(now=NOW, devices=[low, fine])) == {}  # paper_low is not in the defaults
    config = config_with({"id": "paper", "kind": "printer_problem", "printer_states": ["paper_low"]})
    condition = only(evaluate(config, Facts(now=NOW, devices=[low, fine])))
    assert condition.message_vi == "Máy in của kiosk-01: sắp hết giấy"


def test_a_long_printer_detail_is_clipped_in_the_message_only():
    detail = "x" * 256
    kiosk = DeviceFact("kiosk-01", "online", NOW, "error", detail, NOW)
    condition = only(evaluate(CONFIG, Facts(now=NOW, devices=[kiosk])))
    assert len(condition.message_vi) < 200 and condition.message_vi.endswith("…)")
    assert condition.details["printer_detail"] == detail


# --- raised and cleared --------------------------------------------------------------------------


def condition(subject: str, message: str = "m", severity: str = "warning") -> AlertCondition:
    return AlertCondition("unsatisfied", "unsatisfied_share", subject, severity, message, message, {"ratings": 4})


def test_diff_raises_new_clears_gone_and_refreshes_changed():
    previous = {c.key: c for c in (condition("quay-1"), condition("quay-2"), condition("quay-3"))}
    current = {c.key: c for c in (condition("quay-2"), condition("quay-3", "3/5"), condition("quay-4"))}
    changes = diff_alerts(previous, current)
    assert [c.key for c in changes.raised] == ["unsatisfied:quay-4"]
    assert changes.cleared == ["unsatisfied:quay-1"]
    assert [c.key for c in changes.updated] == ["unsatisfied:quay-3"]
    assert changes


def test_diff_of_the_same_conditions_is_empty():
    same = {c.key: c for c in (condition("quay-1"), condition("quay-2"))}
    changes = diff_alerts(same, dict(same))
    assert not changes and changes.raised == changes.updated == [] and changes.cleared == []


def test_a_scripted_quarter_hour_raises_then_clears():
    """Evaluations one after another, each diffed against the last: raised once, cleared once."""
    open_alerts: dict[str, AlertCondition] = {}
    history = []
    presses: list[RatingFact] = []
    for minute, satisfied in enumerate([True, False, False, False, True, True, True, True]):
        presses.append(RatingFact("quay-2", "x", satisfied, True, NOW + timedelta(minutes=minute)))
        current = evaluate(CONFIG, Facts(now=NOW + timedelta(minutes=minute), ratings=presses))
        changes = diff_alerts(open_alerts, current)
        history += [("raised", c.details["unsatisfied"], c.details["ratings"]) for c in changes.raised]
        history += [("cleared", key) for key in changes.cleared]
        history += [("updated", c.details["unsatisfied"], c.details["ratings"]) for c in changes.updated]
        open_alerts = current
    assert history == [
        ("raised", 3, 4),   # the fourth press: 3 of 4
        ("updated", 3, 5),  # 3 of 5 is still over half
        ("updated", 3, 6),  # exactly half
        ("cleared", "unsatisfied:quay-2"),  # 3 of 7
    ]


@pytest.mark.parametrize("kind", ["device_offline", "printer_problem"])
def test_device_rules_ignore_ratings_and_tickets(kind):
    config = config_with({"id": "only", "kind": kind})
    facts = Facts(now=NOW, ratings=ratings("quay-1", 0, 9), waiting=[waiting("dat-dai", 1, waited=timedelta(hours=2))])
    assert evaluate(config, facts) == {}
