"""bench/run's runner: every benchmark's figures in one JSON file and one table; a benchmark that
crashes, hangs or answers nonsense is a failed row, never a crash of the runner."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import runner
from bench.runner import Bench, Figure


def write_script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return str(path)


def value_figures(result: dict, quick: bool) -> list[Figure]:
    return [Figure("#0", "Giá trị / value", f"{result['value']} ms", "≤ 10 ms", result["value"] <= 10)]


@pytest.fixture
def benches(tmp_path: Path) -> list[Bench]:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    quick_flag = "import sys; quick = '--small' in sys.argv\n"
    return [
        Bench("fast", write_script(scripts, "fast.py", quick_flag + "import json; print(json.dumps({'value': 3 if quick else 4}))"),
              (), ("--small",), 30, value_figures, "#0", "meets its target"),
        Bench("slow", write_script(scripts, "slow.py",
                                   "print('a library says hello')\nimport json; print(json.dumps({'value': 42}, indent=2))"),
              (), (), 30, value_figures, "#0", "misses its target, after a stray line"),
        Bench("crash", write_script(scripts, "crash.py", "import sys; print('half', flush=True); sys.exit('boom: no broker')"),
              (), (), 30, value_figures, "#0", "crashes"),
        Bench("hang", write_script(scripts, "hang.py", "import time; time.sleep(120)"),
              (), (), 1, value_figures, "#0", "never answers"),
        Bench("odd", write_script(scripts, "odd.py", "import json; print(json.dumps({'something': 'else'}))"),
              (), (), 30, value_figures, "#0", "answers another shape"),
        Bench("refused", write_script(scripts, "refused.py", "import json; print(json.dumps({'error': 'mosquitto is not installed'}))"),
              (), (), 30, value_figures, "#0", "says it could not run"),
    ]


def test_failing_benchmarks_are_failed_rows_and_the_rest_is_reported(tmp_path: Path, benches: list[Bench]):
    out = tmp_path / "results"
    report = runner.run_all(benches, quick=False, out_dir=out, python=sys.executable)

    statuses = {name: record["status"] for name, record in report["benches"].items()}
    assert statuses == {"fast": "ok", "slow": "ok", "crash": "failed", "hang": "timeout", "odd": "failed",
                        "refused": "failed"}
    assert report["benches"]["crash"]["exit_code"] == 1
    assert "boom: no broker" in report["benches"]["crash"]["stderr_tail"][-1]
    assert "unexpected result shape" in report["benches"]["odd"]["error"]
    assert report["benches"]["refused"]["error"] == "mosquitto is not installed"

    saved = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert saved["benches"]["fast"]["result"] == {"value": 4}
    rows = {row["bench"]: row for row in saved["figures"]}
    assert rows["fast"]["met"] is True and rows["slow"]["met"] is False
    assert all(rows[name]["met"] is False for name in ("crash", "hang", "odd", "refused"))
    assert len(list((out / "history").glob("*.json"))) == 1

    table = (out / "latest.md").read_text(encoding="utf-8")
    assert "lõi / cores" in table and "SQLite" in table and "Python" in table
    verdicts = [line.rsplit(" | ", 1)[1] for line in table.splitlines() if line.startswith("| #0 |")]
    assert verdicts.count(f"{runner.MET} |") == 1
    assert verdicts.count(f"{runner.NOT_MET} |") == 1
    assert verdicts.count(f"{runner.FAILED} |") == 4
    assert "| hang | **timeout** |" in table


def test_quick_mode_runs_the_quick_arguments_and_says_so(tmp_path: Path, benches: list[Bench]):
    report = runner.run_all(benches[:1], quick=True, out_dir=tmp_path, python=sys.executable)
    assert report["benches"]["fast"]["result"] == {"value": 3}
    assert report["benches"]["fast"]["command"].endswith("fast.py --small")
    assert "quick" in (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert len(list((tmp_path / "history").glob("*-quick.json"))) == 1


def test_every_project_benchmark_is_listed_with_its_script():
    names = [bench.name for bench in runner.BENCHES]
    assert names == ["http_tickets", "mqtt_bench", "kiosk_bench", "rating_bench", "board_bench", "exports_bench", "full_day"]
    for bench in runner.BENCHES:
        assert (runner.ROOT / "bench" / bench.script).is_file(), bench.script


def test_unknown_benchmark_names_are_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        runner.main(["--only", "nope", "--list"])
    assert stopped.value.code == 2
    assert "unknown benchmark: nope" in capsys.readouterr().err


def test_a_run_of_some_benchmarks_keeps_the_others_rows_from_the_last_run(tmp_path: Path, benches: list[Bench]):
    runner.run_all(benches[:3], quick=False, out_dir=tmp_path, python=sys.executable)
    report = runner.run_all(benches[1:2], quick=True, out_dir=tmp_path, python=sys.executable, keep_others=True)

    assert list(report["benches"]) == ["fast", "slow", "crash"]
    assert report["kept_from_earlier_run"] == ["crash", "fast"]
    assert "ran_on" in report["benches"]["fast"] and "ran_on" not in report["benches"]["slow"]
    assert [row["bench"] for row in report["figures"]] == ["fast", "slow", "crash"]
    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "earlier run" in table and "kept from an earlier run: crash, fast" in table


def test_a_benchmark_that_hangs_is_ended_with_everything_it_started(tmp_path: Path):
    pid_file = tmp_path / "server.pid"
    script = write_script(tmp_path, "hangs_with_a_server.py", (
        "import subprocess, sys, time\n"
        "server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(server.pid))\n"
        "time.sleep(120)\n"
    ))
    bench = Bench("hangs", script, (), (), 2, value_figures, "#0", "hangs with a child")
    report = runner.run_all([bench], quick=False, out_dir=tmp_path / "out", python=sys.executable)

    assert report["benches"]["hangs"]["status"] == "timeout"
    server_pid = int(pid_file.read_text())
    # The child was in the benchmark's process group: it got the same SIGTERM and is gone.
    status = Path(f"/proc/{server_pid}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()
