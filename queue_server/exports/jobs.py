"""What the API and `motcua export` call: load a period's records once, compute, render one format."""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from ..domain.errors import InvalidInput
from ..service import QueueService
from . import daily_totals
from .periods import PeriodFigures, check_period, figures_by_day_of_records

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


@dataclass(frozen=True)
class Export:
    filename: str
    mimetype: str
    content: bytes


def load_period(svc: QueueService, first: date, last: date, *, with_days: bool = True) -> PeriodFigures:
    """The period's (and each day's) figures, from one read of the store: only what the figures need
    of each ticket and rating (a year is 320,000 tickets and 260,000 ratings)."""
    check_period(first, last)
    store = svc.store
    return figures_by_day_of_records(
        svc.config, first, last,
        store.ticket_records_between(first, last), store.rating_records_between(first, last),
        store.dossiers_touching(first, last),
        with_days=with_days,
    )


_collector_lock = threading.Lock()
_collector_pauses = 0  # exports running with the collector held off
_collector_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Cyclic garbage collection held off while an export builds its figures and its file.

    A year's export makes millions of short-lived tuples, lists and dicts: every few hundred start a
    collection, and now and then a full one walks every tracked object of the process, about a tenth
    of the export's time. Nothing here makes reference cycles (records are plain tuples and frozen
    dataclasses), so reference counting still frees all of it at once; the collector resumes when the
    last export running ends."""
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


def daily_totals_export(svc: QueueService, first: date, last: date, fmt: str) -> Export:
    if fmt not in FORMATS:
        raise InvalidInput("bad_format", f"Định dạng phải là csv, xlsx hoặc pdf / format must be csv, xlsx or pdf: {fmt!r}")
    filename = f"bao-cao-tong-hop_{svc.config.site.id}_{first.isoformat()}_{last.isoformat()}.{fmt}"
    with collector_paused():
        figures = load_period(svc, first, last, with_days=fmt != "pdf")
        if fmt == "pdf":
            content = daily_totals.to_pdf(svc.config, figures, svc.today())
        else:
            tables = daily_totals.build_tables(svc.config, figures)
            if fmt == "csv":
                content = daily_totals.to_csv(svc.config, tables)
            else:
                content = daily_totals.to_xlsx(svc.config, tables, first, last)
    return Export(filename, FORMATS[fmt], content)
