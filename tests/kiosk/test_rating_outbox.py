"""The rating terminal's outbox file and settings, alone (no broker, no Kivy)."""
from __future__ import annotations

import threading

import pytest

from kiosk.rating.outbox import Outbox
from kiosk.rating.settings import default_outbox_path, load_rating_settings
from queue_server.config import ConfigError

TOPIC = "motcua/hcc-demo/device/rating-03/event/rating"


def payload_of(msg_id: str) -> bytes:
    return f'{{"msg_id": "{msg_id}"}}'.encode()


def test_msg_ids_count_up_within_a_boot_and_never_repeat_across_restarts(tmp_path) -> None:
    path = tmp_path / "outbox.sqlite3"
    first = Outbox(path, "rating-03")
    ids = [first.add(TOPIC, payload_of).msg_id for _ in range(3)]
    assert ids == [f"rating-03:{first.boot}:{n}" for n in (1, 2, 3)]
    first.close()
    again = Outbox(path, "rating-03")
    assert again.boot != first.boot
    assert again.add(TOPIC, payload_of).msg_id == f"rating-03:{again.boot}:1"
    # A lost or replaced outbox file cannot bring old msg_ids back either.
    fresh = Outbox(tmp_path / "other.sqlite3", "rating-03")
    assert fresh.add(TOPIC, payload_of).msg_id not in ids
    again.close()
    fresh.close()


def test_what_is_not_acknowledged_survives_a_restart_byte_for_byte(tmp_path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path, "rating-03")
    entries = [outbox.add(TOPIC, payload_of) for _ in range(3)]
    assert outbox.remove(entries[1].msg_id) is True
    assert outbox.remove(entries[1].msg_id) is False  # a second PUBACK for it
    outbox.close()
    reopened = Outbox(path, "rating-03")
    assert [(e.msg_id, e.topic, e.payload) for e in reopened.pending()] == \
        [(e.msg_id, e.topic, e.payload) for e in (entries[0], entries[2])]
    assert reopened.pending()[0].created_at == entries[0].created_at
    assert reopened.count() == 2
    reopened.close()


def test_presses_from_many_threads_each_get_their_own_row(tmp_path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", "rating-03")
    made: list[str] = []
    lock = threading.Lock()

    def press_many() -> None:
        for _ in range(50):
            msg_id = outbox.add(TOPIC, payload_of).msg_id
            with lock:
                made.append(msg_id)

    def acknowledge_some() -> None:
        for entry in outbox.pending()[:20]:
            outbox.remove(entry.msg_id)

    threads = [threading.Thread(target=press_many) for _ in range(8)] + [threading.Thread(target=acknowledge_some)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 400
    pending = outbox.pending()
    assert {e.msg_id for e in pending} <= set(made) and len(pending) == outbox.count() >= 380
    assert all(e.payload == payload_of(e.msg_id) for e in pending)
    outbox.close()


def test_settings_from_a_file_with_overrides(tmp_path) -> None:
    path = tmp_path / "rating-03.toml"
    path.write_text('site = "hcc-demo"\ncounter = "quay-3"\n[mqtt]\nhost = "10.0.0.2"\n[screen]\nthanks_shown_s = 8\n',
                    encoding="utf-8")
    settings = load_rating_settings(path, device="rating-03", counter=None)
    assert (settings.device, settings.site, settings.counter) == ("rating-03", "hcc-demo", "quay-3")
    assert settings.mqtt.host == "10.0.0.2" and settings.screen.thanks_shown_s == 8
    assert settings.outbox_path() == default_outbox_path("rating-03")
    assert load_rating_settings(path, device="rating-03", counter="quay-5").counter == "quay-5"
    # Command-line overrides change one key of a table and keep the rest of it.
    overridden = load_rating_settings(path, device="rating-03", mqtt={"port": 1884, "host": None},
                                      screen={"fullscreen": False})
    assert (overridden.mqtt.host, overridden.mqtt.port) == ("10.0.0.2", 1884)
    assert overridden.screen.thanks_shown_s == 8 and overridden.screen.fullscreen is False


def test_settings_errors_name_the_key(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('site = "hcc-demo"\ncounter = "Quay 3"\n[screen]\nthanks_secs = 8\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rating_settings(path, device="rating-03")
    message = str(caught.value)
    assert "counter" in message and "screen.thanks_secs" in message
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_rating_settings(None, device="rating-03", site="hcc-demo", counter="quay-3", mqtt={"port": 0})
