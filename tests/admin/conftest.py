"""Admin page tests: the board tests' live server and real Chromium, and one account per role."""
from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.board.conftest import board_app, live, page  # noqa: F401  (the same fixtures as the board tests)
from tests.conftest import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
_CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


@pytest.fixture
def people(server) -> dict[str, str]:
    """An admin, a manager and a clerk (quick hashes), username by role."""
    now = server.service.now()
    with server.store.write():
        for username, role in (("quantri", "admin"), ("quanly", "manager"), ("nguyen-van-an", "clerk")):
            server.store.add_user(username, role, _CHEAP_HASH, now)
    return {"admin": "quantri", "manager": "quanly", "clerk": "nguyen-van-an"}


@pytest.fixture(autouse=True)
def cheap_new_hashes(monkeypatch):
    """Accounts made or reset on the page get a quick hash too; the real one is tested in test_auth_api."""
    from functools import partial

    from queue_server import accounts

    monkeypatch.setattr(accounts, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1000"))


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
