"""`motcua demo` as a user starts it: it prints logins, answers /healthz and issues tickets."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_health_and_tickets(tmp_path: Path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "queue_server.cli", "demo", "--port", str(port), "--mqtt-port", str(free_port()),
         "--data", str(tmp_path / "demo"), "--host", "127.0.0.1", "--no-simulator"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        printed = []
        token = manager = admin = None
        deadline = time.monotonic() + 60
        while (token is None or manager is None or admin is None) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if match := re.search(r"kiosk-01 token\s+(\S+)", line):
                token = match.group(1)
            if match := re.search(r"manager login\s+(\S+) / (\S+)", line):
                manager = match.groups()
            if match := re.search(r"admin login (\S+) / (\S+)\)", line):
                admin = match.groups()
        assert token and manager and admin, "".join(printed)
        assert any("scheduled export to" in line for line in printed), "".join(printed)  # its thread started
        base = f"http://127.0.0.1:{port}"
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.05)  # the server is still starting: poll until it answers
        assert health is not None and health.json() == {"status": "ok", "db": "ok", "mqtt": "connected"}
        ticket = requests.post(f"{base}/api/v1/tickets", json={"field": "dat-dai"}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert ticket.status_code == 201 and re.fullmatch(r"A\d{3}", ticket.json()["code"])
        session = requests.Session()
        assert session.post(f"{base}/api/v1/login", json={"username": manager[0], "password": manager[1]}, timeout=5).status_code == 200
        assert session.get(f"{base}/api/v1/stats/daily?from=2026-01-01&to=2026-01-02", timeout=5).status_code == 200
        exports = session.get(f"{base}/api/v1/exports/scheduled", timeout=5).json()
        assert exports["enabled"] and exports["folder"] == str(tmp_path / "demo" / "exports")
        admin_session = requests.Session()
        assert admin_session.post(f"{base}/api/v1/login", json={"username": admin[0], "password": admin[1]}, timeout=5).status_code == 200
        assert {user["username"] for user in admin_session.get(f"{base}/api/v1/users", timeout=5).json()} >= {admin[0], manager[0]}
        assert requests.get(f"{base}/api/v1/stats/today", timeout=5).json()["tickets"]["issued"] >= 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
