"""What a serving process sets for itself before it serves."""
from __future__ import annotations

import signal
import sys

from queue_server import server as server_module


def test_a_serving_process_hands_the_gil_over_after_half_a_millisecond(server, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(server_module, "_serve", lambda *args: seen.setdefault("interval", sys.getswitchinterval()))
    before_interval, before_handler = sys.getswitchinterval(), signal.getsignal(signal.SIGTERM)
    try:
        server_module.run_http(server, "127.0.0.1", 0)
    finally:
        sys.setswitchinterval(before_interval)
        signal.signal(signal.SIGTERM, before_handler)
    assert seen["interval"] == server_module.GIL_SWITCH_INTERVAL_S == 0.0005
