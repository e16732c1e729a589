"""The real rating terminal app (Kivy, offscreen) against a real server and Mosquitto."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings
from queue_server.domain.counters import Action
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.link import ServerLink
from queue_server.server import build
from tests.conftest import sample_config

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "kiosk"
COUNTER = "quay-3"  # serves Hộ tịch (B…)
CLERK = "le-hoang-cuong"
LEVEL_NAMES = ("Rất hài lòng", "Không hài lòng", "Very satisfied", "Unsatisfied")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Broker, server with its MQTT link, and the rating terminal app of counter 3 on screen."""
    from kivy.base import EventLoop

    from kiosk.rating.app import create_app

    drain_callbacks_of_earlier_apps(EventLoop)
    root = tmp_path_factory.mktemp("rating-world")
    broker = MosquittoBroker("127.0.0.1", free_port(), root / "broker")
    broker.start()
    server = build(sample_config(), root / "data")
    link = ServerLink(server.service, broker.host, broker.port)
    link.start()
    server.service.counter_action(COUNTER, Action.OPEN, clerk_id=CLERK)
    settings = load_rating_settings(
        None, device="rating-03", site=server.config.site.id, counter=COUNTER,
        mqtt={"host": broker.host, "port": broker.port},
        screen={"fullscreen": False, "thanks_shown_s": 2, "reasons_timeout_s": 3},
        outbox=str(root / "outbox.sqlite3"),
    )
    terminal = RatingTerminal(settings)
    app = create_app(terminal, size=(1024, 600))
    app._run_prepare()  # build and start without entering the blocking main loop

    class World:
        pass

    world = World()
    world.broker, world.server, world.link, world.settings, world.app = broker, server, link, settings, app
    world.pump = lambda: EventLoop.idle()
    world.extra_terminals = []
    yield world
    app.stop()
    for extra in world.extra_terminals:
        extra.stop()
    link.stop()
    server.store.close()
    broker.stop()


def drain_callbacks_of_earlier_apps(event_loop, frames: int = 10) -> None:
    """Kivy has one window and one clock per process, shared with the ticket kiosk's test modules.
    A kiosk of an app stopped earlier may still have a refresh queued for the main thread (its
    MQTT disconnect, reported after its app stopped); run such leftovers now, before this app
    exists, so that they cannot evaluate their kv rules against it. With no app running they fail
    (kv's `app` is None): that failure is theirs, and it is the point of running them here."""
    if event_loop.window is None:
        return  # the first app of this process: nothing came before it
    for _ in range(frames):
        try:
            event_loop.idle()
        except Exception:  # noqa: BLE001 - a leftover of another module's app, see above
            continue
        return
    raise AssertionError(f"callbacks of earlier apps still failing after {frames} frames")


def pump_until(world, condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        world.pump()  # one Kivy frame: clock callbacks (MQTT updates hop here), layout, drawing
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def screen_texts(world) -> str:
    from kivy.uix.label import Label

    screen = world.app.root.current_screen
    return "\n".join(widget.text for widget in screen.walk() if isinstance(widget, Label))


def screenshot(world, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a screen just switched to is laid out on the next frames
        world.pump()
    path = ARTIFACTS / f"rating-{name}.png"
    world.app.root.export_to_png(str(path))
    assert path.stat().st_size > 5000
    return path


def level_buttons(world) -> dict:
    from kivy.factory import Factory

    row = world.app.root.get_screen("prompt").ids.levels
    return {button.level: button for button in row.children if isinstance(button, Factory.LevelButton)}


def reason_chips(world) -> dict:
    from kivy.factory import Factory

    grid = world.app.root.get_screen("reasons").ids.chips
    return {chip.reason: chip for chip in grid.children if isinstance(chip, Factory.ReasonChip)}


def call_next(world) -> dict:
    """A citizen takes a ticket and counter 3 calls it: returns the ticket's view."""
    world.server.service.issue_ticket("ho-tich")
    view = world.server.service.counter_action(COUNTER, Action.NEXT)
    return view["tickets"][-1]


def finish(world) -> None:
    world.server.service.counter_action(COUNTER, Action.FINISH)


def ratings_of(world, ticket_id: str) -> list[dict]:
    rows = world.server.store.db.execute(
        "SELECT msg_id, level, counted, flag, ticket_id, clerk_id, reasons, device_id FROM ratings WHERE ticket_id = ?",
        [ticket_id],
    ).fetchall()
    keys = ("msg_id", "level", "counted", "flag", "ticket_id", "clerk_id", "reasons", "device_id")
    return [dict(zip(keys, row)) for row in rows]


def terminal(world) -> RatingTerminal:
    return world.app.terminal


def back_to_idle(world) -> None:
    """Whatever the previous test left: nobody at the counter, nothing to rate, the idle screen."""
    if world.server.service.counter_view(COUNTER)["ticket_id"]:
        world.server.service.counter_action(COUNTER, Action.NO_SHOW)  # no rating window opens
    if world.app.root.current in ("reasons", "thanks"):
        world.app.go_idle()
    pump_until(world, lambda: world.app.root.current == "idle" and terminal(world).status() == "idle"
               and not terminal(world).awaiting_rating(), "the idle screen")


def wait_for_prompt(world, ticket: dict) -> None:
    pump_until(world, lambda: world.app.root.current == "prompt" and terminal(world).rating_ticket() == ticket["code"],
               f"the rating prompt for {ticket['code']}")


def test_idle_screen_shows_counter_clerk_and_ticket_being_served(world) -> None:
    ticket = call_next(world)
    pump_until(world, lambda: terminal(world).online() and terminal(world).serving_ticket() == ticket["code"],
               "the terminal to see the ticket being served")
    world.pump()
    assert world.app.root.current == "idle"
    texts = screen_texts(world)
    assert "QUẦY SỐ 3" in texts and "COUNTER 3" in texts
    assert "Cán bộ tiếp nhận: Lê Hoàng Cường" in texts
    assert f"Đang phục vụ số {ticket['code']}" in texts
    assert world.app.level_font_px >= 28
    screenshot(world, "idle")


def test_finishing_a_ticket_shows_the_prompt_and_a_press_counts_once_for_that_ticket_and_clerk(world) -> None:
    back_to_idle(world)
    ticket = call_next(world)
    finish(world)
    wait_for_prompt(world, ticket)
    texts = screen_texts(world)
    assert "Quý công dân vui lòng đánh giá mức độ hài lòng" in texts
    assert f"Số {ticket['code']} · Quầy số 3" in texts
    buttons = level_buttons(world)
    assert list(reversed(list(buttons))) == ["very_satisfied", "satisfied", "unsatisfied"]  # best on the left
    labels = {level: button.label for level, button in buttons.items()}
    assert "Rất hài lòng" in labels["very_satisfied"] and "Very satisfied" in labels["very_satisfied"]
    assert "Không hài lòng" in labels["unsatisfied"]
    # The faces: a smile for the best level, a frown for the worst.
    assert buttons["very_satisfied"].mood == 1.0 and buttons["satisfied"].mood > 0 > buttons["unsatisfied"].mood == -1.0
    screenshot(world, "prompt")

    buttons["very_satisfied"].dispatch("on_release")
    buttons["very_satisfied"].dispatch("on_release")  # a second touch: not a second press
    assert world.app.root.current == "thanks"
    texts = screen_texts(world)
    assert "Cảm ơn quý công dân!" in texts
    assert not any(name in texts for name in LEVEL_NAMES)  # the clerk cannot read the level off the screen
    screenshot(world, "thanks")

    pump_until(world, lambda: ratings_of(world, ticket["id"]), "the rating on the server")
    rows = ratings_of(world, ticket["id"])
    assert len(rows) == 1
    assert rows[0]["counted"] == 1 and rows[0]["flag"] is None and rows[0]["level"] == "very_satisfied"
    assert rows[0]["ticket_id"] == ticket["id"] and rows[0]["clerk_id"] == CLERK and rows[0]["device_id"] == "rating-03"
    pump_until(world, lambda: terminal(world).unsent() == 0, "the outbox to empty once the broker acknowledged")

    pump_until(world, lambda: world.app.root.current == "idle", "the idle screen after the thanks", timeout=10)
    texts = screen_texts(world)
    assert "QUẦY SỐ 3" in texts and not any(name in texts for name in LEVEL_NAMES)


def test_an_unsatisfied_level_asks_for_reasons_and_sends_them(world) -> None:
    back_to_idle(world)
    ticket = call_next(world)
    finish(world)
    wait_for_prompt(world, ticket)
    level_buttons(world)["unsatisfied"].dispatch("on_release")
    assert world.app.root.current == "reasons"
    texts = screen_texts(world)
    assert "Quý công dân chưa hài lòng về điều gì?" in texts
    chips = reason_chips(world)
    assert set(chips) == {"wait", "attitude", "guidance", "come-back"}
    assert "Chờ lâu" in chips["wait"].text and "Long wait" in chips["wait"].text
    chips["wait"].state = "down"
    chips["attitude"].state = "down"
    screenshot(world, "reasons")
    assert ratings_of(world, ticket["id"]) == []  # nothing sent before the citizen is done

    world.app.root.get_screen("reasons").ids.send.dispatch("on_release")
    assert world.app.root.current == "thanks"
    pump_until(world, lambda: ratings_of(world, ticket["id"]), "the rating on the server")
    [row] = ratings_of(world, ticket["id"])
    assert row["counted"] == 1 and row["level"] == "unsatisfied" and json.loads(row["reasons"]) == ["wait", "attitude"]


def test_an_unanswered_reasons_screen_sends_the_level_alone(world) -> None:
    back_to_idle(world)
    ticket = call_next(world)
    finish(world)
    wait_for_prompt(world, ticket)
    level_buttons(world)["unsatisfied"].dispatch("on_release")
    assert world.app.root.current == "reasons"
    pump_until(world, lambda: world.app.root.current == "thanks", "the reasons screen to time out", timeout=10)
    pump_until(world, lambda: ratings_of(world, ticket["id"]), "the rating on the server")
    [row] = ratings_of(world, ticket["id"])
    assert row["counted"] == 1 and row["level"] == "unsatisfied" and json.loads(row["reasons"]) == []


def test_a_press_made_offline_survives_a_restart_and_counts_once_after_reconnecting(world) -> None:
    back_to_idle(world)
    ticket = call_next(world)
    finish(world)
    wait_for_prompt(world, ticket)

    world.broker.stop()  # the network is cut
    pump_until(world, lambda: not terminal(world).state.broker_connected and world.app.banner, "the offline banner")
    assert world.app.root.current == "prompt"  # the citizen can still rate
    screenshot(world, "prompt-offline")
    level_buttons(world)["satisfied"].dispatch("on_release")
    assert world.app.root.current == "thanks"
    assert terminal(world).unsent() == 1

    # The terminal restarts while the network is still down: a new controller on the same outbox.
    terminal(world).stop()
    restarted = RatingTerminal(world.settings)
    world.extra_terminals.append(restarted)
    assert restarted.unsent() == 1
    restarted.start()

    world.broker.start()  # same port: the network is back
    pump_until(world, lambda: ratings_of(world, ticket["id"]), "the rating on the server", timeout=30)
    pump_until(world, lambda: restarted.unsent() == 0, "the outbox to empty", timeout=15)
    rows = ratings_of(world, ticket["id"])
    assert len(rows) == 1
    assert rows[0]["counted"] == 1 and rows[0]["level"] == "satisfied" and rows[0]["clerk_id"] == CLERK
    assert world.server.store.db.execute("SELECT COUNT(*) FROM ratings WHERE level = 'satisfied'").fetchone()[0] == 1
