"""Shared fixtures: a small centre config, a controllable clock, a real SQLite file, the app."""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest

from queue_server.accounts import add_user, create_device_token
from queue_server.config import Config, parse_config
from queue_server.domain.timeutil import FixedClock
from queue_server.server import Server, build

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",  # as the kiosk-mode TV browser is started
]

# Monday 2026-11-23, 09:00 in Hà Nội (UTC+7): inside opening hours.
MONDAY_9AM = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"

BASE_CONFIG: dict = {
    "site": {"id": "hcc-test", "name": {"vi": "Trung tâm Phục vụ hành chính công (thử)", "en": "Test centre"}},
    "fields": [
        {"id": "dat-dai", "letter": "A", "name": {"vi": "Đất đai", "en": "Land"}, "target_wait_min": 15, "avg_service_min": 10},
        {"id": "ho-tich", "letter": "B", "name": {"vi": "Hộ tịch", "en": "Civil status"}, "target_wait_min": 10, "daily_cap": 5},
        {"id": "kinh-doanh", "letter": "C", "name": {"vi": "Đăng ký kinh doanh", "en": "Business"}},
    ],
    "counters": [
        {"id": "quay-1", "number": 1, "fields": ["dat-dai"]},
        {"id": "quay-2", "number": 2, "fields": ["dat-dai", "ho-tich"]},
        {"id": "quay-3", "number": 3, "fields": ["ho-tich", "kinh-doanh"], "priority_policy": "strict"},
    ],
    "clerks": [
        {"id": "nguyen-van-an", "name": "Nguyễn Văn An", "counters": ["quay-1"]},
        {"id": "tran-thi-binh", "name": "Trần Thị Bình", "counters": ["quay-2"]},
    ],
    "priority": {"policy": "interleaved", "normal_per_priority": 2},
    "holidays": ["2026-12-31", "2027-01-01"],
}


def sample_config(**field_changes) -> Config:
    """The demo centre (open around the clock, so tests on the real clock work), with changes
    per field id, e.g. sample_config(**{"chung-thuc": {"closed": True}})."""
    import tomllib
    from importlib import resources

    with resources.as_file(resources.files("queue_server") / "sample_site.toml") as path:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    for field in data["fields"]:
        field.update(field_changes.get(field["id"], {}))
    return parse_config(data)


def make_config(**overrides) -> Config:
    data = copy.deepcopy(BASE_CONFIG)
    data.update(overrides)
    return parse_config(data)


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_9AM)


@pytest.fixture
def server(tmp_path: Path, config: Config, clock: FixedClock) -> Server:
    built = build(config, tmp_path, clock=clock)
    yield built
    built.store.close()


@pytest.fixture
def service(server: Server):
    return server.service


@pytest.fixture
def client(server: Server):
    return server.app.test_client()


@pytest.fixture
def accounts(server: Server) -> dict:
    """One account per role, and a kiosk device token."""
    now = server.service.now()
    add_user(server.store, "nguyen-van-an", "clerk", PASSWORD, now)
    add_user(server.store, "quanly", "manager", PASSWORD, now)
    add_user(server.store, "quantri", "admin", PASSWORD, now)
    return {"kiosk_token": create_device_token(server.store, "kiosk-01", now)}


def login(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/login", json={"username": username, "password": password})


@pytest.fixture
def clerk(server: Server, accounts):
    test_client = server.app.test_client()
    assert login(test_client, "nguyen-van-an").status_code == 200
    return test_client


@pytest.fixture
def manager(server: Server, accounts):
    test_client = server.app.test_client()
    assert login(test_client, "quanly").status_code == 200
    return test_client


@pytest.fixture
def kiosk(accounts) -> dict:
    return {"Authorization": f"Bearer {accounts['kiosk_token']}"}


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run: Playwright's sync API allows one instance per thread, so
    every folder's page tests (board, console, dashboard, accounts) share this one."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
