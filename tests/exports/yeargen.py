"""A year (or a few months) of a provincial centre's tickets, ratings and dossiers, written straight
through Store with the domain's own constructors, for the export tests and bench/exports_bench.py.

What is written is what the service itself would have written for the same day: the final row of
every ticket, rating and dossier, and a history row (a snapshot) for every step — issued, called,
transferred, no-show, finished, rating recorded, dossier received, paused, resumed, returned — so
that `QueueService.figures_from_history` can recompute every figure without the tables.

Everything is drawn from a `random.Random(seed)`: the same seed gives the same data, byte for byte.
It is fast because it skips the use cases' per-action reads (people ahead, counter state) and
writes a whole run in one transaction: a year of 300,000+ tickets takes well under a minute.

    python -m tests.exports.yeargen DIR [--first 2026-01-01 --last 2026-12-31 --per-day 1250]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from queue_server.config import Config, parse_config
from queue_server.domain import dossiers as dossier_rules
from queue_server.domain import tickets as ticket_rules
from queue_server.domain.dossiers import Channel, Dossier
from queue_server.domain.figures import calendar_of
from queue_server.domain.ratings import MisuseFlag, Rating
from queue_server.domain.tickets import Ticket
from queue_server.store import Store

LOCAL = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh: no daylight saving time
SEED = 20260101

# Vietnamese public holidays of 2026 (weekdays off), as in queue_server/sample_site.toml.
HOLIDAYS_2026 = [
    "2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20",
    "2026-04-27", "2026-04-30", "2026-05-01", "2026-09-01", "2026-09-02",
]

FIELDS = [
    # id, letter, vi, en, target wait (min), average service (min), share of tickets
    ("dat-dai", "A", "Đất đai", "Land", 15, 12, 0.24),
    ("ho-tich", "B", "Hộ tịch", "Civil status", 10, 6, 0.20),
    ("dang-ky-kinh-doanh", "C", "Đăng ký kinh doanh", "Business registration", 15, 10, 0.14),
    ("chung-thuc", "D", "Chứng thực", "Certification", 10, 4, 0.22),
    ("xay-dung", "E", "Xây dựng", "Construction", 20, 12, 0.08),
    ("lao-dong", "G", "Lao động - Thương binh và Xã hội", "Labour, Invalids and Social Affairs", 15, 8, 0.12),
]

# Procedures (thủ tục) per field with the working days promised, and the share of finished
# tickets of the field that hand in a dossier (certification is done on the spot).
PROCEDURES = {
    "dat-dai": (0.45, [("Đăng ký biến động quyền sử dụng đất", 10), ("Cấp đổi Giấy chứng nhận quyền sử dụng đất", 7),
                       ("Cung cấp thông tin đất đai", 3)]),
    "ho-tich": (0.25, [("Đăng ký khai sinh", 1), ("Đăng ký kết hôn", 3), ("Cấp bản sao trích lục hộ tịch", 1)]),
    "dang-ky-kinh-doanh": (0.4, [("Đăng ký thành lập doanh nghiệp", 3), ("Đăng ký thay đổi nội dung đăng ký doanh nghiệp", 3),
                                 ("Đăng ký hộ kinh doanh", 3)]),
    "chung-thuc": (0.0, []),
    "xay-dung": (0.5, [("Cấp giấy phép xây dựng nhà ở riêng lẻ", 15), ("Thẩm định thiết kế xây dựng", 12)]),
    "lao-dong": (0.3, [("Giải quyết chế độ trợ cấp xã hội hàng tháng", 7), ("Cấp giấy phép lao động cho người nước ngoài", 5)]),
}

COUNTERS = [
    # id, number, fields
    ("quay-1", 1, ["dat-dai"]), ("quay-2", 2, ["dat-dai"]), ("quay-3", 3, ["dat-dai"]),
    ("quay-4", 4, ["dat-dai", "xay-dung"]), ("quay-5", 5, ["ho-tich"]), ("quay-6", 6, ["ho-tich"]),
    ("quay-7", 7, ["ho-tich", "chung-thuc"]), ("quay-8", 8, ["dang-ky-kinh-doanh"]),
    ("quay-9", 9, ["dang-ky-kinh-doanh"]), ("quay-10", 10, ["chung-thuc"]), ("quay-11", 11, ["chung-thuc"]),
    ("quay-12", 12, ["xay-dung"]), ("quay-13", 13, ["lao-dong"]), ("quay-14", 14, ["lao-dong"]),
    ("quay-15", 15, ["chung-thuc", "ho-tich"]), ("quay-16", 16, ["dang-ky-kinh-doanh", "lao-dong"]),
]

CLERKS = [
    ("nguyen-van-an", "Nguyễn Văn An"), ("tran-thi-binh", "Trần Thị Bình"), ("le-hoang-cuong", "Lê Hoàng Cường"),
    ("pham-thu-dung", "Phạm Thu Dung"), ("vu-minh-duc", "Vũ Minh Đức"), ("dang-thi-hoa", "Đặng Thị Hoa"),
    ("bui-quang-huy", "Bùi Quang Huy"), ("do-thanh-huong", "Đỗ Thanh Hương"), ("ho-duc-khanh", "Hồ Đức Khánh"),
    ("ngo-thi-lan", "Ngô Thị Lan"), ("duong-van-long", "Dương Văn Long"), ("ly-thi-mai", "Lý Thị Mai"),
    ("trinh-van-nam", "Trịnh Văn Nam"), ("mai-thi-oanh", "Mai Thị Oanh"), ("cao-xuan-phuc", "Cao Xuân Phúc"),
    ("dinh-thi-quynh", "Đinh Thị Quỳnh"), ("luong-van-son", "Lương Văn Sơn"), ("ta-thi-thuy", "Tạ Thị Thủy"),
]
# The last two clerks relieve the others: on any day a few counters are staffed by them.
RELIEF_CLERKS = ("luong-van-son", "ta-thi-thuy")

# Mornings and afternoons, local time (minutes after midnight).
OPENING_PERIODS = ((7 * 60 + 30, 11 * 60 + 30), (13 * 60 + 30, 17 * 60))
STEP_HOURS = {"dossier_paused": (8, 10), "dossier_resumed": (10, 12), "dossier_returned": (13, 16)}
LEVELS = ("very_satisfied", "satisfied", "unsatisfied")
WEEKDAY_LOAD = (1.25, 1.05, 1.0, 0.95, 0.85)  # Monday is the busiest day


def year_config() -> Config:
    """The site the generated data belongs to."""
    return parse_config({
        "site": {"id": "hcc-nam", "name": {"vi": "Trung tâm Phục vụ hành chính công tỉnh (dữ liệu một năm)",
                                            "en": "Provincial Public Administration Service Centre (one year of data)"}},
        "fields": [
            {"id": fid, "letter": letter, "name": {"vi": vi, "en": en}, "target_wait_min": target, "avg_service_min": service}
            for fid, letter, vi, en, target, service, _ in FIELDS
        ],
        "counters": [{"id": cid, "number": number, "fields": fields} for cid, number, fields in COUNTERS],
        "clerks": [
            {"id": clerk_id, "name": name, "counters": [COUNTERS[i][0]] if i < len(COUNTERS) else []}
            for i, (clerk_id, name) in enumerate(CLERKS)
        ],
        "holidays": HOLIDAYS_2026,
    })


@dataclass
class Summary:
    """What was written, for assertions and the bench's report."""

    first: date
    last: date
    tickets: int = 0
    ratings: int = 0
    counted_ratings: int = 0
    dossiers: int = 0
    history: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "first": self.first.isoformat(), "last": self.last.isoformat(), "tickets": self.tickets,
            "ratings": self.ratings, "counted_ratings": self.counted_ratings, "dossiers": self.dossiers,
            "history": self.history, "seconds": round(self.seconds, 1),
        }


class _Day:
    """The events of one local day, written in time order once the day is complete."""

    def __init__(self) -> None:
        self.events: list[tuple] = []  # (at, order, kind, subject, record, actor)

    def add(self, at: datetime, kind: str, subject: str, record: object, actor: str | None) -> None:
        self.events.append((at, len(self.events), kind, subject, record, actor))


class YearGenerator:
    def __init__(self, store: Store, config: Config, seed: int = SEED) -> None:
        self.store = store
        self.config = config
        self.calendar = calendar_of(config)
        self.random = random.Random(seed)
        self.fields = {f.id: f for f in config.fields}
        self.shares = [(fid, share) for fid, *_, share in FIELDS]
        self.counters_for = {f.id: [c.id for c in config.counters if f.id in c.fields] for f in config.fields}
        self.counter_clerk = {c.id: config.clerks[i].id for i, c in enumerate(config.counters)}
        # Clerk ids: a slightly worse-rated clerk makes the per-clerk sheet worth reading.
        self.unsatisfied_bias = {clerk.id: 1.0 for clerk in config.clerks} | {"ho-duc-khanh": 2.5}
        self.pending: dict[date, list] = defaultdict(list)  # dossier steps due on later days
        self.dossier_seq: dict[date, int] = defaultdict(int)
        self.rating_seq = 0
        self.dossiers: dict[str, Dossier] = {}  # the latest state of each, as the store holds it

    # --- helpers --------------------------------------------------------------------------------

    def _instant(self, day: date, minute_of_day: float) -> datetime:
        local = datetime(day.year, day.month, day.day, tzinfo=LOCAL) + timedelta(minutes=minute_of_day)
        return local.astimezone(timezone.utc)

    def _opening_minute(self) -> float:
        # Mornings are busier than afternoons (60/40), within each period uniformly.
        start, end = OPENING_PERIODS[0] if self.random.random() < 0.6 else OPENING_PERIODS[1]
        return self.random.uniform(start, end - 5)

    def _pick_field(self) -> str:
        point = self.random.random()
        for fid, share in self.shares:
            point -= share
            if point <= 0:
                return fid
        return self.shares[-1][0]

    def _working_day_after(self, day: date, days: int) -> date:
        return self.calendar.add_working_days(day, days)

    # --- one day --------------------------------------------------------------------------------

    def day(self, day: date, per_day: int, summary: Summary) -> None:
        events = _Day()
        rand = self.random
        if self.calendar.is_working_day(day):
            weekday_load = WEEKDAY_LOAD[day.weekday()] if day.weekday() < len(WEEKDAY_LOAD) else 0.5
            count = max(1, int(per_day * weekday_load * rand.uniform(0.9, 1.1)))
            clerks_today = dict(self.counter_clerk)
            for relief in RELIEF_CLERKS:  # each relief clerk takes over a random counter today
                clerks_today[rand.choice(list(clerks_today))] = relief
            self._tickets(day, count, clerks_today, events, summary)
        # Online dossiers arrive every day, weekends included (their clock starts on the next working day).
        online = int(rand.uniform(0.04, 0.06) * per_day) if self.calendar.is_working_day(day) else int(0.01 * per_day)
        for _ in range(online):
            fid = rand.choice([f for f, (share, procedures) in PROCEDURES.items() if procedures])
            self._dossier(day, self._instant(day, rand.uniform(0, 24 * 60 - 1)), fid, Channel.ONLINE, None, events, summary)
        for step in self.pending.pop(day, []):
            step(events)
        self._write(day, events, summary)

    def _tickets(self, day: date, count: int, clerks_today: dict, events: _Day, summary: Summary) -> None:
        rand = self.random
        issued = sorted((self._instant(day, self._opening_minute()), self._pick_field()) for _ in range(count))
        numbers: dict[str, int] = defaultdict(int)
        priority_reasons = [r.id for r in self.config.priority.reasons]
        for issued_at, fid in issued:
            numbers[fid] += 1
            field_config = self.fields[fid]
            ticket_id = f"{day:%y%m%d}{field_config.letter}{numbers[fid]:05d}"
            priority = rand.choice(priority_reasons) if rand.random() < 0.08 else None
            ticket = ticket_rules.new_ticket(ticket_id, field_config, numbers[fid], issued_at, self.config, priority,
                                             "en" if rand.random() < 0.02 else "vi", f"kiosk-0{1 + numbers[fid] % 3}")
            events.add(issued_at, "ticket_issued", ticket.id, ticket, ticket.device_id)
            fate = rand.random()
            if fate < 0.01:  # left before being called: stays waiting, kept in the history
                self._final_ticket(ticket, summary)
                continue
            target = field_config.target_wait_min
            wait_min = min(rand.expovariate(1 / (0.65 * target)), 4 * target)
            called_at = issued_at + timedelta(minutes=wait_min)
            counter_id = rand.choice(self.counters_for[fid])
            clerk_id = clerks_today[counter_id]
            ticket = ticket_rules.call(ticket, counter_id, clerk_id, called_at)
            events.add(called_at, "ticket_called", ticket.id, ticket, clerk_id)
            if fate < 0.05:  # no-show after the call
                ticket = ticket_rules.no_show(ticket, called_at + timedelta(minutes=rand.uniform(2, 4)))
                events.add(ticket.finished_at, "ticket_no_show", ticket.id, ticket, clerk_id)
                self._final_ticket(ticket, summary)
                continue
            if fate < 0.06:  # sent to another field's line, then called there
                other = rand.choice([f for f in self.fields if f != fid])
                moved_at = called_at + timedelta(minutes=rand.uniform(1, 3))
                ticket = ticket_rules.transfer(ticket, moved_at, field_id=other, counter_id=None, keep_place=True)
                events.add(moved_at, "ticket_transferred", ticket.id, ticket, clerk_id)
                counter_id = rand.choice(self.counters_for[other])
                clerk_id = clerks_today[counter_id]
                called_again = moved_at + timedelta(minutes=rand.uniform(2, 15))
                ticket = ticket_rules.call(ticket, counter_id, clerk_id, called_again)
                events.add(called_again, "ticket_called", ticket.id, ticket, clerk_id)
                fid = other
            service_min = max(1.0, rand.gauss(self.fields[fid].avg_service_min, self.fields[fid].avg_service_min / 3))
            finished_at = (ticket.last_called_at or called_at) + timedelta(minutes=service_min)
            ticket = ticket_rules.finish(ticket, finished_at)
            events.add(finished_at, "ticket_finished", ticket.id, ticket, clerk_id)
            self._final_ticket(ticket, summary)
            dossier_code = None
            share, procedures = PROCEDURES[fid]
            if procedures and rand.random() < share:
                dossier_code = self._dossier(day, finished_at - timedelta(minutes=1), fid, Channel.IN_PERSON, ticket, events, summary)
            self._ratings(ticket, wait_min, dossier_code, events, summary)

    def _final_ticket(self, ticket: Ticket, summary: Summary) -> None:
        self.store.insert_ticket(ticket)
        summary.tickets += 1

    def _ratings(self, ticket: Ticket, wait_min: float, dossier_code: str | None, events: _Day, summary: Summary) -> None:
        rand = self.random
        assert ticket.finished_at is not None and ticket.counter_id is not None
        if rand.random() < 0.82:
            unsatisfied = 0.05 * self.unsatisfied_bias.get(ticket.clerk_id or "", 1.0) * (2.0 if wait_min > 20 else 1.0)
            point = rand.random()
            level = "unsatisfied" if point < unsatisfied else ("satisfied" if point < unsatisfied + 0.28 else "very_satisfied")
            pressed = ticket.finished_at + timedelta(seconds=rand.uniform(3, 90))
            self._rating(ticket, level, pressed, True, None, dossier_code if rand.random() < 0.5 else None, events, summary)
            if rand.random() < 0.03:  # a second press for the same service: kept, flagged, not counted
                again = pressed + timedelta(seconds=rand.uniform(2, 20))
                self._rating(ticket, rand.choice(LEVELS), again, False, MisuseFlag.ALREADY_RATED, None, events, summary)
        elif rand.random() < 0.05:  # a press long after the window closed
            late = ticket.finished_at + timedelta(seconds=self.config.rating.window_s + rand.uniform(30, 300))
            self._rating(ticket, rand.choice(LEVELS), late, False, MisuseFlag.AFTER_WINDOW, None, events, summary)

    def _rating(self, ticket: Ticket, level: str, at: datetime, counted: bool, flag: MisuseFlag | None,
                dossier_code: str | None, events: _Day, summary: Summary) -> None:
        self.rating_seq += 1
        device_id = f"rating-{ticket.counter_id}"
        rating = Rating(
            counter_id=ticket.counter_id, level=level, received_at=at, day=at.astimezone(LOCAL).date(), counted=counted,
            flag=flag, ticket_id=ticket.id, clerk_id=ticket.clerk_id, dossier_code=dossier_code, field_id=ticket.field_id,
            reasons=("wait",) if level == "unsatisfied" and self.random.random() < 0.5 else (),
            device_at=at, device_id=device_id, msg_id=f"{device_id}:1:{self.rating_seq}", pressed_at=at,
        )
        events.add(at, "rating_recorded", None, rating, device_id)  # subject: the row id, known once inserted
        summary.ratings += 1
        summary.counted_ratings += int(counted)

    def _dossier(self, day: date, at: datetime, fid: str, channel: Channel, ticket: Ticket | None,
                 events: _Day, summary: Summary) -> str:
        rand = self.random
        self.dossier_seq[day] += 1
        code = f"H{day:%y%m%d}-{self.fields[fid].letter}{self.dossier_seq[day]:04d}"
        procedure, working_days = rand.choice(PROCEDURES[fid][1])
        due = dossier_rules.due_date_for(day, self.calendar, working_days=working_days)
        dossier = dossier_rules.receive(
            code, procedure, fid, channel, day, due,
            ticket_id=ticket.id if ticket else None, counter_id=ticket.counter_id if ticket else None,
            clerk_id=ticket.clerk_id if ticket else None,
        )
        actor = ticket.clerk_id if ticket else "cong-dvc"
        events.add(at, "dossier_received", code, dossier, actor)
        summary.dossiers += 1
        self.store.insert_dossier(dossier, at)
        self.dossiers[code] = dossier
        # Its future: an optional pause for missing documents, then the return (early, on time, late).
        clerk = dossier.clerk_id or "can-bo-xu-ly"
        start = day if self.calendar.is_working_day(day) else self.calendar.next_working_day(day)
        steps: list[tuple[date, str]] = []
        extension = 0
        if rand.random() < 0.04 and working_days >= 3:
            paused_on = self._working_day_after(start, rand.randint(1, working_days - 1))
            resumed_on = self._working_day_after(paused_on, rand.randint(2, 6))
            steps += [(paused_on, "dossier_paused"), (resumed_on, "dossier_resumed")]
            extension = self.calendar.working_days_between(paused_on, resumed_on)
        effective_due = self.calendar.add_working_days(due, extension) if extension else due
        earliest = steps[-1][0] if steps else start
        outcome = rand.random()
        room = self.calendar.working_days_between(earliest, effective_due)
        if outcome < 0.22 and room >= 2:
            # Early, but never on the day of receipt or of the resume: those days' events come first.
            returned_on = self._working_day_after(earliest, rand.randint(1, room - 1))
        elif outcome < 0.91:
            returned_on = effective_due
        elif outcome < 0.98:
            returned_on = self._working_day_after(effective_due, rand.randint(1, 6))
        else:
            returned_on = self._working_day_after(effective_due, rand.randint(10, 30))
        steps.append((returned_on, "dossier_returned"))
        for step_day, kind in steps:
            self.pending[step_day].append(lambda events, code=code, kind=kind, step_day=step_day, clerk=clerk:
                                          self._dossier_step(code, kind, step_day, clerk, events))
        return code

    def _dossier_step(self, code: str, kind: str, day: date, clerk: str, events: _Day) -> None:
        dossier = self.dossiers[code]
        # Steps of one dossier can fall on the same day (a resume, then the return): their times
        # keep that order, since the history is replayed in time order.
        start, end = STEP_HOURS[kind]
        at = self._instant(day, self.random.uniform(start * 60, end * 60))
        if kind == "dossier_paused":
            changed = dossier_rules.pause(dossier, day)
        elif kind == "dossier_resumed":
            changed = dossier_rules.resume(dossier, day)
        else:
            changed = dossier_rules.return_result(dossier, day)
        self.store.update_dossier(changed, returned_at=at if kind == "dossier_returned" else None)
        self.dossiers[code] = changed
        events.add(at, kind, code, changed, clerk)

    def _write(self, day: date, events: _Day, summary: Summary) -> None:
        events.events.sort(key=lambda event: (event[0], event[1]))
        for at, _, kind, subject, record, actor in events.events:
            if kind == "rating_recorded":
                subject = str(self.store.insert_rating(record))
            self.store.append_history(at, at.astimezone(LOCAL).date(), kind, subject, record, actor)
        summary.history += len(events.events)


def generate(store: Store, config: Config, first: date, last: date, per_day: int = 1250, seed: int = SEED) -> Summary:
    """Write every day from `first` to `last` in one transaction; returns what was written."""
    started = time.perf_counter()
    generator = YearGenerator(store, config, seed)
    summary = Summary(first=first, last=last)
    with store.write():
        day = first
        while day <= last:
            generator.day(day, per_day, summary)
            day += timedelta(days=1)
    summary.seconds = time.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    from queue_server.server import DATABASE_NAME

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--last", type=date.fromisoformat, default=date(2026, 12, 31))
    parser.add_argument("--per-day", type=int, default=1250)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    store = Store(args.data_dir / DATABASE_NAME)
    try:
        summary = generate(store, year_config(), args.first, args.last, args.per_day, args.seed)
    finally:
        store.close()
    json.dump(summary.as_dict(), sys.stdout, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
