"""Benchmark: the server's MQTT side (ServerLink + QueueService + SQLite) against a real Mosquitto.

Each phase starts its own Mosquitto (queue_server.mqtt.broker.MosquittoBroker, on a free port,
in a fresh temporary directory) and, for (a) and (b), the real server in a child process,
`python -m queue_server.cli serve --config site.toml`, with [mqtt] mode = "external" pointing at
that broker and the sample site opened around the clock without daily caps or holidays:

  (a) request/response: one kiosk client (subscribed like a kiosk: its responses, state/config,
      state/queue/+, server status) publishes request/ticket with a fresh transaction and waits for
      its response/ticket, N times one after another. Latency is taken from just before the
      publish to the arrival of the matching response in the kiosk's paho callback.
  (b) rating ingest: before the server starts, R finished tickets are written into the same
      database in one transaction (the domain's own new_ticket/call/finish and Store.insert_ticket,
      spread round-robin over the counters, clerk of the counter, finished "now" on the real
      clock). Then D rating terminals publish one rating per ticket at QoS 1, naming the ticket
      and giving a device `at` one second after the ticket finished, as fast as the broker takes
      them (paho paces each terminal by its inflight window). The rate is measured from the first
      publish to the moment the SQLite file (polled directly) holds all R counted ratings; then
      loss (msg_ids published but absent), duplicates and rejects are checked in the file.
  (c) broker relay, the ceiling: the same payloads on the same topics, from 1 publisher and from
      D publishers (as in (b)), to one subscriber with a persistent session (clean_start False)
      and QoS 1, in a child process of its own like the server. Messages/s from the first
      publish to the subscriber reporting the last one. The ratio in the result is ingest rate
      over the faster of the two relay rates.

Prints one JSON object.

    .venv/bin/python bench/mqtt_bench.py [--requests 2000] [--ratings 20000] [--devices 8]
    .venv/bin/python bench/mqtt_bench.py --profile /tmp/prof
        # server under cProfile, every thread (paho's network thread, the state worker, ...):
        # /tmp/prof.{phase}.{thread}.pstats and /tmp/prof.{phase}.all.pstats

Targets: request/response p99 <= 10 ms; ingest >= 5,000 ratings/s sustained, at least half the
broker's relay rate, and zero loss.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the project from the work tree
    sys.path.insert(0, str(ROOT))

from queue_server.mqtt import contract  # noqa: E402
from queue_server.mqtt.broker import MosquittoBroker, free_port, mosquitto_path  # noqa: E402
from queue_server.mqtt.client import (  # noqa: E402
    MQTTv5,
    connect_and_wait,
    disconnect_and_stop,
    make_client,
    subscribe_and_wait,
)

SAMPLE_SITE = ROOT / "queue_server" / "sample_site.toml"
DATABASE_NAME = "motcua.sqlite3"  # as queue_server.server.DATABASE_NAME
TARGET_P99_MS = 10.0
TARGET_RATINGS_PER_S = 5000.0
TARGET_RELAY_FRACTION = 0.5
WAIT_S = 20.0  # for the server to come up, a single response, a subscriber to be ready
INGEST_BUDGET_S = 60.0  # stop waiting for the database after this; the result says so
RELAY_BUDGET_S = 30.0
REQUEST_BUDGET_S = 30.0
WARM_UP = 20  # ticket requests before the measured ones: imports, first queries, caches
DEPTH_STEP = 500  # request latency is also reported per this many tickets issued before
POLL_S = 0.005  # how often the SQLite file is read while ratings go in
PUBLISHER_INFLIGHT = 1000  # QoS 1 messages a terminal may have unacknowledged


# --- config ----------------------------------------------------------------------------------------


def bench_config_data(data_dir: Path, http_port: int, mqtt_port: int) -> dict:
    """The sample site, open 24/7, without daily caps or holidays, against an external broker."""
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    for field_data in data["fields"]:
        field_data.pop("daily_cap", None)
        field_data.pop("opening_hours", None)
        field_data["closed"] = False
    data["holidays"] = []
    data["opening_hours"] = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "open": "00:00", "close": "24:00"}]
    data["server"] = {"host": "127.0.0.1", "port": http_port, "data_dir": str(data_dir)}
    data["mqtt"] = {"mode": "external", "host": "127.0.0.1", "port": mqtt_port}
    return data


def toml_text(data: dict) -> str:
    """Enough TOML for a site config: scalars, arrays, inline tables, tables, arrays of tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(item)}" for k, item in v.items()) + " }"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    def is_table_array(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(item, dict) for item in v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict) and not is_table_array(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{key} = {value(item)}" for key, item in v.items())]
    for k, v in data.items():
        if is_table_array(v):
            for item in v:
                lines += ["", f"[[{k}]]", *(f"{key} = {value(i)}" for key, i in item.items())]
    return "\n".join(lines) + "\n"


# --- the server child --------------------------------------------------------------------------


class RunningServer:
    """A fresh data directory with a broker; `start()` runs the real server against it."""

    def __init__(self, name: str) -> None:
        from queue_server.config import parse_config

        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix=f"motcua-mqtt-bench-{name}-")
        self.dir = Path(self._tmp.name)
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.broker = MosquittoBroker("127.0.0.1", free_port(), self.dir / "broker")
        data = bench_config_data(self.data_dir, free_port(), self.broker.port)
        self.config = parse_config(data)  # validated here, so a bad override fails before anything starts
        self.site = self.config.site.id
        self.config_path = self.dir / "site.toml"
        self.config_path.write_text(toml_text(data), encoding="utf-8")
        self.database = self.data_dir / DATABASE_NAME
        self.child: subprocess.Popen | None = None
        self.stderr_path = self.dir / "server.stderr"
        self.profile_path: str | None = None

    def start_broker(self) -> None:
        self.broker.start()

    def start(self, profile_prefix: str | None = None) -> None:
        if profile_prefix:
            self.profile_path = str(Path(f"{profile_prefix}.{self.name}").resolve())
            command = [sys.executable, str(Path(__file__).resolve()), "--serve-profiled", str(self.config_path),
                       "--profile", self.profile_path]
        else:
            command = [sys.executable, "-m", "queue_server.cli", "serve", "--config", str(self.config_path)]
        with open(self.stderr_path, "wb") as stderr:
            self.child = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        self._wait_online()

    def _wait_online(self) -> None:
        """Until the server's retained status says online (its link is connected and subscribed)."""
        online = threading.Event()
        watcher = make_client(f"bench-watch-{self.name}")
        watcher.on_message = lambda c, u, m: online.set() if m.payload == b"online" else None
        connect_and_wait(watcher, self.broker.host, self.broker.port, timeout=WAIT_S)
        try:
            subscribe_and_wait(watcher, [(contract.topic_server_status(self.site), 1)], timeout=WAIT_S)
            deadline = time.monotonic() + WAIT_S
            while not online.wait(0.05):
                assert self.child is not None
                if self.child.poll() is not None:
                    raise RuntimeError(f"server exited with {self.child.returncode}:\n{self.stderr_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not online within {WAIT_S} s:\n{self.stderr_tail()}")
        finally:
            disconnect_and_stop(watcher)

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(60)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.broker.stop()

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (all its threads)."""
        if self.child is None or self.child.poll() is not None:
            return None
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_tail(self, lines: int = 10) -> str:
        if not self.stderr_path.exists():
            return ""
        return "\n".join(self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def info(self) -> dict:
        info: dict[str, Any] = {"command": "python -m queue_server.cli serve --config site.toml",
                                "mqtt_mode": "external", "broker_port": self.broker.port}
        if self.child is not None:
            info["exit_code"] = self.child.returncode
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""
        problems = [line for line in text.splitlines() if " ERROR " in line or " WARNING " in line or "Traceback" in line]
        if problems:
            info["server_log_problems"] = problems[-5:]
        if self.profile_path:
            info["profile"] = f"{self.profile_path}.*.pstats"
        return info

    def cleanup(self) -> None:
        self._tmp.cleanup()


def serve_profiled(config_path: str, profile_path: str) -> int:
    """Child entry point for --profile: `motcua serve` with every thread under its own cProfile.

    cProfile sees only the thread that enabled it, and the MQTT work happens in paho's network
    thread and the link's state worker, so Thread.run is wrapped; those threads are joined when
    the server stops (SIGTERM), and then every profile is written, one file per thread and one
    merged file. Times are each thread's own CPU time (time.thread_time), not wall time: waiting
    for the GIL, a lock or a socket does not count, so the profile says where the CPU went even
    on a shared machine."""
    import cProfile
    import pstats

    from queue_server import cli

    profiles: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append((self.name, profile))
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile(time.thread_time)
    profiles.append(("main", main_profile))
    main_profile.enable()
    try:
        code = cli.main(["serve", "--config", config_path])
    finally:
        main_profile.disable()
        with lock:
            done = list(profiles)
        merged: pstats.Stats | None = None
        for name, profile in done:
            try:
                stats = pstats.Stats(profile)
            except TypeError:  # a thread that never ran any Python function
                continue
            if stats.total_calls >= 1000:  # idle HTTP worker threads would only add noise
                safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
                stats.dump_stats(f"{profile_path}.{safe}.pstats")
            if merged is None:
                merged = stats
            else:
                merged.add(profile)
        if merged is not None:
            merged.dump_stats(f"{profile_path}.all.pstats")
    return code


# --- measuring -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


def ms(value_s: float | None) -> float | None:
    return None if value_s is None else round(value_s * 1000, 3)


class Kiosk:
    """A ticket kiosk's MQTT client: request/ticket out, response/ticket in."""

    def __init__(self, server: RunningServer, device: str) -> None:
        self.site = server.site
        self.device = device
        self.request_topic = contract.topic_ticket_request(self.site, device)
        self.response_topic = contract.topic_ticket_response(self.site, device)
        self._arrived: dict[str, tuple[float, bytes]] = {}
        self._changed = threading.Condition()
        self.other_messages = 0
        self.client = make_client(device)
        self.client.on_message = self._on_message
        connect_and_wait(self.client, server.broker.host, server.broker.port, timeout=WAIT_S)
        subscribe_and_wait(self.client, contract.ticket_kiosk_subscriptions(self.site, device), timeout=WAIT_S)

    def _on_message(self, client, userdata, message) -> None:
        arrived = time.perf_counter()
        if message.topic != self.response_topic:
            self.other_messages += 1  # config and queue state: a kiosk hears them too
            return
        payload = bytes(message.payload)
        transaction = json.loads(payload)["transaction"]
        with self._changed:
            self._arrived.setdefault(transaction, (arrived, payload))
            self._changed.notify_all()

    def request(self, transaction: str, field_id: str) -> tuple[float, dict] | None:
        """Seconds from publish to the response's arrival, and the response; None on timeout."""
        payload = json.dumps({"transaction": transaction, "field": field_id}).encode()
        started = time.perf_counter()
        self.client.publish(self.request_topic, payload, qos=1)
        with self._changed:
            if not self._changed.wait_for(lambda: transaction in self._arrived, WAIT_S):
                return None
            arrived, body = self._arrived.pop(transaction)
        return arrived - started, json.loads(body)

    def close(self) -> None:
        disconnect_and_stop(self.client)


def run_request_response(count: int, profile: str | None) -> tuple[dict, dict]:
    server = RunningServer("request_response")
    server.start_broker()
    fields = [f.id for f in server.config.fields]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    timeouts = 0
    try:
        server.start(profile)
        kiosk = Kiosk(server, "kiosk-bench")
        try:
            for i in range(WARM_UP):
                kiosk.request(f"warm-{i}", fields[i % len(fields)])
            started = time.perf_counter()
            for i in range(count):
                got = kiosk.request(f"tx-{i}", fields[i % len(fields)])
                if got is None:
                    timeouts += 1
                else:
                    latencies.append(got[0])
                    status = got[1]["status"]
                    statuses[status] = statuses.get(status, 0) + 1
                if time.perf_counter() - started > REQUEST_BUDGET_S:
                    break
            wall = time.perf_counter() - started
            other = kiosk.other_messages
        finally:
            kiosk.close()
    finally:
        server.stop()
    try:
        conn = sqlite3.connect(server.database)
        tickets_in_db = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        conn.close()
    finally:
        server.cleanup()
    ordered = sorted(latencies)
    result = {
        "n": len(ordered),
        "requested": count,
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]) if ordered else None,
        "mean_ms": ms(statistics.fmean(ordered)) if ordered else None,
        "wall_s": round(wall, 3),
        "statuses": statuses,
        "timeouts": timeouts,
        "stopped_at_time_budget": len(ordered) + timeouts < count,
        "tickets_in_db": tickets_in_db,
        "tickets_expected_in_db": count + WARM_UP if len(ordered) + timeouts == count else None,
        "kiosk_also_received": other,  # retained state and calls the kiosk hears meanwhile
        # Tickets issued today grow during the run; so does the work behind each state/today.
        "by_tickets_already_issued": by_depth(latencies),
    }
    return result, server.info()


def by_depth(latencies: list[float]) -> dict:
    """p50 and p99 per DEPTH_STEP requests, keyed by how many tickets were issued before them."""
    result = {}
    for start in range(0, len(latencies), DEPTH_STEP):
        chunk = sorted(latencies[start:start + DEPTH_STEP])
        first = start + WARM_UP
        result[f"{first}-{first + len(chunk) - 1}"] = {"p50_ms": ms(percentile(chunk, 50)), "p99_ms": ms(percentile(chunk, 99))}
    return result


# --- rating ingest ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Served tickets written before the server starts, and one rating payload for each."""

    seconds: float
    site: str
    by_device: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)  # device -> [(topic, payload)]
    msg_ids: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.msg_ids)


def prepare_served_tickets(server: RunningServer, count: int, devices: int) -> Prepared:
    """`count` finished tickets in one transaction, through the domain's rules and the Store."""
    from queue_server.domain import tickets as ticket_rules
    from queue_server.service import QueueService, new_ticket_id
    from queue_server.store import Store

    config = server.config
    started = time.perf_counter()
    store = Store(server.database)
    service = QueueService(config, store)
    levels = [level.id for level in config.rating.levels]
    counters = list(config.counters)
    clerk_of = {c.id: next((k.id for k in config.clerks if c.id in k.counters), None) for c in counters}
    now = service.now()
    day = service.today()
    device_ids = [f"rating-{i + 1:02d}" for i in range(devices)]
    prepared = Prepared(0.0, server.site, {device: [] for device in device_ids})
    with store.write():
        numbers = {f.id: store.highest_number(day, f.id) for f in config.fields}
        for i in range(count):
            counter = counters[i % len(counters)]
            field_id = counter.fields[(i // len(counters)) % len(counter.fields)]
            numbers[field_id] += 1
            # Each counter finished one ticket every 15 s: the presses are spread as real ones
            # are (a burst at one counter is flagged as misuse by the server).
            finished = now - timedelta(seconds=15 * (i // len(counters)))
            ticket = ticket_rules.new_ticket(new_ticket_id(), config.field(field_id), numbers[field_id],
                                             finished - timedelta(seconds=90), config, device_id="bench-prep")
            ticket = ticket_rules.call(ticket, counter.id, clerk_of[counter.id], finished - timedelta(seconds=60))
            ticket = ticket_rules.finish(ticket, finished)
            store.insert_ticket(ticket)
            device = device_ids[i % devices]
            msg_id = f"{device}:1:{i}"
            rating = {
                "msg_id": msg_id, "counter": counter.id, "level": levels[i % len(levels)],
                "ticket": ticket.id, "at": (ticket.finished_at + timedelta(seconds=1)).isoformat(),
            }
            prepared.by_device[device].append((contract.topic_rating(server.site, device), json.dumps(rating).encode()))
            prepared.msg_ids.add(msg_id)
    store.close()
    prepared.seconds = time.perf_counter() - started
    return prepared


class Terminal:
    """A rating terminal publishing its prepared ratings at QoS 1."""

    def __init__(self, device: str, host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
        self.device = device
        self.messages = messages
        self.acked = 0
        self.last_ack_at: float | None = None
        self.publish_errors = 0
        self.all_acked = threading.Event()
        self.client = make_client(f"{device}-{os.getpid()}", max_inflight=PUBLISHER_INFLIGHT)
        self.client.on_publish = self._on_publish
        connect_and_wait(self.client, host, port, timeout=WAIT_S)
        if not messages:
            self.all_acked.set()

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        self.acked += 1
        if self.acked >= len(self.messages):
            self.last_ack_at = time.perf_counter()
            self.all_acked.set()

    def publish_all(self) -> None:
        publish = self.client.publish
        for topic, payload in self.messages:
            if publish(topic, payload, qos=1).rc != 0:
                self.publish_errors += 1

    def close(self) -> None:
        disconnect_and_stop(self.client)


def publish_from(terminals: list[Terminal]) -> tuple[float, list[threading.Thread]]:
    """Every terminal publishes from its own thread; returns the start time and the threads."""
    ready = threading.Barrier(len(terminals) + 1)

    def work(terminal: Terminal) -> None:
        ready.wait()
        terminal.publish_all()

    threads = [threading.Thread(target=work, args=(t,), name=f"publish-{t.device}", daemon=True) for t in terminals]
    for thread in threads:
        thread.start()
    started = time.perf_counter()  # taken just before the first publish can happen
    ready.wait()
    return started, threads


def run_ingest(count: int, devices: int, profile: str | None) -> tuple[dict, dict, Prepared]:
    server = RunningServer("ingest")
    prepared = prepare_served_tickets(server, count, devices)
    server.start_broker()
    terminals: list[Terminal] = []
    timeline: list[tuple[float, int]] = []
    try:
        server.start(profile)
        terminals = [Terminal(device, server.broker.host, server.broker.port, messages)
                     for device, messages in prepared.by_device.items()]
        conn = sqlite3.connect(server.database, timeout=10)
        cpu_before = server.cpu_seconds()
        started, threads = publish_from(terminals)
        stored = 0
        finished = None
        cpu_after: float | None = None
        while time.perf_counter() - started < INGEST_BUDGET_S:
            stored = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
            now = time.perf_counter()
            timeline.append((now - started, stored))
            if stored >= prepared.count:
                finished = now
                cpu_after = server.cpu_seconds()
                break
            time.sleep(POLL_S)
        for thread in threads:
            thread.join()
        all_acked = all(t.all_acked.wait(WAIT_S) for t in terminals)
        conn.close()
        for terminal in terminals:
            terminal.close()
    finally:
        server.stop()  # SIGTERM: the server finishes what it has and leaves
    try:
        check = check_ratings(server.database, prepared.msg_ids)
    finally:
        server.cleanup()
    seconds = (finished - started) if finished else None
    got = stored
    cpu_s = (cpu_after - cpu_before) if finished and cpu_before is not None and cpu_after is not None else None
    ingest = {
        "ratings": prepared.count,
        "seconds": round(seconds, 3) if seconds else None,
        "ratings_per_s": round(prepared.count / seconds, 1) if seconds else None,
        "complete_within_budget": finished is not None,
        "stored_at_budget": None if finished else got,
        "rate_at_budget_per_s": None if finished else round(got / INGEST_BUDGET_S, 1),
        "lost": check["lost"],
        "duplicates_counted": check["duplicates_counted"],
        "duplicate_msg_ids": check["duplicate_msg_ids"],
        "rows": check["rows"],
        "counted": check["counted"],
        "not_counted_by_flag": check["flags"],
        "rejects": check["rejects"],
        "devices": devices,
        "publisher_inflight": PUBLISHER_INFLIGHT,
        # The server's own CPU per rating (all threads, from /proc): steadier than the rate on a
        # shared machine, and the ceiling it implies if the server had a core to itself.
        "server_cpu_s": round(cpu_s, 3) if cpu_s is not None else None,
        "server_cpu_us_per_rating": round(cpu_s / prepared.count * 1e6, 1) if cpu_s is not None else None,
        "all_pubacks": all_acked,
        # When the broker had acknowledged every rating: long before `seconds` means the broker
        # kept up and the messages waited in the server's session queue.
        "last_puback_s": round(max(t.last_ack_at for t in terminals) - started, 3) if all_acked and terminals else None,
        "publish_errors": sum(t.publish_errors for t in terminals),
        "prepared_tickets_s": round(prepared.seconds, 3),
        "stored_over_time": thin_timeline(timeline),
    }
    return ingest, server.info(), prepared


def thin_timeline(points: list[tuple[float, int]], every_s: float = 1.0) -> list[list[float]]:
    """[seconds, ratings stored] about once a second, to see whether the rate holds."""
    kept: list[list[float]] = []
    next_at = every_s
    for at, stored in points:
        if at >= next_at:
            kept.append([round(at, 2), stored])
            next_at = at + every_s
    if points:
        kept.append([round(points[-1][0], 3), points[-1][1]])
    return kept


def check_ratings(database: Path, published: set[str]) -> dict:
    conn = sqlite3.connect(database)
    try:
        stored = [row[0] for row in conn.execute("SELECT msg_id FROM ratings")]
        counted = conn.execute("SELECT COUNT(*) FROM ratings WHERE counted = 1").fetchone()[0]
        duplicates_counted = conn.execute(
            "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM ratings WHERE counted = 1 "
            "GROUP BY ticket_id HAVING n > 1)"
        ).fetchone()[0]
        flags = dict(conn.execute("SELECT COALESCE(flag, '?'), COUNT(*) FROM ratings WHERE counted = 0 GROUP BY flag").fetchall())
        rejects = dict(conn.execute("SELECT reason, COUNT(*) FROM rejects GROUP BY reason").fetchall())
    finally:
        conn.close()
    stored_set = set(stored)
    return {
        "rows": len(stored),
        "lost": len(published - stored_set),
        "unexpected": len(stored_set - published),
        "duplicate_msg_ids": len(stored) - len(stored_set),
        "counted": counted,
        "duplicates_counted": duplicates_counted,
        "flags": flags,
        "rejects": rejects,
    }


# --- broker relay ----------------------------------------------------------------------------------


def relay_subscriber(host: str, port: int, site: str, expected: int) -> int:
    """Child entry point: a persistent QoS 1 subscriber on the server's own filters. Prints
    `ready` once subscribed, then one JSON line when `expected` distinct messages arrived."""
    done = threading.Event()
    seen: set[bytes] = set()
    received = [0]

    def on_message(client, userdata, message) -> None:
        received[0] += 1
        seen.add(message.payload)
        if len(seen) >= expected:
            done.set()

    client = make_client(f"bench-relay-sub-{os.getpid()}", clean_start=False)
    client.on_message = on_message
    connect_and_wait(client, host, port, timeout=WAIT_S)
    subscribe_and_wait(client, contract.server_subscriptions(site), timeout=WAIT_S)
    print("ready", flush=True)
    finished = done.wait(RELAY_BUDGET_S)
    print(json.dumps({"complete": finished, "received": received[0], "distinct": len(seen)}), flush=True)
    disconnect_and_stop(client)
    return 0


def run_relay(prepared: Prepared, publishers: int) -> dict:
    """The same topics and payloads as the ingest, through a bare broker to one subscriber."""
    tmp = tempfile.TemporaryDirectory(prefix="motcua-mqtt-bench-relay-")
    broker = MosquittoBroker("127.0.0.1", free_port(), Path(tmp.name) / "broker")
    broker.start()
    messages = [m for device_messages in prepared.by_device.values() for m in device_messages]
    groups: list[list[tuple[str, bytes]]] = [messages[i::publishers] for i in range(publishers)]
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--relay-subscriber", broker.host, str(broker.port), prepared.site,
         str(len(messages))],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    terminals: list[Terminal] = []
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("relay subscriber did not start")
        terminals = [Terminal(f"relay-pub-{i + 1:02d}", broker.host, broker.port, group) for i, group in enumerate(groups)]
        started, threads = publish_from(terminals)
        line = child.stdout.readline()
        finished = time.perf_counter()
        for thread in threads:
            thread.join()
        report = json.loads(line)
        for terminal in terminals:
            terminal.close()
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        broker.stop()
        tmp.cleanup()
    seconds = finished - started
    return {
        "messages": len(messages),
        "publishers": publishers,
        "seconds": round(seconds, 3),
        "per_s": round(report["distinct"] / seconds, 1) if report["complete"] else None,
        "complete": report["complete"],
        "received": report["received"],
        "distinct": report["distinct"],
    }


# --- the report ------------------------------------------------------------------------------------


def machine_info() -> dict:
    import paho.mqtt

    executable = mosquitto_path()
    first_line = None
    if executable:
        out = subprocess.run([executable, "-h"], capture_output=True, text=True)
        text = (out.stdout or out.stderr).strip()
        first_line = text.splitlines()[0] if text else None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "paho_mqtt": paho.mqtt.__version__,
        "mosquitto": first_line,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential ticket requests")
    parser.add_argument("--ratings", type=int, default=20000, help="ratings published (one per served ticket)")
    parser.add_argument("--devices", type=int, default=8, help="rating terminals publishing at once")
    parser.add_argument("--profile", metavar="PREFIX", help="run the server with every thread under cProfile")
    parser.add_argument("--only", choices=["request_response", "ingest"], help="run one server phase (plus relay for ingest)")
    parser.add_argument("--serve-profiled", metavar="SITE_TOML", help=argparse.SUPPRESS)
    parser.add_argument("--relay-subscriber", nargs=4, metavar=("HOST", "PORT", "SITE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_profiled:
        return serve_profiled(args.serve_profiled, args.profile)
    if args.relay_subscriber:
        host, port, site, expected = args.relay_subscriber
        return relay_subscriber(host, int(port), site, int(expected))
    if not mosquitto_path():
        print(json.dumps({"benchmark": "mqtt", "error": "mosquitto is not installed"}))
        return 1

    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "mqtt"}
    servers: dict[str, dict] = {}
    if args.only in (None, "request_response"):
        request_response, servers["request_response"] = run_request_response(args.requests, args.profile)
        result["request_response"] = request_response
    if args.only in (None, "ingest"):
        ingest, servers["ingest"], prepared = run_ingest(args.ratings, args.devices, args.profile)
        relay_one = run_relay(prepared, 1)
        relay_many = run_relay(prepared, args.devices)
        ceiling = max((r for r in (relay_one, relay_many) if r["per_s"]), key=lambda r: r["per_s"], default=None)
        result["ingest"] = ingest
        result["broker_relay"] = {
            "messages": ceiling["messages"] if ceiling else relay_one["messages"],
            "per_s": ceiling["per_s"] if ceiling else None,
            "publishers_of_fastest": ceiling["publishers"] if ceiling else None,
            "qos": 1,
            "subscriber": "persistent session (clean_start False), server's filters, own process",
            "one_publisher": relay_one,
            f"{args.devices}_publishers": relay_many,
        }
        rate = ingest["ratings_per_s"]
        result["ratio_ingest_to_relay"] = round(rate / ceiling["per_s"], 3) if rate and ceiling else None
    targets: dict[str, Any] = {
        "p99_ms": TARGET_P99_MS,
        "ratings_per_s": TARGET_RATINGS_PER_S,
        "fraction_of_relay": TARGET_RELAY_FRACTION,
    }
    if "request_response" in result:
        p99 = result["request_response"]["p99_ms"]
        targets["met_p99"] = p99 is not None and p99 <= TARGET_P99_MS
    if "ingest" in result:
        ingest = result["ingest"]
        rate = ingest["ratings_per_s"] or 0
        targets["met_ratings_per_s"] = rate >= TARGET_RATINGS_PER_S
        targets["met_fraction_of_relay"] = (result["ratio_ingest_to_relay"] or 0) >= TARGET_RELAY_FRACTION
        targets["met_zero_loss"] = (ingest["complete_within_budget"] and ingest["lost"] == 0
                                    and ingest["duplicates_counted"] == 0 and ingest["duplicate_msg_ids"] == 0
                                    and ingest["counted"] == ingest["ratings"] and not ingest["rejects"])
    result["targets"] = targets
    result["servers"] = servers
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine_info()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
