"""An export holds the cyclic garbage collector off while it runs and gives it back as it found it, also
when exports overlap or one fails."""
from __future__ import annotations

import gc
import threading
from datetime import date

import pytest

from queue_server.domain.errors import InvalidInput
from queue_server.exports import jobs
from queue_server.exports.jobs import collector_paused, daily_totals_export


@pytest.fixture
def collector_on():
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_the_collector_is_off_during_an_export_and_back_after(collector_on, months, monkeypatch):
    seen = []
    real_to_csv = jobs.daily_totals.to_csv
    monkeypatch.setattr(jobs.daily_totals, "to_csv", lambda *args: seen.append(gc.isenabled()) or real_to_csv(*args))
    export = daily_totals_export(months.service, date(2026, 3, 2), date(2026, 3, 2), "csv")
    assert export.content.startswith("\ufeff".encode()) and seen == [False]
    assert gc.isenabled()


def test_a_failing_export_gives_the_collector_back(collector_on, months, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(jobs.daily_totals, "to_csv", broken)
    with pytest.raises(RuntimeError):
        daily_totals_export(months.service, date(2026, 3, 2), date(2026, 3, 2), "csv")
    assert gc.isenabled()
    with pytest.raises(InvalidInput):
        daily_totals_export(months.service, date(2026, 3, 2), date(2026, 3, 2), "docx")
    assert gc.isenabled()


def test_overlapping_exports_share_one_pause(collector_on):
    inside, leave = threading.Event(), threading.Event()

    def other_export():
        with collector_paused():
            inside.set()
            leave.wait(timeout=30)

    other = threading.Thread(target=other_export)
    other.start()
    assert inside.wait(timeout=30)
    with collector_paused():
        leave.set()
        other.join(timeout=30)
        assert not other.is_alive()
        assert not gc.isenabled()  # the other export ended, this one still runs
    assert gc.isenabled()


def test_a_collector_someone_turned_off_stays_off():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()
