"""Account rules without HTTP: password strength, generated passwords, history of changes."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from queue_server import accounts
from queue_server.domain.errors import InvalidInput


@pytest.mark.parametrize("password", [
    "correct horse battery", "mật khẩu dài", "mật-khẩu-dài-123", "Tr4ng-tâm-HCC", "x" * 3 + "abcd" + "y" * 249,
])
def test_strong_enough_passwords_pass(password):
    accounts.check_password_strength(password, "quanly")


@pytest.mark.parametrize(("password", "why"), [
    ("1234567", "7 characters"),
    ("x" * 257, "257 characters"),
    ("abababab", "2 different characters"),
    ("11112222333344", "4 different characters"),
    ("password123", "common"),
    ("Mat Khau 123", "common once folded"),
    ("VietNam123", "common once folded"),
    ("QuanLy-2026!", "contains the username, any case"),
])
def test_weak_passwords_are_refused(password, why):
    with pytest.raises(InvalidInput) as raised:
        accounts.check_password_strength(password, "quanly")
    assert raised.value.code == "weak_password", why
    assert " / " in raised.value.message


def test_a_generated_password_never_contains_the_username(monkeypatch):
    candidates = iter(["xxABxx-first-try", "second-try-ok-123"])
    monkeypatch.setattr(accounts, "generate_password", lambda: next(candidates))
    assert accounts._generate_for("ab") == "second-try-ok-123"


def test_a_generated_password_passes_the_check():
    accounts.check_password_strength(accounts.generate_password())


def test_add_user_records_the_change_on_the_local_day_without_secrets(tmp_path):
    from zoneinfo import ZoneInfo

    from queue_server.store import Store

    store = Store(tmp_path / "motcua.sqlite3")
    try:
        late_evening_utc = datetime(2026, 11, 23, 18, 30, tzinfo=timezone.utc)  # 01:30 on the 24th in Hà Nội
        accounts.add_user(store, "le-thi-cuc", "clerk", "correct horse battery", late_evening_utc, actor="quantri",
                          tz=ZoneInfo("Asia/Ho_Chi_Minh"))
        [entry] = list(store.history())
        assert (entry["day"], entry["kind"], entry["subject"], entry["actor"]) == ("2026-11-24", "user_added", "le-thi-cuc", "quantri")
        assert "correct horse" not in str(entry) and "scrypt" not in str(entry)
    finally:
        store.close()


def test_a_crowd_signing_in_at_once_hashes_two_at_a_time_and_everyone_gets_in(tmp_path, monkeypatch):
    """Each scrypt check holds 32 MiB while it runs: twelve clerks signing in together at opening
    time are checked at most HASHES_AT_ONCE at a time (the real hash, wrapped only to count), and
    every right password still lets its clerk in, every wrong one does not."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from werkzeug.security import check_password_hash

    from queue_server.store import Store

    store = Store(tmp_path / "motcua.sqlite3")
    at = datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc)
    try:
        for n in range(12):
            accounts.add_user(store, f"can-bo-{n:02d}", "clerk", f"mật khẩu số {n:02d}", at)
        running, most = 0, 0
        lock = threading.Lock()

        def counted_check(password_hash: str, password: str) -> bool:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                return check_password_hash(password_hash, password)
            finally:
                with lock:
                    running -= 1

        monkeypatch.setattr(accounts, "check_password_hash", counted_check)
        start = threading.Barrier(24)

        def sign_in(attempt: int):
            n, right = attempt % 12, attempt < 12
            start.wait()
            return accounts.authenticate(store, f"can-bo-{n:02d}", f"mật khẩu số {n:02d}" if right else "sai mật khẩu rồi")

        with ThreadPoolExecutor(max_workers=24) as pool:
            users = list(pool.map(sign_in, range(24)))
        assert [user["username"] if user else None for user in users] == [f"can-bo-{n:02d}" for n in range(12)] + [None] * 12
        assert most == accounts.HASHES_AT_ONCE
    finally:
        store.close()
