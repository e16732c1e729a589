"""Dashboard fixtures: the API tests' cheap accounts, the board tests' live server and Chromium,
and one scripted day (with a Friday before it) whose figures the tests know by hand."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from queue_server.domain.counters import Action
from tests.api.conftest import accounts, assert_error  # noqa: F401  (fixtures shared with the API tests)
from tests.board.conftest import board_app, live  # noqa: F401  (a real server and a real Chromium)
from tests.conftest import MONDAY_9AM

AN, BINH, CUONG = "nguyen-van-an", "tran-thi-binh", "le-van-cuong"  # Cường is in no config: an id only
FRIDAY = date(2026, 11, 20)
MONDAY = date(2026, 11, 23)


@dataclass(frozen=True)
class ScriptedDay:
    """What the script did, for tests that check by hand rather than by recomputation."""

    friday: date
    monday: date
    first_ticket_id: str


def serve(service, clock, counter: str, clerk: str, *, wait_min: float, service_min: float, rating: str | None) -> None:
    """Wait, call the next ticket, serve it, finish, and rate it (or not)."""
    clock.advance(minutes=wait_min)
    service.counter_action(counter, Action.NEXT, clerk_id=clerk)
    service.counter_action(counter, Action.START, clerk_id=clerk)
    clock.advance(minutes=service_min)
    service.counter_action(counter, Action.FINISH, clerk_id=clerk)
    if rating is not None:
        service.record_rating(counter, rating)


@pytest.fixture
def scripted_day(service, clock) -> ScriptedDay:
    """Friday 20 Nov: one Land ticket, served in 5 min after a 2 min wait, rated satisfied.

    Monday 23 Nov (the clock is left at 10:30):
      09:00–09:04 A001, A002, A003 (Land), B001 (Civil status), C001 (Business), a minute apart
      09:04 An calls A001 at counter 1 (wait 4 min, Land's target is 15), serves 6 min, rated very satisfied
      09:30 Bình calls A002 at counter 2 (wait 29 min): no-show
      09:30 Cường calls B001 at counter 3 (wait 27 min, target 10), serves 3 min, rated unsatisfied
      09:33 Bình calls A003 at counter 2 (wait 31 min): still at the counter
      10:30 A004 and C002 issued; counter 3's terminal pressed again (flagged, not counted)
    Dossiers: HS-001 received Monday with A001 and returned Monday (early); HS-002 due Monday,
    returned Monday (on time); HS-003 due Friday, returned Monday (late); HS-004 received
    Monday (open, within time); HS-005 due 16 Nov, still open (overdue: it needs an apology slip).
    """
    clock.set(MONDAY_9AM.replace(day=20))  # Friday 09:00 local
    service.issue_ticket("dat-dai")
    serve(service, clock, "quay-1", AN, wait_min=2, service_min=5, rating="satisfied")

    clock.set(MONDAY_9AM)
    first = service.issue_ticket("dat-dai")[0]
    for field in ("dat-dai", "dat-dai", "ho-tich", "kinh-doanh"):
        clock.advance(minutes=1)
        service.issue_ticket(field)
    serve(service, clock, "quay-1", AN, wait_min=0, service_min=6, rating="very_satisfied")  # 09:04–09:10
    clock.advance(minutes=20)  # 09:30
    service.counter_action("quay-2", Action.NEXT, clerk_id=BINH)  # A002
    service.counter_action("quay-2", Action.NO_SHOW, clerk_id=BINH)
    serve(service, clock, "quay-3", CUONG, wait_min=0, service_min=3, rating="unsatisfied")  # B001, 09:30–09:33
    service.counter_action("quay-2", Action.NEXT, clerk_id=BINH)  # A003 at 09:33
    clock.advance(minutes=57)  # 10:30
    service.issue_ticket("dat-dai")
    service.issue_ticket("kinh-doanh")
    service.record_rating("quay-3", "satisfied")  # long after the window: flagged, not counted

    service.receive_dossier("HS-001", "Cấp giấy chứng nhận quyền sử dụng đất", "dat-dai", working_days=10, ticket_id=first["id"])
    service.return_dossier("HS-001")
    service.receive_dossier("HS-002", "Đăng ký khai sinh", "ho-tich", due_date=MONDAY, received_on=date(2026, 11, 18))
    service.return_dossier("HS-002")
    service.receive_dossier("HS-003", "Đăng ký hộ kinh doanh", "kinh-doanh", due_date=FRIDAY, received_on=date(2026, 11, 16))
    service.return_dossier("HS-003")
    service.receive_dossier("HS-004", "Chuyển mục đích sử dụng đất", "dat-dai", working_days=15)
    service.receive_dossier("HS-005", "Đăng ký biến động đất đai", "dat-dai", due_date=date(2026, 11, 16), received_on=date(2026, 11, 2))
    return ScriptedDay(friday=FRIDAY, monday=MONDAY, first_ticket_id=first["id"])
