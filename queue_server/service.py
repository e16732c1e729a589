"""Use cases of the centre: each runs the domain rules inside one store transaction, then notifies."""
from __future__ import annotations

import base64
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .config import Config
from .device_first import DeviceFirst
from .domain import dossiers as dossier_rules
from .domain import tickets as ticket_rules
from .domain.counters import Action, CounterState, apply_action
from .domain.errors import Conflict, DomainError, InvalidInput, NotFound
from .domain.figures import DayFigures, calendar_of, period_and_days, period_figures
from .domain.history import rebuild
from .domain.ratings import Rating, judge_press, when_pressed
from .domain.tickets import Ticket, TicketStatus
from .domain.timeutil import Clock, SystemClock, local_day
from .store import Store

log = logging.getLogger(__name__)

MAX_STATS_DAYS = 366


@dataclass(frozen=True)
class Change:
    """What a committed use case changed, for live state (MQTT, board streams)."""

    kind: str  # ticket_issued, counter, call, rating, dossier, device, alert
    data: dict = field(default_factory=dict)


Listener = Callable[[Change], None]


@dataclass
class _Today:
    """Today's figures as of history entry `seq`, kept record by record (domain.figures.DayFigures)
    so that state/today and every board do not reload and recompute a whole (possibly
    20,000-ticket) day after each press: only the records named by newer history entries are read
    again and put in. Every change to a ticket, rating or dossier writes a history entry naming
    it, whichever process made it, so nothing is missed."""

    seq: int
    figures: DayFigures


class QueueService:
    def __init__(self, config: Config, store: Store, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.calendar = calendar_of(config)
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._today: _Today | None = None
        self._today_lock = threading.Lock()
        # Device messages waiting to be applied, which work that can wait gives way to
        # (queue_server/device_first.py): the MQTT link counts them, the HTTP gate and the
        # state publisher wait for them.
        self.device_first = DeviceFirst()

    # --- plumbing -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local_day(self.now(), self.config.tz)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def notify(self, changes: list[Change]) -> None:
        """For collaborators that commit changes of their own (the alert rules): tell the listeners."""
        self._notify(changes)

    def _notify(self, changes: list[Change] | Callable[[], list[Change]], queue_fields: Iterable[str] = ()) -> None:
        """Tell listeners of committed changes: at once outside a transaction, after the commit
        inside a caller's (a batch of MQTT messages). `changes` may be a function making them,
        so that the views in them are read once committed, outside the write lock. Each field in
        `queue_fields` gets a `queue` change with its line's state read after the commit, once
        per transaction: a batch of fifty tickets reads each line once, not fifty times."""
        if not self._listeners:
            return  # nobody to tell: no view or line state is read for nothing
        make = changes if callable(changes) else (lambda: changes)
        scratch = self.store.transaction_scratch()
        if scratch is None:
            self._fire(make() + [Change("queue", self.queue_state(f)) for f in sorted(set(queue_fields))])
            return
        self.store.after_commit(lambda: self._fire(make()))
        if queue_fields:
            # Each change registers the same flush, so that a message of the batch that is rolled
            # back (its callbacks dropped) cannot take the others' queue changes with it; the
            # first flush after the commit sends them all, the later ones find nothing left.
            pending = scratch.setdefault("queue_fields", set())
            pending.update(queue_fields)
            self.store.after_commit(lambda: self._fire_queues(pending))

    def _fire_queues(self, pending: set[str]) -> None:
        fields = sorted(pending)
        pending.clear()
        if fields:
            self._fire([Change("queue", self.queue_state(field_id)) for field_id in fields])

    def _fire(self, changes: list[Change]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:  # a broken listener must not undo a committed action
                    log.exception("listener failed on %s", change.kind)

    def _history(self, at: datetime, kind: str, subject: str, record: object, actor: str | None) -> None:
        self.store.append_history(at, local_day(at, self.config.tz), kind, subject, record, actor)

    # --- tickets --------------------------------------------------------------------------------

    def issue_ticket(
        self,
        field_id: str,
        priority: str | None = None,
        lang: str = "vi",
        *,
        device_id: str | None = None,
        idempotency_scope: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[dict, bool]:
        """Issue a ticket; returns its view and whether it is new (False for a repeated key)."""
        ticket, created = self.issue(
            field_id, priority, lang,
            device_id=device_id, idempotency_scope=idempotency_scope, idempotency_key=idempotency_key,
        )
        return self.ticket_view(ticket), created

    def issue(
        self,
        field_id: str,
        priority: str | None = None,
        lang: str = "vi",
        *,
        device_id: str | None = None,
        idempotency_scope: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Ticket, bool]:
        """Issue a ticket; returns it and whether it is new (False for a repeated key). Its view
        (people ahead, estimated wait) is left to the caller: inside a batch it is best read
        after the commit, outside the write lock."""
        if lang not in ("vi", "en"):
            raise InvalidInput("bad_lang", "Ngôn ngữ phải là vi hoặc en / lang must be vi or en")
        repeated = None
        with self.store.write():
            now = self.now()
            if idempotency_key is not None and idempotency_scope is not None:
                existing = self.store.idempotent_ticket(idempotency_scope, idempotency_key)
                if existing is not None:
                    ticket = self.store.get_ticket(existing)
                    assert ticket is not None
                    if ticket.issued_field_id != field_id or ticket.priority != priority:
                        raise Conflict(
                            "idempotency_key_reused",
                            "Khoá giao dịch đã dùng cho yêu cầu khác / This key was used for a different request",
                        )
                    repeated = ticket
            if repeated is not None:
                return repeated, False
            day = local_day(now, self.config.tz)
            highest = self.store.highest_number(day, field_id)
            # Numbers are consecutive from 1 each day, so the highest is also the count issued.
            field = ticket_rules.check_issue(self.config, field_id, priority, now, issued_today=highest)
            ticket = ticket_rules.new_ticket(
                new_ticket_id(), field, highest + 1, now, self.config, priority, lang, device_id
            )
            self.store.insert_ticket(ticket)
            if idempotency_key is not None and idempotency_scope is not None:
                self.store.remember_idempotent(idempotency_scope, idempotency_key, ticket.id, now)
            self._history(now, "ticket_issued", ticket.id, ticket, device_id)
        issued = {"id": ticket.id, "code": ticket.code, "field": ticket.field_id, "priority": ticket.priority,
                  "issued_at": ticket.issued_at.isoformat()}
        self._notify([Change("ticket_issued", issued)], queue_fields=[ticket.field_id])
        return ticket, True

    def get_ticket(self, ticket_id: str) -> Ticket:
        ticket = self.store.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound("unknown_ticket", "Không tìm thấy số thứ tự / Unknown ticket")
        return ticket

    def ticket_view(self, ticket: Ticket) -> dict:
        field = self.config.field(ticket.field_id)
        counter = self.config.counter(ticket.counter_id) if ticket.counter_id else None
        view = {
            "id": ticket.id,
            "code": ticket.code,
            "letter": ticket.letter,
            "number": ticket.number,
            "field": ticket.field_id,
            "field_name": field.name.model_dump() if field else None,
            "issued_field": ticket.issued_field_id,
            "priority": ticket.priority,
            "status": str(ticket.status),
            "service_day": ticket.service_day.isoformat(),
            "issued_at": ticket.issued_at.isoformat(),
            "called_at": ticket.called_at.isoformat() if ticket.called_at else None,
            "finished_at": ticket.finished_at.isoformat() if ticket.finished_at else None,
            "counter": ticket.counter_id,
            "counter_number": counter.number if counter else None,
            "lang": ticket.lang,
            "url": f"/t/{ticket.id}",
            "people_ahead": None,
            "est_wait_s": None,
        }
        if ticket.status is TicketStatus.WAITING and ticket.service_day == self.today():
            ahead = self.store.count_ahead(ticket)
            view["people_ahead"] = ahead
            view["est_wait_s"] = self._estimate(ticket.field_id, ahead, ticket.service_day)
        return view

    def _estimate(self, field_id: str, ahead: int, day: date) -> int:
        field = self.config.field(field_id)
        assert field is not None
        memo = self.store.committed_memo()
        key = ("estimate", field_id, day)
        if memo is not None and key in memo:
            average, open_counters = memo[key]
        else:
            served = self.store.recent_service_times(day, field_id, ticket_rules.RECENT_FINISHED)
            average = ticket_rules.mean_service_s(served, field.avg_service_min * 60)
            serving = self.config.counters_serving(field_id)
            open_counters = self.store.count_open_counters([c.id for c in serving]) or len(serving)
            if memo is not None:  # the answers and line states after one commit read these once
                memo[key] = average, open_counters
        return ticket_rules.estimate_wait_s(ahead, open_counters, average)

    def queue_state(self, field_id: str) -> dict:
        day = self.today()
        waiting, priority_waiting = self.store.count_waiting(day, field_id)
        field = self.config.field(field_id)
        cap = field.daily_cap if field else None
        return {
            "field": field_id,
            "waiting": waiting,
            "priority_waiting": priority_waiting,
            "est_wait_s": self._estimate(field_id, waiting, day),
            # Numbers run 1, 2, 3… each day, so the highest is the count issued.
            "cap_reached": cap is not None and self.store.highest_number(day, field_id) >= cap,
        }

    # --- counters -------------------------------------------------------------------------------

    def counter_view(self, counter_id: str, state: CounterState | None = None) -> dict:
        return self._counter_view(counter_id, state)[0]

    def _counter_change(self, counter_id: str, state: CounterState, extra: dict | None = None) -> tuple[dict, Change]:
        """A counter's view (with `extra`), and its change for listeners: the view plus what
        displays show of its ticket (field and times), so that no listener reads it back."""
        view, ticket = self._counter_view(counter_id, state)
        view.update(extra or {})
        return view, Change("counter", {
            **view,
            "ticket_field": ticket.field_id if ticket else None,
            "ticket_called_at": ticket.called_at.isoformat() if ticket and ticket.called_at else None,
            "ticket_last_called_at": ticket.last_called_at.isoformat() if ticket and ticket.last_called_at else None,
            "ticket_started_at": ticket.started_at.isoformat() if ticket and ticket.started_at else None,
        })

    def _counter_view(self, counter_id: str, state: CounterState | None = None) -> tuple[dict, Ticket | None]:
        counter = self.config.counter(counter_id)
        if counter is None:
            raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
        state = state or self.store.counter_state(counter_id)
        now = self.now()
        ticket = self.store.get_ticket(state.ticket_id) if state.ticket_id else None
        clerk = self.config.clerk(state.clerk_id) if state.clerk_id else None
        rating_ticket = self.store.get_ticket(state.rating_ticket_id) if state.awaiting_rating(now) and state.rating_ticket_id else None
        return {
            "counter": counter.id,
            "number": counter.number,
            "fields": list(counter.fields),
            "status": str(state.status(now)),
            "clerk": state.clerk_id,
            "clerk_name": clerk.name if clerk else state.clerk_id,
            "ticket": ticket.code if ticket else None,
            "ticket_id": ticket.id if ticket else None,
            "ticket_status": str(ticket.status) if ticket else None,
            "rating_ticket_id": rating_ticket.id if rating_ticket else None,
            "rating_ticket": rating_ticket.code if rating_ticket else None,
            "rating_until": state.rating_until.isoformat() if state.awaiting_rating(now) and state.rating_until else None,
        }, ticket

    def counter_action(
        self,
        counter_id: str,
        action: Action,
        *,
        clerk_id: str | None = None,
        transfer_field: str | None = None,
        transfer_counter: str | None = None,
        keep_place: bool | None = None,
    ) -> dict:
        if self.config.counter(counter_id) is None:
            raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
        with self.store.write():
            now = self.now()
            state = self.store.counter_state(counter_id)
            current = self.store.get_ticket(state.ticket_id) if state.ticket_id else None
            counter = self.config.counter(counter_id)
            waiting = (self.store.next_candidates(local_day(now, self.config.tz), counter_id, list(counter.fields))
                       if action is Action.NEXT else [])
            outcome = apply_action(
                self.config, state, action, now,
                clerk_id=clerk_id, current=current, waiting=waiting,
                transfer_field=transfer_field, transfer_counter=transfer_counter, keep_place=keep_place,
            )
            for ticket in outcome.tickets:
                self.store.update_ticket(ticket)
                self._history(now, _ticket_event_kind(action, ticket), ticket.id, ticket, outcome.counter.clerk_id)
            self.store.save_counter_state(outcome.counter, now)
            self._history(now, f"counter_{action}", counter_id, outcome.counter, outcome.counter.clerk_id)
        # Views are read once committed: the write lock is held for the action alone (every
        # clerk, kiosk and terminal waits on it).
        view, counter_change = self._counter_change(counter_id, outcome.counter, {
            "action": str(action), "tickets": [self.ticket_view(ticket) for ticket in outcome.tickets],
        })
        fields = {ticket.field_id for ticket in outcome.tickets} | {ticket.issued_field_id for ticket in outcome.tickets}
        changes = [counter_change]
        if outcome.announce is not None:
            changes.append(Change("call", {
                "ticket": outcome.announce.code,
                "ticket_id": outcome.announce.id,
                "counter": counter_id,
                "counter_number": view["number"],
                "at": now.isoformat(),
                "repeat": outcome.repeat,
                # What boards and announcers show of the call, known here: no listener reads it back.
                "field": outcome.announce.field_id,
                "call_count": outcome.announce.call_count,
            }))
        self._notify(changes, queue_fields=fields)
        return view

    # --- ratings --------------------------------------------------------------------------------

    def record_rating(
        self,
        counter_id: str,
        level: str,
        *,
        ticket_id: str | None = None,
        reasons: list[str] | None = None,
        device_at: datetime | None = None,
        device_id: str | None = None,
        msg_id: str | None = None,
        dossier_code: str | None = None,
    ) -> tuple[dict, bool]:
        """Record a press; returns its view and whether it is new (False: a repeated msg_id)."""
        with self.store.write():
            now = self.now()
            state = self.store.counter_state(counter_id)
            candidate_id = ticket_id or state.rating_ticket_id
            candidate = self.store.get_ticket(candidate_id) if candidate_id else None
            pressed_at = when_pressed(candidate, now, ticket_id, device_at)
            window = timedelta(seconds=self.config.rating.burst_window_s)
            already, recent = self.store.rating_context(
                candidate.id if candidate else None, counter_id, pressed_at - window, pressed_at
            )
            rating, new_state = judge_press(
                self.config, state,
                level=level, received_at=now, named_ticket_id=ticket_id, candidate=candidate,
                candidate_already_rated=already, device_at=device_at, reasons=reasons,
                dossier_code=dossier_code, device_id=device_id, msg_id=msg_id, recent_presses=recent,
            )
            # The msg_id's unique index decides whether this press was seen before (a QoS 1
            # redelivery or a device retry): then the first one stands and nothing changes.
            rating_id = self.store.insert_rating(rating)
            if rating_id is None:
                seen = self.store.rating_by_msg_id(msg_id)
                assert seen is not None
                return _rating_view(*seen), False
            if new_state != state:
                self.store.save_counter_state(new_state, now)
            self._history(now, "rating_recorded", str(rating_id), rating, device_id)
            view = _rating_view(rating_id, rating)
            # The press goes to the boards as soon as it is committed; the counter's view (read
            # after the commit, outside the write lock) follows in a change of its own, so that
            # reading it never holds the press back.
            self._notify([Change("rating", view)])
            if new_state != state:  # the counter leaves "rating" once its ticket is rated
                self._notify(lambda: [self._counter_change(counter_id, new_state)[1]])
        return view, True

    # --- devices --------------------------------------------------------------------------------

    def record_device_status(self, device_id: str, status: str) -> None:
        """online / offline from a device's birth message or Last Will; removed when its
        retained status is cleared."""
        if self.store.set_device_status(device_id, status, self.now()):
            self._notify([Change("device", {"device": device_id, "status": status})])

    def record_printer_state(self, device_id: str, state: str, detail: str | None) -> None:
        if self.store.set_printer_state(device_id, state, detail, self.now()):
            self._notify([Change("device", {"device": device_id, "printer": state, "detail": detail})])

    # --- dossiers -------------------------------------------------------------------------------

    def receive_dossier(
        self,
        code: str,
        procedure: str,
        field_id: str,
        *,
        channel: str = "in_person",
        working_days: int | None = None,
        due_date: date | None = None,
        ticket_id: str | None = None,
        received_on: date | None = None,
        actor: str | None = None,
    ) -> dict:
        if self.config.field(field_id) is None:
            raise NotFound("unknown_field", f"Không có lĩnh vực '{field_id}' / Unknown field of work '{field_id}'")
        try:
            channel_value = dossier_rules.Channel(channel)
        except ValueError:
            raise InvalidInput("bad_channel", "Kênh phải là in_person hoặc online / channel must be in_person or online") from None
        with self.store.write():
            now = self.now()
            received_on = received_on or local_day(now, self.config.tz)
            ticket = self.get_ticket(ticket_id) if ticket_id else None
            due = dossier_rules.due_date_for(received_on, self.calendar, working_days=working_days, due_date=due_date)
            dossier = dossier_rules.receive(
                code, procedure, field_id, channel_value, received_on, due,
                ticket_id=ticket.id if ticket else None,
                counter_id=ticket.counter_id if ticket else None,
                clerk_id=(ticket.clerk_id if ticket else None) or actor,
            )
            if self.store.get_dossier(dossier.code) is not None:
                raise Conflict("dossier_exists", f"Hồ sơ {dossier.code} đã có / Dossier {dossier.code} already exists")
            self.store.insert_dossier(dossier, now)
            self._history(now, "dossier_received", dossier.code, dossier, actor)
            view = self.dossier_view(dossier)
        self._notify([Change("dossier", view)])
        return view

    def _change_dossier(self, code: str, kind: str, change: Callable, actor: str | None) -> dict:
        with self.store.write():
            now = self.now()
            dossier = self.store.get_dossier(code)
            if dossier is None:
                raise NotFound("unknown_dossier", f"Không có hồ sơ {code} / Unknown dossier {code}")
            changed = change(dossier, now)
            self.store.update_dossier(
                changed,
                returned_at=now if kind == "dossier_returned" else None,
                rescheduled_at=now if kind == "dossier_rescheduled" else None,
            )
            self._history(now, kind, code, changed, actor)
            view = self.dossier_view(changed)
        self._notify([Change("dossier", view)])
        return view

    def return_dossier(self, code: str, *, returned_on: date | None = None, actor: str | None = None) -> dict:
        def change(dossier, now):
            return dossier_rules.return_result(dossier, returned_on or local_day(now, self.config.tz))

        return self._change_dossier(code, "dossier_returned", change, actor)

    def pause_dossier(self, code: str, *, on: date | None = None, actor: str | None = None) -> dict:
        return self._change_dossier(
            code, "dossier_paused", lambda d, now: dossier_rules.pause(d, on or local_day(now, self.config.tz)), actor
        )

    def resume_dossier(self, code: str, *, on: date | None = None, actor: str | None = None) -> dict:
        return self._change_dossier(
            code, "dossier_resumed", lambda d, now: dossier_rules.resume(d, on or local_day(now, self.config.tz)), actor
        )

    def reschedule_dossier(self, code: str, reason: str, new_due_on: date, *, actor: str | None = None) -> dict:
        """A new date for the result and the reason for the delay (the apology slip prints both)."""

        def change(dossier, now):
            return dossier_rules.reschedule(dossier, reason, new_due_on, self.calendar, local_day(now, self.config.tz))

        return self._change_dossier(code, "dossier_rescheduled", change, actor)

    def import_dossiers(self, csv_text: str, *, actor: str | None = None) -> dict:
        """Bulk import (CSV with a header row); all rows or none."""
        import csv
        import io

        reader = csv.DictReader(io.StringIO(csv_text))
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [name for name in dossier_rules.IMPORT_COLUMNS if name not in header and name != "returned"]
        if missing:
            raise InvalidInput("bad_header", f"Thiếu cột / missing columns: {', '.join(missing)}", expected=list(dossier_rules.IMPORT_COLUMNS))
        try:
            rows = [{(key or "").strip(): value for key, value in row.items()} for row in reader]
        except csv.Error as exc:
            raise InvalidInput("bad_csv", f"CSV không đọc được / unreadable CSV: {exc}") from None
        if not rows:
            raise InvalidInput("empty_import", "Tệp không có dòng nào / The file has no rows")
        with self.store.write():
            now = self.now()
            codes = {(row.get("code") or "").strip() for row in rows}
            existing = {code for code in codes if code and self.store.get_dossier(code) is not None}
            dossiers, problems = dossier_rules.parse_import_rows(rows, {f.id for f in self.config.fields}, existing)
            if problems:
                raise DomainError("bad_rows", f"{len(problems)} lỗi, không nhập gì / {len(problems)} problems, nothing imported", problems=problems)
            for dossier in dossiers:
                self.store.insert_dossier(dossier, now)
                self._history(now, "dossier_received", dossier.code, dossier, actor)
        self._notify([Change("dossier", {"imported": len(dossiers)})])
        return {"imported": len(dossiers), "returned": sum(1 for d in dossiers if d.returned_on)}

    def get_dossier(self, code: str) -> dict:
        dossier = self.store.get_dossier(code)
        if dossier is None:
            raise NotFound("unknown_dossier", f"Không có hồ sơ {code} / Unknown dossier {code}")
        return self.dossier_view(dossier)

    def dossier_view(self, dossier: dossier_rules.Dossier) -> dict:
        today = self.today()
        view = {
            "code": dossier.code,
            "procedure": dossier.procedure,
            "field": dossier.field_id,
            "channel": str(dossier.channel),
            "received_on": dossier.received_on.isoformat(),
            "due_date": dossier.due_date.isoformat(),
            "effective_due_date": dossier_rules.effective_due_date(dossier, self.calendar, dossier.returned_on or today).isoformat(),
            "returned_on": dossier.returned_on.isoformat() if dossier.returned_on else None,
            "paused": any(p.ended_on is None for p in dossier.pauses),
            "pauses": [{"started_on": p.started_on.isoformat(), "ended_on": p.ended_on.isoformat() if p.ended_on else None} for p in dossier.pauses],
            "ticket_id": dossier.ticket_id,
            "counter": dossier.counter_id,
            "clerk": dossier.clerk_id,
            # Given with the apology slip; the outcome below still judges by due_date.
            "delay_reason": dossier.delay_reason,
            "new_due_date": dossier.new_due_on.isoformat() if dossier.new_due_on else None,
        }
        if dossier.returned_on is not None:
            view["outcome"] = str(dossier_rules.classify_returned(dossier, self.calendar))
        else:
            view["outcome"] = str(dossier_rules.classify_open(dossier, self.calendar, today))
        return view

    # --- figures --------------------------------------------------------------------------------

    def figures(self, first: date, last: date) -> dict:
        _check_range(first, last)
        figures, _ = period_and_days(
            self.config, first, last,
            self.store.ticket_records_between(first, last),
            self.store.rating_records_between(first, last),
            self.store.dossiers_touching(first, last),
            with_days=False,
        )
        return figures

    def stats_today(self) -> dict:
        return self.stats_today_marked()[0]

    def stats_today_marked(self) -> tuple[dict, int]:
        """Today's figures, and the id of the newest rating they include (0 for none). Ratings
        get increasing ids as they commit, so a press with a higher id is not in them yet."""
        today = self.today()
        if self.store.db.conn.in_transaction:
            # Inside a write the records may yet be rolled back: never keep them.
            figures = self.figures(today, today)
            newest_rating_id = self.store.newest_rating_id()
        else:
            with self._today_lock:
                day = self._refresh_today(today)
                figures = day.figures()  # built anew: callers may change their copy
                newest_rating_id = day.newest_rating_id
        figures["day"] = today.isoformat()
        figures["site"] = self.config.site.id
        figures["generated_at"] = self.now().isoformat()
        return figures, newest_rating_id

    def _refresh_today(self, today: date) -> DayFigures:
        """Today's figures, brought up to the newest history entry."""
        seq = self.store.history_seq()  # read first: anything committed later is caught next time
        kept = self._today
        if kept is None or kept.figures.day != today:
            day = DayFigures(self.config, today)
            for ticket_id, ticket in self.store.ticket_records_with_ids_between(today, today):
                day.put_ticket(ticket_id, ticket)
            for rating_id, rating in self.store.rating_records_with_ids_between(today, today):
                day.put_rating(rating_id, rating)
            for dossier in self.store.dossiers_touching(today, today):
                day.put_dossier(dossier.code, dossier)
            self._today = _Today(seq, day)
            return day
        day = kept.figures
        if seq == kept.seq:
            return day
        ticket_ids, rating_ids, codes = set(), set(), set()
        for kind, subject in self.store.history_subjects(kept.seq, seq):
            if kind.startswith("ticket_"):
                ticket_ids.add(subject)
            elif kind.startswith("rating_"):
                rating_ids.add(int(subject))
            elif kind.startswith("dossier_"):
                codes.add(subject)
        # A record of another day is taken out by DayFigures (tickets and ratings), a dossier
        # that no longer touches today likewise.
        for ticket_id, ticket in self.store.ticket_records_by_ids(ticket_ids):
            day.put_ticket(ticket_id, ticket)
        for rating_id, rating in self.store.rating_records_by_ids(rating_ids):
            day.put_rating(rating_id, rating)
        for dossier in self.store.dossiers_by_codes(codes):
            day.put_dossier(dossier.code, dossier)
        kept.seq = seq
        return day

    def stats_daily(self, first: date, last: date) -> list[dict]:
        """Each day's figures, from lean records read once (as the exports read them)."""
        _check_range(first, last)
        _, days = period_and_days(
            self.config, first, last,
            self.store.ticket_records_between(first, last),
            self.store.rating_records_between(first, last),
            self.store.dossiers_touching(first, last),
        )
        return days

    def figures_from_history(self, first: date, last: date) -> dict:
        """The same figures recomputed from the append-only history alone."""
        tickets, ratings, dossiers = rebuild(self.store.history())
        return period_figures(self.config, first, last, tickets, ratings, dossiers)


def new_ticket_id() -> str:
    """80 random bits in lower-case base32: unguessable in the QR URL, safe in topics and ids."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def _check_range(first: date, last: date) -> None:
    if last < first:
        raise InvalidInput("bad_range", "'from' phải trước 'to' / 'from' must not be after 'to'")
    if (last - first).days >= MAX_STATS_DAYS:
        raise InvalidInput("range_too_long", f"Tối đa {MAX_STATS_DAYS} ngày / At most {MAX_STATS_DAYS} days")


def _ticket_event_kind(action: Action, ticket: Ticket) -> str:
    if action is Action.NEXT:
        return "ticket_finished" if ticket.status is TicketStatus.FINISHED else "ticket_called"
    return {
        Action.RECALL: "ticket_recalled",
        Action.START: "ticket_started",
        Action.NO_SHOW: "ticket_no_show",
        Action.FINISH: "ticket_finished",
        Action.TRANSFER: "ticket_transferred",
    }[action]


def _rating_view(rating_id: int, rating: Rating) -> dict:
    return {
        "id": rating_id,
        "counter": rating.counter_id,
        "level": rating.level,
        "counted": rating.counted,
        "flag": str(rating.flag) if rating.flag else None,
        "ticket_id": rating.ticket_id,
        "clerk": rating.clerk_id,
        "received_at": rating.received_at.isoformat(),
        "msg_id": rating.msg_id,
    }
