"""Benchmark: the lobby board in Chromium, from a clerk's call to the code in every board's DOM, and its weight.

The real server (queue_server.server.build + run_http, i.e. waitress) runs in a child process,
so the browser's driver and this script do not share its GIL, on a free port with its own
temporary data directory: the sample site opened around the clock without daily caps or
holidays, no broker (http_tickets.bench_config_data). A clerk account is written into the
database before the server starts; the bench signs in over the API like the clerk console.

  (a) call → board DOM: B boards (default 20), each `/board?sound=0` in its own browser
      context (its own cookie jar and connection pool, as separate TVs are; 20 tabs of one
      context would share Chrome's 6 connections per host and most streams would never open)
      in one Debian Chromium at 1920×1080. Once every board has its snapshot, the counter is
      opened, then N times (after W warm-up calls that are not counted), on a fixed pace
      (--interval): a ticket is issued in one field, half an interval later the clerk presses
      "next" (POST /api/v1/counters/quay-1/next). The clock starts just before that request
      (time.time(), wall clock, ms) and stops, in each board, when the called code first
      appears in the DOM: an init script's MutationObserver reads the tiles, the "now calling"
      line and the last-calls list after each batch of mutations and records
      performance.timeOrigin + performance.now() (wall clock too; both clocks are checked
      against each other, see clock_check). The code first shows in the counter's tile, from
      the `counter` event that precedes the `call` event. p50/p99/max are over boards × calls.

      Where the time goes, per sample: the request reaching the action (the ticket's
      called_at, set inside the transaction), the server's fan-out (BoardHub.broadcast
      wrapped in the child: when the `counter` event was on every board's queue), the stream
      (that moment → the event dispatched in the page: EventSource is wrapped by the init
      script so its listener runs before the board's own), the board's rendering (event →
      DOM), and the next animation frame after the DOM change. CPU seconds used during the
      calls (and, before any call, by the boards sitting idle) are reported per process: the
      server child, Chromium by process type (renderer, gpu-process, browser, network
      service), Playwright's driver, this script, and an estimate of everything else on the
      machine (another job there skews every figure). Chrome's own main-thread counters of
      the boards (CDP Performance.getMetrics: task, script, style, layout) say how much of a
      renderer's time is the board's JavaScript and how much style, layout and painting.
      --reduced-motion makes the boards prefer reduced motion, which the board's CSS answers
      by not animating the 12-second flash of a called counter: the difference is what that
      animation costs.

  (b) transfer size: a fresh context (empty cache) loads `/board` as a TV does (sound on),
      waits for the snapshot, and every response but the long-lived /board/stream is summed:
      body bytes (Playwright's response.body()) and wire bytes (headers + body as received,
      request.sizes()), and the same from the page's resource timing (transferSize). Also
      reported, outside the target: the snapshot event's size on the stream, and what the
      first spoken call adds (the chime, one voice WAV).

Prints one JSON object.

    .venv/bin/python bench/board_bench.py [--boards 20] [--calls 100] [--interval 0.25]
    .venv/bin/python bench/board_bench.py --sound          # boards with sound on: each call fetches WAVs
    .venv/bin/python bench/board_bench.py --reduced-motion # no flash animation: what it costs
    .venv/bin/python bench/board_bench.py --boards 5       # how the figure moves with the number of boards

Targets: call → DOM p99 <= 50 ms with 20 boards; one fresh board load <= 300 KB (300,000 bytes).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the project from the work tree
    sys.path.insert(0, str(ROOT))

from http_tickets import bench_config_data, free_port  # noqa: E402  (bench/ is sys.path[0])

DATABASE_NAME = "motcua.sqlite3"  # as queue_server.server.DATABASE_NAME
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--autoplay-policy=no-user-gesture-required"]  # as the kiosk-mode TV is started
CLERK = "nguyen-van-an"  # the sample site's clerk of quay-1
PASSWORD = "bench-clerk-password"
COUNTER = "quay-1"
FIELD = "dat-dai"  # letter A; quay-1 serves only this field
TARGET_P99_MS = 50.0
TARGET_BYTES = 300_000
LIVE = "document.body && document.body.dataset.connection === 'live'"
WAIT_S = 30.0

# Installed in every board before its own scripts run. Times are wall clock in ms
# (timeOrigin + now: sub-millisecond, unlike Date.now()).
PROBE = r"""
(() => {
  const clock = () => performance.timeOrigin + performance.now();
  const CODE = /^[A-Z]\d{3,}$/;
  window.__seen = {};    // code -> {tile, latest, calls, first, frame}
  window.__arrive = {};  // code -> when the first counter/call event naming it was dispatched
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      // Added before the board adds its own: runs first when an event is dispatched.
      for (const name of ['counter', 'call']) {
        this.addEventListener(name, (event) => {
          const t = clock();
          let code = null;
          try { code = JSON.parse(event.data).ticket; } catch (error) { return; }
          if (code && !(code in window.__arrive)) window.__arrive[code] = t;
        });
      }
    }
  };
  let framePending = [];
  const mark = (code, where, t) => {
    if (!CODE.test(code)) return;
    const seen = window.__seen[code] || (window.__seen[code] = {});
    if (where in seen) return;
    seen[where] = t;
    if (!('first' in seen)) {
      seen.first = t;
      seen.where = where;
      framePending.push(code);
    }
  };
  const scan = () => {
    const t = clock();
    for (const element of document.querySelectorAll('#serving .tile-ticket')) mark(element.textContent, 'tile', t);
    const latest = document.getElementById('latest-ticket');
    if (latest) mark(latest.textContent, 'latest', t);
    for (const element of document.querySelectorAll('#calls .call-ticket')) mark(element.textContent, 'calls', t);
    if (framePending.length) {
      const codes = framePending;
      framePending = [];
      requestAnimationFrame(() => {
        const shown = clock();
        for (const code of codes) window.__seen[code].frame = shown;
      });
    }
  };
  new MutationObserver(scan).observe(document, {childList: true, subtree: true, characterData: true});
})();
"""

RESOURCE_TIMING = """() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
  .map(e => ({url: e.name, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))"""


# --- the server child -----------------------------------------------------------------------------


def serve(config_path: Path, trace_path: Path) -> None:
    """Child process: the real server, with BoardHub.broadcast timed for events naming a ticket."""
    logging.basicConfig(level=logging.WARNING)
    from display_board import live
    from queue_server.config import parse_config
    from queue_server.server import build, run_http

    trace: list[dict] = []
    broadcast = live.BoardHub.broadcast

    def timed(self, event, data):
        started = time.time()
        broadcast(self, event, data)
        if event in ("counter", "call") and isinstance(data, dict) and data.get("ticket"):
            trace.append({"event": event, "code": data["ticket"], "start_ms": started * 1000,
                          "end_ms": time.time() * 1000, "boards": len(self._clients)})

    live.BoardHub.broadcast = timed
    config = parse_config(json.loads(config_path.read_text()))
    server = build(config, Path(config.server.data_dir))
    try:
        run_http(server, config.server.host, config.server.port)
    except KeyboardInterrupt:  # SIGTERM, see run_http
        pass
    finally:
        trace_path.write_text(json.dumps(trace))


class RunningServer:
    def __init__(self) -> None:
        from queue_server.accounts import add_user
        from queue_server.config import parse_config
        from queue_server.store import Store

        self._tmp = tempfile.TemporaryDirectory(prefix="motcua-board-bench-")
        self.data_dir = Path(self._tmp.name)
        port = free_port()
        data = bench_config_data(self.data_dir, port)
        self.config = parse_config(data)
        config_path = self.data_dir / "bench-config.json"
        config_path.write_text(json.dumps(data))
        store = Store(self.data_dir / DATABASE_NAME)
        add_user(store, CLERK, "clerk", PASSWORD, datetime.now(timezone.utc))
        store.close()
        self.trace_path = self.data_dir / "broadcast-trace.json"
        self._stderr = open(self.data_dir / "server-stderr.txt", "w+")  # a file: a full pipe would block the child
        self.child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(config_path), "--trace", str(self.trace_path)],
            cwd=ROOT, stderr=self._stderr, stdout=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise RuntimeError(f"server exited with {self.child.returncode}: {self.stderr_tail()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not come up")

    def stop(self) -> list[dict]:
        self.child.terminate()
        try:
            self.child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        try:
            return json.loads(self.trace_path.read_text())
        except (OSError, ValueError):
            return []

    def stderr_tail(self) -> list[str]:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().strip().splitlines()[-8:]

    def cleanup(self) -> None:
        self._stderr.close()
        self._tmp.cleanup()


# --- figures --------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


def dist(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p90_ms": round(percentile(ordered, 90), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
        "min_ms": round(ordered[0], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


class CpuMeter:
    """CPU seconds used by this process's descendants (server child, Chromium, Playwright's driver)."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.server_pid = server_pid
        self.start = self._sample()
        psutil.cpu_percent(None)
        self.started = time.perf_counter()

    def _group(self, process) -> str:
        if process.pid == self.server_pid:
            return "server"
        name = process.name().lower()
        if "chrom" in name:
            kind = next((arg[len("--type="):] for arg in process.cmdline() if arg.startswith("--type=")), "browser")
            if kind == "utility":  # the network service, audio, storage…
                kind = next((arg.split("=", 1)[1].rsplit(".", 1)[-1] for arg in process.cmdline()
                             if arg.startswith("--utility-sub-type=")), kind)
            return f"chromium.{kind}"
        if "node" in name:
            return "playwright_driver"
        return "other"

    def _sample(self) -> dict[int, tuple[str, float]]:
        found = {}
        for process in self.psutil.Process().children(recursive=True):
            try:
                times = process.cpu_times()
                found[process.pid] = (self._group(process), times.user + times.system)
            except self.psutil.Error:
                pass
        me = self.psutil.Process().cpu_times()
        found[os.getpid()] = ("bench_python", me.user + me.system)
        return found

    def stop(self) -> dict:
        wall = time.perf_counter() - self.started
        machine_pct = self.psutil.cpu_percent(None)
        end = self._sample()
        used: dict[str, float] = {}
        for pid, (group, seconds) in end.items():
            used[group] = used.get(group, 0.0) + seconds - self.start.get(pid, (group, 0.0))[1]
        cpus = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 2),
            "cpu_s": {group: round(seconds, 2) for group, seconds in sorted(used.items())},
            "share_of_all_cpus_pct": {group: round(100 * seconds / (wall * cpus), 1) for group, seconds in sorted(used.items())},
            "machine_busy_pct": machine_pct,
            # Busy time of processes not started by this bench (another job on the machine skews everything).
            "others_busy_pct_estimate": round(max(0.0, machine_pct - 100 * sum(used.values()) / (wall * cpus)), 1),
            "chromium_cpu_s": round(sum(v for k, v in used.items() if k.startswith("chromium")), 2),
            "chromium_processes": sum(1 for group, _ in end.values() if group.startswith("chromium")),
        }


# --- (a) call → DOM ------------------------------------------------------------------------------


def open_boards(browser, url: str, count: int, viewport: tuple[int, int], reduced_motion: bool) -> tuple[list, float]:
    started = time.perf_counter()
    pages = []
    for _ in range(count):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                      locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                                      reduced_motion="reduce" if reduced_motion else "no-preference")
        context.add_init_script(PROBE)
        page = context.new_page()
        page.set_default_timeout(WAIT_S * 1000)
        page.goto(url, wait_until="commit")
        pages.append(page)
    for page in pages:
        page.wait_for_function(LIVE)
    return pages, time.perf_counter() - started


class StreamBoard(threading.Thread):
    """A board connected without a browser: it reads /board/stream over HTTP as a TV's EventSource
    does and notes (wall clock, ms) when each ticket code first appears in a `counter` or `call`
    event. The server cannot tell it from a TV: it holds a stream and a queue on the hub, and
    every event is encoded and written to it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="stream-board")
        self.url = url
        self.seen: dict[str, float] = {}
        self.live = threading.Event()
        self.response: requests.Response | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.response = requests.get(f"{self.url}/board/stream", stream=True, timeout=(WAIT_S, None))
            buffer = b""
            for chunk in self.response.iter_content(chunk_size=None):
                now_ms = time.time() * 1000
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    name, data = None, None
                    for line in block.decode().split("\n"):
                        if line.startswith("event: "):
                            name = line[len("event: "):]
                        elif line.startswith("data: "):
                            data = line[len("data: "):]
                    if name == "snapshot":
                        self.live.set()
                    elif name in ("counter", "call") and data:
                        code = json.loads(data).get("ticket")
                        if code and code not in self.seen:
                            self.seen[code] = now_ms
        except Exception as exc:  # closed by stop(), or a real failure (reported)
            if self.response is None or not getattr(self, "_stopping", False):
                self.error = repr(exc)

    def stop(self) -> None:
        self._stopping = True
        if self.response is not None:
            self.response.close()


def open_stream_boards(url: str, count: int) -> list[StreamBoard]:
    boards = [StreamBoard(url) for _ in range(count)]
    for board in boards:
        board.start()
    for board in boards:
        if not board.live.wait(WAIT_S):
            raise RuntimeError(f"a stream board got no snapshot: {board.error}")
    return boards


MAIN_THREAD_METRICS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration",
                       "RecalcStyleCount", "LayoutCount")


class RendererMetrics:
    """Chrome's own counters of each board's main thread (CDP Performance.getMetrics), summed over boards."""

    def __init__(self, pages) -> None:
        self.sessions = []
        for page in pages:
            session = page.context.new_cdp_session(page)
            session.send("Performance.enable", {"timeDomain": "threadTicks"})
            self.sessions.append(session)

    def read(self) -> dict[str, float]:
        total = dict.fromkeys(MAIN_THREAD_METRICS, 0.0)
        for session in self.sessions:
            for metric in session.send("Performance.getMetrics")["metrics"]:
                if metric["name"] in total:
                    total[metric["name"]] += metric["value"]
        return total

    @staticmethod
    def delta(before: dict, after: dict, calls: int, boards: int) -> dict:
        out = {}
        for name in MAIN_THREAD_METRICS:
            value = after[name] - before[name]
            if name.endswith("Duration"):
                out[f"{name}_s"] = round(value, 3)
                out[f"{name}_ms_per_board_per_call"] = round(1000 * value / max(1, calls * boards), 2)
            else:
                out[name] = int(value)
        return out


def clock_check(pages) -> dict:
    """Each page's wall clock read between two of Python's: how far outside that window it falls."""
    outside, spread = [], []
    for page in pages:
        before = time.time() * 1000
        value = page.evaluate("[performance.timeOrigin + performance.now(), Date.now()]")
        after = time.time() * 1000
        outside.append(max(before - value[0], value[0] - after, 0.0))
        spread.append(abs(value[0] - value[1]))
    return {"page_clock_outside_python_window_max_ms": round(max(outside), 3),
            "timeorigin_vs_date_now_max_ms": round(max(spread), 3)}


def login(url: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{url}/api/v1/login", json={"username": CLERK, "password": PASSWORD}, timeout=10)
    response.raise_for_status()
    session.post(f"{url}/api/v1/counters/{COUNTER}/open", timeout=10).raise_for_status()
    return session


def run_calls(url: str, session: requests.Session, total: int, interval_s: float) -> list[dict]:
    """`total` tickets issued and called on a fixed pace; what Python saw of each call."""
    calls = []
    started = time.perf_counter() + 0.05
    for i in range(total):
        slot = started + i * interval_s
        time.sleep(max(0.0, slot - time.perf_counter()))
        issued = session.post(f"{url}/api/v1/tickets", json={"field": FIELD}, timeout=10)
        if issued.status_code != 201:
            raise RuntimeError(f"issuing failed: {issued.status_code} {issued.text[:200]}")
        code = issued.json()["code"]
        time.sleep(max(0.0, slot + interval_s / 2 - time.perf_counter()))
        t0 = time.time() * 1000  # just before the call request
        response = session.post(f"{url}/api/v1/counters/{COUNTER}/next", timeout=10)
        t_response = time.time() * 1000
        if response.status_code != 200:
            raise RuntimeError(f"calling failed: {response.status_code} {response.text[:200]}")
        view = response.json()
        if view["ticket"] != code:
            raise RuntimeError(f"called {view['ticket']}, expected {code}")
        called = next(t for t in view["tickets"] if t["code"] == code)
        called_at = datetime.fromisoformat(called["called_at"]).timestamp() * 1000
        calls.append({"code": code, "t0": t0, "response": t_response, "called_at": called_at})
    return calls


def collect(pages, codes: list[str]) -> tuple[list[dict], int]:
    """Each board's records, after waiting (bounded) for every code to show everywhere."""
    deadline = time.monotonic() + 10
    records, timed_out = [], 0
    for page in pages:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            page.wait_for_function("codes => codes.every(c => window.__seen[c] && 'frame' in window.__seen[c])",
                                   arg=codes, timeout=remaining * 1000)
        except Exception:  # reported as missing samples below
            timed_out += 1
        records.append(page.evaluate("({seen: window.__seen, arrive: window.__arrive})"))
    return records, timed_out


def analyse(calls: list[dict], records: list[dict], trace: list[dict]) -> dict:
    broadcast = {}
    boards_at_broadcast = set()
    for entry in trace:
        if entry["event"] == "counter" and entry["code"] not in broadcast:
            broadcast[entry["code"]] = entry
            boards_at_broadcast.add(entry["boards"])
    first, tile, latest, calls_list, frame = [], [], [], [], []
    per_call_slowest, per_board_p50 = [], []
    parts = {"request_to_action": [], "action_to_fanout_done": [], "fanout_to_page_event": [],
             "page_event_to_dom": [], "dom_to_next_frame": [], "http_response": []}
    missing = 0
    where_first: dict[str, int] = {}
    slowest: list[tuple[float, int, str]] = []
    for call in calls:
        parts["request_to_action"].append(call["called_at"] - call["t0"])
        parts["http_response"].append(call["response"] - call["t0"])
        fanout = broadcast.get(call["code"])
        if fanout:
            parts["action_to_fanout_done"].append(fanout["end_ms"] - call["called_at"])
    for board, record in enumerate(records):
        board_values = []
        for call in calls:
            seen = record["seen"].get(call["code"])
            if not seen or "first" not in seen:
                missing += 1
                continue
            value = seen["first"] - call["t0"]
            first.append(value)
            board_values.append(value)
            slowest.append((value, board, call["code"]))
            where_first[seen["where"]] = where_first.get(seen["where"], 0) + 1
            for key, bucket in (("tile", tile), ("latest", latest), ("calls", calls_list), ("frame", frame)):
                if key in seen:
                    bucket.append(seen[key] - call["t0"])
            arrived = record["arrive"].get(call["code"])
            fanout = broadcast.get(call["code"])
            if arrived is not None:
                parts["page_event_to_dom"].append(seen["first"] - arrived)
                if fanout:
                    parts["fanout_to_page_event"].append(arrived - fanout["end_ms"])
            if "frame" in seen:
                parts["dom_to_next_frame"].append(seen["frame"] - seen["first"])
        per_board_p50.append(percentile(sorted(board_values), 50))
    by_code: dict[str, list[float]] = {}
    for value, _, code in slowest:
        by_code.setdefault(code, []).append(value)
    per_call_slowest = [max(values) for values in by_code.values()]
    slowest.sort(reverse=True)
    result = dist(first)
    result.update({
        "samples_expected": len(calls) * len(records),
        "samples_missing": missing,
        "first_shown_in": where_first,
        "by_element": {"counter_tile": dist(tile), "now_calling_line": dist(latest), "last_calls_list": dist(calls_list)},
        "to_next_animation_frame": dist(frame),
        "all_boards_updated_per_call": dist(per_call_slowest),
        "per_board_p50_ms": {"min": round(min(v for v in per_board_p50 if v is not None), 2),
                             "max": round(max(v for v in per_board_p50 if v is not None), 2)} if first else None,
        "slowest_samples": [{"ms": round(v, 2), "board": b, "code": c} for v, b, c in slowest[:5]],
        "breakdown": {name: dist(values) for name, values in parts.items()},
        "boards_on_hub_at_fanout": sorted(boards_at_broadcast),
    })
    return result


def stream_board_latency(calls: list[dict], boards: list[StreamBoard]) -> dict | None:
    if not boards:
        return None
    values, missing = [], 0
    for board in boards:
        for call in calls:
            seen = board.seen.get(call["code"])
            if seen is None:
                missing += 1
            else:
                values.append(seen - call["t0"])
    errors = [board.error for board in boards if board.error]
    return dist(values) | {"samples_missing": missing, **({"errors": errors} if errors else {})}


# --- (b) transfer size ---------------------------------------------------------------------------


def measure_transfer(browser, url: str, last_code: str | None) -> dict:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(f"{url}/board")  # as the TV: sound on
    page.wait_for_function(LIVE)
    page.wait_for_timeout(300)  # anything started by the first render
    items, body_total, wire_total = [], 0, 0
    stream_seen = False
    for response in responses:
        path = urlsplit(response.url).path
        if path == "/board/stream":
            stream_seen = True
            continue
        body = len(response.body())
        sizes = response.request.sizes()
        wire = sizes["responseHeadersSize"] + sizes["responseBodySize"]
        body_total += body
        wire_total += wire
        items.append({"path": path, "status": response.status, "body_bytes": body, "wire_bytes": wire,
                      "content_encoding": response.headers.get("content-encoding")})
    timing = [entry for entry in page.evaluate(RESOURCE_TIMING) if urlsplit(entry["url"]).path != "/board/stream"]
    context.close()
    result = {
        "url": "/board",
        "responses": items,
        "body_bytes": body_total,
        "wire_bytes": wire_total,
        "resource_timing": {"transfer_size": sum(e["transfer"] for e in timing),
                            "encoded_body": sum(e["encoded"] for e in timing),
                            "decoded_body": sum(e["decoded"] for e in timing)},
        "stream_excluded": stream_seen,
        "not_counted": {"snapshot_event_bytes": snapshot_size(url)},
    }
    result["not_counted"].update(first_call_audio(url, last_code))
    return result


def snapshot_size(url: str) -> int | None:
    """The first event on a fresh /board/stream connection (retry + snapshot), in bytes."""
    with requests.get(f"{url}/board/stream", stream=True, timeout=10) as response:
        buffer = b""
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            start = buffer.find(b"event: snapshot\n")
            end = buffer.find(b"\n\n", start) if start >= 0 else -1
            if end >= 0:
                return end + 2
            if len(buffer) > 10_000_000:
                break
    return None


def first_call_audio(url: str, code: str | None) -> dict:
    chime = requests.get(f"{url}/board/static/chime.wav", timeout=10)
    out = {"chime_wav_bytes": len(chime.content)}
    if code:
        voice = requests.get(f"{url}/board/voice/{code}/{COUNTER}.wav?lang=vi&style=number", timeout=30)
        out["voice_vi_wav_bytes"] = len(voice.content) if voice.status_code == 200 else f"HTTP {voice.status_code}"
    return out


# --- main ---------------------------------------------------------------------------------------


def machine_info(browser_version: str | None) -> dict:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "waitress": version("waitress"),
        "playwright": version("playwright"),
        "chromium": browser_version,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--calls", type=int, default=100, help="calls measured (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="calls before the measured ones, not counted")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between calls")
    parser.add_argument("--viewport", default="1920x1080", help="each board's size, WxH")
    parser.add_argument("--sound", action="store_true", help="boards with sound on (each call fetches the chime and WAVs)")
    parser.add_argument("--reduced-motion", action="store_true",
                        help="boards prefer reduced motion (the board's CSS then stops the flash animation): what the animation costs")
    parser.add_argument("--stream-boards", type=int, default=0,
                        help="further boards connected as plain HTTP stream readers (no browser): "
                             "each TV has its own computer, so '--boards 2 --stream-boards 18' is 20 boards "
                             "connected without 20 browsers sharing this machine's cores")
    parser.add_argument("--idle-s", type=float, default=3.0, help="seconds the boards sit connected, before any call, to measure their idle CPU")
    parser.add_argument("--serve", metavar="CONFIG_JSON", help=argparse.SUPPRESS)  # the child's entry point
    parser.add_argument("--trace", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), Path(args.trace))
        return 0

    from playwright.sync_api import sync_playwright

    viewport = tuple(int(x) for x in args.viewport.lower().split("x"))
    started = time.perf_counter()
    server = RunningServer()
    trace: list[dict] = []
    try:
        server.wait_until_up()
        board_url = f"{server.url}/board" + ("" if args.sound else "?sound=0")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            browser_version = browser.version
            pages, ready_s = open_boards(browser, board_url, args.boards, viewport, args.reduced_motion)
            stream_boards = open_stream_boards(server.url, args.stream_boards)
            clocks = clock_check(pages)
            renderers = RendererMetrics(pages)
            idle_meter = CpuMeter(server.child.pid)
            time.sleep(args.idle_s)  # connected, nothing happening: the boards' own cost (clock, layout)
            idle_cpu = idle_meter.stop()
            session = login(server.url)
            run_calls(server.url, session, args.warmup, args.interval)
            meter = CpuMeter(server.child.pid)
            main_before = renderers.read()
            calls = run_calls(server.url, session, args.calls, args.interval)
            cpu = meter.stop()
            main_threads = RendererMetrics.delta(main_before, renderers.read(), len(calls), len(pages))
            records, timed_out = collect(pages, [call["code"] for call in calls])
            for board in stream_boards:
                board.stop()
            stream_latency = stream_board_latency(calls, stream_boards)
            for page in pages:
                page.context.close()
            transfer = measure_transfer(browser, server.url, calls[-1]["code"] if calls else None)
            browser.close()
    finally:
        trace = server.stop()
        stderr_tail = server.stderr_tail()
        server.cleanup()

    latency = analyse(calls, records, trace)
    latency_ok = latency.get("p99_ms") is not None and latency["p99_ms"] <= TARGET_P99_MS and latency["samples_missing"] == 0
    result = {
        "benchmark": "board_bench",
        "setup": {
            "server": "waitress (child process), sample site open 24/7, no broker",
            "boards": args.boards, "board_url": urlsplit(board_url).path + ("" if args.sound else "?sound=0"),
            "browser_contexts": args.boards, "stream_boards": args.stream_boards,
            "boards_connected": args.boards + args.stream_boards,
            "viewport": args.viewport, "reduced_motion": args.reduced_motion,
            "calls": args.calls, "warmup_calls": args.warmup, "interval_s": args.interval,
            "boards_ready_s": round(ready_s, 2), "clock_check": clocks,
        },
        "call_to_dom": latency | {"boards_not_complete_at_deadline": timed_out},
        # The browserless boards: call → the event naming the ticket read off the stream.
        "stream_boards_call_to_event": stream_latency,
        "cpu_idle_boards_before_calls": idle_cpu,
        "cpu_during_calls": cpu,
        "board_main_threads_during_calls": main_threads,
        "transfer": transfer,
        "targets": {
            "call_to_dom_p99_ms": TARGET_P99_MS,
            "board_load_bytes": TARGET_BYTES,
            "met_call_to_dom_p99": latency_ok,
            "met_board_load_bytes": max(transfer["wire_bytes"], transfer["body_bytes"]) <= TARGET_BYTES,
        },
        "total_s": round(time.perf_counter() - started, 1),
        "machine": machine_info(browser_version),
    }
    if stderr_tail:
        result["server_stderr_tail"] = stderr_tail
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
