"""The demo simulator: real MQTT kiosks and rating terminals produce a believable stream."""
from __future__ import annotations

import time
from pathlib import Path

from queue_server.config import load_config
from queue_server.mqtt.link import ServerLink
from queue_server.server import build
from queue_server.simulator import DemoSimulator

from .conftest import WAIT_S


def test_simulated_devices_issue_serve_and_rate(tmp_path: Path, mosquitto) -> None:
    from importlib import resources

    with resources.as_file(resources.files("queue_server") / "sample_site.toml") as path:
        config = load_config(path)  # open around the clock, so the real clock works
    server = build(config, tmp_path / "data")
    link = ServerLink(server.service, mosquitto.host, mosquitto.port)
    link.start(timeout=WAIT_S)
    simulator = DemoSimulator(server.service, mosquitto.host, mosquitto.port, speed=600, mean_arrival_s=0.05, seed=7)
    try:
        simulator.start()
        deadline = time.monotonic() + 60
        figures = server.service.stats_today()
        while time.monotonic() < deadline:
            figures = server.service.stats_today()
            if figures["tickets"]["served"] >= 5 and figures["ratings"]["counted"] >= 3:
                break
            time.sleep(0.2)  # the simulation runs on its own threads; look again
        assert figures["tickets"]["issued"] >= 5, figures["tickets"]
        assert figures["tickets"]["served"] >= 5, figures["tickets"]
        assert figures["ratings"]["counted"] >= 3, figures["ratings"]
        # Kiosk requests came over MQTT (device ids in the tickets) and ratings from terminals.
        devices = {row[0] for row in server.store.db.execute("SELECT DISTINCT device_id FROM tickets")}
        assert devices <= {"kiosk-01", "kiosk-02"} and devices
        terminals = {row[0] for row in server.store.db.execute("SELECT DISTINCT device_id FROM ratings")}
        assert terminals and all(t.startswith("rating-quay-") for t in terminals)
        assert server.store.reject_counts() == {}
    finally:
        simulator.stop()
        link.stop()
        server.store.close()
