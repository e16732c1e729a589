"""Device health from MQTT: birth and Last Will, last heard from, printer state, shown by the API."""
from __future__ import annotations

import time

from queue_server.accounts import add_user
from queue_server.mqtt import contract
from queue_server.mqtt.client import make_client, connect_and_wait
from queue_server.server import Server

from .conftest import WAIT_S, connected
from .test_link import SITE, app, device, latest, link, publish  # noqa: F401 - fixtures reused


def wait_until(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # polling the database: the link writes from its own thread
    raise AssertionError(f"timed out waiting for {what}")


def device_row(app: Server, device_id: str) -> dict | None:
    return next((d for d in app.store.list_devices() if d["device_id"] == device_id), None)


def test_birth_last_will_and_printer_state_reach_the_devices_table(app: Server, link, mosquitto, clients) -> None:
    kiosk = make_client("kiosk-07", will=(contract.topic_device_status(SITE, "kiosk-07"), b"offline", True))
    connect_and_wait(kiosk, mosquitto.host, mosquitto.port, timeout=WAIT_S)
    publish(kiosk, contract.topic_device_status(SITE, "kiosk-07"), b"online")
    wait_until(lambda: (device_row(app, "kiosk-07") or {}).get("status") == "online", "kiosk-07 online")

    publish(kiosk, contract.topic_printer(SITE, "kiosk-07"), {"msg_id": "kiosk-07:1:1", "state": "paper_out", "detail": "hết giấy"})
    row = wait_until(lambda: (r := device_row(app, "kiosk-07")) and r["printer_state"] == "paper_out" and r, "printer state")
    assert row["printer_detail"] == "hết giấy"

    # The network drops without a DISCONNECT: the broker sends the Last Will.
    kiosk.socket().close()
    wait_until(lambda: (device_row(app, "kiosk-07") or {}).get("status") == "offline", "kiosk-07 offline by its Last Will")
    kiosk.loop_stop()

    # When and on which topic each device was last heard from is written in batches (every 2 s).
    row = wait_until(lambda: (r := device_row(app, "kiosk-07")) and r["last_seen_at"] and r["last_topic"] and r,
                     "last heard from")
    assert row["last_topic"].endswith("/status")


def test_managers_see_devices_through_the_api(app: Server, link, mosquitto, clients) -> None:
    sender = connected(clients, mosquitto, "rating-03")
    publish(sender, contract.topic_device_status(SITE, "rating-03"), b"online")
    wait_until(lambda: device_row(app, "rating-03"), "rating-03 known")
    add_user(app.store, "quanly", "manager", "mật khẩu dài", app.service.now())
    web = app.app.test_client()
    assert web.get("/api/v1/devices").status_code == 401
    assert web.post("/api/v1/login", json={"username": "quanly", "password": "mật khẩu dài"}).status_code == 200
    devices = {d["device_id"]: d for d in web.get("/api/v1/devices").get_json()}
    assert devices["rating-03"]["status"] == "online"
