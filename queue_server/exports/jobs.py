"""What the API and `motcua export` call: load a period's records once, compute, render one format."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..domain.errors import InvalidInput
from ..service import QueueService
from . import daily_totals
from .periods import PeriodFigures, check_period, figures_by_day

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
    """The period's (and each day's) figures, from one read of the store."""
    check_period(first, last)
    store = svc.store
    return figures_by_day(
        svc.config, first, last,
        store.tickets_between(first, last), store.ratings_between(first, last), store.dossiers_touching(first, last),
        with_days=with_days,
    )


def daily_totals_export(svc: QueueService, first: date, last: date, fmt: str) -> Export:
    if fmt not in FORMATS:
        raise InvalidInput("bad_format", f"Định dạng phải là csv, xlsx hoặc pdf / format must be csv, xlsx or pdf: {fmt!r}")
    figures = load_period(svc, first, last, with_days=fmt != "pdf")
    filename = f"bao-cao-tong-hop_{svc.config.site.id}_{first.isoformat()}_{last.isoformat()}.{fmt}"
    if fmt == "pdf":
        content = daily_totals.to_pdf(svc.config, figures, svc.today())
    else:
        tables = daily_totals.build_tables(svc.config, figures)
        if fmt == "csv":
            content = daily_totals.to_csv(svc.config, tables)
        else:
            content = daily_totals.to_xlsx(svc.config, tables, first, last)
    return Export(filename, FORMATS[fmt], content)
