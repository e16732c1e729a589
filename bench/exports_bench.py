"""Benchmark: daily-totals exports on a generated year (≥ 300,000 tickets) — one day in each format,
and the whole year as XLSX (and, for reference, as CSV and PDF).

The year is written by tests/exports/yeargen.py (the same generator the export tests use) into
--data DIR, or into a temporary directory. With --data, a directory already holding the same
year (same first/last/per-day/seed, recorded in yeargen.json) is reused, so repeated runs skip the
minute of generation. Each export is what GET /api/v1/exports/daily-totals does, minus HTTP:
`jobs.daily_totals_export(service, first, last, format)` — store reads, figures, tables, file bytes.
For the year XLSX, `stages` splits one extra run into its parts.

Prints one JSON object.

    .venv/bin/python bench/exports_bench.py [--data DIR] [--day-repeats 20] [--year-repeats 3]

Targets: one-day export ≤ 200 ms (each format, median), one-year XLSX export ≤ 5 s (median).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the project from the work tree
    sys.path.insert(0, str(ROOT))

from queue_server.domain.timeutil import FixedClock  # noqa: E402
from queue_server.exports import daily_totals  # noqa: E402
from queue_server.exports.jobs import collector_paused, daily_totals_export  # noqa: E402
from queue_server.exports.periods import figures_by_day_of_records  # noqa: E402
from queue_server.server import DATABASE_NAME  # noqa: E402
from queue_server.service import QueueService  # noqa: E402
from queue_server.store import Store  # noqa: E402
from tests.exports.yeargen import SEED, generate, year_config  # noqa: E402

TARGET_DAY_MS = 200.0
TARGET_YEAR_S = 5.0
FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
BUSY_DAY = date(2026, 10, 12)  # a Monday, the busiest weekday
NOW = datetime(2027, 1, 4, 2, 0, tzinfo=timezone.utc)  # Monday 4 January 2027, 09:00 in Hà Nội


def machine_info() -> dict:
    import reportlab

    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "reportlab": reportlab.Version,
    }


def prepared_store(data_dir: Path, per_day: int) -> tuple[Store, dict]:
    """The year's database, generated unless `data_dir` already holds the same one."""
    marker = data_dir / "yeargen.json"
    wanted = {"first": FIRST.isoformat(), "last": LAST.isoformat(), "per_day": per_day, "seed": SEED}
    if marker.exists() and (data_dir / DATABASE_NAME).exists():
        recorded = json.loads(marker.read_text())
        if {key: recorded.get(key) for key in wanted} == wanted:
            return Store(data_dir / DATABASE_NAME), recorded | {"reused": True}
    (data_dir / DATABASE_NAME).unlink(missing_ok=True)
    store = Store(data_dir / DATABASE_NAME)
    summary = generate(store, year_config(), FIRST, LAST, per_day)
    recorded = wanted | summary.as_dict()
    marker.write_text(json.dumps(recorded))
    return store, recorded | {"reused": False}


def timed(action, repeats: int) -> tuple[list[float], list[float], object]:
    """Wall seconds and CPU seconds (this process) of each run, and the last result. On a machine
    shared with other work the wall time includes waiting for a CPU; the CPU time does not."""
    seconds, cpu_seconds, result = [], [], None
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = action()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    return seconds, cpu_seconds, result


def summary_ms(seconds: list[float], cpu_seconds: list[float]) -> dict:
    return {"median_ms": round(statistics.median(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1),
            "min_ms": round(min(seconds) * 1000, 1), "cpu_median_ms": round(statistics.median(cpu_seconds) * 1000, 1),
            "runs": len(seconds)}


def year_stages(svc: QueueService) -> dict:
    """One year XLSX export split into its parts: wall seconds, and CPU seconds under `cpu`."""
    store, config, stages, cpu = svc.store, svc.config, {}, {}

    def stage(name: str, action):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = action()
        stages[name] = round(time.perf_counter() - started, 2)
        cpu[name] = round(time.process_time() - cpu_started, 2)
        return result

    # The same steps as daily_totals_export: lean ticket and rating records, Dossier objects, the
    # garbage collector held off.
    with collector_paused():
        tickets = stage("load_tickets_s", lambda: store.ticket_records_between(FIRST, LAST))
        ratings = stage("load_ratings_s", lambda: store.rating_records_between(FIRST, LAST))
        dossiers = stage("load_dossiers_s", lambda: store.dossiers_touching(FIRST, LAST))
        figures = stage("figures_period_and_days_s",
                        lambda: figures_by_day_of_records(config, FIRST, LAST, tickets, ratings, dossiers))
        tables = stage("tables_s", lambda: daily_totals.build_tables(config, figures))
        content = stage("xlsx_write_s", lambda: daily_totals.to_xlsx(config, tables, FIRST, LAST))
    stages["cpu"] = cpu
    stages["rows"] = {table.key: len(table.day_rows) + len(table.period_rows) + 1 for table in tables}
    stages["bytes"] = len(content)
    stages["records"] = {"tickets": len(tickets), "ratings": len(ratings), "dossiers": len(dossiers)}
    return stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="keep (and reuse) the generated year here")
    parser.add_argument("--per-day", type=int, default=1250, help="mean tickets per working day (default 1250)")
    parser.add_argument("--day-repeats", type=int, default=20)
    parser.add_argument("--year-repeats", type=int, default=3)
    parser.add_argument("--all-year-formats", action="store_true", help="also time the year as CSV and PDF")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="motcua-exports-bench-") as scratch:
        data_dir = args.data or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        store, data = prepared_store(data_dir, args.per_day)
        try:
            svc = QueueService(year_config(), store, FixedClock(NOW))
            result: dict = {"data": data, "machine": machine_info(), "day": BUSY_DAY.isoformat(), "one_day": {}}
            for fmt in ("csv", "xlsx", "pdf"):
                daily_totals_export(svc, BUSY_DAY, BUSY_DAY, fmt)  # warm: fonts registered, pages cached
                seconds, cpu_seconds, export = timed(lambda: daily_totals_export(svc, BUSY_DAY, BUSY_DAY, fmt), args.day_repeats)
                result["one_day"][fmt] = summary_ms(seconds, cpu_seconds) | {"bytes": len(export.content)}
            seconds, cpu_seconds, export = timed(lambda: daily_totals_export(svc, FIRST, LAST, "xlsx"), args.year_repeats)
            result["one_year_xlsx"] = {
                "median_s": round(statistics.median(seconds), 2), "max_s": round(max(seconds), 2),
                "cpu_median_s": round(statistics.median(cpu_seconds), 2),
                "runs": len(seconds), "bytes": len(export.content), "stages": year_stages(svc),
            }
            if args.all_year_formats:
                for fmt in ("csv", "pdf"):
                    seconds, cpu_seconds, export = timed(lambda: daily_totals_export(svc, FIRST, LAST, fmt), 1)
                    result[f"one_year_{fmt}"] = {"seconds": round(seconds[0], 2), "cpu_s": round(cpu_seconds[0], 2),
                                                 "bytes": len(export.content)}
            day_worst = max(entry["median_ms"] for entry in result["one_day"].values())
            result["targets"] = {
                "one_day_median_ms": TARGET_DAY_MS, "one_day_met": day_worst <= TARGET_DAY_MS,
                "one_year_xlsx_median_s": TARGET_YEAR_S, "one_year_xlsx_met": result["one_year_xlsx"]["median_s"] <= TARGET_YEAR_S,
            }
        finally:
            store.close()
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
