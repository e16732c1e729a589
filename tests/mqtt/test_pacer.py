"""The pacing of state/queue: at most once per interval per field, the last change never lost."""
from __future__ import annotations

from queue_server.mqtt.link import Pacer


def test_a_key_goes_through_at_most_once_per_interval_and_its_last_change_is_held_not_dropped() -> None:
    pacer = Pacer(0.25)
    assert pacer.wait_s(0.0) is None
    assert pacer.due({"dat-dai", "ho-tich"}, 0.0) == {"dat-dai", "ho-tich"}
    assert pacer.due({"dat-dai"}, 0.1) == set()  # too soon: held
    assert pacer.held == {"dat-dai"} and pacer.wait_s(0.1) == 0.15
    assert pacer.due({"ho-tich"}, 0.2) == set() and pacer.held == {"dat-dai", "ho-tich"}
    assert pacer.due(set(), 0.25) == {"dat-dai", "ho-tich"}  # both due with nothing new
    assert pacer.held == set() and pacer.wait_s(0.3) is None
    assert pacer.due({"dang-ky-kinh-doanh"}, 0.3) == {"dang-ky-kinh-doanh"}  # a key of its own


def test_shutting_down_releases_every_held_key_at_once() -> None:
    pacer = Pacer(10.0)
    pacer.due({"a", "b"}, 0.0)
    assert pacer.due({"a", "b"}, 1.0) == set()
    assert pacer.release() == {"a", "b"} and pacer.held == set()
