"""Dossier (hồ sơ) rules: appointment dates, pauses for missing documents, early / on-time / late.

Every date here is a whole local date (the caller converts instants with
`timeutil.local_day`), because the centre promises a day, not an hour: a result handed
over at 23:59 local time on the appointment date is on time.

Queries take `today` and answer "as of the end of that day": a pause that had not yet
ended by `today` counts up to `today`, and a dossier returned after `today` is still
open. That is what a report for a past period (Biểu 06) needs.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from queue_server.domain.errors import Conflict, DomainError, InvalidInput
from queue_server.domain.workdays import WorkCalendar

MAX_DOSSIER_CODE_LENGTH = 64
MAX_WORKING_DAYS = 365
# The apology slip prints the reason in full; longer would not fit its line.
MAX_DELAY_REASON_LENGTH = 500


class Channel(StrEnum):
    """How the dossier reached the centre; Biểu 06 counts the two apart."""

    IN_PERSON = "in_person"
    ONLINE = "online"


class ReturnOutcome(StrEnum):
    EARLY = "early"  # trước hạn
    ON_TIME = "on_time"  # đúng hạn
    LATE = "late"  # trễ hạn


class OpenStatus(StrEnum):
    WITHIN_TIME = "within_time"  # trong hạn
    OVERDUE = "overdue"  # quá hạn


@dataclass(frozen=True)
class Pause:
    """A spell of waiting for the citizen to supply documents; `ended_on` is None while it lasts."""

    started_on: date
    ended_on: date | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_on is None

    def is_open_on(self, today: date) -> bool:
        """Whether the clock was stopped at the end of `today`."""
        return self.started_on <= today and (self.ended_on is None or self.ended_on > today)


@dataclass(frozen=True)
class Dossier:
    code: str
    procedure: str
    field_id: str
    channel: Channel
    received_on: date
    # The appointment date printed on the receipt; pauses move the effective deadline,
    # never this, so the apology slip can still name the original date.
    due_date: date
    returned_on: date | None = None
    pauses: tuple[Pause, ...] = ()
    ticket_id: str | None = None
    counter_id: str | None = None
    clerk_id: str | None = None
    # Set when the centre gives a late (or soon late) dossier a new date, as the apology slip
    # does. On-time figures still judge the dossier against `due_date`: the new date is a
    # promise made because the first one was broken, not a new deadline.
    delay_reason: str | None = None
    new_due_on: date | None = None

    @property
    def is_returned(self) -> bool:
        return self.returned_on is not None

    @property
    def open_pause(self) -> Pause | None:
        if self.pauses and self.pauses[-1].is_open:
            return self.pauses[-1]
        return None


def due_date_for(
    received_on: date,
    calendar: WorkCalendar,
    *,
    working_days: int | None = None,
    due_date: date | None = None,
) -> date:
    """The appointment date: `working_days` after receipt, or a date the clerk typed in."""
    _require_date(received_on, "received_on")
    if working_days is None and due_date is None:
        raise InvalidInput(
            "due_date_missing",
            "Cần số ngày làm việc hoặc ngày hẹn trả / Give working days or a due date",
        )
    if working_days is not None and due_date is not None:
        raise InvalidInput(
            "due_date_ambiguous",
            "Chỉ nhập một trong hai: số ngày làm việc hoặc ngày hẹn trả"
            " / Give either working days or a due date, not both",
        )
    if due_date is not None:
        _require_date(due_date, "due_date")
        _require_due_not_before_receipt(received_on, due_date)
        # Taken as given even on a non-working day: the receipt already promised it.
        return due_date
    if (
        not isinstance(working_days, int)
        or isinstance(working_days, bool)
        or not 1 <= working_days <= MAX_WORKING_DAYS
    ):
        raise InvalidInput(
            "invalid_working_days",
            f"Số ngày làm việc phải từ 1 đến {MAX_WORKING_DAYS}"
            f" / Working days must be 1..{MAX_WORKING_DAYS}",
            working_days=working_days,
        )
    return calendar.add_working_days(received_on, working_days)


def receive(
    code: str,
    procedure: str,
    field_id: str,
    channel: Channel | str,
    received_on: date,
    due_date: date,
    *,
    ticket_id: str | None = None,
    counter_id: str | None = None,
    clerk_id: str | None = None,
) -> Dossier:
    """Record a dossier handed in at a counter or online, with its appointment date."""
    _require_dossier_code(code)
    _require_text(procedure, "invalid_procedure", "Thủ tục", "Procedure")
    _require_text(field_id, "invalid_field", "Lĩnh vực", "Field")
    try:
        channel = Channel(channel)
    except ValueError:
        raise InvalidInput(
            "invalid_channel",
            "Kênh tiếp nhận không hợp lệ / Unknown channel",
            channel=channel,
            allowed=[member.value for member in Channel],
        ) from None
    _require_date(received_on, "received_on")
    _require_date(due_date, "due_date")
    _require_due_not_before_receipt(received_on, due_date)
    return Dossier(
        code=code,
        procedure=procedure,
        field_id=field_id,
        channel=channel,
        received_on=received_on,
        due_date=due_date,
        ticket_id=ticket_id,
        counter_id=counter_id,
        clerk_id=clerk_id,
    )


def pause(dossier: Dossier, on: date) -> Dossier:
    """Stop the clock from `on` while the citizen gathers missing documents."""
    _require_date(on, "on")
    _require_not_returned(dossier)
    if dossier.open_pause is not None:
        raise Conflict(
            "already_paused",
            "Hồ sơ đang tạm dừng / Dossier is already paused",
            dossier_code=dossier.code,
            paused_on=dossier.open_pause.started_on.isoformat(),
        )
    if on < dossier.received_on:
        raise InvalidInput(
            "pause_before_received",
            "Ngày tạm dừng trước ngày tiếp nhận / Pause date is before the receipt date",
        )
    if dossier.pauses and on < dossier.pauses[-1].ended_on:
        # Overlapping pauses would count the same waiting days twice.
        raise InvalidInput(
            "pause_before_last_resume",
            "Ngày tạm dừng trước lần tiếp tục gần nhất"
            " / Pause date is before the last resume date",
        )
    return replace(dossier, pauses=dossier.pauses + (Pause(started_on=on),))


def resume(dossier: Dossier, on: date) -> Dossier:
    """Restart the clock on `on`; that day still counts as waiting (see paused_working_days)."""
    _require_date(on, "on")
    _require_not_returned(dossier)
    open_pause = dossier.open_pause
    if open_pause is None:
        raise Conflict(
            "not_paused", "Hồ sơ không tạm dừng / Dossier is not paused", dossier_code=dossier.code
        )
    if on < open_pause.started_on:
        raise InvalidInput(
            "resume_before_pause",
            "Ngày tiếp tục trước ngày tạm dừng / Resume date is before the pause date",
        )
    return replace(dossier, pauses=dossier.pauses[:-1] + (replace(open_pause, ended_on=on),))


def return_result(dossier: Dossier, on: date) -> Dossier:
    """Hand the result to the citizen on `on`; an open pause ends that day."""
    _require_date(on, "on")
    _require_not_returned(dossier)
    if on < dossier.received_on:
        raise InvalidInput(
            "return_before_received",
            "Ngày trả kết quả trước ngày tiếp nhận / Return date is before the receipt date",
        )
    pauses = dossier.pauses
    if pauses:
        last_pause = pauses[-1]
        if on < (last_pause.ended_on or last_pause.started_on):
            raise InvalidInput(
                "return_before_pause",
                "Ngày trả kết quả trước lần tạm dừng gần nhất"
                " / Return date is before the last pause",
            )
        if last_pause.is_open:
            pauses = pauses[:-1] + (replace(last_pause, ended_on=on),)
    return replace(dossier, returned_on=on, pauses=pauses)


def reschedule(dossier: Dossier, reason: str, new_due_on: date, calendar: WorkCalendar, today: date) -> Dossier:
    """Give the citizen a new date for the result, with the reason for the delay.

    The new date comes after the original appointment date (an earlier one needs no
    apology), is a working day (the centre is open to hand the result over) and is not
    in the past as of `today`. Rescheduling again replaces the previous new date and
    reason. Only `delay_reason` and `new_due_on` change: `due_date`, and with it every
    early / on-time / late figure, stays as the receipt promised.
    """
    _require_date(new_due_on, "new_due_on")
    _require_date(today, "today")
    _require_not_returned(dossier)
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= MAX_DELAY_REASON_LENGTH:
        raise InvalidInput(
            "invalid_reason",
            f"Cần nêu lý do chậm trễ (1–{MAX_DELAY_REASON_LENGTH} ký tự)"
            f" / Give the reason for the delay (1–{MAX_DELAY_REASON_LENGTH} characters)",
        )
    if new_due_on <= dossier.due_date:
        raise InvalidInput(
            "new_date_not_after_due",
            "Ngày hẹn mới phải sau ngày hẹn trả ban đầu"
            " / The new date must be after the original appointment date",
            due_date=dossier.due_date.isoformat(),
            new_due_date=new_due_on.isoformat(),
        )
    if new_due_on < today:
        raise InvalidInput(
            "new_date_in_past",
            "Ngày hẹn mới không được trước hôm nay / The new date must not be before today",
            today=today.isoformat(),
            new_due_date=new_due_on.isoformat(),
        )
    if not calendar.is_working_day(new_due_on):
        raise InvalidInput(
            "new_date_not_working_day",
            "Ngày hẹn mới phải là ngày làm việc (không phải cuối tuần, ngày lễ)"
            " / The new date must be a working day (not a weekend or holiday)",
            new_due_date=new_due_on.isoformat(),
            next_working_day=calendar.next_working_day(new_due_on).isoformat(),
        )
    return replace(dossier, delay_reason=reason.strip(), new_due_on=new_due_on)


def paused_working_days(dossier: Dossier, calendar: WorkCalendar, today: date) -> int:
    """Working days the clock was stopped, as of the end of `today`.

    Each working day after a pause began, up to and including the day it ended, counts:
    the day the citizen brings the documents back is spent waiting, not working.
    """
    _require_date(today, "today")
    if not dossier.pauses:  # most dossiers: figures ask this of every open dossier for every day
        return 0
    return sum(
        calendar.working_days_between(
            spell.started_on,
            today if spell.ended_on is None else min(spell.ended_on, today),
        )
        for spell in dossier.pauses
    )


def effective_due_date(dossier: Dossier, calendar: WorkCalendar, today: date) -> date:
    """The appointment date pushed back by one working day per working day paused."""
    paused_days = paused_working_days(dossier, calendar, today)
    if paused_days == 0:
        return dossier.due_date
    return calendar.add_working_days(dossier.due_date, paused_days)


def classify_returned(dossier: Dossier, calendar: WorkCalendar) -> ReturnOutcome:
    """Early, on time or late, comparing whole local dates with the effective due date."""
    returned_on = dossier.returned_on
    if returned_on is None:
        raise Conflict(
            "not_returned",
            "Hồ sơ chưa trả kết quả / Dossier not returned yet",
            dossier_code=dossier.code,
        )
    due = effective_due_date(dossier, calendar, returned_on)
    if returned_on < due:
        return ReturnOutcome.EARLY
    if returned_on == due:
        return ReturnOutcome.ON_TIME
    return ReturnOutcome.LATE


def classify_open(dossier: Dossier, calendar: WorkCalendar, today: date) -> OpenStatus:
    """Within time or overdue at the end of `today`, for a dossier not returned by then."""
    _require_date(today, "today")
    if dossier.returned_on is not None and dossier.returned_on <= today:
        _require_not_returned(dossier)
    if today <= effective_due_date(dossier, calendar, today):
        return OpenStatus.WITHIN_TIME
    current_pause = next((spell for spell in dossier.pauses if spell.is_open_on(today)), None)
    # While the clock is stopped the status is the one it had when it stopped. Without
    # this a dossier paused on a Friday due date would flip to overdue over the weekend,
    # since the extension only grows on working days.
    if current_pause is not None:
        paused_on = current_pause.started_on
        if paused_on <= effective_due_date(dossier, calendar, paused_on):
            return OpenStatus.WITHIN_TIME
    return OpenStatus.OVERDUE


def open_status_runs(dossier: Dossier, calendar: WorkCalendar, first: date, last: date) -> list[tuple[date, date, OpenStatus]]:
    """`classify_open(dossier, calendar, day)` for every day first..last, as runs (from, through,
    status) of days with the same status; the dossier must be open at the end of `last`.

    A year's daily report needs the status of every open dossier on every day (about 900,000
    dossier-days). While a pause may still move the due date or hold the status, each day is
    classified; from the day the last pause ended (from `first` for a dossier never paused) the
    effective due date stays put and no pause is open, so the dossier is within time through that
    date and overdue after it, as classify_open decides.
    """
    _require_date(first, "first")
    _require_date(last, "last")
    if dossier.returned_on is not None and dossier.returned_on <= last:
        _require_not_returned(dossier)
    one_day = timedelta(days=1)
    runs: list[tuple[date, date, OpenStatus]] = []
    day = first
    if dossier.pauses:
        if any(spell.ended_on is None for spell in dossier.pauses):
            settled_from = last + one_day  # a pause still open: every day counts
        else:
            settled_from = max(spell.ended_on for spell in dossier.pauses)
        while day <= last and day < settled_from:
            status = classify_open(dossier, calendar, day)
            if runs and runs[-1][2] is status:
                runs[-1] = (runs[-1][0], day, status)
            else:
                runs.append((day, day, status))
            day += one_day
    if day > last:
        return runs
    due = effective_due_date(dossier, calendar, day) if dossier.pauses else dossier.due_date  # never paused: its own date
    settled = []
    if day <= due:
        settled.append((day, min(due, last), OpenStatus.WITHIN_TIME))
    if due < last:
        settled.append((max(due + one_day, day), last, OpenStatus.OVERDUE))
    if runs and runs[-1][2] is settled[0][2]:
        runs[-1] = (runs[-1][0], settled[0][1], settled[0][2])
        settled = settled[1:]
    return runs + settled


def days_late(dossier: Dossier, calendar: WorkCalendar, today: date | None = None) -> int:
    """Working days past the effective due date: at return if returned, else as of `today`.

    `today` may be omitted for a returned dossier; for one returned after `today` the
    count is as of `today`, like every other query here.
    """
    if today is not None:
        _require_date(today, "today")
    if dossier.returned_on is not None and (today is None or dossier.returned_on <= today):
        as_of = dossier.returned_on
    elif today is None:
        raise ValueError(f"today is required for open dossier {dossier.code!r}")
    else:
        as_of = today
    due = effective_due_date(dossier, calendar, as_of)
    return calendar.working_days_between(due, as_of)


URL_UNSAFE_CODE_CHARACTERS = frozenset("/?#%\\")


def _require_dossier_code(code: object) -> None:
    # Codes are printed on receipts, typed at the counter and put in URLs: anything
    # invisible (spaces, control or format characters) would make two codes look alike.
    if (
        not isinstance(code, str)
        or not code
        or len(code) > MAX_DOSSIER_CODE_LENGTH
        or any(char.isspace() or unicodedata.category(char).startswith("C") for char in code)
        # A code is also a URL path segment (/api/v1/dossiers/{code}/return).
        or any(char in URL_UNSAFE_CODE_CHARACTERS for char in code)
    ):
        raise InvalidInput(
            "invalid_dossier_code",
            f"Mã hồ sơ không hợp lệ (1–{MAX_DOSSIER_CODE_LENGTH} ký tự, không khoảng trắng, gạch chéo, ? # %)"
            f" / Invalid dossier code (1–{MAX_DOSSIER_CODE_LENGTH} characters, no whitespace, slash, ? # %)",
            dossier_code=code,
        )


def _require_text(value: object, error_code: str, label_vi: str, label_en: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            error_code, f"{label_vi} không được để trống / {label_en} must not be empty"
        )


def _require_date(value: object, name: str) -> None:
    # A datetime is a date subclass that never equals a date: passing one instead of
    # its local day would silently shift comparisons, so reject it loudly.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(
            "invalid_date",
            f"{name} phải là ngày địa phương / {name} must be a local date",
            field=name,
        )


def _require_due_not_before_receipt(received_on: date, due_date: date) -> None:
    if due_date < received_on:
        raise InvalidInput(
            "due_before_received",
            "Ngày hẹn trả trước ngày tiếp nhận / Due date is before the receipt date",
            received_on=received_on.isoformat(),
            due_date=due_date.isoformat(),
        )


def _require_not_returned(dossier: Dossier) -> None:
    if dossier.returned_on is not None:
        raise Conflict(
            "already_returned",
            "Hồ sơ đã trả kết quả / Dossier already returned",
            dossier_code=dossier.code,
            returned_on=dossier.returned_on.isoformat(),
        )


# --- bulk import from the province's one-stop software -----------------------------------------

IMPORT_COLUMNS = ("code", "procedure", "field", "received", "due", "returned")


def parse_import_date(text: str) -> date:
    """YYYY-MM-DD, or the Vietnamese DD/MM/YYYY."""
    text = text.strip()
    if "/" in text:
        day_text, month_text, year_text = text.split("/")
        return date(int(year_text), int(month_text), int(day_text))
    return date.fromisoformat(text)


def parse_import_rows(
    rows: list[dict[str, str]], known_fields: set[str], existing_codes: set[str], first_line: int = 2
) -> tuple[list[Dossier], list[dict]]:
    """Check every row; returns the dossiers, or the problems as {line, column, reason}.

    An import is all or nothing: the caller stores the dossiers only when no row is bad.
    """
    dossiers: list[Dossier] = []
    problems: list[dict] = []
    seen: dict[str, int] = {}
    for offset, row in enumerate(rows):
        line = first_line + offset

        def bad(column: str, reason: str) -> None:
            problems.append({"line": line, "column": column, "reason": reason})

        values = {key: (row.get(key) or "").strip() for key in (*IMPORT_COLUMNS, "channel")}
        dates: dict[str, date | None] = {}
        for column in ("received", "due", "returned"):
            if not values[column]:
                dates[column] = None
                continue
            try:
                dates[column] = parse_import_date(values[column])
            except ValueError:
                bad(column, f"ngày không hợp lệ / not a date: {values[column]!r} (YYYY-MM-DD or DD/MM/YYYY)")
                dates[column] = None
        for column in ("code", "procedure", "field", "received", "due"):
            if not values[column]:
                bad(column, "thiếu / missing")
        if values["field"] and values["field"] not in known_fields:
            bad("field", f"lĩnh vực không có / unknown field {values['field']!r}")
        code = values["code"]
        if code in seen:
            bad("code", f"trùng dòng {seen[code]} / duplicate of line {seen[code]}")
        elif code in existing_codes:
            bad("code", f"hồ sơ {code} đã có / dossier {code} already exists")
        if code:
            seen.setdefault(code, line)
        channel = values["channel"] or "in_person"
        if channel not in ("in_person", "online"):
            bad("channel", f"phải là in_person hoặc online / must be in_person or online: {channel!r}")
        received_on, due, returned_on = dates["received"], dates["due"], dates["returned"]
        if received_on and due and due < received_on:
            bad("due", "hẹn trả trước ngày nhận / due before received")
        if received_on and returned_on and returned_on < received_on:
            bad("returned", "trả trước ngày nhận / returned before received")
        if any(p["line"] == line for p in problems):
            continue
        try:
            dossier = receive(code, values["procedure"], values["field"], channel, received_on, due)
        except DomainError as exc:
            bad("code", exc.message)
            continue
        if returned_on is not None:
            dossier = return_result(dossier, returned_on)
        dossiers.append(dossier)
    return dossiers, problems
