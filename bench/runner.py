"""Runs every benchmark in bench/ and writes one JSON file and one Markdown table of their figures.

`bench/run` calls this with the project's virtualenv. Each benchmark runs as its own child
process (as you would run it by hand), one after another so that they do not share the CPUs;
its standard output is its JSON result. Out of each result come the figures the issues set
targets for — value, target, met or not — and a few reported without a target. A benchmark
that crashes, times out or prints no JSON is a row saying so, never a crash of the runner.

Written to bench/results/ (or --out):
  latest.json   the machine, every benchmark's status, command, time and full result, the figures
  latest.md     the machine and the figures as a table (what docs/performance.md shows)
  history/      a timestamped copy of each latest.json (not committed: see .gitignore)

    bench/run                   # every benchmark at its full size (about half an hour on 2 cores)
    bench/run --quick           # smaller runs of each (a few minutes); the table says which
    bench/run --only full_day,rating_bench
    bench/run --list
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the project from the work tree
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
STDERR_TAIL_LINES = 12

MET = "✔ đạt / met"
NOT_MET = "✘ chưa đạt / not met"
FAILED = "✘ lỗi / failed"
NO_TARGET = "—"


@dataclass
class Figure:
    """One row of the table."""

    issue: str
    name: str  # Vietnamese / English
    result: str
    target: str = NO_TARGET
    met: bool | None = None  # None: reported without a target
    bench: str = ""

    def verdict(self) -> str:
        if self.met is None:
            return NO_TARGET
        if not self.met and self.target == NO_TARGET:
            return FAILED  # a benchmark that gave no figure
        return MET if self.met else NOT_MET


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...]
    timeout_s: float
    figures: Callable[[dict, bool], list[Figure]]  # (result, quick) -> rows
    issue: str = ""
    about: str = ""

    def command(self, quick: bool, python: str = sys.executable) -> list[str]:
        return [python, str(ROOT / "bench" / self.script), *(self.quick_args if quick else self.full_args)]


# --- reading each benchmark's result ------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:g} ms"


def http_figures(result: dict, quick: bool) -> list[Figure]:
    one, many, targets = result["sequential_1_client"], result["concurrent"], result["targets"]
    duplicates = one["numbering"]["duplicates"] + many["numbering"]["duplicates"]
    return [
        Figure("#2", "Cấp số qua HTTP, 1 máy khách, p99 / HTTP ticket issue, 1 client, p99",
               f"{_ms(one['p99_ms'])} (p50 {_ms(one['p50_ms'])}, {one['tickets']} tickets)", "≤ 10 ms", targets["met_p99"]),
        Figure("#2", f"Số vé mỗi giây, {many['clients']} máy khách / tickets per second, {many['clients']} clients",
               f"{many['tickets_per_s']:g}/s ({many['tickets']} tickets)", "≥ 500/s", targets["met_throughput"]),
        Figure("#2", "Số thứ tự trùng / duplicate ticket numbers", str(duplicates), "0", targets["met_no_duplicates"]),
    ]


def mqtt_figures(result: dict, quick: bool) -> list[Figure]:
    targets = result["targets"]
    rows = []
    if "request_response" in result:
        rr = result["request_response"]
        rows.append(Figure("#3", "Yêu cầu số qua MQTT → trả lời, p99 / MQTT ticket request → response, p99",
                           f"{_ms(rr['p99_ms'])} (p50 {_ms(rr['p50_ms'])})", "≤ 10 ms", targets["met_p99"]))
    if "ingest" in result:
        ingest = result["ingest"]
        rate = ingest["ratings_per_s"] or ingest.get("rate_at_budget_per_s")
        rows += [
            Figure("#3", "Nhận đánh giá QoS 1 / rating ingest, QoS 1",
                   f"{rate:g}/s ({ingest['ratings']} ratings, {ingest['devices']} terminals)" if rate else "—",
                   "≥ 5,000/s", targets["met_ratings_per_s"]),
            Figure("#3", "So với tốc độ chuyển tiếp của Mosquitto / share of Mosquitto's relay rate",
                   f"{result['ratio_ingest_to_relay']} (relay {result['broker_relay']['per_s']}/s)",
                   "≥ 0.5", targets["met_fraction_of_relay"]),
            Figure("#3", "Đánh giá mất / tính trùng — ratings lost / counted twice",
                   f"{ingest['lost']} / {ingest['duplicates_counted']}", "0 / 0", targets["met_zero_loss"]),
        ]
    return rows


def kiosk_figures(result: dict, quick: bool) -> list[Figure]:
    touch, cold, targets = result["touch_to_printed"], result["cold_start"], result["targets"]
    return [
        Figure("#4", "Chạm → in xong vé, p99 / touch → ticket printed, p99",
               f"{_ms(touch['p99_ms'])} (p50 {_ms(touch['p50_ms'])}, {touch['touches']} touches)", "≤ 300 ms",
               targets["met_p99"]),
        Figure("#4", "Khởi động nguội máy cấp số (lâu nhất) / kiosk cold start (slowest)",
               f"{cold['max_s']:g} s (median {cold.get('median_s', '—')} s, {cold.get('runs', '?')} runs)", "≤ 3 s",
               targets["met_cold_start"]),
    ]


def rating_figures(result: dict, quick: bool) -> list[Figure]:
    latency = result["press_to_counted"]
    return [Figure("#5", "Bấm đánh giá → được tính, p99 / rating press → counted, p99",
                   f"{_ms(latency['p99_ms'])} (p50 {_ms(latency['p50_ms'])}, {result['counted']} presses)", "≤ 20 ms",
                   result["target"]["met"])]


def board_figures(result: dict, quick: bool) -> list[Figure]:
    latency, transfer, targets = result["call_to_dom"], result["transfer"], result["targets"]
    boards = result["setup"]["boards"]
    size = max(transfer["wire_bytes"], transfer["body_bytes"])
    return [
        Figure("#6", f"Gọi số → bảng (DOM), {boards} bảng, p99 / call → board DOM, {boards} boards, p99",
               f"{_ms(latency.get('p99_ms'))} (p50 {_ms(latency.get('p50_ms'))})", "≤ 50 ms (20 boards)",
               targets["met_call_to_dom_p99"]),
        Figure("#6", "Dung lượng tải một bảng / one board's load", f"{size / 1000:.1f} KB", "≤ 300 KB",
               targets["met_board_load_bytes"]),
    ]


def exports_figures(result: dict, quick: bool) -> list[Figure]:
    day, year, targets = result["one_day"], result["one_year_xlsx"], result["targets"]
    tickets = (result.get("data") or {}).get("tickets")
    return [
        Figure("#7", "Xuất một ngày, trung vị (CSV / XLSX / PDF) / one-day export, median",
               " / ".join(f"{day[fmt]['median_ms']:g}" for fmt in ("csv", "xlsx", "pdf")) + " ms", "≤ 200 ms",
               targets["one_day_met"]),
        Figure("#7", "Xuất cả năm ra XLSX, trung vị / one-year XLSX export, median",
               f"{year['median_s']:g} s" + (f", CPU {year['cpu_median_s']:g} s" if "cpu_median_s" in year else "")
               + (f" ({tickets:,} tickets)" if tickets else ""), "≤ 5 s",
               targets["one_year_xlsx_met"]),
    ]


def full_day_figures(result: dict, quick: bool) -> list[Figure]:
    targets, counts, checks, server = result["targets"], result["counts"], result["checks"], result["server"]
    scale = result["setup"]["scale"]
    press = result["press_to_board"]
    failed = sorted(name for name, ok in checks.items() if not ok and name != "all_passed")
    crowd = f"{scale['kiosks']} kiosks, {scale['counters']} counters, {scale['boards']} boards"
    rows = [
        Figure("#9", "Số vé trong ngày nén / tickets in the compressed day",
               f"{counts['kiosk_tickets']:,} in {result['timeline_s']['all_served']:g} s ({crowd})",
               "≥ 20,000 (long form)" if not quick else NO_TARGET,
               targets["met_at_least_20000_tickets"] if not quick else None),
        Figure("#9", "Bấm → số liệu trên bảng, p99, tải cả ngày / press → board figures, p99, full load",
               f"{_ms(press.get('p99_ms'))} (p50 {_ms(press.get('p50_ms'))})", "≤ 100 ms",
               targets["met_press_to_board_p99"]),
        Figure("#9", "Bộ nhớ đỉnh của máy chủ (VmHWM) / server peak memory", f"{server['peak_rss_mb']:g} MB",
               "≤ 150 MB", targets["met_peak_memory"]),
        Figure("#9", "Số liệu = tính lại từ lịch sử; không mất, không tính trùng / figures = history; nothing lost or counted twice",
               "all checks passed" if checks["all_passed"] else "failed: " + ", ".join(failed), "all", checks["all_passed"]),
        Figure("#9", "Yêu cầu số → trả lời, p99, tải cả ngày / ticket request → response, p99, full load",
               _ms(result["ticket_request_to_response"].get("p99_ms"))),
        Figure("#9", "Gọi số → sự kiện trên bảng, p99, tải cả ngày / call → board event, p99, full load",
               _ms(result["call_to_board"].get("p99_ms"))),
        Figure("#9", "Bấm → được tính, p99, tải cả ngày / press → counted, p99, full load",
               _ms(result["press_to_counted"].get("p99_ms"))),
        Figure("#9", "Bấm → ô quầy trên bảng, p99 / press → board counter tile, p99",
               _ms(result["press_to_board_counter_tile"].get("p99_ms"))),
        Figure("#9", "CPU của máy chủ / server CPU",
               f"{server['cpu_s']:g} s ({server['cpu_share_of_one_core_pct']:g} % of one core)"),
    ]
    return rows


BENCHES: list[Bench] = [
    Bench("http_tickets", "http_tickets.py", (), ("--sequential", "500", "--concurrent", "2000"), 300,
          http_figures, "#2", "issuing tickets over HTTP"),
    Bench("mqtt_bench", "mqtt_bench.py", (), ("--requests", "500", "--ratings", "5000"), 900,
          mqtt_figures, "#3", "MQTT request/response, rating ingest, broker relay"),
    Bench("kiosk_bench", "kiosk_bench.py", (), ("--touches", "50", "--cold-starts", "3"), 900,
          kiosk_figures, "#4", "ticket kiosk: touch → printed, cold start"),
    Bench("rating_bench", "rating_bench.py", (), ("--presses", "100",), 600,
          rating_figures, "#5", "rating terminal: press → counted"),
    Bench("board_bench", "board_bench.py", (), ("--calls", "30",), 900,
          board_figures, "#6", "lobby boards in Chromium: call → DOM, transfer size"),
    # The generated year is kept between runs (bench/results/cache, not committed): a minute saved.
    Bench("exports_bench", "exports_bench.py", ("--data", str(RESULTS / "cache" / "exports-year")),
          ("--data", str(RESULTS / "cache" / "exports-year"), "--day-repeats", "5", "--year-repeats", "1"), 1200,
          exports_figures, "#7", "daily-totals exports: one day, one year"),
    # Longer than the day's own time budget (Scale.budget_s, about an hour for the long form).
    Bench("full_day", "full_day.py", ("--quiet",), ("--quiet", "--tickets", "3000", "--day-s", "90"), 5400,
          full_day_figures, "#9", "the compressed full day under full load"),
]


# --- running ------------------------------------------------------------------------------------------


def parse_json_output(stdout: str) -> dict:
    """The benchmark's JSON object: all of standard output, or the last top-level object in it
    (a library may print a line of its own first)."""
    text = stdout.strip()
    try:
        value = json.loads(text)
    except ValueError:
        start = text.rfind("\n{")
        if start < 0:
            raise ValueError("no JSON object on standard output") from None
        value = json.loads(text[start + 1:])
    if not isinstance(value, dict):
        raise ValueError("the output is JSON but not an object")
    return value


def run_bench(bench: Bench, quick: bool, python: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Run one benchmark; its record for latest.json (status ok / failed / timeout)."""
    command = bench.command(quick, python)
    record: dict[str, Any] = {
        "status": "failed", "issue": bench.issue, "about": bench.about, "quick": quick,
        "command": " ".join(shlex.quote(part if i else ".venv/bin/python") for i, part in
                            enumerate(_relative(command))),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    log(f"{bench.name}: {record['command']}")
    started = time.perf_counter()
    try:
        # Its own session (process group): on a time-out the benchmark goes with everything it
        # started — the server child, Mosquitto, Chromium — not only the script itself.
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        record.update(seconds=round(time.perf_counter() - started, 1), error=f"could not start: {exc}")
        return record
    try:
        stdout, stderr = child.communicate(timeout=bench.timeout_s)
    except subprocess.TimeoutExpired:
        stderr = _end_group(child)
        record.update(status="timeout", seconds=round(time.perf_counter() - started, 1),
                      error=f"no result within {bench.timeout_s:g} s", stderr_tail=_tail(stderr))
        log(f"{bench.name}: timed out")
        return record
    completed = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    record.update(seconds=round(time.perf_counter() - started, 1), exit_code=completed.returncode,
                  stderr_tail=_tail(completed.stderr))
    try:
        result = parse_json_output(completed.stdout)
    except ValueError as exc:
        record["error"] = f"exit {completed.returncode}: {exc}"
        log(f"{bench.name}: failed ({record['error']})")
        return record
    record["result"] = result
    if "error" in result:
        record["error"] = str(result["error"])
    else:
        record["status"] = "ok"
    log(f"{bench.name}: {record['status']} in {record['seconds']:g} s")
    return record


def _end_group(child: subprocess.Popen) -> str:
    """SIGTERM to the benchmark's process group (servers stop cleanly), SIGKILL if it lingers;
    returns what it wrote on standard error."""
    for sig, grace_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            _stdout, stderr = child.communicate(timeout=grace_s)
            return stderr or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


def _relative(command: list[str]) -> list[str]:
    return [str(Path(part).relative_to(ROOT)) if part.startswith(str(ROOT) + os.sep) else part for part in command]


def _tail(text: str | bytes | None) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "").strip().splitlines()[-STDERR_TAIL_LINES:]


def figures_of(bench: Bench, record: dict, quick: bool) -> list[Figure]:
    """The rows of one benchmark: its figures, or one failed row saying why."""
    if record["status"] == "ok":
        try:
            rows = bench.figures(record["result"], quick)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            record["status"] = "failed"
            record["error"] = f"unexpected result shape: {exc!r}"
        else:
            for row in rows:
                row.bench = bench.name
            return rows
    why = record.get("error") or record["status"]
    return [Figure(bench.issue, f"{bench.name} ({bench.about})", f"{record['status']}: {why}"[:300], "—", False,
                   bench.name)]


# --- the machine --------------------------------------------------------------------------------------


def _first_line(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _read_key(path: str, key: str, separator: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, value = line.partition(separator)
                if name.strip() == key:
                    return value.strip().strip('"')
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, memory, CPU, OS and the versions of what runs."""
    from queue_server.mqtt.broker import mosquitto_path

    memory_kb = _read_key("/proc/meminfo", "MemTotal", ":")
    mosquitto = mosquitto_path()
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() if commit else ""
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory_kb.split()[0]) / 1024 / 1024, 1) if memory_kb else None,
        "cpu_model": _read_key("/proc/cpuinfo", "model name", ":"),
        "os": f"{_read_key('/etc/os-release', 'PRETTY_NAME', '=') or platform.system()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mosquitto": _first_line([mosquitto, "-h"]) if mosquitto else None,
        "chromium": _first_line(["/usr/bin/chromium", "--version"]),
        "sqlite": sqlite3.sqlite_version,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (commit + (" + local changes" if dirty else "")) if commit else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- writing ------------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m = report["machine"]
    mode = "nhanh / quick (`bench/run --quick`)" if report["quick"] else "đầy đủ / full (`bench/run`)"
    lines = [
        "# Kết quả đo hiệu năng / Benchmark results",
        "",
        f"- Máy / Machine: {m['cores']} lõi / cores · {m['memory_gib']} GiB · {m['cpu_model']} · {m['os']}",
        f"- Phiên bản / Versions: Python {m['python']} · {m['mosquitto'] or 'Mosquitto: none'} · "
        f"{m['chromium'] or 'Chromium: none'} · SQLite {m['sqlite']}",
        f"- Ngày / Date: {m['date']} · chế độ / mode: {mode} · commit {m['commit'] or '?'}"
        + (f" · giữ từ lần trước / kept from an earlier run: {', '.join(report['kept_from_earlier_run'])}"
           if report.get("kept_from_earlier_run") else ""),
        f"- Tải máy lúc bắt đầu / load average at start: {' '.join(str(x) for x in m['load_average_at_start'])}"
        " (other work on the machine skews every figure: see each benchmark's load below)",
        "",
        "| # | Chỉ số / Figure | Kết quả / Result | Mục tiêu / Target | Đạt / Met |",
        "|---|---|---|---|---|",
    ]
    for row in report["figures"]:
        verdict = Figure(**row).verdict()
        lines.append(f"| {row['issue']} | {_cell(row['name'])} | {_cell(row['result'])} | {_cell(row['target'])} | {verdict} |")
    lines += [
        "",
        "| Phép đo / Benchmark | Trạng thái / Status | Thời gian / Time | Tải trước / Load before | Lệnh / Command |",
        "|---|---|---|---|---|",
    ]
    for name, record in report["benches"].items():
        status = "ok" if record["status"] == "ok" else f"**{record['status']}**"
        if record.get("ran_on"):
            status += f" (lần chạy trước / earlier run, {record['ran_on']})"
        load = " ".join(str(x) for x in record.get("load_average_before", []))
        lines.append(f"| {name} | {status} | {record.get('seconds', '—')} s | {load} | `{record['command']}` |")
    met = sum(1 for row in report["figures"] if row["met"] is True)
    judged = sum(1 for row in report["figures"] if row["met"] is not None)
    lines += ["", f"{met} / {judged} chỉ số đạt mục tiêu / figures meet their target.", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    json_path.write_text(text + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    history = out_dir / "history"
    history.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (history / f"{stamp}{'-quick' if report['quick'] else ''}.json").write_text(text + "\n", encoding="utf-8")
    return json_path, md_path


def run_all(benches: list[Bench], *, quick: bool, out_dir: Path, python: str = sys.executable,
            log: Callable[[str], None] = lambda text: None, keep_others: bool = False) -> dict:
    """Every benchmark in turn, then the report files; returns the report. `keep_others`: the
    project's benchmarks not in `benches` keep their rows from the previous latest.json."""
    report: dict[str, Any] = {"quick": quick, "machine": machine(), "benches": {}, "figures": []}
    started = time.perf_counter()
    records = {}
    for bench in benches:
        record = run_bench(bench, quick, python, log)
        record["figures"] = [asdict(row) for row in figures_of(bench, record, quick)]
        records[bench.name] = record
    report["total_s"] = round(time.perf_counter() - started, 1)
    if keep_others:
        records = _earlier_records(out_dir, records, report)
    known = [b.name for b in BENCHES]
    for name in sorted(records, key=lambda name: known.index(name) if name in known else len(known)):
        report["benches"][name] = records[name]
        report["figures"] += records[name].get("figures", [])
    write_report(report, out_dir)
    return report


def _earlier_records(out_dir: Path, records: dict, report: dict) -> dict:
    """The benchmarks not run this time keep their rows from the previous latest.json, saying when."""
    try:
        earlier = json.loads((out_dir / "latest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return records
    kept = {}
    for name, record in earlier.get("benches", {}).items():
        if name in records:
            continue
        record.setdefault("ran_on", earlier.get("machine", {}).get("date"))
        record.setdefault("quick", earlier.get("quick", False))
        if "figures" not in record:  # written before figures were kept per benchmark
            record["figures"] = [row for row in earlier.get("figures", []) if row.get("bench") == name]
        kept[name] = record
    if kept:
        report["kept_from_earlier_run"] = sorted(kept)
    # The earlier run's order, this run's results in their places, new benchmarks last.
    merged = {name: records.get(name) or kept[name] for name in earlier.get("benches", {}) if name in records or name in kept}
    return merged | {name: record for name, record in records.items() if name not in merged}


def rebuild(out_dir: Path) -> dict:
    """The figures again from the results kept in latest.json (after a change to how they are read)."""
    report = json.loads((out_dir / "latest.json").read_text(encoding="utf-8"))
    by_name = {bench.name: bench for bench in BENCHES}
    report["figures"] = []
    for name, record in report["benches"].items():
        bench = by_name.get(name)
        if bench is not None:
            if record["status"] == "failed" and "unexpected result shape" in record.get("error", "") and "result" in record:
                record["status"] = "ok"  # read it again with the current code
                record.pop("error")
            record["figures"] = [asdict(row) for row in figures_of(bench, record, record.get("quick", report["quick"]))]
        report["figures"] += record.get("figures", [])
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
                                         encoding="utf-8")
    (out_dir / "latest.md").write_text(markdown(report), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs of every benchmark (a few minutes)")
    parser.add_argument("--only", help="comma-separated benchmark names (see --list)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.md go (bench/results)")
    parser.add_argument("--list", action="store_true", help="name every benchmark and its command, then stop")
    parser.add_argument("--rebuild", action="store_true",
                        help="run nothing: rewrite latest.md (and the figures in latest.json) from the results kept in latest.json")
    args = parser.parse_args(argv)
    benches = BENCHES
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in {b.name for b in BENCHES}]
        if unknown:
            parser.error(f"không có phép đo / unknown benchmark: {', '.join(unknown)} (see --list)")
        benches = [b for b in BENCHES if b.name in wanted]
    if args.rebuild:
        report = rebuild(args.out)
        print(markdown(report))
        return 0
    if args.list:
        for bench in benches:
            print(f"{bench.name:14} {bench.issue}  {bench.about}\n{'':14} full:  {' '.join(_relative(bench.command(False)))}"
                  f"\n{'':14} quick: {' '.join(_relative(bench.command(True)))}")
        return 0
    report = run_all(benches, quick=args.quick, out_dir=args.out, keep_others=bool(args.only),
                     log=lambda text: print(f"[bench/run] {text}", file=sys.stderr, flush=True))
    print(markdown(report))
    print(f"[bench/run] {args.out / 'latest.json'}, {args.out / 'latest.md'} ({report['total_s']:g} s)", file=sys.stderr)
    return 0 if all(record["status"] == "ok" for record in report["benches"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
