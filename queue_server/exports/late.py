"""Late dossiers: those still open past their appointment date (quá hạn) and those returned late (trễ hạn)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from ..domain import dossiers as dossier_rules
from ..domain.dossiers import Dossier, OpenStatus, ReturnOutcome
from ..domain.workdays import WorkCalendar

OVERDUE, RETURNED_LATE = "overdue", "late"


def late_dossiers(dossiers: Iterable[Dossier], calendar: WorkCalendar, today: date, returned_since: date) -> list[tuple[Dossier, str, int]]:
    """(dossier, status, working days late) for every dossier open and overdue at the end of `today`,
    and every one returned late from `returned_since` to `today`; the latest first."""
    found = []
    for dossier in dossiers:
        if dossier.received_on > today:
            continue
        if dossier.returned_on is None or dossier.returned_on > today:
            if dossier_rules.classify_open(dossier, calendar, today) is OpenStatus.OVERDUE:
                found.append((dossier, OVERDUE, dossier_rules.days_late(dossier, calendar, today)))
        elif returned_since <= dossier.returned_on <= today:
            if dossier_rules.classify_returned(dossier, calendar) is ReturnOutcome.LATE:
                found.append((dossier, RETURNED_LATE, dossier_rules.days_late(dossier, calendar)))
    # Open ones first (an apology slip is still owed), then by how late, then by code.
    found.sort(key=lambda item: (item[1] != OVERDUE, -item[2], item[0].code))
    return found
