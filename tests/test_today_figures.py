"""Today's figures are kept between calls and brought up to date from the history: they must
always equal a full recomputation, whichever process changed what."""
from __future__ import annotations

from pathlib import Path

import pytest

from queue_server.domain.counters import Action
from queue_server.service import QueueService
from queue_server.store import Store


def without_time(figures: dict) -> dict:
    return {key: value for key, value in figures.items() if key != "generated_at"}


def full(service: QueueService) -> dict:
    today = service.today()
    return service.figures(today, today)


def same_as_full(service: QueueService) -> dict:
    kept = without_time(service.stats_today())
    recomputed = full(service)
    assert {key: kept[key] for key in recomputed} == recomputed
    return kept


def serve(service: QueueService, clock, counter_id: str = "quay-1") -> str:
    called = service.counter_action(counter_id, Action.NEXT, clerk_id="nguyen-van-an")
    clock.advance(minutes=4)
    service.counter_action(counter_id, Action.FINISH)
    return called["ticket_id"]


def test_every_kind_of_change_shows_in_the_next_figures(service, clock) -> None:
    assert same_as_full(service)["tickets"]["issued"] == 0
    service.issue_ticket("dat-dai")
    service.issue_ticket("ho-tich", priority="elderly")
    assert same_as_full(service)["tickets"]["issued"] == 2
    clock.advance(minutes=3)
    serve(service, clock)
    assert same_as_full(service)["tickets"]["served"] == 1
    service.record_rating("quay-1", "unsatisfied", msg_id="rt:1:1")
    service.record_rating("quay-1", "satisfied", msg_id="rt:1:2")  # flagged: already rated
    figures = same_as_full(service)
    assert figures["ratings"]["counted"] == 1 and figures["ratings"]["flagged"] == 1
    service.receive_dossier("HS-001", "Cấp giấy chứng nhận", "dat-dai", working_days=3)
    assert same_as_full(service)["dossiers"]["received"]["new"] == 1
    service.return_dossier("HS-001")
    assert same_as_full(service)["dossiers"]["resolved"]["total"] == 1


def test_changes_made_by_another_process_on_the_same_file_are_seen(server, clock, tmp_path: Path) -> None:
    service = server.service
    service.issue_ticket("dat-dai")
    assert same_as_full(service)["tickets"]["issued"] == 1
    other = QueueService(server.config, Store(server.store.path), clock)
    other.issue_ticket("dat-dai")
    clock.advance(minutes=2)
    serve(other, clock)
    other.record_rating("quay-1", "very_satisfied", msg_id="rt:2:1")
    figures = same_as_full(service)
    assert figures["tickets"]["issued"] == 2 and figures["tickets"]["served"] == 1
    assert figures["ratings"]["counted"] == 1
    other.store.close()


def test_a_new_day_starts_from_nothing(service, clock) -> None:
    service.issue_ticket("dat-dai")
    assert same_as_full(service)["tickets"]["issued"] == 1
    clock.advance(days=1)
    figures = same_as_full(service)
    assert figures["tickets"]["issued"] == 0 and figures["day"] == service.today().isoformat()


def test_figures_read_inside_a_write_that_is_rolled_back_are_not_kept(service, clock) -> None:
    service.issue_ticket("dat-dai")
    same_as_full(service)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        with service.store.write():
            service.issue_ticket("dat-dai")
            assert service.stats_today()["tickets"]["issued"] == 2  # what this write sees
            raise Abandon
    assert same_as_full(service)["tickets"]["issued"] == 1
    service.issue_ticket("ho-tich")  # takes the history number the abandoned write had used
    assert same_as_full(service)["tickets"]["issued"] == 2


def test_a_caller_changing_its_copy_does_not_change_the_next_one(service) -> None:
    service.issue_ticket("dat-dai")
    first = service.stats_today()
    first["tickets"]["issued"] = 999
    first["by_field"]["dat-dai"]["tickets"]["issued"] = 999
    assert same_as_full(service)["tickets"]["issued"] == 1
