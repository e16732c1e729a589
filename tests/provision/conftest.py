"""A site to provision in the test's own directory, and the real Mosquitto running what was generated."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from firmware_config.provision import Provisioner
from queue_server.mqtt.broker import free_port, mosquitto_path

REPO = Path(__file__).resolve().parents[2]
ESPHOME_DIR = REPO / "firmware_config" / "esphome"
WAIT_S = 10.0


def sample_site_text() -> str:
    with resources.as_file(resources.files("queue_server") / "sample_site.toml") as path:
        return path.read_text(encoding="utf-8")


def inventory_text(*, port: int, ws_port: int, data: Path, tls: dict | None = None, extra_devices: str = "") -> str:
    """The demo centre's devices: a kiosk, a rating terminal, the three ESPHome boxes, a keypad and
    two boards, on a broker at 127.0.0.1 that logs to a file the tests can watch."""
    q = json.dumps
    tls_table = ""
    if tls:
        tls_table = "[broker.tls]\n" + "".join(f"{key} = {q(value)}\n" for key, value in tls.items())
    return f"""\
site = "hcc-demo"

[broker]
host = "127.0.0.1"
port = {port}
listen = "127.0.0.1"
websockets_port = {ws_port}
data_dir = {q(str(data / "mosquitto-data"))}
log_file = {q(str(data / "mosquitto.log"))}
pid_file = {q(str(data / "mosquitto.pid"))}
user = {q("root" if os.geteuid() == 0 else "mosquitto")}
{tls_table}
[server]
url = "http://127.0.0.1:8080"
config = "site.toml"

[esphome]
dir = "esphome"

[printers.dummy]
kind = "dummy"

[[devices]]
id = "kiosk-01"
type = "ticket_kiosk"
name = "Kiosk sảnh chính"
printer = "dummy"

[[devices]]
id = "rating-quay-4"
type = "rating_terminal"
counter = "quay-4"

[[devices]]
id = "rating-box-quay-1"
type = "button_box"
counter = "quay-1"

[[devices]]
id = "rating-box-quay-2"
type = "button_box"
counter = "quay-2"

# The box at the third counter.
[[devices]]
id = "rating-box-quay-3"
type = "button_box"
counter = "quay-3"

[[devices]]
id = "keypad-quay-1"
type = "clerk_keypad"
counter = "quay-1"

[[devices]]
id = "board-lobby"
type = "lobby_board"

[[devices]]
id = "display-quay-2"
type = "counter_display"
counter = "quay-2"
{extra_devices}"""


@dataclass
class Site:
    """An inventory, its ESPHome folder and the site config, all in the test's directory."""

    root: Path
    inventory: Path
    out: Path
    esphome: Path
    site_config: Path
    data_dir: Path
    port: int
    ws_port: int

    def provisioner(self) -> Provisioner:
        return Provisioner(self.inventory, self.out)

    def password_of(self, user: str) -> str:
        password = self.provisioner().stored_password(user)
        assert password, f"no password for {user}"
        return password

    def use_provisioned_mqtt(self) -> None:
        """Point the site config at the provisioned broker, with the table `generate` wrote."""
        text = self.site_config.read_text(encoding="utf-8")
        head, _, _ = text.partition("[mqtt]")
        snippet = (self.out / "server" / "site-mqtt.toml").read_text(encoding="utf-8")
        self.site_config.write_text(head + snippet, encoding="utf-8")


def make_site(root: Path, *, tls: dict | None = None, extra_devices: str = "") -> Site:
    root.mkdir(parents=True, exist_ok=True)
    esphome = root / "esphome"
    shutil.copytree(ESPHOME_DIR, esphome, ignore=shutil.ignore_patterns(".esphome", "build", "secrets.yaml"))
    data_dir = root / "data"
    site_config = root / "site.toml"
    text = sample_site_text()
    assert 'data_dir = "."' in text
    site_config.write_text(text.replace('data_dir = "."', f"data_dir = {json.dumps(str(data_dir))}"), encoding="utf-8")
    port, ws_port = free_port(), free_port()
    for device_file in esphome.glob("rating-box-*.yaml"):
        # The shipped boxes use the default port 1883; this site's broker listens elsewhere.
        text = device_file.read_text(encoding="utf-8")
        device_file.write_text(text.replace("\npackages:", f'  mqtt_port: "{port}"\n\npackages:', 1), encoding="utf-8")
    inventory = root / "inventory.toml"
    inventory.write_text(inventory_text(port=port, ws_port=ws_port, data=root, tls=tls, extra_devices=extra_devices),
                         encoding="utf-8")
    return Site(root, inventory, root / "out", esphome, site_config, data_dir, port, ws_port)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class GeneratedBroker:
    """Mosquitto started with exactly the mosquitto.conf `motcua provision` wrote."""

    def __init__(self, conf: Path, log: Path, ports: list[int]) -> None:
        self.conf, self.log, self.ports = conf, log, ports
        self.process: subprocess.Popen | None = None

    def _log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def _wait_for_log(self, offset: int, text: bytes, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited ({self.process.returncode}):\n{self.tail()}")
            if self.log.exists():
                with open(self.log, "rb") as handle:
                    handle.seek(offset)
                    if text in handle.read():
                        return
            if time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not log {what} within {WAIT_S} s:\n{self.tail()}")
            time.sleep(0.01)

    def start(self) -> None:
        executable = mosquitto_path()
        if executable is None:
            pytest.fail("mosquitto is not installed: run `bash scripts/quickstart.sh test` as root to install it")
        offset = self._log_size()
        self.process = subprocess.Popen([executable, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        # "running" is logged once every listener is open.
        self._wait_for_log(offset, b" running", "that it is running")
        assert all(_port_open(port) for port in self.ports), self.tail()

    def reload(self) -> None:
        """SIGHUP, and wait until Mosquitto says it reloads: the password and ACL files are
        re-read in the same step of its (single-threaded) loop, before any later connection."""
        assert self.process is not None
        offset = self._log_size()
        self.process.send_signal(signal.SIGHUP)
        self._wait_for_log(offset, b"Reloading config.", "that it reloaded")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no log)"


def start_broker(site: Site, *, tls_port: int | None = None) -> GeneratedBroker:
    (site.root / "mosquitto-data").mkdir(exist_ok=True)  # systemd's StateDirectory= makes it on a server
    ports = [site.port, site.ws_port] + ([tls_port] if tls_port else [])
    broker = GeneratedBroker(site.out / "mosquitto" / "mosquitto.conf", site.root / "mosquitto.log", ports)
    broker.start()
    return broker


@pytest.fixture
def running(site: Site) -> Iterator[tuple[Site, GeneratedBroker]]:
    """The site generated, and Mosquitto running the generated config."""
    site.provisioner().generate()
    site.use_provisioned_mqtt()
    broker = start_broker(site)
    try:
        yield site, broker
    finally:
        broker.stop()


class Inbox:
    """What a client receives, with the reason code of each PUBACK; tests wait on it, never sleep."""

    def __init__(self) -> None:
        import threading

        self.messages: list[tuple[str, bytes, bool]] = []
        self.acks: dict[int, int] = {}
        self._changed = threading.Condition()

    def on_message(self, client, userdata, message) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self._changed.notify_all()

    def on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._changed:
            self.acks[mid] = reason.value
            self._changed.notify_all()

    def topics(self) -> list[str]:
        with self._changed:
            return [topic for topic, _, _ in self.messages]

    def wait_for(self, predicate, what: str, timeout: float = WAIT_S):
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out waiting for {what}; received {self.messages}, acks {self.acks}")


def wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
