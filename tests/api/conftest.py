"""Fixtures for the HTTP API tests: fast accounts, callers by role, and JSON error checks."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.security import generate_password_hash

from queue_server.accounts import create_device_token
from tests.conftest import PASSWORD

HANOI = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has no daylight saving time

# The accounts' own hashing (scrypt, ~0.1 s a hash) is covered by test_auth_api; here the test
# users get a cheap hash so that a hundred API tests do not spend their time in key stretching.
# Logging in still goes through the real endpoint and the real check_password_hash.
_CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given in the centre's local time (UTC+7)."""
    return datetime(year, month, day, hour, minute, tzinfo=HANOI)


@pytest.fixture
def accounts(server) -> dict:
    """One account per role, and a kiosk and a rating-terminal device token."""
    now = server.service.now()
    with server.store.write():
        for username, role in (("nguyen-van-an", "clerk"), ("quanly", "manager"), ("quantri", "admin")):
            server.store.add_user(username, role, _CHEAP_HASH, now)
    return {
        "kiosk_token": create_device_token(server.store, "kiosk-01", now),
        "rating_token": create_device_token(server.store, "rating-01", now),
    }


@pytest.fixture
def rater(accounts) -> dict:
    """Headers of the rating terminal at counter 1."""
    return {"Authorization": f"Bearer {accounts['rating_token']}"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is a JSON error `{"error": {"code", "message"}}` with this status; returns the error."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", (response.mimetype, text[:200])
    assert "Traceback" not in text and "<html" not in text.lower() and "<!doctype" not in text.lower()
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], error
    assert isinstance(error.get("message"), str) and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def caller(request, client, kiosk) -> Callable[[str], tuple]:
    """`caller(who)` -> (test client, headers) for who in anon, kiosk, clerk, manager."""

    def pick(who: str):
        if who == "anon":
            return client, {}
        if who == "kiosk":
            return client, kiosk
        return request.getfixturevalue(who), {}

    return pick


def issue(client, headers: dict, field: str = "dat-dai", **body):
    return client.post("/api/v1/tickets", json={"field": field, **body}, headers=headers)


def act(clerk, action: str, counter: str = "quay-1", **kwargs):
    return clerk.post(f"/api/v1/counters/{counter}/{action}", **kwargs)


def rejects(manager) -> dict:
    response = manager.get("/api/v1/rejects")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["counts"]
