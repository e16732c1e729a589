"""Issuing tickets: codes, opening hours, holidays, caps, estimated wait, people ahead."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from queue_server.domain import tickets as t
from queue_server.domain.errors import DomainError, InvalidInput, NotFound
from tests.conftest import MONDAY_9AM, make_config


def local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour - 7, minute, tzinfo=timezone.utc) if hour >= 7 else datetime(year, month, day - 1, hour + 17, minute, tzinfo=timezone.utc)


def test_codes_are_letter_and_three_digits():
    assert t.format_code("A", 15) == "A015"
    assert t.format_code("B", 1000) == "B1000"
    assert t.parse_code("A015") == ("A", 15)
    assert t.parse_code("a015") is None and t.parse_code("A") is None and t.parse_code("AB1") is None


def test_service_day_is_the_local_date():
    config = make_config()
    field = config.field("dat-dai")
    # 23:30 UTC on Sunday is 06:30 Monday in Hà Nội.
    ticket = t.new_ticket("x", field, 1, datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc), config)
    assert ticket.service_day.isoformat() == "2026-11-23"


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (local(2026, 11, 23, 7, 29), False),
        (local(2026, 11, 23, 7, 30), True),
        (local(2026, 11, 23, 11, 29), True),
        (local(2026, 11, 23, 11, 30), False),  # lunch break
        (local(2026, 11, 23, 13, 30), True),
        (local(2026, 11, 23, 17, 0), False),
        (local(2026, 11, 22, 9, 0), False),  # Sunday
        (local(2026, 12, 31, 9, 0), False),  # a holiday in the test config
    ],
)
def test_opening_hours(at, open_):
    config = make_config()
    assert t.is_open_at(config, config.field("dat-dai"), at) is open_


def test_field_hours_override_the_site_hours():
    config = make_config(fields=[
        {"id": "dat-dai", "letter": "A", "name": {"vi": "Đất đai", "en": "Land"},
         "opening_hours": [{"days": ["sat"], "open": "08:00", "close": "11:00"}]},
        {"id": "ho-tich", "letter": "B", "name": {"vi": "Hộ tịch", "en": "Civil status"}},
        {"id": "kinh-doanh", "letter": "C", "name": {"vi": "Kinh doanh", "en": "Business"}},
    ])
    saturday = local(2026, 11, 28, 9, 0)
    assert t.is_open_at(config, config.field("dat-dai"), saturday)
    assert not t.is_open_at(config, config.field("ho-tich"), saturday)
    assert not t.is_open_at(config, config.field("dat-dai"), MONDAY_9AM)


def test_check_issue_reasons():
    config = make_config()
    assert t.check_issue(config, "dat-dai", None, MONDAY_9AM, 0).id == "dat-dai"
    with pytest.raises(NotFound):
        t.check_issue(config, "nope", None, MONDAY_9AM, 0)
    with pytest.raises(InvalidInput):
        t.check_issue(config, "dat-dai", "vip", MONDAY_9AM, 0)
    with pytest.raises(DomainError) as error:
        t.check_issue(config, "ho-tich", None, MONDAY_9AM, 5)  # daily_cap 5
    assert error.value.code == "daily_cap_reached"
    assert t.check_issue(config, "ho-tich", None, MONDAY_9AM, 4).id == "ho-tich"
    with pytest.raises(DomainError) as error:
        t.check_issue(config, "dat-dai", None, local(2026, 11, 23, 20, 0), 0)
    assert error.value.code == "outside_opening_hours"


def test_closed_field():
    config = make_config()
    fields = [f.model_dump() for f in config.fields]
    fields[0]["closed"] = True
    closed = make_config(fields=fields)
    with pytest.raises(DomainError) as error:
        t.check_issue(closed, "dat-dai", None, MONDAY_9AM, 0)
    assert error.value.code == "field_closed"


def test_people_ahead_priority_goes_before_normal():
    config = make_config()
    field = config.field("dat-dai")
    normal = [t.new_ticket(f"n{i}", field, i, MONDAY_9AM + timedelta(minutes=i), config) for i in range(1, 4)]
    priority = t.new_ticket("p", field, 4, MONDAY_9AM + timedelta(minutes=4), config, "elderly")
    other_field = t.new_ticket("o", config.field("ho-tich"), 1, MONDAY_9AM, config)
    waiting = normal + [priority, other_field]
    assert [t.people_ahead(x, waiting) for x in normal] == [1, 2, 3]
    assert t.people_ahead(priority, waiting) == 0


def test_estimated_wait():
    assert t.estimate_wait_s(6, 2, 300) == 900
    assert t.estimate_wait_s(3, 0, 100) == 300  # no counter open yet: as if one
    assert t.estimate_wait_s(0, 3, 600) == 0


def test_mean_service_ignores_unfinished_and_empty_services():
    start = MONDAY_9AM
    assert t.mean_service_s([], 600) == 600
    assert t.mean_service_s([(start, None), (None, start), (start, start)], 600) == 600  # nothing to average
    assert t.mean_service_s([(start, start + timedelta(minutes=4)), (start, start), (start, start + timedelta(minutes=8))], 600) == 360


def test_average_service_uses_recent_finished_or_fallback():
    config = make_config()
    field = config.field("dat-dai")
    assert t.average_service_s([], 600) == 600
    done = []
    for minutes in (4, 6, 8):
        ticket = t.new_ticket(f"x{minutes}", field, minutes, MONDAY_9AM, config)
        ticket = t.call(ticket, "quay-1", "an", MONDAY_9AM)
        done.append(t.finish(ticket, MONDAY_9AM + timedelta(minutes=minutes)))
    assert t.average_service_s(done, 600) == 360
