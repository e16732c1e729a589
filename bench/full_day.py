"""Benchmark: a busy centre's whole day compressed into minutes, every device a real client on this machine.

The server runs as it does in production, `python -m queue_server.cli serve --config site.toml`,
in a child process, against a Mosquitto started here ([mqtt] mode = "external"); the site is
the sample site (queue_server/sample_site.toml) open around the clock without daily caps or
holidays, with C counters and one clerk per counter. Around it, threads of this process (the
machine has 2 cores and the server needs them more than the clients do), except the kiosks:
they are threads of --kiosk-processes worker processes (default 2; 0 keeps them here). Every
kiosk hears every queue's state, about 100 messages per ticket for 50 kiosks, and acking them
in one process with everything else made this process the day's bottleneck; the kiosk
processes send their results back here once the arrivals are done:

  - K ticket kiosks: one paho connection each, subscribed as the real kiosk is
    (contract.ticket_kiosk_subscriptions: its responses, state/config, state/queue/+, server
    status; not state/today, the counters or the calls), publishing `request/ticket` at QoS 1
    with the real kiosk's MQTT 5 message expiry (kiosk.ticket.controller.request_properties)
    and waiting 30 s for the matching `response/ticket`. The request expires at the broker
    when the kiosk gives up, so a request still queued there is never issued later; an answer
    that comes after the kiosk gave up (the server had it already) is counted in
    `kiosk_answers_after_giving_up`. The day's arrivals follow the simulator's hourly profile
    (queue_server.simulator.ARRIVALS_BY_HOUR: a morning peak, a smaller one after lunch) over
    7:00–17:00 squeezed into --day-s seconds; citizens take the next kiosk in turn, a kiosk
    serves one at a time. Fields by the simulator's weights, 10 % priority tickets.
  - C clerks over HTTP: each signs in (POST /api/v1/login, a session cookie, one keep-alive
    connection) and drives its counter with POST /api/v1/counters/{id}/open, then next →
    (service) → finish, with a few recalls and no-shows. Service times are lognormal around a
    mean chosen so that the counters can serve the day (the day's real 5–15 minutes shrink
    with the compression); after finishing, the clerk waits until the citizen has rated (or
    walked away) before calling the next one, as at a real counter.
  - C rating terminals: the real terminal logic (kiosk.rating.controller.RatingTerminal: its
    counter's retained state in, presses through the durable outbox at QoS 1, naming the
    ticket). When its counter asks for a rating, the "citizen" presses after a short pause
    (12 % walk away, 4 % press twice: the second press must be stored flagged, never counted).
    They run in --terminal-processes processes of their own (default 1; 0 keeps them here), as
    a terminal is a device of its own: among the clerks' thirty threads a press waited for
    Python's lock before it was even sent. Each citizen's decision goes back to the clerk
    waiting here over the process's pipe.
  - B lobby boards: HTTP clients on GET /board/stream parsing the server-sent events as the
    board page does, in --board-processes processes of their own (default 1; 0 keeps them
    here), as a board is a TV of its own. No Chromium here: on 2 cores a browser's rendering
    would take the CPU the server is being measured on; bench/board_bench.py measures the
    board in Chromium.

Measured:
  - ticket request → response: from just before a kiosk's publish to the response's arrival in
    its paho callback;
  - call → board: from just before the clerk's POST …/next to the first event naming the called
    ticket read from each board's stream (boards × calls);
  - press → counted: from the terminal's press (wall clock) to the server's receive time stored
    with the rating (the same machine clock);
  - press → board: from the press to the first `today` event on each board whose
    ratings.counted includes it (a rating is the r-th counted of its day when r counted ratings
    of that day have lower ids; SQLite commits one writer at a time, so a count ≥ r includes
    it). Also reported: press → the board's `counter` event for that counter (the tile leaves
    "rating"), which shows how much of the press → board time is the boards' figures' pace;
  - the server process's CPU seconds (utime + stime, /proc/PID/stat) and peak resident memory
    (VmHWM, /proc/PID/status), Mosquitto's CPU, this process's and each worker process's CPU
    (and their sum, `clients_all_processes`), sampled RSS over time.

Checked at the end: the server stopped, the SQLite file is opened and every figure of the
period from GET /api/v1/stats/daily (per day) and from QueueService.figures equals the one
recomputed from the append-only history (QueueService.figures_from_history); tickets in the
database = tickets the kiosks received; every request answered, every called ticket seen on
every board; ratings stored = presses published, counted = first presses, none lost, no ticket
counted twice, no rejects; every board's last figures equal GET /api/v1/stats/today.

Prints one JSON object; exit status 1 when a check failed (targets are reported, not enforced).

    .venv/bin/python bench/full_day.py                       # the long form: 20,000 tickets, ~9 minutes
    .venv/bin/python bench/full_day.py --tickets 3000 --day-s 90   # the same crowd, a shorter day
    .venv/bin/python bench/full_day.py --short                # CI scale (tests/load/test_full_day_short.py)
    .venv/bin/python bench/full_day.py --kiosk-processes 0 --board-processes 0 --terminal-processes 0  # every client in this one process

Targets: press → board p99 <= 100 ms under this load; server peak memory <= 150 MB.
"""
from __future__ import annotations

import argparse
import bisect
import http.client
import json
import math
import multiprocessing
import os
import queue
import random
import resource
import signal
import socket
import sqlite3
import statistics
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the project from the work tree
    sys.path.insert(0, str(ROOT))

from bench.mqtt_bench import RunningServer, machine_info, toml_text  # noqa: E402
from kiosk.rating.controller import RatingTerminal  # noqa: E402
from kiosk.rating.settings import load_rating_settings  # noqa: E402
from kiosk.ticket.controller import request_properties  # noqa: E402
from queue_server.accounts import add_user  # noqa: E402
from queue_server.config import Config, parse_config  # noqa: E402
from queue_server.mqtt import contract  # noqa: E402
from queue_server.mqtt.client import (  # noqa: E402
    connect_and_wait,
    disconnect_and_stop,
    make_client,
    subscribe_and_wait,
)
from queue_server.mqtt.broker import mosquitto_path  # noqa: E402
from queue_server.service import QueueService  # noqa: E402
from queue_server.simulator import ARRIVALS_BY_HOUR, DOUBLE_PRESS, PRIORITY_SHARE, RATING_SHARES, SKIP_RATING  # noqa: E402
from queue_server.store import Store  # noqa: E402

TARGET_PRESS_TO_BOARD_P99_MS = 100.0
TARGET_PEAK_MEMORY_MB = 150.0

PASSWORD = "full-day-bench-password"
MANAGER = "quan-ly"
FIELD_WEIGHTS = (3, 4, 2, 3)  # the simulator's kiosk weights, in the sample site's field order
OPENING_HOUR, CLOSING_HOUR = 7, 17  # the part of the day the arrivals profile covers
NO_SHOW_SHARE = 0.02
RECALL_SHARE = 0.03
# The counters' capacity over the arrivals' mean rate: above 1 so that the queues, long after
# the morning peak, are served by the end of the day.
CAPACITY_FACTOR = 1.35
# A counter's time per citizen (the cycle) is shared out: serving, the citizen rating, and what
# is left for the clerk's requests and the messages to go round.
SERVICE_SHARE = 0.6
RATING_PAUSE_SHARE = (0.1, 0.3)
WAIT_S = 30.0  # a response, a snapshot, a terminal's state: far above anything expected
HANDOVER_WAIT_S = 30.0  # a clerk waits this long at most for the citizen to rate
MONITOR_EVERY_S = 0.5
SETTLE_S = 30.0
PROGRESS_EVERY_S = 30.0  # after the last action, for the boards' final figures and the outboxes


@dataclass(frozen=True)
class Scale:
    """How big the day is. Terminals: one per counter."""

    tickets: int = 20_000
    kiosks: int = 50
    counters: int = 30
    boards: int = 10
    day_s: float = 480.0  # 7:00–17:00 in 8 minutes: one real minute is 1.2 seconds here
    seed: int = 9
    # Worker processes the kiosks are spread over (0: threads of this process, like the rest).
    # Every kiosk hears every queue's state, 50 kiosks ~100 messages a ticket: in one process
    # with everything else, their acks alone made the clients the day's bottleneck.
    kiosk_processes: int = 2
    # Processes the boards' streams are read in (0: threads of this process). A board is a TV of
    # its own: read among this process's hundred threads, an event's arrival was stamped when
    # the reader got Python's lock, after the clerks', the terminals' and the other boards' turns.
    board_processes: int = 1
    # Processes the rating terminals run in (0: threads of this process). A terminal is a device
    # of its own too: among the thirty clerks' threads, a press waited for Python's lock.
    terminal_processes: int = 1

    def budget_s(self) -> float:
        """The whole run gives up (and says so) past this: a server far too slow must not hang CI.
        Enough for three times the planned day, or for 10 tickets a second, whichever is longer."""
        return 3 * self.day_s + 240 + self.tickets / 10


LONG = Scale()
SHORT = Scale(tickets=300, kiosks=5, counters=4, boards=2, day_s=12.0)


# --- statistics ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(len(sorted_values) * pct / 100))
    return sorted_values[rank - 1]


def distribution_ms(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "n": len(ordered),
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]),
        "mean_ms": ms(statistics.fmean(ordered)),
    }


# --- the site --------------------------------------------------------------------------------------


def counter_fields(fields: list[str], counters: int) -> list[list[str]]:
    """Fields per counter: counters shared out by the fields' weights (each field at least one
    counter when there are enough), and every third counter also helps with the next field."""
    weights = list(FIELD_WEIGHTS[: len(fields)]) + [2] * max(0, len(fields) - len(FIELD_WEIGHTS))
    share = [max(1, round(counters * w / sum(weights))) if counters >= len(fields) else 0 for w in weights]
    while sum(share) > counters:
        share[share.index(max(share))] -= 1
    while sum(share) < counters:
        share[[i for i, w in enumerate(weights) if w == max(weights)][0]] += 1
    primary = [i for i, n in enumerate(share) for _ in range(n)] or [i % len(fields) for i in range(counters)]
    result = []
    for number, field_index in enumerate(primary, start=1):
        served = [fields[field_index]]
        if number % 3 == 0:
            served.append(fields[(field_index + 1) % len(fields)])
        result.append(served)
    return result


def configure_site(server: RunningServer, scale: Scale) -> Config:
    """Rewrite the server's site.toml for `scale.counters` counters, one clerk each.

    The burst rule (many presses at one counter within seconds = misuse) is relaxed to its
    loosest setting: this day runs ~60 times faster than life, so an honest counter's presses
    come seconds apart, not minutes."""
    data = tomllib.loads(server.config_path.read_text(encoding="utf-8"))
    fields = [f["id"] for f in data["fields"]]
    data["counters"] = [
        {"id": f"quay-{n}", "number": n, "fields": served} | ({"priority_policy": "strict"} if n % 10 == 5 else {})
        for n, served in enumerate(counter_fields(fields, scale.counters), start=1)
    ]
    data["clerks"] = [
        {"id": f"can-bo-{n:02d}", "name": f"Cán bộ {n:02d}", "counters": [f"quay-{n}"]}
        for n in range(1, scale.counters + 1)
    ]
    data.setdefault("rating", {}).update(burst_presses=100, burst_window_s=1)
    server.config = parse_config(data)
    server.config_path.write_text(toml_text(data), encoding="utf-8")
    return server.config


def create_accounts(server: RunningServer, config: Config) -> None:
    """Clerk accounts (login name = clerk id) and a manager, written before the server starts."""
    store = Store(server.database)
    try:
        now = datetime.now(timezone.utc)
        for clerk in config.clerks:
            add_user(store, clerk.id, "clerk", PASSWORD, now)
        add_user(store, MANAGER, "manager", PASSWORD, now)
    finally:
        store.close()


def arrivals(scale: Scale, config: Config, rng: random.Random) -> list[list[tuple[float, str, str | None]]]:
    """Each kiosk's citizens: (seconds from the start of the day, field, priority reason or None)."""
    hours = [h for h in range(OPENING_HOUR, CLOSING_HOUR)]
    hour_weights = [ARRIVALS_BY_HOUR.get(h, 0.0) for h in hours]
    fields = [f.id for f in config.fields]
    weights = list(FIELD_WEIGHTS[: len(fields)]) + [2] * max(0, len(fields) - len(FIELD_WEIGHTS))
    reasons = [r.id for r in config.priority.reasons]
    span = len(hours)
    moments = sorted(
        ((rng.choices(range(span), hour_weights)[0] + rng.random()) / span * scale.day_s)
        for _ in range(scale.tickets)
    )
    per_kiosk: list[list[tuple[float, str, str | None]]] = [[] for _ in range(scale.kiosks)]
    for index, at in enumerate(moments):
        priority = rng.choice(reasons) if reasons and rng.random() < PRIORITY_SHARE else None
        per_kiosk[index % scale.kiosks].append((at, rng.choices(fields, weights)[0], priority))
    return per_kiosk


# --- the clients -----------------------------------------------------------------------------------


class Run:
    """What every client shares: the start, the flags that end phases, and errors."""

    def __init__(self, scale: Scale) -> None:
        self.scale = scale
        self.started = 0.0
        self.deadline = math.inf
        self.arrivals_done = threading.Event()
        self.abort = threading.Event()
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def error(self, text: str) -> None:
        with self._lock:
            if len(self._errors) < 50:
                self._errors.append(text)

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def out_of_time(self) -> bool:
        if time.perf_counter() > self.deadline:
            if not self.abort.is_set():
                self.error("time budget exceeded")
            self.abort.set()
        return self.abort.is_set()


class Kiosk:
    """A ticket kiosk's MQTT side: one connection, subscribed as the real kiosk is
    (contract.ticket_kiosk_subscriptions); its requests expire at the broker when it gives up,
    as the real kiosk's do (kiosk.ticket.controller.request_properties)."""

    def __init__(self, site: str, host: str, port: int, device: str, issued=None) -> None:
        self.device = device
        self.issued = issued  # a counter shared with the main process (progress lines), or None
        self.request_topic = contract.topic_ticket_request(site, device)
        self.response_topic = contract.topic_ticket_response(site, device)
        self.status_topic = contract.topic_device_status(site, device)
        self._answers: dict[str, tuple[float, dict]] = {}
        self._changed = threading.Condition()
        self.other_messages = 0  # config, queues, server status: what a kiosk hears besides its answers
        self.late_answers = 0  # answers to requests it had given up: tickets nobody holds
        self._given_up: set[str] = set()
        self.latencies: list[float] = []
        self.ticket_ids: list[str] = []
        self.errors: dict[str, int] = {}
        self.timeouts = 0
        self.requests = 0
        self.lags: list[float] = []
        self.client = make_client(f"motcua-{device}", will=(self.status_topic, contract.Status.OFFLINE.value, True))
        self.client.on_message = self._on_message
        connect_and_wait(self.client, host, port, timeout=WAIT_S)
        subscribe_and_wait(self.client, contract.ticket_kiosk_subscriptions(site, device), timeout=WAIT_S)
        self.client.publish(self.status_topic, contract.Status.ONLINE.value, qos=1, retain=True)

    def _on_message(self, client, userdata, message) -> None:
        arrived = time.perf_counter()
        if message.topic != self.response_topic:
            self.other_messages += 1
            return
        try:
            answer = json.loads(message.payload)
            transaction = answer["transaction"]
        except (ValueError, KeyError, TypeError):
            return
        with self._changed:
            if transaction in self._given_up:
                self.late_answers += 1
                return
            self._answers.setdefault(transaction, (arrived, answer))
            self._changed.notify_all()

    def request(self, sequence: int, field_id: str, priority: str | None, abort: threading.Event) -> None:
        transaction = f"{self.device}-{sequence}"
        body: dict[str, Any] = {"transaction": transaction, "field": field_id}
        if priority:
            body["priority"] = priority
        payload = json.dumps(body).encode()
        self.requests += 1
        started = time.perf_counter()
        # Given up after WAIT_S, when the broker also drops the request if it has not reached the
        # server by then (its MQTT 5 message expiry): a request given up is not issued later.
        self.client.publish(self.request_topic, payload, qos=1, properties=request_properties(WAIT_S))
        deadline = started + WAIT_S
        with self._changed:
            # In slices, so that a run given up (abort) does not wait out every kiosk's answer.
            while not self._changed.wait_for(lambda: transaction in self._answers, 0.5):
                if abort.is_set() or time.perf_counter() > deadline:
                    self.timeouts += 1
                    self._given_up.add(transaction)
                    return
            arrived, answer = self._answers.pop(transaction)
        if answer.get("status") == "ok":
            self.latencies.append(arrived - started)
            self.ticket_ids.append(answer["data"]["ticket_id"])
            if self.issued is not None:
                with self.issued.get_lock():
                    self.issued.value += 1
        else:
            code = (answer.get("error") or {}).get("code", "?")
            self.errors[code] = self.errors.get(code, 0) + 1

    def work(self, run: Run, citizens: list[tuple[float, str, str | None]]) -> None:
        for sequence, (at, field_id, priority) in enumerate(citizens, start=1):
            if run.abort.wait(max(0.0, run.started + at - time.perf_counter())) or run.out_of_time():
                return
            # How late this citizen is served by the kiosk: the previous one's answer took long.
            self.lags.append(max(0.0, time.perf_counter() - run.started - at))
            self.request(sequence, field_id, priority, run.abort)

    def result(self) -> KioskResult:
        return KioskResult(self.device, self.requests, self.ticket_ids, self.latencies, self.lags, self.errors,
                           self.timeouts, self.other_messages, self.late_answers)

    def close(self) -> None:
        disconnect_and_stop(self.client)


@dataclass
class KioskResult:
    """What a kiosk did over the day, as `analyse` reads it (sent back from a kiosk process)."""

    device: str
    requests: int
    ticket_ids: list[str]
    latencies: list[float]
    lags: list[float]
    errors: dict[str, int]
    timeouts: int
    other_messages: int
    late_answers: int


def kiosk_process(connection, abort, issued, scale: dict, site: str, host: str, port: int,
                  devices: list[str]) -> None:
    """A worker process running some of the kiosks (threads), driven over `connection`:
    → ("ready",) once they are connected; ← ("start", started, deadline, schedules) with the
    day's start (time.perf_counter is the machine's monotonic clock, the same in every process)
    and each kiosk's citizens; → ("done", results, errors) when they are served; ← ("close",).
    `abort` is the run's abort event, shared with the main process; → ("failed", text) on an error."""
    kiosks: list[Kiosk] = []
    with _worker_session(connection, abort, kiosks):
        run = Run(Scale(**scale))
        run.abort = abort
        kiosks += [Kiosk(site, host, port, device, issued) for device in devices]
        connection.send(("ready",))
        message = connection.recv()
        if message[0] != "start":
            return
        _, run.started, run.deadline, schedules = message
        threads = []
        for kiosk, citizens in zip(kiosks, schedules):
            thread = threading.Thread(target=_guarded, args=(run, kiosk.device, kiosk.work, run, citizens),
                                      name=kiosk.device, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        connection.send(("done", [asdict(kiosk.result()) for kiosk in kiosks], run.errors))
        connection.recv()  # ("close",): the kiosks stay connected until the day is analysed, as in-process ones do


@contextmanager
def _worker_session(connection, abort, devices: list) -> Iterator[None]:
    """The body of a kiosk or terminal process: an error stops the day (`abort`) and is told to
    the main process; the main process gone is nothing to report to; the devices (filled in
    meanwhile) are closed either way."""
    try:
        yield
    except (EOFError, OSError):
        pass  # the main process went away: nothing to report to
    except Exception as exc:
        abort.set()
        _tell_failed(connection, exc)
    finally:
        for device in devices:
            device.close()


def _tell_failed(connection, exc: Exception) -> None:
    """A worker process's ("failed", text) to the main process, if it is still there to hear it."""
    try:
        connection.send(("failed", f"{exc!r}"[:300]))
    except OSError:
        pass


def _guarded(run: Run, name: str, target, *args) -> None:
    try:
        target(*args)
    except Exception as exc:  # reported in the result; the day stops rather than hangs
        run.error(f"{name}: {exc!r}"[:300])
        run.abort.set()


class WorkerProcesses:
    """Child processes, each driven over its own pipe (kiosk_process, board_process), seen from
    the main process."""

    kind = "worker"

    def __init__(self, target, args_per_process: list[tuple]) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        self.connections = []
        self.processes = []
        for n, args in enumerate(args_per_process, start=1):
            mine, theirs = context.Pipe()
            process = context.Process(target=target, name=f"{self.kind}s-{n}", daemon=True, args=(theirs, *args))
            process.start()
            theirs.close()
            self.connections.append(mine)
            self.processes.append(process)

    def _receive(self, n: int, timeout: float | None) -> tuple:
        if not self.connections[n].poll(timeout):
            raise RuntimeError(f"{self.kind} process {n + 1} did not answer within {timeout} s")
        message = self.connections[n].recv()
        if message[0] == "failed":
            raise RuntimeError(f"{self.kind} process {n + 1}: {message[1]}")
        return message

    def wait_ready(self) -> None:
        for n in range(len(self.processes)):
            self._receive(n, 60 + WAIT_S)  # a spawned interpreter imports the project first

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=15)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for connection in self.connections:
            connection.close()


class KioskProcesses(WorkerProcesses):
    """The kiosks spread over worker processes (kiosk_process)."""

    kind = "kiosk"

    def __init__(self, count: int, abort, scale: Scale, site: str, host: str, port: int, devices: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.abort = abort
        self.issued = context.Value("l", 0)
        self.devices = devices
        self.groups = [devices[i::count] for i in range(count)]  # kiosk i in process i % count
        super().__init__(kiosk_process, [(self.abort, self.issued, asdict(scale), site, host, port, group)
                                         for group in self.groups])
        self.results: list[list[KioskResult]] = [[] for _ in range(count)]
        self.errors: list[str] = []

    def start(self, started: float, deadline: float, schedule: list[list[tuple[float, str, str | None]]]) -> None:
        """`schedule` in device order, as the in-process kiosks get it."""
        for n, connection in enumerate(self.connections):
            connection.send(("start", started, deadline, schedule[n::len(self.connections)]))

    def wait_done(self, n: int) -> None:
        """One process's kiosks served every citizen (or gave up): their results (a thread's body)."""
        message = self._receive(n, None)
        self.results[n] = [KioskResult(**result) for result in message[1]]
        self.errors += message[2]

    def kiosk_results(self) -> list[KioskResult]:
        """In device order."""
        by_device = {result.device: result for results in self.results for result in results}
        return [by_device[device] for device in self.devices if device in by_device]

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("close",))
            except OSError:
                pass
        super().close()


class Handover:
    """A counter's clerk waits here until its terminal's citizen has rated (or walked away)."""

    def __init__(self) -> None:
        self._decided: set[str] = set()
        self._changed = threading.Condition()

    def decide(self, ticket_id: str) -> None:
        with self._changed:
            self._decided.add(ticket_id)
            self._changed.notify_all()

    def wait(self, ticket_id: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: ticket_id in self._decided, timeout)


@dataclass
class Press:
    msg_id: str
    counter: str
    ticket_id: str
    first: bool  # False: the impatient second press, which must not count
    at_perf: float
    at_wall: float


class Terminal:
    """A rating terminal (the real controller) with a citizen in front of it."""

    def __init__(self, site: str, host: str, port: int, counter: str, outbox_dir: Path, handover: Handover,
                 rng: random.Random, pause_s: float) -> None:
        settings = load_rating_settings(
            None, device=f"rating-{counter}", site=site, counter=counter,
            mqtt={"host": host, "port": port},
            outbox=str(outbox_dir / f"rating-{counter}.outbox.sqlite3"),
        )
        self.counter = counter
        self.handover = handover
        self.rng = rng
        self.pause_s = pause_s
        self.prompts: queue.Queue[str] = queue.Queue()
        self._prompted: set[str] = set()
        self._changed = threading.Condition()
        self.presses: list[Press] = []
        self.skipped = 0
        self.terminal = RatingTerminal(settings, on_update=self._on_update)
        self.terminal.start()

    def _on_update(self) -> None:
        """paho's thread: a counter asking for a rating becomes a prompt for the citizen."""
        state = self.terminal.state.counter
        if state is not None and state.status == "rating" and state.rating_ticket_id \
                and state.rating_ticket_id not in self._prompted:
            self._prompted.add(state.rating_ticket_id)
            self.prompts.put(state.rating_ticket_id)
        with self._changed:
            self._changed.notify_all()

    def wait_ready(self) -> None:
        terminal = self.terminal
        with self._changed:
            if not self._changed.wait_for(lambda: terminal.online() and terminal.status() is not None
                                          and bool(terminal.levels()), WAIT_S):
                raise RuntimeError(f"rating terminal of {self.counter} got no state within {WAIT_S} s")

    def work(self, run: Run, done: threading.Event) -> None:
        terminal = self.terminal
        levels = [level.id for level in terminal.levels()]
        shares = list(RATING_SHARES) if len(levels) == 3 else [len(levels) - i for i in range(len(levels))]
        unsatisfied = {level.id for level in terminal.levels() if not level.satisfied}
        reasons = [reason.id for reason in terminal.reasons()]
        while not run.abort.is_set():
            try:
                ticket_id = self.prompts.get(timeout=0.1)
            except queue.Empty:
                if done.is_set():
                    return
                continue
            if run.abort.wait(self.rng.uniform(*RATING_PAUSE_SHARE) * self.pause_s):  # reaching for the buttons
                return
            if self.rng.random() < SKIP_RATING:
                self.skipped += 1
                self.handover.decide(ticket_id)
                continue
            level = self.rng.choices(levels, shares)[0]
            chosen = [self.rng.choice(reasons)] if level in unsatisfied and reasons else None
            presses = 2 if self.rng.random() < DOUBLE_PRESS else 1
            for n in range(presses):
                at_wall, at_perf = time.time(), time.perf_counter()
                msg_id = terminal.press(level, chosen)
                self.presses.append(Press(msg_id, self.counter, ticket_id, n == 0, at_perf, at_wall))
            self.handover.decide(ticket_id)

    def wait_sent(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.terminal.unsent() and time.monotonic() < deadline:
            time.sleep(0.05)  # the outbox empties as PUBACKs arrive; nothing is timed here
        return self.terminal.unsent() == 0

    def close(self) -> None:
        self.terminal.stop()


class RemoteHandover:
    """A terminal process's side of its counters' handovers: a decision goes to the main process,
    where the clerk waits (TerminalProcesses)."""

    def __init__(self, connection, counter: str, lock: threading.Lock) -> None:
        self.connection, self.counter, self._lock = connection, counter, lock

    def decide(self, ticket_id: str) -> None:
        with self._lock:  # the process's terminals share one pipe
            self.connection.send(("decided", self.counter, ticket_id))


@dataclass
class TerminalResult:
    counter: str
    presses: list[Press]
    skipped: int


def terminal_process(connection, abort, scale: dict, site: str, host: str, port: int, outbox_dir: str,
                     counters: list[str], seeds: list[float], pause_s: float) -> None:
    """A process running some of the rating terminals (the real controller each, a thread each
    for its citizen), driven over `connection`: → ("ready",) once each has its counter's state;
    ← ("start", started, deadline); → ("decided", counter, ticket) as each citizen rates or walks
    away (the clerk waits for it); ← ("done",) once every counter is done; → ("finished",
    results, every outbox empty); ← ("close",). A press is stamped with time.perf_counter, the
    machine's monotonic clock, the same in every process. → ("failed", text) on an error."""
    terminals: list[Terminal] = []
    with _worker_session(connection, abort, terminals):
        run = Run(Scale(**scale))
        run.abort = abort
        lock = threading.Lock()
        terminals += [Terminal(site, host, port, counter, Path(outbox_dir), RemoteHandover(connection, counter, lock),
                               random.Random(seed), pause_s) for counter, seed in zip(counters, seeds)]
        for terminal in terminals:
            terminal.wait_ready()
        connection.send(("ready",))
        message = connection.recv()
        if message[0] != "start":
            return
        _, run.started, run.deadline = message
        done = threading.Event()
        threads = [threading.Thread(target=_guarded, args=(run, f"terminal-{t.counter}", t.work, run, done),
                                    name=f"terminal-{t.counter}", daemon=True) for t in terminals]
        for thread in threads:
            thread.start()
        connection.recv()  # ("done",): every clerk has finished
        done.set()
        for thread in threads:
            thread.join()
        outboxes_empty = all(terminal.wait_sent(SETTLE_S) for terminal in terminals)
        results = [asdict(TerminalResult(t.counter, t.presses, t.skipped)) for t in terminals]
        with lock:
            connection.send(("finished", results, outboxes_empty, run.errors))
        connection.recv()  # ("close",)


class TerminalProcesses(WorkerProcesses):
    """The rating terminals spread over processes (terminal_process). A terminal is a device of its
    own: among this process's clerks, a press waited for Python's lock behind their requests
    before it was written and sent."""

    kind = "terminal"

    def __init__(self, count: int, abort, scale: Scale, site: str, host: str, port: int, outbox_dir: Path,
                 counters: list[str], seeds: list[float], pause_s: float) -> None:
        self.groups = [counters[n::count] for n in range(count)]
        super().__init__(terminal_process, [
            (abort, asdict(scale), site, host, port, str(outbox_dir), group, seeds[n::count], pause_s)
            for n, group in enumerate(self.groups)])
        self.results: list[TerminalResult] = []
        self.outboxes_empty = True
        self.errors: list[str] = []
        self._readers: list[threading.Thread] = []

    def start(self, started: float, deadline: float, handovers: dict[str, Handover]) -> None:
        for n, connection in enumerate(self.connections):
            connection.send(("start", started, deadline))
            reader = threading.Thread(target=self._read, args=(n, handovers), name=f"terminals-{n + 1}", daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, n: int, handovers: dict[str, Handover]) -> None:
        """One process's messages until its results: each decision reaches its clerk."""
        while True:
            message = self._receive(n, None)
            if message[0] == "decided":
                handovers[message[1]].decide(message[2])
            elif message[0] == "finished":
                self.results += [TerminalResult(r["counter"], [Press(**p) for p in r["presses"]], r["skipped"])
                                 for r in message[1]]
                self.outboxes_empty &= message[2]
                self.errors += message[3]
                return

    def finish(self, timeout: float) -> bool:
        """Every clerk is done: the terminals stop and report (False: a process did not, in time)."""
        for connection in self.connections:
            connection.send(("done",))
        for reader in self._readers:
            reader.join(timeout)
        return not any(reader.is_alive() for reader in self._readers)

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("close",))
            except OSError:
                pass
        super().close()


@dataclass
class Call:
    ticket_id: str
    code: str
    counter: str
    at_perf: float


class Clerk:
    """A clerk at a counter, over HTTP with a signed-in session."""

    def __init__(self, base_url: str, clerk_id: str, counter: str, handover: Handover, rng: random.Random,
                 mean_service_s: float) -> None:
        self.base_url = base_url
        self.clerk_id = clerk_id
        self.counter = counter
        self.handover = handover
        self.rng = rng
        self.mean_service_s = mean_service_s
        self.session = requests.Session()
        self.calls: list[Call] = []
        self.finished: list[str] = []
        self.no_shows: list[str] = []
        self.recalls = 0
        self.empty_queue = 0
        self.unanswered_ratings = 0
        self.errors: dict[str, int] = {}
        response = self.session.post(f"{base_url}/api/v1/login", json={"username": clerk_id, "password": PASSWORD},
                                     timeout=WAIT_S)
        if response.status_code != 200:
            raise RuntimeError(f"clerk {clerk_id} could not sign in: {response.status_code} {response.text[:200]}")
        self._act("open")

    def _act(self, action: str) -> tuple[int, dict]:
        response = self.session.post(f"{self.base_url}/api/v1/counters/{self.counter}/{action}", timeout=WAIT_S)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200:
            code = (body.get("error") or {}).get("code", str(response.status_code))
            if code != "queue_empty":
                key = f"{action}:{code}"
                self.errors[key] = self.errors.get(key, 0) + 1
        return response.status_code, body

    def work(self, run: Run) -> None:
        idle_pause = 0.2 * self.mean_service_s
        while not run.out_of_time():
            started = time.perf_counter()
            status, view = self._act("next")
            if status != 200:
                if view.get("error", {}).get("code") == "queue_empty":
                    self.empty_queue += 1
                    if run.arrivals_done.is_set():
                        return  # every ticket of the day was issued before this: nobody is left
                if run.abort.wait(idle_pause):
                    return
                continue
            ticket_id, code = view.get("ticket_id"), view.get("ticket")
            if not ticket_id:
                self.errors["next:no_ticket"] = self.errors.get("next:no_ticket", 0) + 1
                continue
            self.calls.append(Call(ticket_id, code, self.counter, started))
            draw = self.rng.random()
            if draw < NO_SHOW_SHARE:
                if run.abort.wait(0.3 * self.mean_service_s):
                    return
                if self._act("no-show")[0] == 200:
                    self.no_shows.append(ticket_id)
                continue
            if draw < NO_SHOW_SHARE + RECALL_SHARE:
                if run.abort.wait(0.2 * self.mean_service_s):
                    return
                if self._act("recall")[0] == 200:
                    self.recalls += 1
            if run.abort.wait(self.rng.lognormvariate(0, 0.4) * self.mean_service_s):
                return
            if self._act("finish")[0] != 200:
                continue
            self.finished.append(ticket_id)
            if not self.handover.wait(ticket_id, HANDOVER_WAIT_S):
                self.unanswered_ratings += 1  # the terminal never asked: reported, the day goes on

    def close(self) -> None:
        self.session.close()


class Board:
    """A lobby board's event stream (GET /board/stream), read and parsed as the page does."""

    def __init__(self, host: str, port: int, name: str) -> None:
        self.host, self.port, self.name = host, port, name
        self.first_seen: dict[str, float] = {}  # ticket id -> first counter/call event naming it
        self.today: list[tuple[float, str, int, int]] = []  # (arrived, day, ratings counted, tickets issued)
        # counter -> (arrival times, the rating ticket each event names), for press → tile
        self.counter_events: dict[str, tuple[list[float], list[str | None]]] = {}
        self.snapshots = 0
        self.events = 0
        self.bytes = 0
        self.reconnects = 0
        self.errors: list[str] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        # The stream's socket: http.client lets go of it once the response has begun (the
        # response reads on), so stop() keeps its own hold to wake the reader.
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"board-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read_stream()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if self._stop.is_set():
                    return
                self.errors.append(repr(exc)[:200])
            if self._stop.wait(0.5):  # EventSource reconnects too, after `retry`
                return
            self.reconnects += 1

    def _read_stream(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request("GET", "/board/stream", headers={"Accept": "text/event-stream"})
            with self._lock:
                self._socket = connection.sock
            if self._stop.is_set():
                return
            response = connection.getresponse()
            if response.status != 200:
                raise ValueError(f"/board/stream answered {response.status}")
            event, data = "message", []
            while not self._stop.is_set():
                line = response.readline()
                if not line:
                    return  # the server ended the stream
                self.bytes += len(line)
                line = line.rstrip(b"\r\n")
                if not line:
                    if data:
                        self._dispatch(event, b"\n".join(data), time.perf_counter())
                    event, data = "message", []
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip())
        finally:
            with self._lock:
                self._socket = None
            connection.close()

    def _dispatch(self, event: str, data: bytes, arrived: float) -> None:
        self.events += 1
        if event == "queue":
            return  # waiting counts: the board shows them, nothing here is timed by them
        payload = json.loads(data)
        if event == "snapshot":
            self.snapshots += 1
            for counter in payload["counters"]:
                self._counter(counter, arrived)
            self._today(payload["today"], arrived)
            self.connected.set()
        elif event == "counter":
            self._counter(payload, arrived)
        elif event == "call":
            if payload.get("ticket_id"):
                self.first_seen.setdefault(payload["ticket_id"], arrived)
        elif event == "today":
            self._today(payload, arrived)
        elif event == "ratings" and self.today:
            # A press sent at once with the figures it makes (display_board/live.py): the board
            # shows the new count now, before the day's next `today`.
            _, day, _, issued = self.today[-1]
            self.today.append((arrived, day, payload["ratings"]["counted"], issued))

    def _counter(self, payload: dict, arrived: float) -> None:
        if payload.get("ticket_id"):
            self.first_seen.setdefault(payload["ticket_id"], arrived)
        times, rating = self.counter_events.setdefault(payload["counter"], ([], []))
        times.append(arrived)
        rating.append(payload.get("rating_ticket_id"))

    def _today(self, payload: dict, arrived: float) -> None:
        self.today.append((arrived, payload["day"], payload["ratings"]["counted"], payload["tickets"]["issued"]))

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream_socket = self._socket
        if stream_socket is not None:
            try:
                stream_socket.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in readline
            except OSError:
                pass
        self.thread.join(timeout=10)

    def result(self) -> BoardResult:
        return BoardResult(self.name, self.first_seen, self.today, self.counter_events, self.snapshots,
                           self.events, self.bytes, self.reconnects, self.errors)


@dataclass
class BoardResult:
    """What a board saw over the day, as `analyse` reads it (sent back from a board process)."""

    name: str
    first_seen: dict[str, float]
    today: list[tuple[float, str, int, int]]
    counter_events: dict[str, tuple[list[float], list[str | None]]]
    snapshots: int
    events: int
    bytes: int
    reconnects: int
    errors: list[str]


def start_boards(boards: list[Board]) -> None:
    """Open every board's stream; returns once each has had its snapshot."""
    for board in boards:
        board.start()
    for board in boards:
        if not board.connected.wait(WAIT_S):
            raise RuntimeError(f"{board.name} got no snapshot within {WAIT_S} s: {board.errors}")


def board_process(connection, host: str, port: int, names: list[str]) -> None:
    """A process reading some of the boards' streams (a thread each), driven over `connection`:
    → ("ready",) once each has its snapshot; ← ("final", figures) → ("final", every board shows
    them); ← ("stop",) → ("done", results). Arrival times are time.perf_counter, the machine's
    monotonic clock, the same in every process. → ("failed", text) on an error."""
    boards: list[Board] = []
    try:
        boards += [Board(host, port, name) for name in names]
        start_boards(boards)
        connection.send(("ready",))
        while True:
            message = connection.recv()
            if message[0] == "final":
                connection.send(("final", wait_for_boards(boards, message[1])))
            elif message[0] == "stop":
                for board in boards:
                    board.stop()
                connection.send(("done", [asdict(board.result()) for board in boards]))
                return
    except (EOFError, OSError):
        pass  # the main process went away: nothing to report to
    except Exception as exc:
        _tell_failed(connection, exc)
    finally:
        for board in boards:
            board.stop()


class BoardProcesses(WorkerProcesses):
    """The boards spread over processes (board_process)."""

    kind = "board"

    def __init__(self, count: int, host: str, port: int, names: list[str]) -> None:
        super().__init__(board_process, [(host, port, names[n::count]) for n in range(count)])

    def show_final(self, final: tuple[str, int, int]) -> bool:
        """Every board's last figures are `final` (each process waits up to SETTLE_S)."""
        for connection in self.connections:
            connection.send(("final", final))
        return all([self._receive(n, SETTLE_S + WAIT_S)[1] for n in range(len(self.connections))])

    def stop(self) -> list[BoardResult]:
        """The streams closed; what each board saw, in process order."""
        for connection in self.connections:
            connection.send(("stop",))
        return [BoardResult(**result) for n in range(len(self.connections))
                for result in self._receive(n, WAIT_S)[1]]


# --- the server process ----------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in kB."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


class Monitor:
    """Samples the server's resident memory and CPU twice a second (a timeline for the report)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, CPU s)
        self._stop = threading.Event()
        self._started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(MONITOR_EVERY_S):
            rss = proc_memory_kb(self.pid).get("VmRSS")
            cpu = proc_cpu_s(self.pid)
            if rss is not None and cpu is not None:
                self.samples.append((time.perf_counter() - self._started, rss / 1024, cpu))

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self.thread.join(timeout=5)
        step = max(1, math.ceil(len(self.samples) / 20))
        kept = self.samples[::step] + ([self.samples[-1]] if len(self.samples) % step != 1 and self.samples else [])
        return [f"{at:.0f} s: {rss:.1f} MB, {cpu:.1f} CPU s" for at, rss, cpu in kept]


# --- analysis --------------------------------------------------------------------------------------


def normalised(value: Any) -> Any:
    """Figures as JSON has them (what the API answers), for an exact comparison."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Key paths where two figure trees differ (the first few are reported)."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right)):
            if key not in left or key not in right:
                found.append(f"{path}.{key}: only on one side")
            else:
                found += differences(left[key], right[key], f"{path}.{key}")
        return found
    if left != right:
        return [f"{path}: {left!r} != {right!r}"]
    return []


def press_to_board_today(boards: list[Board], counted: list[tuple[Press, str, int]]) -> list[float]:
    """For each counted press (its day and rank among that day's counted ratings), on each
    board: the first `today` or `ratings` event at or after the press whose count reaches that rank."""
    samples = []
    for board in boards:
        by_day: dict[str, tuple[list[float], list[int]]] = {}
        for arrived, day, count, _issued in board.today:
            times, counts = by_day.setdefault(day, ([], []))
            times.append(arrived)
            # What the board shows: a `today` computed before a `ratings` event may arrive after
            # it, and the board keeps the newer ratings (docs/board.md), i.e. the highest count.
            counts.append(max(count, counts[-1]) if counts else count)
        for press, day, rank in counted:
            times, counts = by_day.get(day, ([], []))
            index = max(bisect.bisect_left(counts, rank), bisect.bisect_left(times, press.at_perf))
            if index < len(times):
                samples.append(times[index] - press.at_perf)
    return samples


def press_to_board_counter(boards: list[Board], counted: list[tuple[Press, str, int]]) -> list[float]:
    """For each counted press, on each board: the first `counter` event of its counter after the
    press that no longer asks for that ticket's rating (the tile leaves "rating")."""
    samples = []
    for board in boards:
        for press, _day, _rank in counted:
            times, rating = board.counter_events.get(press.counter, ([], []))
            index = bisect.bisect_left(times, press.at_perf)
            while index < len(times) and rating[index] == press.ticket_id:
                index += 1
            if index < len(times):
                samples.append(times[index] - press.at_perf)
    return samples


def database_facts(database: Path, presses: list[Press]) -> dict[str, Any]:
    """What the SQLite file holds, read directly after the server stopped."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tickets = dict(connection.execute("SELECT status, COUNT(*) FROM tickets GROUP BY status").fetchall())
        ticket_ids = {row[0] for row in connection.execute("SELECT id FROM tickets")}
        duplicate_numbers = connection.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM tickets GROUP BY service_day, issued_field_id, number HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        ratings = connection.execute(
            "SELECT id, msg_id, counted, flag, ticket_id, received_at, day FROM ratings ORDER BY id"
        ).fetchall()
        rejects = dict(connection.execute("SELECT reason, COUNT(*) FROM rejects GROUP BY reason").fetchall())
    finally:
        connection.close()
    by_msg = {row[1]: row for row in ratings}
    counted_per_ticket: dict[str, int] = {}
    rank_in_day: dict[str, int] = {}
    counted_so_far: dict[str, int] = {}
    for _id, msg_id, counted, _flag, ticket_id, _received, day in ratings:
        if counted:
            counted_per_ticket[ticket_id] = counted_per_ticket.get(ticket_id, 0) + 1
            counted_so_far[day] = counted_so_far.get(day, 0) + 1
            rank_in_day[msg_id] = counted_so_far[day]
    published = {press.msg_id for press in presses}
    first = [press for press in presses if press.first]
    second = [press for press in presses if not press.first]
    counted_first = [p for p in first if p.msg_id in by_msg and by_msg[p.msg_id][2]]
    facts = {
        "tickets_by_status": tickets,
        "ticket_ids": ticket_ids,
        "duplicate_ticket_numbers": duplicate_numbers,
        "ratings_rows": len(ratings),
        "ratings_counted": sum(1 for row in ratings if row[2]),
        "ratings_flagged": dict(sorted(
            {flag: sum(1 for row in ratings if not row[2] and row[3] == flag) for flag in {row[3] for row in ratings if not row[2]}}.items()
        )),
        "presses_published": len(presses),
        "first_presses": len(first),
        "second_presses": len(second),
        "presses_lost": len(published - set(by_msg)),
        "unexpected_rating_rows": len(set(by_msg) - published),
        "first_presses_counted": len(counted_first),
        "first_presses_bound_to_their_ticket": sum(1 for p in counted_first if by_msg[p.msg_id][4] == p.ticket_id),
        "second_presses_counted": sum(1 for p in second if p.msg_id in by_msg and by_msg[p.msg_id][2]),
        "tickets_counted_twice": sum(1 for n in counted_per_ticket.values() if n > 1),
        "rejects": rejects,
    }
    received = {row[1]: datetime.fromisoformat(row[5]).timestamp() for row in ratings if row[2]}
    facts["press_to_counted_s"] = [received[p.msg_id] - p.at_wall for p in counted_first]
    facts["counted_ranked"] = [(p, by_msg[p.msg_id][6], rank_in_day[p.msg_id]) for p in counted_first]
    return facts


# --- the run ---------------------------------------------------------------------------------------


def run(scale: Scale, *, log=None) -> dict[str, Any]:
    """The whole day; returns the report (see the module docstring)."""
    say = log or (lambda text: None)
    if not mosquitto_path():
        return {"benchmark": "full_day", "error": "mosquitto is not installed", "checks": {"all_passed": False}}
    rng = random.Random(scale.seed)
    server = RunningServer("full-day")
    kiosks: list[Kiosk | KioskResult] = []
    terminals: list[Terminal | TerminalResult] = []
    clerks: list[Clerk] = []
    boards: list[Board] = []
    threads: dict[str, list[threading.Thread]] = {"kiosks": [], "clerks": [], "terminals": []}
    run_state = Run(scale)
    report: dict[str, Any] = {"benchmark": "full_day"}
    load_before = os.getloadavg()
    try:
        run_day(scale, rng, server, run_state, report, kiosks, terminals, clerks, boards, threads, say)
        if "_final" not in report:
            raise RuntimeError("; ".join(run_state.errors) or "the day did not finish")
        analyse(report, server, scale, kiosks, clerks, terminals, boards, run_state)
    finally:
        server.cleanup()
    report["machine"] = machine_info() | {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    return report


def run_day(scale: Scale, rng: random.Random, server: RunningServer, run_state: Run, report: dict,
            kiosks: list[Kiosk | KioskResult], terminals: list[Terminal | TerminalResult], clerks: list[Clerk], boards: list[Board],
            threads: dict[str, list[threading.Thread]], say) -> None:
    """Start everything, run the day, collect what the server says at the end; always stops the
    clients and the server (the lists are filled in place so the caller can analyse them; with
    kiosk processes, `kiosks` gets their results once they are done)."""
    monitor: Monitor | None = None
    kiosk_processes: KioskProcesses | None = None
    board_processes: BoardProcesses | None = None
    terminal_processes: TerminalProcesses | None = None
    local_kiosks: list[Kiosk] = []
    try:
        config = configure_site(server, scale)
        create_accounts(server, config)
        server.start_broker()
        server.start()
        server_pid = server.child.pid
        base_url = f"http://127.0.0.1:{config.server.port}"
        wait_for_http(base_url)
        counters = [counter.id for counter in config.counters]
        cycle_s = scale.counters * scale.day_s / scale.tickets / CAPACITY_FACTOR
        mean_service_s = SERVICE_SHARE * cycle_s
        say(f"server up (pid {server_pid}); {scale.counters} counters, {cycle_s:.3f} s per citizen at a counter")
        kiosk_devices = [f"kiosk-{n:02d}" for n in range(1, scale.kiosks + 1)]
        if scale.kiosk_processes > 0 or scale.terminal_processes > 0:
            run_state.abort = multiprocessing.get_context("spawn").Event()  # one abort, every process's
        if scale.kiosk_processes > 0 and kiosk_devices:
            # Started first: their interpreters start meanwhile.
            kiosk_processes = KioskProcesses(min(scale.kiosk_processes, scale.kiosks), run_state.abort, scale,
                                             server.site, server.broker.host, server.broker.port, kiosk_devices)

        board_names = [f"board-{n:02d}" for n in range(1, scale.boards + 1)]
        if scale.board_processes > 0 and board_names:
            board_processes = BoardProcesses(min(scale.board_processes, scale.boards), "127.0.0.1",
                                             config.server.port, board_names)
            board_processes.wait_ready()
        else:
            boards += [Board("127.0.0.1", config.server.port, name) for name in board_names]
            start_boards(boards)
        handovers = {counter: Handover() for counter in counters}
        outbox_dir = server.dir / "terminals"
        outbox_dir.mkdir()
        seeds = [rng.random() for _ in counters]
        host, port = server.broker.host, server.broker.port
        if scale.terminal_processes > 0 and counters:
            terminal_processes = TerminalProcesses(min(scale.terminal_processes, len(counters)), run_state.abort, scale,
                                                   server.site, host, port, outbox_dir, counters, seeds, cycle_s)
            terminal_processes.wait_ready()
        else:
            terminals += [Terminal(server.site, host, port, counter, outbox_dir, handovers[counter],
                                   random.Random(seed), cycle_s) for counter, seed in zip(counters, seeds)]
            for terminal in terminals:
                terminal.wait_ready()
        if kiosk_processes is not None:
            kiosk_processes.wait_ready()
        else:
            local_kiosks += [Kiosk(server.site, server.broker.host, server.broker.port, device)
                             for device in kiosk_devices]
            kiosks += local_kiosks
        clerks += [Clerk(base_url, config.clerks[i].id, counter, handovers[counter], random.Random(rng.random()),
                        mean_service_s) for i, counter in enumerate(counters)]
        schedule = arrivals(scale, config, rng)
        where = f" in {len(kiosk_processes.processes)} processes" if kiosk_processes else ""
        say(f"{scale.boards} boards, {len(counters)} terminals, {len(kiosk_devices)} kiosks{where}, "
            f"{len(clerks)} clerks connected")

        first_day = server_day(config)
        monitor = Monitor(server_pid)
        cpu_before = proc_cpu_s(server_pid)
        broker_pid = server.broker.pid
        broker_cpu_before = proc_cpu_s(broker_pid) if broker_pid else None
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        worker_pids = ((kiosk_processes.pids() if kiosk_processes else []) + (board_processes.pids() if board_processes else [])
                       + (terminal_processes.pids() if terminal_processes else []))
        workers_before = [proc_cpu_s(pid) for pid in worker_pids]
        run_state.started = time.perf_counter()
        run_state.deadline = run_state.started + scale.budget_s()
        terminals_done = threading.Event()

        def guarded(name: str, target, *args) -> threading.Thread:
            def body() -> None:
                try:
                    target(*args)
                except Exception as exc:  # reported in the result; the day stops rather than hangs
                    run_state.error(f"{name}: {exc!r}"[:300])
                    run_state.abort.set()

            thread = threading.Thread(target=body, name=name, daemon=True)
            thread.start()
            return thread

        threads["terminals"] = [guarded(f"terminal-{t.counter}", t.work, run_state, terminals_done) for t in terminals]
        if terminal_processes is not None:
            terminal_processes.start(run_state.started, run_state.deadline, handovers)
        threads["clerks"] = [guarded(f"clerk-{c.counter}", c.work, run_state) for c in clerks]
        if kiosk_processes is not None:
            kiosk_processes.start(run_state.started, run_state.deadline, schedule)
            threads["kiosks"] = [guarded(f"kiosk process {n + 1}", kiosk_processes.wait_done, n)
                                 for n in range(len(kiosk_processes.processes))]
        else:
            threads["kiosks"] = [guarded(k.device, k.work, run_state, citizens)
                                 for k, citizens in zip(local_kiosks, schedule)]

        def issued() -> int:
            return kiosk_processes.issued.value if kiosk_processes else sum(len(k.ticket_ids) for k in local_kiosks)

        def progress() -> None:
            say(f"{time.perf_counter() - run_state.started:.0f} s: {issued()} tickets issued, "
                f"{sum(len(c.finished) for c in clerks)} served, server {proc_memory_kb(server_pid).get('VmRSS', 0) / 1024:.0f} MB")

        join_all(threads["kiosks"], progress)
        if kiosk_processes is not None:
            kiosks += kiosk_processes.kiosk_results()
            for error in kiosk_processes.errors:
                run_state.error(error)
        run_state.arrivals_done.set()
        arrivals_s = time.perf_counter() - run_state.started
        say(f"arrivals done after {arrivals_s:.1f} s")
        join_all(threads["clerks"], progress)
        served_s = time.perf_counter() - run_state.started
        terminals_done.set()
        for thread in threads["terminals"]:
            thread.join()
        say(f"every counter done after {served_s:.1f} s")
        outboxes_empty = all(terminal.wait_sent(SETTLE_S) for terminal in terminals)
        if terminal_processes is not None:
            reported = terminal_processes.finish(SETTLE_S + WAIT_S)
            terminals += terminal_processes.results
            for error in terminal_processes.errors:
                run_state.error(error)
            if not reported:
                run_state.error("a terminal process did not report its presses")
            outboxes_empty = outboxes_empty and reported and terminal_processes.outboxes_empty

        today_now = requests.get(f"{base_url}/api/v1/stats/today", timeout=WAIT_S).json()
        final = (today_now["day"], today_now["ratings"]["counted"], today_now["tickets"]["issued"])
        boards_final = board_processes.show_final(final) if board_processes else wait_for_boards(boards, final)
        cpu_after = proc_cpu_s(server_pid)
        memory = proc_memory_kb(server_pid)
        broker_cpu_after = proc_cpu_s(broker_pid) if broker_pid else None
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        workers_after = [proc_cpu_s(pid) for pid in worker_pids]
        load_s = time.perf_counter() - run_state.started
        last_day = server_day(config)
        manager = requests.Session()
        try:
            manager.post(f"{base_url}/api/v1/login", json={"username": MANAGER, "password": PASSWORD},
                         timeout=WAIT_S).raise_for_status()
            daily = manager.get(f"{base_url}/api/v1/stats/daily",
                                params={"from": first_day.isoformat(), "to": last_day.isoformat()}, timeout=120)
            daily.raise_for_status()
            stats_daily = daily.json()
        finally:
            manager.close()
        rss_timeline = monitor.stop()
        monitor = None
        report["setup"] = {
            "scale": asdict(scale),
            "rating_terminals": len(terminals),
            "cycle_per_citizen_s": round(cycle_s, 3),
            "mean_service_s": round(mean_service_s, 3),
            "server": "python -m queue_server.cli serve --config site.toml (child process), external Mosquitto",
            "clients": "one process, threads: paho per kiosk and terminal, requests per clerk, http.client per board"
            + (f"; the kiosks in {len(kiosk_processes.processes)} worker processes" if kiosk_processes else "")
            + (f"; the boards in {len(board_processes.processes)} processes" if board_processes else "")
            + (f"; the terminals in {len(terminal_processes.processes)} processes" if terminal_processes else ""),
            "day": [first_day.isoformat(), last_day.isoformat()],
        }
        report["timeline_s"] = {"arrivals": round(arrivals_s, 1), "all_served": round(served_s, 1),
                                "with_final_figures": round(load_s, 1)}
        report["server"] = {
            "cpu_s": round(cpu_after - cpu_before, 2) if cpu_after is not None and cpu_before is not None else None,
            "cpu_share_of_one_core_pct": round(100 * (cpu_after - cpu_before) / load_s, 1)
            if cpu_after is not None and cpu_before is not None else None,
            "peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
            "rss_at_end_mb": round(memory.get("VmRSS", 0) / 1024, 1),
            "rss_and_cpu_over_time": rss_timeline,
        }
        report["other_processes_cpu_s"] = {
            "mosquitto": round(broker_cpu_after - broker_cpu_before, 2)
            if broker_cpu_after is not None and broker_cpu_before is not None else None,
            "clients_this_process": round((own_after.ru_utime + own_after.ru_stime)
                                          - (own_before.ru_utime + own_before.ru_stime), 2),
        }
        if worker_pids:
            worker_cpu = [round(after - before, 2) if after is not None and before is not None else None
                          for before, after in zip(workers_before, workers_after)]
            kiosk_count = len(kiosk_processes.processes) if kiosk_processes else 0
            board_count = len(board_processes.processes) if board_processes else 0
            if kiosk_processes is not None:
                report["other_processes_cpu_s"]["kiosk_processes"] = worker_cpu[:kiosk_count]
            if board_processes is not None:
                report["other_processes_cpu_s"]["board_processes"] = worker_cpu[kiosk_count:kiosk_count + board_count]
            if terminal_processes is not None:
                report["other_processes_cpu_s"]["terminal_processes"] = worker_cpu[kiosk_count + board_count:]
            report["other_processes_cpu_s"]["clients_all_processes"] = round(
                report["other_processes_cpu_s"]["clients_this_process"] + sum(c or 0.0 for c in worker_cpu), 2)
        report["_final"] = {"stats_daily": stats_daily, "boards_final": boards_final, "outboxes_empty": outboxes_empty,
                            "today": final, "first_day": first_day, "last_day": last_day}
    finally:
        if monitor is not None:
            monitor.stop()
        run_state.abort.set()
        for board in boards:
            board.stop()
        if board_processes is not None:
            try:
                boards += board_processes.stop()
            except (OSError, RuntimeError) as exc:  # the day's own error (if any) is the one reported
                run_state.error(f"boards: {exc!r}"[:300])
            board_processes.close()
        for group in threads.values():
            for thread in group:
                thread.join(timeout=10)
        for kiosk in local_kiosks:
            kiosk.close()
        if kiosk_processes is not None:
            kiosk_processes.close()
        if terminal_processes is not None:
            terminal_processes.close()
        for terminal in terminals:
            if isinstance(terminal, Terminal):
                terminal.close()
        for clerk in clerks:
            clerk.close()
        server.stop()  # SIGTERM: the server finishes what it has and leaves
        report["server_info"] = server.info()


def join_all(threads: list[threading.Thread], progress) -> None:
    """Wait for every thread, calling `progress` every PROGRESS_EVERY_S meanwhile."""
    next_report = time.perf_counter() + PROGRESS_EVERY_S
    for thread in threads:
        while thread.is_alive():
            thread.join(max(0.0, next_report - time.perf_counter()))
            if time.perf_counter() >= next_report:
                progress()
                next_report += PROGRESS_EVERY_S


def wait_for_http(base_url: str) -> None:
    """The server says `online` over MQTT a moment before waitress listens."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            requests.get(f"{base_url}/healthz", timeout=WAIT_S).raise_for_status()
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # waiting for the listener; not part of any measurement


def server_day(config: Config) -> date:
    return datetime.now(timezone.utc).astimezone(config.tz).date()


def wait_for_boards(boards: list[Board], final: tuple[str, int, int]) -> bool:
    """Until every board's last figures are the server's final ones (paced at one a second)."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if all(board.today and board.today[-1][1:] == final for board in boards):
            return True
        time.sleep(0.05)  # waiting for the boards' trailing update; nothing is timed here
    return False


def analyse(report: dict, server: RunningServer, scale: Scale, kiosks: list[Kiosk], clerks: list[Clerk],
            terminals: list[Terminal | TerminalResult], boards: list[Board], run_state: Run) -> None:
    final = report.pop("_final")
    first_day, last_day = final["first_day"], final["last_day"]
    presses = [press for terminal in terminals for press in terminal.presses]
    facts = database_facts(server.database, presses)

    store = Store(server.database)
    try:
        service = QueueService(server.config, store)
        from_history = normalised(service.figures_from_history(first_day, last_day))
        from_service = normalised(service.figures(first_day, last_day))
        per_day_diffs: list[str] = []
        for day_figures in final["stats_daily"]:
            day = date.fromisoformat(day_figures["day"])
            answered = normalised({key: value for key, value in day_figures.items() if key != "day"})
            per_day_diffs += [f"{day}{d}" for d in differences(answered, normalised(service.figures_from_history(day, day)))]
    finally:
        store.close()
    period_diffs = differences(from_service, from_history)

    kiosk_tickets = [ticket_id for kiosk in kiosks for ticket_id in kiosk.ticket_ids]
    calls = [call for clerk in clerks for call in clerk.calls]
    finished = sum(len(clerk.finished) for clerk in clerks)
    no_shows = sum(len(clerk.no_shows) for clerk in clerks)
    by_status = facts["tickets_by_status"]
    unseen_calls = sum(1 for board in boards for call in calls if call.ticket_id not in board.first_seen)

    call_to_board = [board.first_seen[call.ticket_id] - call.at_perf
                     for board in boards for call in calls if call.ticket_id in board.first_seen]
    request_latencies = [s for kiosk in kiosks for s in kiosk.latencies]
    press_to_today = press_to_board_today(boards, facts["counted_ranked"])
    press_to_tile = press_to_board_counter(boards, facts["counted_ranked"])
    expected_today_samples = len(facts["counted_ranked"]) * scale.boards  # every board, read here or in a board process

    report["ticket_request_to_response"] = distribution_ms(request_latencies)
    # Above zero: kiosks could not keep to the day's schedule (answers were slow).
    report["kiosk_behind_schedule"] = distribution_ms([lag for kiosk in kiosks for lag in kiosk.lags])
    report["call_to_board"] = distribution_ms(call_to_board)
    report["press_to_counted"] = distribution_ms(facts["press_to_counted_s"])
    report["press_to_board"] = distribution_ms(press_to_today) | {"samples_missing": expected_today_samples - len(press_to_today)}
    report["press_to_board_counter_tile"] = distribution_ms(press_to_tile)
    report["counts"] = {
        "kiosk_requests": sum(k.requests for k in kiosks),
        "kiosk_tickets": len(kiosk_tickets),
        "kiosk_timeouts": sum(k.timeouts for k in kiosks),
        "kiosk_errors": merge_counts(k.errors for k in kiosks),
        "kiosk_state_messages_heard": sum(k.other_messages for k in kiosks),
        "kiosk_answers_after_giving_up": sum(k.late_answers for k in kiosks),
        "tickets_in_database": len(facts["ticket_ids"]),
        "tickets_by_status": by_status,
        "calls": len(calls),
        "recalls": sum(c.recalls for c in clerks),
        "finished": finished,
        "no_shows": no_shows,
        "clerk_errors": merge_counts(c.errors for c in clerks),
        "ratings_not_asked_for": sum(c.unanswered_ratings for c in clerks),
        "skipped_ratings": sum(t.skipped for t in terminals),
        **{key: facts[key] for key in (
            "presses_published", "first_presses", "second_presses", "ratings_rows", "ratings_counted",
            "ratings_flagged", "presses_lost", "unexpected_rating_rows", "first_presses_counted",
            "first_presses_bound_to_their_ticket", "second_presses_counted", "tickets_counted_twice",
            "duplicate_ticket_numbers", "rejects")},
        "board_events": sum(b.events for b in boards),
        "board_stream_bytes": sum(b.bytes for b in boards),
        "board_reconnects": sum(b.reconnects for b in boards),
        "board_calls_not_seen": unseen_calls,
    }
    checks = {
        "figures_equal_history": not period_diffs and not per_day_diffs and bool(final["stats_daily"]),
        "tickets_issued_equal_kiosk_tickets": facts["ticket_ids"] == set(kiosk_tickets)
        and len(kiosk_tickets) == len(set(kiosk_tickets)) and from_history["tickets"]["issued"] == len(kiosk_tickets),
        "every_request_answered": sum(k.timeouts for k in kiosks) == 0 and not any(k.errors for k in kiosks)
        and len(kiosk_tickets) == scale.tickets,
        "every_ticket_served": by_status.get("finished", 0) == finished and by_status.get("no_show", 0) == no_shows
        and finished + no_shows == len(kiosk_tickets) and not any(c.errors for c in clerks),
        "every_call_on_every_board": unseen_calls == 0 and len(calls) >= len(kiosk_tickets) and len(boards) == scale.boards,
        "ratings_zero_loss": facts["presses_lost"] == 0 and facts["ratings_rows"] == len(presses)
        and final["outboxes_empty"] and facts["unexpected_rating_rows"] == 0,
        "ratings_counted_equal_first_presses": facts["ratings_counted"] == facts["first_presses"]
        == facts["first_presses_counted"] == facts["first_presses_bound_to_their_ticket"]
        and from_history["ratings"]["counted"] == facts["first_presses"],
        "ratings_none_counted_twice": facts["tickets_counted_twice"] == 0 and facts["second_presses_counted"] == 0,
        "every_rating_asked_for": sum(c.unanswered_ratings for c in clerks) == 0,
        "no_rejects": not facts["rejects"],
        "no_duplicate_ticket_numbers": facts["duplicate_ticket_numbers"] == 0,
        "boards_show_final_figures": final["boards_final"],
        "no_client_errors": not run_state.errors and not any(b.errors for b in boards),
    }
    checks["all_passed"] = all(checks.values())
    report["checks"] = checks
    report["check_details"] = {
        "figure_differences": (period_diffs + per_day_diffs)[:20],
        "run_errors": run_state.errors[:10],
        "board_errors": [e for b in boards for e in b.errors][:10],
        "final_today": list(final["today"]),
        "board_last_today": [list(b.today[-1][1:]) if b.today else None for b in boards],
    }
    press_p99 = report["press_to_board"].get("p99_ms")
    peak = report["server"]["peak_rss_mb"]
    report["targets"] = {
        "press_to_board_p99_ms": TARGET_PRESS_TO_BOARD_P99_MS,
        "server_peak_memory_mb": TARGET_PEAK_MEMORY_MB,
        "met_press_to_board_p99": press_p99 is not None and press_p99 <= TARGET_PRESS_TO_BOARD_P99_MS
        and report["press_to_board"]["samples_missing"] == 0,
        "met_peak_memory": 0 < peak <= TARGET_PEAK_MEMORY_MB,
        "met_at_least_20000_tickets": len(kiosk_tickets) >= 20_000,
    }


def merge_counts(counts) -> dict[str, int]:
    merged: dict[str, int] = {}
    for one in counts:
        for key, n in one.items():
            merged[key] = merged.get(key, 0) + n
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI scale: 300 tickets, 5 kiosks, 4 counters, 2 boards")
    parser.add_argument("--tickets", type=int, help=f"tickets issued over the day (default {LONG.tickets})")
    parser.add_argument("--kiosks", type=int, help=f"ticket kiosks (default {LONG.kiosks})")
    parser.add_argument("--counters", type=int, help=f"counters, each with a clerk and a rating terminal (default {LONG.counters})")
    parser.add_argument("--boards", type=int, help=f"lobby board streams (default {LONG.boards})")
    parser.add_argument("--day-s", type=float, help=f"seconds the 7:00–17:00 arrivals are spread over (default {LONG.day_s:g})")
    parser.add_argument("--seed", type=int, help="random seed of arrivals, service times and presses")
    parser.add_argument("--board-processes", type=int, help="processes reading the boards' streams, 0 = threads "
                        f"of this process (default {LONG.board_processes})")
    parser.add_argument("--kiosk-processes", type=int, help="worker processes for the kiosks, 0 = threads "
                        f"of this process (default {LONG.kiosk_processes})")
    parser.add_argument("--terminal-processes", type=int, help="processes for the rating terminals, 0 = threads "
                        f"of this process (default {LONG.terminal_processes})")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    args = parser.parse_args()
    base = SHORT if args.short else LONG
    changes = {key: value for key, value in vars(args).items()
               if key in Scale.__dataclass_fields__ and value is not None}
    scale = Scale(**(asdict(base) | changes))
    log = None if args.quiet else (lambda text: print(f"[full_day] {text}", file=sys.stderr, flush=True))
    def stop_on_sigterm(signum, frame):
        raise KeyboardInterrupt  # bench/run's time-out: leave through the finally blocks (server, broker)

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    result = run(scale, log=log)
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0 if result.get("checks", {}).get("all_passed") else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
