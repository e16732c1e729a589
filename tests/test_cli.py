"""The `motcua` command as a user runs it (a real subprocess)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queue_server.store import Store

MOTCUA = [sys.executable, "-m", "queue_server.cli"]


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MOTCUA, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60,
                          env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])})


@pytest.fixture
def site(tmp_path: Path) -> Path:
    from importlib import resources

    path = tmp_path / "site.toml"
    with resources.as_file(resources.files("queue_server") / "sample_site.toml") as sample:
        shutil.copyfile(sample, path)
    return path


def test_check_config_ok(site):
    result = run("check-config", str(site))
    assert result.returncode == 0 and "OK" in result.stdout


def test_check_config_names_the_key_path_and_exits_1(site):
    site.write_text(site.read_text(encoding="utf-8").replace('letter = "B"', 'letter = "b"'), encoding="utf-8")
    result = run("check-config", str(site))
    assert result.returncode == 1
    assert "fields[1].letter" in result.stderr and "'b'" in result.stderr


def test_user_add_hashes_the_password_and_refuses_weak_ones(site, tmp_path):
    result = run("user", "add", "quanly", "--role", "manager", "--config", str(site), "--password-stdin", stdin="mật-khẩu-dài-123\n")
    assert result.returncode == 0, result.stderr
    store = Store(tmp_path / "motcua.sqlite3")
    try:
        user = store.get_user("quanly")
        assert user["role"] == "manager" and "mật-khẩu" not in user["password_hash"]
    finally:
        store.close()
    weak = run("user", "add", "canbo", "--role", "clerk", "--config", str(site), "--password-stdin", stdin="123\n")
    assert weak.returncode == 1 and "weak_password" in weak.stderr
    again = run("user", "add", "quanly", "--role", "manager", "--config", str(site), "--password-stdin", stdin="another-long-one\n")
    assert again.returncode == 1 and "user_exists" in again.stderr


def test_token_create_prints_a_token_stored_only_as_a_hash(site, tmp_path):
    result = run("token", "create", "--device", "kiosk-01", "--config", str(site))
    assert result.returncode == 0
    token = result.stdout.strip()
    assert token.startswith("mcd_") and len(token) > 30
    store = Store(tmp_path / "motcua.sqlite3")
    try:
        assert store.db.execute("SELECT COUNT(*) FROM devices WHERE token_hash = ?", [token]).fetchone()[0] == 0
        from queue_server.accounts import device_for_token

        assert device_for_token(store, token) == "kiosk-01"
    finally:
        store.close()
    assert run("token", "create", "--device", "Kiosk 01", "--config", str(site)).returncode == 1


def test_every_command_is_documented_in_the_readme():
    from queue_server.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name, sub in commands.items():
        nested = [a for a in sub._actions if isinstance(a, type(parser._subparsers._group_actions[0]))]
        names = [f"motcua {name} {child}" for child in nested[0].choices] if nested else [f"motcua {name}"]
        for full in names:
            assert full in readme, f"{full} is not documented in README.md"
