"""Benchmark: issuing tickets over HTTP against the real server (waitress + Flask + SQLite).

Each phase starts the real server (queue_server.server.build + run_http, i.e. waitress) in a
child process, so the clients do not share its GIL, on a free port with its own temporary data
directory and the sample site opened around the clock with no daily caps or holidays:

  (a) one client (keep-alive requests.Session) issuing N tickets one after another;
  (b) C client threads, each with its own Session, issuing M tickets in total.

Every request carries an Idempotency-Key, as kiosks send one. Nobody is served during the run,
so every ticket stays waiting: the queue grows by one with each ticket, and latency is also
reported against that depth. After each phase the SQLite file is read directly to count
duplicate (service_day, issued_field_id, number) triples and gaps in each field's numbering.
A phase stops early (and says so) when it exceeds its time budget. Prints one JSON object.

    .venv/bin/python bench/http_tickets.py [--sequential 2000] [--concurrent 5000] [--clients 20]
    .venv/bin/python bench/http_tickets.py --profile /tmp/prof   # server under cProfile: /tmp/prof.{phase}.pstats

Targets: p99 <= 10 ms for one client, >= 500 tickets/s with 20 clients, zero duplicates.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SITE = ROOT / "queue_server" / "sample_site.toml"
DATABASE_NAME = "motcua.sqlite3"  # as queue_server.server.DATABASE_NAME
TARGET_P99_MS = 10.0
TARGET_TICKETS_PER_S = 500.0
# Stop a phase rather than run for minutes when the server is far slower than the targets.
PHASE_BUDGET_S = 25.0
DEPTH_STEP = 250  # latency is reported per this many tickets already waiting


def bench_config_data(data_dir: Path, port: int) -> dict:
    """The sample site, open 24/7, without daily caps or holidays, no broker."""
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    for field in data["fields"]:
        field.pop("daily_cap", None)
        field.pop("opening_hours", None)
        field["closed"] = False
    data["holidays"] = []
    data["opening_hours"] = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "open": "00:00", "close": "24:00"}]
    data["server"] = {"host": "127.0.0.1", "port": port, "data_dir": str(data_dir)}
    data["mqtt"] = {"mode": "disabled"}
    return data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the server child -----------------------------------------------------------------------------


def serve(config_path: Path, profile_path: str | None) -> None:
    """Child process: build the real server and run waitress until terminated."""
    import logging
    import signal

    from queue_server.config import parse_config
    from queue_server.server import build, run_http

    logging.basicConfig(level=logging.WARNING)
    config = parse_config(json.loads(config_path.read_text()))
    server = build(config, Path(config.server.data_dir))
    if profile_path:
        install_profiler(server, profile_path, signal)
    run_http(server, config.server.host, config.server.port)


def install_profiler(server, profile_path: str, signal) -> None:
    """cProfile only sees the thread that enabled it, so each waitress worker thread gets its own
    profiler around the WSGI call; on SIGTERM they are merged into one stats file."""
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    local = threading.local()
    inner = server.app.wsgi_app

    def profiled(environ, start_response):
        profile = getattr(local, "profile", None)
        if profile is None:
            profile = local.profile = cProfile.Profile()
            profiles.append(profile)
        profile.enable()
        try:
            return inner(environ, start_response)
        finally:
            profile.disable()

    server.app.wsgi_app = profiled

    def stop(signum, frame):
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(profile_path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)


class RunningServer:
    """A server child on a fresh data directory, with device tokens made before it starts."""

    def __init__(self, devices: list[str], profile_path: str | None) -> None:
        from queue_server.accounts import create_device_token
        from queue_server.config import parse_config
        from queue_server.store import Store

        self._tmp = tempfile.TemporaryDirectory(prefix="motcua-bench-")
        self.data_dir = Path(self._tmp.name)
        port = free_port()
        data = bench_config_data(self.data_dir, port)
        self.config = parse_config(data)  # validated here, so a bad override fails before anything starts
        self.fields = [field.id for field in self.config.fields]
        config_path = self.data_dir / "bench-config.json"
        config_path.write_text(json.dumps(data))
        store = Store(self.data_dir / DATABASE_NAME)
        now = datetime.now(timezone.utc)
        self.tokens = {device: create_device_token(store, device, now) for device in devices}
        store.close()
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(config_path)]
        if profile_path:
            command += ["--profile", profile_path]
        self.child = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        self.base_url = f"http://127.0.0.1:{port}"
        self.stderr = ""

    def wait_until_up(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise RuntimeError(f"server exited with {self.child.returncode}: {self.child.stderr.read()}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)  # waiting for the child to listen; not part of any measurement
        raise RuntimeError("server did not come up")

    def stop(self) -> None:
        self.child.terminate()
        try:
            _, self.stderr = self.child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            _, self.stderr = self.child.communicate()

    def cleanup(self) -> None:
        self._tmp.cleanup()


# --- measuring ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


def ms(value_s: float | None) -> float | None:
    return None if value_s is None else round(value_s * 1000, 2)


def summary(latencies_s: list[float], wall_s: float) -> dict:
    ordered = sorted(latencies_s)
    return {
        "tickets": len(ordered),
        "wall_s": round(wall_s, 3),
        "tickets_per_s": round(len(ordered) / wall_s, 1) if wall_s else None,
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]) if ordered else None,
        "mean_ms": ms(statistics.fmean(ordered)) if ordered else None,
    }


class Issuer:
    """One client: a keep-alive session issuing tickets round-robin over the fields."""

    def __init__(self, base_url: str, token: str, device: str, fields: list[str]) -> None:
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url
        self.device = device
        self.fields = fields
        self.sequence = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}

    def issue_one(self) -> bool:
        self.sequence += 1
        field = self.fields[self.sequence % len(self.fields)]
        # Like a kiosk: every request carries its transaction id, so a retry cannot double-issue.
        headers = {"Idempotency-Key": f"{self.device}:{self.sequence}"}
        started = time.perf_counter()
        response = self.session.post(f"{self.base_url}/api/v1/tickets", json={"field": field}, headers=headers, timeout=60)
        elapsed = time.perf_counter() - started
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code != 201:
            return False
        self.latencies.append(elapsed)
        return True

    def close(self) -> None:
        self.session.close()


def run_sequential(server: RunningServer, count: int) -> dict:
    issuer = Issuer(server.base_url, server.tokens["bench-seq"], "bench-seq", server.fields)
    issuer.issue_one()  # warm-up: connection, first-request imports; not counted
    issuer.latencies.clear()
    started = time.perf_counter()
    for _ in range(count):
        issuer.issue_one()
        if time.perf_counter() - started > PHASE_BUDGET_S:
            break
    wall = time.perf_counter() - started
    issuer.close()
    result = summary(issuer.latencies, wall)
    result["requested"] = count
    result["stopped_at_time_budget"] = result["tickets"] < count
    result["statuses"] = {str(k): v for k, v in sorted(issuer.statuses.items())}
    # Ticket i (from 0) was issued with i + 1 tickets already waiting (the warm-up one included).
    by_depth = {}
    for start in range(0, len(issuer.latencies), DEPTH_STEP):
        chunk = sorted(issuer.latencies[start:start + DEPTH_STEP])
        by_depth[f"{start + 1}-{start + len(chunk)}"] = ms(percentile(chunk, 50))
    result["p50_ms_by_tickets_waiting"] = by_depth
    result["meets_p99_target"] = result["p99_ms"] is not None and result["p99_ms"] <= TARGET_P99_MS
    return result


def run_concurrent(server: RunningServer, clients: int, total: int) -> dict:
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    devices = [f"bench-{i:02d}" for i in range(clients)]
    issuers = [Issuer(server.base_url, server.tokens[device], device, server.fields) for device in devices]
    ready = threading.Barrier(clients + 1)
    deadline = [float("inf")]
    errors: list[BaseException] = []

    def work(issuer: Issuer, count: int) -> None:
        try:
            issuer.session.get(f"{server.base_url}/healthz", timeout=30)  # connect before the start
            ready.wait()
            for _ in range(count):
                issuer.issue_one()
                if time.perf_counter() > deadline[0]:
                    break
        except BaseException as exc:  # reported in the result, never silently lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair, daemon=True) for pair in zip(issuers, per_client)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    deadline[0] = started + PHASE_BUDGET_S
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for issuer in issuers:
        issuer.close()
    latencies = [value for issuer in issuers for value in issuer.latencies]
    statuses: dict[int, int] = {}
    for issuer in issuers:
        for status, n in issuer.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    result = summary(latencies, wall)
    result["clients"] = clients
    result["requested"] = total
    result["stopped_at_time_budget"] = result["tickets"] < total
    result["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    result["client_errors"] = [repr(exc) for exc in errors[:5]]
    result["meets_throughput_target"] = (result["tickets_per_s"] or 0) >= TARGET_TICKETS_PER_S
    return result


def check_numbering(database: Path) -> dict:
    """Duplicates of (service_day, issued_field_id, number) and gaps in each field's numbers."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        duplicates = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM tickets GROUP BY service_day, issued_field_id, number HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        per_field = conn.execute(
            "SELECT service_day, issued_field_id, COUNT(DISTINCT number), MAX(number) "
            "FROM tickets GROUP BY service_day, issued_field_id ORDER BY 1, 2"
        ).fetchall()
        idempotency_rows = conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
    finally:
        conn.close()
    # Numbers run 1, 2, 3... per field and day, so any number below the highest that is absent is a gap.
    fields = {f"{day}/{field}": {"count": distinct, "max": high} for day, field, distinct, high in per_field}
    return {
        "tickets_in_db": total,
        "idempotency_rows": idempotency_rows,
        "duplicates": duplicates,
        "gaps": sum(high - distinct for _, _, distinct, high in per_field),
        "per_field": fields,
    }


def run_phase(name: str, devices: list[str], profile: str | None, measure) -> tuple[dict, dict, dict]:
    profile_path = str(Path(f"{profile}.{name}.pstats").resolve()) if profile else None
    server = RunningServer(devices, profile_path)
    try:
        server.wait_until_up()
        result = measure(server)
    finally:
        server.stop()
    try:
        numbering = check_numbering(server.data_dir / DATABASE_NAME)
        acknowledged = sum(int(n) for status, n in result["statuses"].items() if status in ("200", "201"))
        numbering["tickets_acknowledged"] = acknowledged
        numbering["db_matches_acknowledged"] = numbering["tickets_in_db"] == acknowledged
    finally:
        server.cleanup()
    info = {"threads": server.config.server.threads, "fields": server.fields}
    if server.stderr.strip():
        info["stderr_tail"] = server.stderr.strip().splitlines()[-5:]
    if profile_path:
        info["profile"] = profile_path
    return result, numbering, info


def machine_info() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=2000, help="tickets issued by one client")
    parser.add_argument("--concurrent", type=int, default=5000, help="tickets issued by the concurrent clients in total")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--profile", metavar="PREFIX", help="run the server under cProfile; stats in PREFIX.{phase}.pstats")
    parser.add_argument("--serve", metavar="CONFIG_JSON", help=argparse.SUPPRESS)  # the child's entry point
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.profile)
        return 0

    started = time.perf_counter()
    sequential, sequential_numbering, server_info = run_phase(
        "sequential", ["bench-seq"], args.profile, lambda server: run_sequential(server, args.sequential)
    )
    concurrent, concurrent_numbering, concurrent_info = run_phase(
        "concurrent", [f"bench-{i:02d}" for i in range(args.clients)], args.profile,
        lambda server: run_concurrent(server, args.clients, args.concurrent),
    )
    duplicates = sequential_numbering["duplicates"] + concurrent_numbering["duplicates"]
    result = {
        "benchmark": "http_tickets",
        "server": {"wsgi": "waitress (child process)", "idempotency_key": True, "fresh_database_per_phase": True,
                   "sequential": server_info, "concurrent": concurrent_info},
        "sequential_1_client": sequential | {"numbering": sequential_numbering},
        "concurrent": concurrent | {"numbering": concurrent_numbering},
        "targets": {
            "p99_ms_1_client": TARGET_P99_MS,
            "tickets_per_s_concurrent": TARGET_TICKETS_PER_S,
            "duplicates": 0,
            "met_p99": sequential["meets_p99_target"],
            "met_throughput": concurrent["meets_throughput_target"],
            "met_no_duplicates": duplicates == 0,
        },
        "total_s": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
