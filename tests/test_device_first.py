"""Devices first: other work gives way, for a bounded while, to device messages waiting to be applied."""
from __future__ import annotations

import threading

from queue_server import server as server_module
from queue_server.device_first import GIVE_WAY_MAX_S, DeviceFirst


def _give_way_in_thread(device_first: DeviceFirst) -> tuple[threading.Thread, threading.Event, list[float]]:
    done, waited = threading.Event(), []

    def run() -> None:
        waited.append(device_first.give_way())
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, waited


def test_nothing_waiting_means_no_wait_and_nothing_counted() -> None:
    device_first = DeviceFirst()
    assert device_first.give_way() == 0.0
    assert device_first.waiting == 0 and device_first.gave_way == 0


def test_other_work_waits_until_the_waiting_messages_are_applied() -> None:
    device_first = DeviceFirst(max_wait_s=30)
    device_first.received()
    device_first.received()
    thread, done, waited = _give_way_in_thread(device_first)
    assert not done.wait(0.2)  # two presses are waiting: the request is not built yet
    device_first.settled(1)  # a batch applied one; one is still queued
    assert not done.wait(0.2)
    device_first.settled(0)
    assert done.wait(5)
    thread.join(5)
    assert device_first.gave_way == 1 and waited[0] > 0


def test_other_work_waits_at_most_its_bound_under_a_flood() -> None:
    device_first = DeviceFirst(max_wait_s=0.05)
    device_first.received(10_000)  # never applied while we wait
    thread, done, waited = _give_way_in_thread(device_first)
    assert done.wait(5)  # it gave up waiting rather than stopping for as long as the flood lasts
    thread.join(5)
    assert waited[0] >= 0.04
    assert device_first.waiting == 10_000


def test_the_ingest_count_puts_a_stray_count_right() -> None:
    device_first = DeviceFirst()
    device_first.received(3)
    device_first.settled(1)  # the inbox holds one: what was counted in twice no longer counts
    assert device_first.waiting == 1
    device_first.settled(-1)
    assert device_first.waiting == 0


def test_the_default_bound_is_short_enough_for_a_clerk() -> None:
    assert DeviceFirst().max_wait_s == GIVE_WAY_MAX_S <= 0.1


def _counting_app(built: list[str]):
    def app(environ, start_response):
        built.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return app


def test_the_request_gate_builds_a_request_after_the_device_messages_waiting() -> None:
    device_first = DeviceFirst(max_wait_s=30)
    built: list[str] = []
    gate = server_module.RequestGate(_counting_app(built), limit=2, ungated=server_module.UNGATED_PATHS,
                                     give_way=device_first.give_way)
    device_first.received()
    clerk = threading.Thread(target=lambda: list(gate({"PATH_INFO": "/api/v1/counters/quay-1/next"}, lambda *a: None)))
    clerk.start()
    signing_in = threading.Thread(target=lambda: list(gate({"PATH_INFO": "/api/v1/login"}, lambda *a: None)))
    signing_in.start()
    signing_in.join(5)
    assert built == ["/api/v1/login"]  # a sign-in does not wait for the gate, nor for the devices
    clerk.join(0.2)
    assert clerk.is_alive() and built == ["/api/v1/login"]
    device_first.settled(0)
    clerk.join(5)
    assert built == ["/api/v1/login", "/api/v1/counters/quay-1/next"]


def test_the_served_app_gives_way_to_its_own_services_device_messages(config, tmp_path, clock) -> None:
    server = server_module.build(config, tmp_path, clock=clock)
    try:
        app = server_module.wsgi_app(server)
        assert app.give_way == server.service.device_first.give_way
    finally:
        server.store.close()
