"""The rating terminal's controller (no Kivy) and its outbox against a real server and Mosquitto:
binding to the counter's ticket, exactly-once delivery through outages, restarts and crashes."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest

from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings
from queue_server.domain.counters import Action
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.link import ServerLink
from queue_server.server import build
from tests.conftest import sample_config

REPO = Path(__file__).resolve().parents[2]
# Each test rates at its own counter: the server flags many presses at one counter within a
# few seconds as a burst, and these tests press fast.
CLERKS = {"quay-1": "nguyen-van-an", "quay-2": "tran-thi-binh", "quay-3": "le-hoang-cuong",
          "quay-4": "pham-thu-dung", "quay-5": "vu-minh-duc"}
FIELD_OF = {"quay-1": "dat-dai", "quay-2": "ho-tich", "quay-3": "ho-tich", "quay-4": "dang-ky-kinh-doanh",
            "quay-5": "chung-thuc"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rating-terminal")
    broker = MosquittoBroker("127.0.0.1", free_port(), root / "broker")
    broker.start()
    server = build(sample_config(), root / "data")
    link = ServerLink(server.service, broker.host, broker.port)
    link.start()
    for counter, clerk in CLERKS.items():
        server.service.counter_action(counter, Action.OPEN, clerk_id=clerk)

    class World:
        pass

    world = World()
    world.root, world.broker, world.server, world.link = root, broker, server, link
    world.terminals = []
    yield world
    for terminal in world.terminals:
        terminal.stop()
    link.stop()
    server.store.close()
    broker.stop()


def settings_for(world, counter: str, device: str, outbox: Path | None = None):
    return load_rating_settings(
        None, device=device, site=world.server.config.site.id, counter=counter,
        mqtt={"host": world.broker.host, "port": world.broker.port},
        outbox=str(outbox or world.root / f"{device}.outbox.sqlite3"),
    )


def new_terminal(world, counter: str, device: str, *, start: bool = True, outbox: Path | None = None,
                 clock=None) -> RatingTerminal:
    terminal = RatingTerminal(settings_for(world, counter, device, outbox), clock=clock)
    world.terminals.append(terminal)
    if start:
        terminal.start()
    return terminal


def wait_until(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def call_next(world, counter: str) -> dict:
    world.server.service.issue_ticket(FIELD_OF[counter])
    return world.server.service.counter_action(counter, Action.NEXT)["tickets"][-1]


def serve_and_finish(world, counter: str) -> dict:
    ticket = call_next(world, counter)
    world.server.service.counter_action(counter, Action.FINISH)
    return ticket


def rows(world, where: str, params: list) -> list[dict]:
    cursor = world.server.store.db.execute(
        f"SELECT msg_id, counter_id, level, counted, flag, ticket_id, clerk_id, device_id, device_at FROM ratings WHERE {where}",
        params,
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_the_terminal_follows_its_counter_and_binds_a_press_to_the_ticket_just_finished(world) -> None:
    terminal = new_terminal(world, "quay-1", "rating-01")
    first = call_next(world, "quay-1")
    wait_until(lambda: terminal.serving_ticket() == first["code"], "the ticket being served")
    assert terminal.counter_number() == 1 and terminal.clerk_name() == "Nguyễn Văn An"
    assert not terminal.awaiting_rating()

    world.server.service.counter_action("quay-1", Action.FINISH)
    wait_until(lambda: terminal.status() == "rating", "the counter awaiting a rating")
    assert terminal.awaiting_rating() and terminal.rating_ticket() == first["code"]
    assert not terminal.awaiting_rating(terminal.rating_until() + timedelta(seconds=1))  # the window ends by the clock

    # "Next" at once: the counter serves the next citizen while the last one may still rate.
    second = call_next(world, "quay-1")
    wait_until(lambda: terminal.serving_ticket() == second["code"], "the next ticket being served")
    assert terminal.awaiting_rating()

    msg_id = terminal.press("satisfied")
    assert not terminal.awaiting_rating()  # answered here, before the server says anything
    wait_until(lambda: rows(world, "msg_id = ?", [msg_id]), "the press on the server")
    [row] = rows(world, "msg_id = ?", [msg_id])
    assert row["counted"] == 1 and row["ticket_id"] == first["id"] and row["clerk_id"] == "nguyen-van-an"
    assert row["counter_id"] == "quay-1" and row["device_id"] == "rating-01"


def test_a_press_is_on_disk_before_it_is_sent_and_leaves_once_acknowledged(world) -> None:
    ticket = serve_and_finish(world, "quay-2")
    terminal = new_terminal(world, "quay-2", "rating-02", start=False)  # not connected yet
    at = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    msg_id = terminal.press("very_satisfied", at=at)
    [entry] = terminal.outbox.pending()
    assert entry.msg_id == msg_id and msg_id.startswith(f"rating-02:{terminal.outbox.boot}:")
    assert entry.topic == "motcua/hcc-demo/device/rating-02/event/rating"
    payload = json.loads(entry.payload)
    assert payload["msg_id"] == msg_id and payload["counter"] == "quay-2" and payload["level"] == "very_satisfied"
    assert payload["at"] == at.isoformat() and "ticket" not in payload  # state/counter gives no ticket id

    terminal.start()
    wait_until(lambda: terminal.unsent() == 0, "the broker's acknowledgement")
    wait_until(lambda: rows(world, "msg_id = ?", [msg_id]), "the press on the server")
    [row] = rows(world, "msg_id = ?", [msg_id])
    assert row["counted"] == 1 and row["ticket_id"] == ticket["id"] and row["clerk_id"] == "tran-thi-binh"


def test_fifty_rapid_presses_count_once_and_the_rest_are_flagged(world) -> None:
    terminal = new_terminal(world, "quay-4", "rating-04")
    ticket = serve_and_finish(world, "quay-4")
    wait_until(lambda: terminal.awaiting_rating(), "the counter awaiting a rating")
    sent = [terminal.press("very_satisfied") for _ in range(50)]
    assert len(set(sent)) == 50
    wait_until(lambda: len(rows(world, "device_id = 'rating-04'", [])) == 50, "all 50 presses on the server")
    recorded = rows(world, "device_id = 'rating-04'", [])
    counted = [row for row in recorded if row["counted"]]
    assert len(counted) == 1 and counted[0]["msg_id"] == sent[0]
    assert counted[0]["ticket_id"] == ticket["id"] and counted[0]["clerk_id"] == "pham-thu-dung"
    assert sorted(row["flag"] for row in recorded if not row["counted"]) == ["already_rated"] * 49
    wait_until(lambda: terminal.unsent() == 0, "the outbox to empty")


CRASHING_TERMINAL = """
import json, os, sys
from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings

settings = load_rating_settings(None, **json.loads(sys.argv[1]))
terminal = RatingTerminal(settings)
terminal.start()  # the broker is down: nothing goes out
msg_id = terminal.press("unsatisfied", ["wait"])
entry = terminal.outbox.pending()[0]
print(json.dumps({"msg_id": msg_id, "at": json.loads(entry.payload)["at"]}), flush=True)
os._exit(0)  # a crash: no disconnect, no cleanup
"""


def test_a_press_made_offline_survives_a_crash_and_counts_once_after_reconnecting(world) -> None:
    ticket = serve_and_finish(world, "quay-5")
    outbox = world.root / "rating-05.outbox.sqlite3"
    world.broker.stop()  # the network is cut
    try:
        overrides = {"device": "rating-05", "site": world.server.config.site.id, "counter": "quay-5",
                     "mqtt": {"host": world.broker.host, "port": world.broker.port}, "outbox": str(outbox)}
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING_TERMINAL), json.dumps(overrides)],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
        assert child.returncode == 0, child.stderr
        pressed = json.loads(child.stdout.strip().splitlines()[-1])
        restarted = new_terminal(world, "quay-5", "rating-05", outbox=outbox)  # the terminal comes back first
        assert restarted.unsent() == 1
    finally:
        world.broker.start()  # same port: the network is back
    wait_until(lambda: rows(world, "ticket_id = ?", [ticket["id"]]), "the press on the server", timeout=30)
    wait_until(lambda: restarted.unsent() == 0, "the outbox to empty")
    [row] = rows(world, "ticket_id = ?", [ticket["id"]])
    assert row["msg_id"] == pressed["msg_id"] and row["counted"] == 1 and row["clerk_id"] == "vu-minh-duc"
    assert datetime.fromisoformat(row["device_at"]) == datetime.fromisoformat(pressed["at"])  # its original time


def test_sending_an_acknowledged_press_again_counts_it_once(world) -> None:
    """A PUBACK lost just before a restart: the row is sent again, the server keeps the first."""
    outbox = world.root / "rating-06.outbox.sqlite3"
    terminal = new_terminal(world, "quay-3", "rating-06", start=False, outbox=outbox)
    ticket = serve_and_finish(world, "quay-3")
    msg_id = terminal.press("satisfied")
    [sent] = terminal.outbox.pending()
    terminal.start()
    wait_until(lambda: terminal.unsent() == 0, "the broker's acknowledgement")
    wait_until(lambda: rows(world, "msg_id = ?", [msg_id]), "the press on the server")
    terminal.stop()
    world.terminals.remove(terminal)

    # Put the acknowledged row back, as if its removal had not reached the disk.
    with sqlite3.connect(outbox) as db:
        db.execute("INSERT INTO outbox (msg_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                   (sent.msg_id, sent.topic, sent.payload, sent.created_at.isoformat()))
    restarted = new_terminal(world, "quay-3", "rating-06", outbox=outbox, start=False)
    assert restarted.unsent() == 1
    restarted.start()
    wait_until(lambda: restarted.unsent() == 0, "the repeat to be acknowledged")
    # One more press after it: once the server has that one, it has handled the repeat too.
    later = restarted.press("satisfied")
    wait_until(lambda: rows(world, "msg_id = ?", [later]), "the later press on the server")
    assert len(rows(world, "msg_id = ?", [msg_id])) == 1
    assert [row["msg_id"] for row in rows(world, "ticket_id = ? AND counted = 1", [ticket["id"]])] == [msg_id]


def test_a_press_held_offline_rates_its_own_ticket_even_after_the_counter_moved_on(world) -> None:
    """The press names the ticket (state/counter's rating_ticket_id): delivered late, after the
    clerk has finished another citizen, it still rates the one it was made for."""
    terminal = new_terminal(world, "quay-3", "rating-03b")
    first = serve_and_finish(world, "quay-3")
    wait_until(lambda: terminal.awaiting_rating() and terminal.rating_ticket() == first["code"], "the prompt")
    world.broker.stop()
    wait_until(lambda: not terminal.online(), "the terminal offline")
    msg_id = terminal.press("very_satisfied")
    second = serve_and_finish(world, "quay-3")  # meanwhile the clerk serves the next citizen
    world.broker.start()
    wait_until(lambda: rows(world, "msg_id = ?", [msg_id]), "the late press on the server", timeout=30)
    [row] = rows(world, "msg_id = ?", [msg_id])
    assert row["ticket_id"] == first["id"] and row["counted"] == 1
    assert not rows(world, "ticket_id = ?", [second["id"]])  # the next citizen's rating is still theirs to give


@pytest.mark.parametrize(("skew_hours", "counter"), [(5, "quay-2"), (-5, "quay-3")])
def test_a_terminal_whose_clock_is_hours_off_opens_and_closes_the_prompt_by_the_servers_clock(world, skew_hours, counter) -> None:
    """The window is the server's: a device clock 5 h fast would never show the prompt, one 5 h
    slow would keep it up for hours, if the terminal judged rating_until by its own clock."""
    skew = timedelta(hours=skew_hours)
    terminal = new_terminal(world, counter, f"rating-skew{skew_hours + 5}",
                            clock=lambda: datetime.now(timezone.utc) + skew)
    ticket = serve_and_finish(world, counter)
    wait_until(lambda: terminal.status() == "rating" and terminal.rating_ticket() == ticket["code"],
               "the counter awaiting a rating")
    assert terminal.awaiting_rating()
    server_now = terminal.server_now()
    assert abs((server_now - datetime.now(timezone.utc)).total_seconds()) < 5  # not the device's clock
    assert not terminal.awaiting_rating(terminal.rating_until() + timedelta(seconds=1))
    msg_id = terminal.press("very_satisfied")
    wait_until(lambda: rows(world, "msg_id = ?", [msg_id]), "the press on the server")
    [row] = rows(world, "msg_id = ?", [msg_id])
    assert row["counted"] == 1 and row["ticket_id"] == ticket["id"], row
