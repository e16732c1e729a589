"""The device inventory: every kiosk, terminal, box, keypad and board of a site, validated like the server config.

One TOML file (see firmware_config/inventory.example.toml) from which `motcua provision` makes
the broker's password and ACL files, its mosquitto.conf and each device's own files. Unknown
keys are rejected and every error names its key path (`devices[3].counter`), exactly as
`queue_server.config` does, so a typo fails loudly instead of producing a device that cannot
connect.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kiosk.printing import PrinterConfig
from queue_server.config import ID_PATTERN, read_toml, validate_model
from queue_server.mqtt.contract import PREFIX

Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z, 0-9, '-' (≤ 32)")]
ProfileName = Annotated[str, Field(pattern=ID_PATTERN)]
# Written into mosquitto.conf, whose values end at the first space: no spaces, no line breaks.
ConfWord = Annotated[str, Field(min_length=1, pattern=r"^\S+$", description="no spaces")]
# Written into comments of generated files: one line.
OneLine = Annotated[str, Field(max_length=120, pattern=r"^[^\x00-\x1f\x7f]*$")]

DeviceType = Literal["ticket_kiosk", "rating_terminal", "button_box", "clerk_keypad", "lobby_board", "counter_display"]
DEVICE_TYPES: tuple[str, ...] = DeviceType.__args__  # type: ignore[attr-defined]
# Bound to one counter: they rate it, act on it or show it.
COUNTER_TYPES = frozenset({"rating_terminal", "button_box", "clerk_keypad", "counter_display"})
# Only look: boards get a read-only broker account.
READ_ONLY_TYPES = frozenset({"lobby_board", "counter_display"})
# Touchscreen apps that can be enrolled by scanning a QR code.
TABLET_TYPES = frozenset({"ticket_kiosk", "rating_terminal", "clerk_keypad"})

# Broker accounts that are not devices. An underscore is not allowed in a device id, so these
# names can never collide with one.
SERVER_USER = "motcua_server"
ADMIN_USER = "motcua_admin"
# ESPHome limits mqtt.topic_prefix (motcua/{site}/device/{device}) to 64 characters.
ESPHOME_TOPIC_PREFIX_MAX = 64


class Strict(BaseModel):
    """Base model: a typo in a key fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class BrokerTls(Strict):
    """An extra TLS listener. The certificate paths are where they are on the broker's machine."""

    port: int = Field(default=8883, ge=1, le=65535, description="TLS listener port")
    cafile: ConfWord = Field(description="CA certificate (PEM) that signed certfile")
    certfile: ConfWord = Field(description="the broker's certificate (PEM)")
    keyfile: ConfWord = Field(description="the broker's private key (PEM), readable by the broker only")
    device_ca_file: str = Field(default="/etc/motcua/ca.crt",
                                description="where the CA certificate is installed on kiosks and terminals")


class BrokerSettings(Strict):
    host: ConfWord = Field(description="address devices use to reach the broker (LAN IP or name)")
    port: int = Field(default=1883, ge=1, le=65535, description="plain MQTT listener (ESPHome boxes use it)")
    listen: ConfWord = Field(default="0.0.0.0", description="address the listeners bind to")
    websockets_port: int | None = Field(default=None, ge=1, le=65535, description="MQTT over websockets, if wanted")
    tls: BrokerTls | None = Field(default=None, description="a TLS listener; kiosks and terminals then use it")
    data_dir: ConfWord = Field(default="/var/lib/motcua-mosquitto", description="Mosquitto's persistence directory")
    log_file: ConfWord | None = Field(default=None, description="log file; none = standard error (the journal)")
    pid_file: ConfWord | None = Field(default=None, description="pid file, for `motcua provision … --reload`")
    user: ConfWord = Field(default="mosquitto", description="user Mosquitto switches to when started as root")


class ServerSettings(Strict):
    url: ConfWord | None = Field(default=None, description="HTTP base URL of the server, e.g. "
                                                           "http://192.168.1.10:8080 (boards open {url}/board)")
    config: str | None = Field(default=None, description="the site config (site.toml), relative to this file")
    broker_host: str = Field(default="127.0.0.1", description="address the server uses to reach the broker")


class EsphomeSettings(Strict):
    dir: str = Field(default="esphome", description="the ESPHome device files, relative to this file")
    wifi_ssid: str = Field(default="motcua-lan", description="written to a new secrets.yaml")
    ntp_server: str | None = Field(default=None, description="NTP server for the boxes; default: broker.host")


class Device(Strict):
    id: Identifier = Field(description="device id: broker user name and MQTT topic segment")
    type: DeviceType
    name: OneLine | None = Field(default=None, description="what people call it, e.g. 'Kiosk sảnh A'")
    counter: Identifier | None = Field(default=None, description="the counter it serves (terminals, boxes, "
                                                                 "keypads, counter displays)")
    printer: ProfileName | None = Field(default=None, description="printer profile (ticket kiosks)")

    @property
    def esphome_secret(self) -> str:
        """The key of this box's broker password in ESPHome's secrets.yaml."""
        return "mqtt_password_" + self.id.replace("-", "_")


class Inventory(Strict):
    site: Identifier = Field(description="site id: must equal [site].id of the server config")
    broker: BrokerSettings
    server: ServerSettings = Field(default_factory=ServerSettings)
    esphome: EsphomeSettings = Field(default_factory=EsphomeSettings)
    printers: dict[ProfileName, PrinterConfig] = Field(default_factory=dict, description="printer profiles by name")
    devices: list[Device] = Field(default_factory=list)

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def of_type(self, *types: str) -> list[Device]:
        return [d for d in self.devices if d.type in types]


def _cross_checks(inventory: Inventory) -> list[tuple[str, Any, str]]:
    problems: list[tuple[str, Any, str]] = []
    seen: dict[str, int] = {}
    for index, device in enumerate(inventory.devices):
        where = f"devices[{index}]"
        if device.id in seen:
            problems.append((f"{where}.id", device.id, f"duplicate of devices[{seen[device.id]}]"))
        seen.setdefault(device.id, index)
        if device.type in COUNTER_TYPES and device.counter is None:
            problems.append((f"{where}.counter", None, f"a {device.type} needs the counter it serves"))
        if device.type not in COUNTER_TYPES and device.counter is not None:
            problems.append((f"{where}.counter", device.counter, f"a {device.type} is not bound to a counter"))
        if device.type == "ticket_kiosk":
            if device.printer is None:
                problems.append((f"{where}.printer", None, "a ticket kiosk needs a printer profile"))
            elif device.printer not in inventory.printers:
                known = ", ".join(sorted(inventory.printers)) or "none defined"
                problems.append((f"{where}.printer", device.printer, f"unknown printer profile ({known})"))
        elif device.printer is not None:
            problems.append((f"{where}.printer", device.printer, f"a {device.type} has no printer"))
        if device.type == "button_box":
            prefix = f"{PREFIX}/{inventory.site}/device/{device.id}"
            if len(prefix) > ESPHOME_TOPIC_PREFIX_MAX:
                problems.append((f"{where}.id", device.id, f"ESPHome allows a topic prefix of at most "
                                 f"{ESPHOME_TOPIC_PREFIX_MAX} characters; {prefix!r} has {len(prefix)}"))
        if device.type in ("lobby_board", "counter_display") and not inventory.server.url:
            problems.append(("server.url", None, f"{device.type} {device.id} opens a page of the server: "
                                                 "set the server's URL"))
    if inventory.devices and _is_loopback(inventory.broker.listen) and not _is_loopback(inventory.broker.host):
        problems.append(("broker.listen", inventory.broker.listen,
                         f"devices connect to {inventory.broker.host}, but the broker would listen on "
                         "this machine only"))
    ports = {"broker.port": inventory.broker.port}
    if inventory.broker.websockets_port is not None:
        ports["broker.websockets_port"] = inventory.broker.websockets_port
    if inventory.broker.tls is not None:
        ports["broker.tls.port"] = inventory.broker.tls.port
    taken: dict[int, str] = {}
    for key, port in ports.items():
        if port in taken:
            problems.append((key, port, f"the same port as {taken[port]}"))
        taken.setdefault(port, key)
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_inventory(data: dict, source: str = "inventory") -> Inventory:
    """Validate an inventory; ConfigError lists every problem with its key path."""
    return validate_model(Inventory, data, source, _cross_checks)


def load_inventory(path: str | Path) -> Inventory:
    return parse_inventory(read_toml(path), str(path))


def relative_to_inventory(inventory_path: str | Path, value: str) -> Path:
    """A path written in the inventory: a relative one is taken from the inventory's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(inventory_path).resolve().parent / path
