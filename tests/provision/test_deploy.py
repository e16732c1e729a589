"""The deployment files: systemd units that point at what `motcua provision` writes, and the kiosk
and board autostart scripts, which start their program again when it crashes."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from firmware_config.inventory import BrokerSettings
from firmware_config.provision import Layout

from .conftest import REPO, Site, wait_until

DEPLOY = REPO / "firmware_config" / "deploy"
PROVISION_OUT = Path("/etc/motcua/provision")  # the --out the units expect


def unit(name: str) -> dict[str, list[str]]:
    """key → values of a unit file (systemd allows a key more than once)."""
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_units_run_what_provision_writes() -> None:
    layout = Layout(PROVISION_OUT, PROVISION_OUT / "esphome")
    broker = unit("motcua-broker.service")
    assert broker["ExecStart"] == [f"/usr/sbin/mosquitto -c {layout.mosquitto_conf}"]
    assert broker["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert broker["User"] == ["mosquitto"] and broker["Type"] == ["notify"]
    assert f"/var/lib/{broker['StateDirectory'][0]}" == BrokerSettings(host="x").data_dir  # the inventory default

    server = unit("motcua-server.service")
    assert server["EnvironmentFile"] == [str(layout.server_env)]
    assert server["ExecStart"] == ["/opt/motcua/.venv/bin/motcua serve --config /etc/motcua/site.toml"]
    assert "motcua-broker.service" in server["After"][0] and server["Restart"] == ["on-failure"]

    backup = unit("motcua-backup.service")
    assert "motcua backup --config /etc/motcua/site.toml -o" in backup["ExecStart"][0]
    assert unit("motcua-backup.timer")["OnCalendar"]
    for desktop, script in (("motcua-kiosk.desktop", "motcua-kiosk.sh"), ("motcua-board.desktop", "board-kiosk.sh")):
        assert unit(desktop)["Exec"] == [f"/opt/motcua/firmware_config/deploy/{script}"]
        assert os.access(DEPLOY / script, os.X_OK)


def test_systemd_accepts_the_units() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: the quick start installs Debian's systemd"
    for name in ("motcua-broker.service", "motcua-server.service", "motcua-backup.service", "motcua-backup.timer"):
        result = subprocess.run([analyze, "verify", "--man=no", str(DEPLOY / name)], capture_output=True, text=True,
                                timeout=60)
        # /opt/motcua is where the server is installed, not on this machine.
        complaints = [line for line in result.stderr.splitlines() if line and "/opt/motcua" not in line]
        assert complaints == [], (name, result.stderr)


def stub(directory: Path, name: str, exit_status: int) -> Path:
    """A program that records its arguments (and the broker password it was given) and exits."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    record = directory / f"{name}.calls"
    path.write_text(f'#!/bin/sh\necho "$* | ${{MOTCUA_MQTT_PASSWORD:-}}" >>"{record}"\nexit {exit_status}\n')
    path.chmod(0o755)
    return record


def calls(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def run_script(script: str, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(DEPLOY / script), *args], env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_script(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)


def test_the_kiosk_app_is_started_again_after_a_crash(site: Site, tmp_path: Path) -> None:
    site.provisioner().generate()
    device_dir = site.out / "devices" / "kiosk-01"
    record = stub(tmp_path / "bin", "motcua", exit_status=1)  # crashes at once
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MOTCUA_DEVICE_DIR": str(device_dir),
           "MOTCUA_BIN": str(tmp_path / "bin" / "motcua"), "MOTCUA_RESTART_DELAY": "0",
           "MOTCUA_KIOSK_LOG": str(tmp_path / "kiosk.log")}
    process = run_script("motcua-kiosk.sh", env)
    try:
        wait_until(lambda: len(calls(record)) >= 3, "the kiosk app to be started three times")
    finally:
        stop_script(process)
    password = site.password_of("kiosk-01")
    expected = f"kiosk ticket --device kiosk-01 --config {device_dir / 'kiosk.toml'} | {password}"
    assert calls(record)[:3] == [expected] * 3
    assert "exited with status 1" in (tmp_path / "kiosk.log").read_text()


def test_a_rating_terminal_gets_the_rating_app(site: Site, tmp_path: Path) -> None:
    site.provisioner().generate()
    device_dir = site.out / "devices" / "rating-quay-4"
    record = stub(tmp_path / "bin", "motcua", exit_status=0)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MOTCUA_DEVICE_DIR": str(device_dir),
           "MOTCUA_BIN": str(tmp_path / "bin" / "motcua"), "MOTCUA_RESTART_DELAY": "0"}
    process = run_script("motcua-kiosk.sh", env)
    try:
        wait_until(lambda: len(calls(record)) >= 2, "the rating app to be started again after it exits")
    finally:
        stop_script(process)
    assert calls(record)[0].startswith(f"kiosk rating --device rating-quay-4 --config {device_dir / 'rating.toml'}")


def test_the_board_runs_chromium_in_kiosk_mode_and_again_after_a_crash(site: Site, tmp_path: Path) -> None:
    page = tmp_path / "board.html"
    page.write_text("<h1>board</h1>")
    device_dir = tmp_path / "device"
    device_dir.mkdir()
    (device_dir / "board.env").write_text(f"# the page\nMOTCUA_BOARD_URL=file://{page}\n")
    state = tmp_path / "state"
    preferences = state / "motcua" / "chromium" / "Default" / "Preferences"
    preferences.parent.mkdir(parents=True)
    preferences.write_text('{"profile":{"exit_type":"Crashed","exited_cleanly":false}}')
    record = stub(tmp_path / "bin", "chromium-browser", exit_status=139)  # a crash (the first name tried)
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path), "XDG_STATE_HOME": str(state),
           "MOTCUA_DEVICE_DIR": str(device_dir), "MOTCUA_RESTART_DELAY": "0"}
    process = run_script("board-kiosk.sh", env)
    try:
        wait_until(lambda: len(calls(record)) >= 2, "Chromium to be started again")
    finally:
        stop_script(process)
    first = calls(record)[0]
    assert first.startswith("--kiosk ") and f"file://{page}" in first
    assert "--autoplay-policy=no-user-gesture-required" in first  # the spoken call needs no click
    assert f"--user-data-dir={state / 'motcua' / 'chromium'}" in first
    assert preferences.read_text() == '{"profile":{"exit_type":"Normal","exited_cleanly":true}}'
