"""`motcua provision`: broker credentials, ACL, mosquitto.conf and each device's files, from the inventory.

What it writes under the output directory (`--out`, e.g. /etc/motcua/provision):

    mosquitto/mosquitto.conf   the production broker: no anonymous clients, persistence, TCP_NODELAY,
                               optional TLS and websockets listeners
    mosquitto/passwd           one account per device plus the server and the provisioning tool,
                               as Mosquitto 2.0 PBKDF2-SHA512 hashes (`$7$…`, what mosquitto_passwd writes)
    mosquitto/acl              each device publishes only under its own motcua/{site}/device/{id}/
                               and reads only the state it needs; boards only read
    server/mqtt.env            the server's broker password (systemd EnvironmentFile=, 0600)
    server/site-mqtt.toml      the [mqtt] table to put in the site config
    admin/mqtt.env             the provisioning tool's account, used to clear a removed device's
                               retained topics (0600)
    devices/{id}/…             kiosk.toml / rating.toml / keypad.toml, mqtt.env (0600) and an
                               enrolment QR (enrol.png, 0600) for tablets; board.env for boards
and, in the ESPHome folder, secrets.yaml (0600) with `mqtt_password_<id>` for each button box.

Passwords are random (192 bits). The broker holds only their hashes; the clear text exists only
in what a device needs to connect (its mqtt.env, the ESPHome secrets.yaml, its QR code), which
is also where a later run reads it back: running `generate` again keeps every password, and
only `rotate` changes one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from queue_server.config import ConfigError
from queue_server.mqtt import contract
from queue_server.mqtt.contract import PREFIX

from .inventory import (
    ADMIN_USER,
    READ_ONLY_TYPES,
    SERVER_USER,
    TABLET_TYPES,
    Device,
    Inventory,
    parse_inventory,
    relative_to_inventory,
)

PASSWORD_ENV = "MOTCUA_MQTT_PASSWORD"
# Mosquitto 2.0's mosquitto_passwd: PBKDF2-SHA512, 12-byte salt, 64-byte hash, 101 iterations.
# Stretching protects guessable passwords; ours are 192 random bits, so the default is kept
# (every CONNECT is checked against it, on a Raspberry Pi too).
HASH_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
ENROL_SCHEME = "motcua"
ENROL_VERSION = "1"


class ProvisionError(Exception):
    """Provisioning cannot go on; the message says what to do."""


# --------------------------------------------------------------------------- passwords


def new_password() -> str:
    """32 URL-safe characters (192 bits): safe unquoted in an env file, TOML, YAML and a URL."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, iterations: int = HASH_ITERATIONS, salt: bytes | None = None) -> str:
    """The Mosquitto 2.0 password-file hash: `$7$iterations$base64(salt)$base64(pbkdf2-sha512)`."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches a Mosquitto hash (`$7$` PBKDF2-SHA512, or 1.x's salted `$6$` SHA-512)."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, expected = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(expected))
        elif len(parts) == 4 and parts[1] == "6":
            salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            actual = hashlib.sha512(password.encode("utf-8") + salt).digest()
        else:
            return False
    except ValueError:  # bad base64 or iteration count
        return False
    return hmac.compare_digest(actual, expected)


def read_password_file(path: Path) -> dict[str, str]:
    """user → hash of a Mosquitto password file ({} when it does not exist)."""
    if not path.exists():
        return {}
    users: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, separator, hashed = line.partition(":")
        if not separator:
            raise ProvisionError(f"{path}:{number}: not `user:hash`")
        users[user] = hashed
    return users


def password_file_text(users: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in users.items())


# --------------------------------------------------------------------------- ACL


def device_rules(site: str, device: Device) -> list[tuple[str, str]]:
    """What one device may publish (`write`) and receive (`read`), from the contract's topic builders."""
    base = f"{PREFIX}/{site}"
    rules: list[tuple[str, str]] = []
    if device.type not in READ_ONLY_TYPES:
        rules.append(("write", contract.topic_device_status(site, device.id)))
    counter_state = contract.topic_counter_state(site, device.counter) if device.counter else None
    if device.type == "ticket_kiosk":
        rules += [("write", contract.topic_ticket_request(site, device.id)),
                  ("write", contract.topic_printer(site, device.id))]
        rules += [("read", topic) for topic, _ in contract.ticket_kiosk_subscriptions(site, device.id)]
    elif device.type == "rating_terminal":
        rules.append(("write", contract.topic_rating(site, device.id)))
        if device.counter:  # always, in an inventory that passed validation
            rules += [("read", topic) for topic, _ in contract.rating_terminal_subscriptions(site, device.counter)]
    elif device.type == "button_box":
        # The box only lights its LED while its counter waits for a rating.
        rules.append(("write", contract.topic_rating(site, device.id)))
        if device.counter:
            rules += [("read", topic) for topic, _ in contract.button_box_subscriptions(site, device.counter)]
    elif device.type == "clerk_keypad":
        rules += [("write", contract.topic_keypad(site, device.id)), ("read", contract.topic_config(site)),
                  ("read", counter_state), ("read", contract.topic_server_status(site))]
    elif device.type == "lobby_board":
        rules += [("read", topic) for topic, _ in contract.display_subscriptions(site)]
    elif device.type == "counter_display":
        rules += [("read", contract.topic_config(site)), ("read", counter_state),
                  ("read", contract.topic_call(site)), ("read", contract.topic_server_status(site))]
    rules = [(access, topic) for access, topic in rules if topic is not None]
    assert all(topic.startswith(f"{base}/") for _, topic in rules)
    return rules


def server_rules(site: str) -> list[tuple[str, str]]:
    base = f"{PREFIX}/{site}"
    return [
        ("read", f"{base}/device/#"),
        ("write", f"{base}/state/#"),
        ("write", f"{base}/events/#"),
        ("write", contract.topic_server_status(site)),
        ("write", f"{base}/device/+/response/#"),
    ]


def admin_rules(site: str) -> list[tuple[str, str]]:
    # Reads device topics to find a removed device's retained messages, writes to clear them.
    return [("readwrite", f"{PREFIX}/{site}/device/#")]


def acl_rules(inventory: Inventory) -> dict[str, list[tuple[str, str]]]:
    """user → [(access, topic)] for every account, server and provisioning tool first."""
    rules = {SERVER_USER: server_rules(inventory.site), ADMIN_USER: admin_rules(inventory.site)}
    for device in inventory.devices:
        rules[device.id] = device_rules(inventory.site, device)
    return rules


def acl_text(inventory: Inventory, source: str = "the inventory") -> str:
    lines = [
        f"# Mosquitto ACL of motcua site {inventory.site}: written by `motcua provision` from {source}.",
        "# Edit the inventory and generate again. Each device publishes only under its own",
        f"# {PREFIX}/{inventory.site}/device/{{id}}/ and reads only the state it needs; boards only read.",
        "# Nothing is allowed that is not listed here.",
    ]
    titles = {SERVER_USER: "the motcua server", ADMIN_USER: "motcua provision (clears removed devices' retained topics)"}
    for user, rules in acl_rules(inventory).items():
        device = inventory.device(user)
        title = titles.get(user) or (f"{device.type}" + (f" at {device.counter}" if device.counter else "")
                                     + (f": {device.name}" if device.name else ""))
        lines += ["", f"# {title}", f"user {user}"]
        lines += [f"topic {access} {topic}" for access, topic in rules]
    return "\n".join(lines) + "\n"


def parse_acl(text: str) -> dict[str | None, list[tuple[str, str]]]:
    """user → [(access, topic)] of a Mosquitto ACL file; rules before any `user` line under None,
    `pattern` lines under "(pattern)"."""
    rules: dict[str | None, list[tuple[str, str]]] = {}
    user: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user":
            user = rest
            rules.setdefault(user, [])
        elif keyword in ("topic", "pattern"):
            access, _, topic = rest.partition(" ")
            if access not in ("read", "write", "readwrite", "deny"):
                access, topic = "readwrite", rest
            rules.setdefault("(pattern)" if keyword == "pattern" else user, []).append((access, topic.strip()))
    return rules


# --------------------------------------------------------------------------- mosquitto.conf


def _socket_domain(host: str) -> str | None:
    if re.fullmatch(r"[0-9.]+", host):
        return "socket_domain ipv4"
    if ":" in host:
        return "socket_domain ipv6"
    return None


def mosquitto_conf_text(inventory: Inventory, layout: Layout, source: str = "the inventory") -> str:
    broker = inventory.broker
    for path in (layout.password_file, layout.acl_file):
        if re.search(r"\s", str(path)):
            raise ProvisionError(f"{path}: Mosquitto cannot read a path with spaces from its config; "
                                 "choose an output folder without any")
    data_dir = broker.data_dir.rstrip("/") + "/"
    lines = [
        f"# Mosquitto for motcua site {inventory.site}: written by `motcua provision` from {source}.",
        "# Edit the inventory and generate again. `systemctl reload motcua-broker` (SIGHUP) re-reads",
        "# the password and ACL files.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {layout.password_file}",
        f"acl_file {layout.acl_file}",
        "",
        "# QoS 1 sessions, their queued events and the retained state survive a restart.",
        "persistence true",
        f"persistence_location {data_dir}",
        "persistence_file mosquitto.db",
        "autosave_interval 60",
        "persistent_client_expiration 14d",
        "# Small packets at once: a ticket request/response takes ~0.4 ms instead of ~88 ms (Nagle).",
        "set_tcp_nodelay true",
        "# The default of 1000 queued messages per client drops events after a long outage.",
        "max_queued_messages 100000",
        "max_inflight_messages 1000",
        "",
        f"log_dest file {broker.log_file}" if broker.log_file else "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
        f"user {broker.user}",
        *([f"pid_file {broker.pid_file}"] if broker.pid_file else []),
        "",
        "# Plain MQTT: ESPHome button boxes, and the server on this machine.",
        f"listener {broker.port} {broker.listen}",
        *filter(None, [_socket_domain(broker.listen)]),
    ]
    if broker.tls is not None:
        lines += [
            "",
            "# TLS: kiosks and terminals.",
            f"listener {broker.tls.port} {broker.listen}",
            *filter(None, [_socket_domain(broker.listen)]),
            f"cafile {broker.tls.cafile}",
            f"certfile {broker.tls.certfile}",
            f"keyfile {broker.tls.keyfile}",
            "tls_version tlsv1.2",
        ]
    if broker.websockets_port is not None:
        lines += [
            "",
            "# MQTT over websockets.",
            f"listener {broker.websockets_port} {broker.listen}",
            "protocol websockets",
            # libwebsockets ignores the bind address unless the socket domain is given.
            _socket_domain(broker.listen) or "socket_domain ipv4",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Layout:
    """Where everything goes: the output directory and the ESPHome folder."""

    out: Path
    esphome_dir: Path

    @property
    def broker_dir(self) -> Path:
        return self.out / "mosquitto"

    @property
    def mosquitto_conf(self) -> Path:
        return self.broker_dir / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.broker_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.broker_dir / "acl"

    @property
    def server_env(self) -> Path:
        return self.out / "server" / "mqtt.env"

    @property
    def server_mqtt_toml(self) -> Path:
        return self.out / "server" / "site-mqtt.toml"

    @property
    def admin_env(self) -> Path:
        return self.out / "admin" / "mqtt.env"

    @property
    def devices_dir(self) -> Path:
        return self.out / "devices"

    def device_dir(self, device_id: str) -> Path:
        return self.devices_dir / device_id

    def device_env(self, device_id: str) -> Path:
        return self.device_dir(device_id) / "mqtt.env"

    @property
    def esphome_secrets(self) -> Path:
        return self.esphome_dir / "secrets.yaml"

    @property
    def esphome_secrets_example(self) -> Path:
        return self.esphome_dir / "secrets.example.yaml"


SETTINGS_FILE = {"ticket_kiosk": "kiosk.toml", "rating_terminal": "rating.toml", "clerk_keypad": "keypad.toml"}


def write_file(path: Path, data: str | bytes, mode: int) -> Path:
    """Write atomically (temporary file, fsync, rename) with `mode` from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def env_text(password: str, comment: str) -> str:
    return f"# {comment}\n{PASSWORD_ENV}={password}\n"


def read_env_password(path: Path) -> str | None:
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        key, separator, value = line.partition("=")
        if separator and key.strip() == PASSWORD_ENV:
            return value.strip().strip('"').strip("'") or None
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def toml_text(data: dict, header: Iterable[str] = ()) -> str:
    """A TOML document of scalars and one level of tables (None values are left out)."""
    lines = [f"# {line}" if line else "#" for line in header]
    scalars = {k: v for k, v in data.items() if v is not None and not isinstance(v, dict)}
    lines += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items() if value is not None]
    return "\n".join(lines) + "\n"


def device_endpoint(inventory: Inventory) -> dict[str, Any]:
    """How kiosks, terminals and keypads reach the broker: the TLS listener when there is one."""
    broker = inventory.broker
    if broker.tls is not None:
        return {"host": broker.host, "port": broker.tls.port, "tls": True, "ca_file": broker.tls.device_ca_file}
    return {"host": broker.host, "port": broker.port, "tls": False, "ca_file": None}


def device_mqtt_table(inventory: Inventory, device: Device) -> dict[str, Any]:
    endpoint = device_endpoint(inventory)
    return {"host": endpoint["host"], "port": endpoint["port"], "username": device.id,
            "password_env": PASSWORD_ENV, "tls": endpoint["tls"], "ca_file": endpoint["ca_file"]}


def device_settings(inventory: Inventory, device: Device) -> dict[str, Any]:
    """The settings file of a kiosk, terminal or keypad (kiosk/settings.py, kiosk/rating/settings.py)."""
    data: dict[str, Any] = {"device": device.id, "site": inventory.site}
    if device.counter:
        data["counter"] = device.counter
    data["mqtt"] = device_mqtt_table(inventory, device)
    if device.type == "ticket_kiosk" and device.printer:
        data["printer"] = inventory.printers[device.printer].model_dump(mode="json", exclude_defaults=True)
        data["printer"]["kind"] = inventory.printers[device.printer].kind
    return data


def validate_device_settings(device: Device, data: dict, source: str) -> None:
    """Load what we are about to write with the kiosk's own loaders, so the formats cannot drift."""
    from pydantic import ValidationError

    from kiosk.rating.settings import RatingTerminalSettings
    from kiosk.settings import KioskSettings

    model = {"ticket_kiosk": KioskSettings, "rating_terminal": RatingTerminalSettings}.get(device.type)
    if model is None:
        return
    try:
        model.model_validate(data)
    except ValidationError as exc:  # a bug here, not the user's: say so plainly
        raise ProvisionError(f"{source}: generated settings do not validate: {exc}") from None


def server_mqtt_table(inventory: Inventory) -> dict[str, Any]:
    """The site config's [mqtt] table for the server's broker account."""
    host = inventory.server.broker_host
    local = host in ("127.0.0.1", "::1", "localhost")
    tls = inventory.broker.tls is not None and not local
    return {
        "mode": "external", "host": host,
        "port": inventory.broker.tls.port if tls else inventory.broker.port,  # type: ignore[union-attr]
        "tls": tls, "ca_file": inventory.broker.tls.cafile if tls else None,  # type: ignore[union-attr]
        "username": SERVER_USER, "password_env": PASSWORD_ENV,
    }


def board_url(inventory: Inventory, device: Device) -> str:
    base = (inventory.server.url or "").rstrip("/")
    return f"{base}/counter/{device.counter}" if device.type == "counter_display" else f"{base}/board"


# --------------------------------------------------------------------------- enrolment QR


def enrolment_url(inventory: Inventory, device: Device, password: str) -> str:
    """What a tablet scans to configure itself. It carries the password: see write_enrolment_qr."""
    endpoint = device_endpoint(inventory)
    query = [("v", ENROL_VERSION), ("site", inventory.site), ("device", device.id), ("type", device.type)]
    if device.counter:
        query.append(("counter", device.counter))
    query += [("host", endpoint["host"]), ("port", str(endpoint["port"])), ("tls", "1" if endpoint["tls"] else "0"),
              ("username", device.id), ("password", password)]
    return f"{ENROL_SCHEME}://enrol?{urlencode(query)}"


def parse_enrolment_url(url: str) -> dict[str, Any]:
    """The settings in an enrolment URL; ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme != ENROL_SCHEME or parts.netloc != "enrol":
        raise ValueError(f"not a motcua enrolment URL: {url[:40]!r}")
    query = dict(parse_qsl(parts.query, strict_parsing=True))
    if query.get("v") != ENROL_VERSION:
        raise ValueError(f"unsupported enrolment version {query.get('v')!r}")
    missing = [k for k in ("site", "device", "type", "host", "port", "username", "password") if not query.get(k)]
    if missing:
        raise ValueError(f"enrolment URL lacks {', '.join(missing)}")
    return {
        "site": query["site"], "device": query["device"], "type": query["type"], "counter": query.get("counter"),
        "mqtt": {"host": query["host"], "port": int(query["port"]), "tls": query.get("tls") == "1",
                 "username": query["username"], "password": query["password"]},
    }


ENROL_FINGERPRINT = "motcua-enrolment-sha256"


def enrolment_png(url: str) -> bytes:
    """The QR code of `url` as a PNG, with the URL's SHA-256 in a text chunk (so that a later run
    can tell the picture is current without drawing it again; the hash does not reveal the URL)."""
    import qrcode
    from PIL.PngImagePlugin import PngInfo

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(url)
    code.make(fit=True)
    info = PngInfo()
    info.add_text(ENROL_FINGERPRINT, hashlib.sha256(url.encode("utf-8")).hexdigest())
    buffer = io.BytesIO()
    code.make_image().save(buffer, pnginfo=info)
    return buffer.getvalue()


def enrolment_png_is_current(path: Path, url: str) -> bool:
    from PIL import Image

    if not path.exists():
        return False
    try:
        with Image.open(path) as image:
            return image.text.get(ENROL_FINGERPRINT) == hashlib.sha256(url.encode("utf-8")).hexdigest()
    except OSError:
        return False


# --------------------------------------------------------------------------- ESPHome


_YAML_KEY = re.compile(r"^([A-Za-z0-9_]+):(.*)$")


def yaml_scalar(text: str) -> str:
    """A flat YAML scalar as ESPHome's secrets and substitutions use them (quoted or plain)."""
    text = text.strip()
    if text.startswith('"'):
        end = text.rfind('"')
        try:
            return json.loads(text[: end + 1])
        except ValueError:
            return text[1:end]
    if text.startswith("'"):
        end = text.rfind("'")
        return text[1:end].replace("''", "'")
    return re.sub(r"\s+#.*$", "", text)


def read_flat_yaml(path: Path) -> dict[str, str]:
    """Top-level `key: value` pairs of a flat YAML file such as secrets.yaml ({} if missing)."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _YAML_KEY.match(line)
        if match:
            values[match.group(1)] = yaml_scalar(match.group(2))
    return values


def update_flat_yaml(text: str, values: dict[str, str], remove: Iterable[str] = ()) -> str:
    """Set `values` in a flat YAML text (in place where the key is, else appended) and drop `remove`;
    every other line, comments included, is kept as it is."""
    remove = set(remove)
    done: set[str] = set()
    lines = []
    for line in text.splitlines():
        match = _YAML_KEY.match(line)
        key = match.group(1) if match else None
        if key in remove:
            continue
        if key in values:
            lines.append(f"{key}: {json.dumps(values[key], ensure_ascii=False)}")
            done.add(key)
            continue
        lines.append(line)
    lines += [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in values.items() if key not in done]
    return "\n".join(lines) + "\n"


def esphome_device_yaml(inventory: Inventory, device: Device) -> str:
    """A new box's file, like rating-box-quay-1.yaml: only what differs, the rest in common/."""
    friendly = device.name or f"Hộp đánh giá {device.counter}"
    lines = [
        f"# Rating button box {device.id} at counter {device.counter} (made by `motcua provision`).",
        "# The behaviour lives in common/rating_box.yaml; this file says only what differs.",
        "substitutions:",
        f"  site: {inventory.site}",
        f"  device: {device.id}",
        f"  counter: {device.counter}",
        f"  friendly_name: {json.dumps(friendly, ensure_ascii=False)}",
        "  # Each box has its own broker account: user = device id, password from secrets.yaml.",
        f"  mqtt_password: !secret {device.esphome_secret}",
    ]
    if inventory.broker.port != 1883:
        lines.append(f'  mqtt_port: "{inventory.broker.port}"')
    lines += ["", "packages:", "  rating_box: !include common/rating_box.yaml"]
    return "\n".join(lines) + "\n"


def read_esphome_substitutions(path: Path) -> dict[str, str]:
    """The `substitutions:` of an ESPHome device file; a `!secret x` value reads as `!secret x`.

    A small reader for the flat files this project keeps (one per device, the rest in packages),
    so that `motcua provision check` needs no YAML library.
    """
    values: dict[str, str] = {}
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#")[0].strip() == "substitutions:"
            continue
        if inside:
            match = re.match(r"^\s+([A-Za-z0-9_]+):(.*)$", line)
            if match:
                raw = match.group(2).strip()
                secret = re.fullmatch(r"!secret\s+([A-Za-z0-9_]+)", raw)
                values[match.group(1)] = f"!secret {secret.group(1)}" if secret else yaml_scalar(raw)
    return values


def esphome_device_files(esphome_dir: Path) -> list[Path]:
    """The device files of an ESPHome folder: every top-level *.yaml but the secrets."""
    if not esphome_dir.is_dir():
        return []
    return sorted(p for p in esphome_dir.glob("*.yaml") if not p.name.startswith("secrets"))


# --------------------------------------------------------------------------- generating


@dataclass
class Report:
    """What a run did, for the command line to print."""

    written: list[Path] = field(default_factory=list)
    new_passwords: list[str] = field(default_factory=list)  # accounts given a new password
    removed: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"wrote {path}" for path in self.written]
        lines += [f"removed {path}" for path in self.removed]
        if self.new_passwords:
            lines.append("new password for: " + ", ".join(self.new_passwords))
        lines += [f"warning: {warning}" for warning in self.warnings]
        return lines


def load_inventory_data(inventory_path: Path, broker_host: str | None = None) -> Inventory:
    """The inventory file, with the broker host given on the command line (if any) applied."""
    try:
        data = tomllib.loads(inventory_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(inventory_path), [("(file)", str(inventory_path), "file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(inventory_path), [("(syntax)", None, f"not valid TOML: {exc}")]) from None
    if broker_host:
        broker = data.get("broker")
        if isinstance(broker, dict):
            data["broker"] = {**broker, "host": broker_host}
    return parse_inventory(data, str(inventory_path))


def layout_for(inventory: Inventory, inventory_path: Path, out_dir: Path, esphome_dir: Path | None = None) -> Layout:
    esphome = Path(esphome_dir) if esphome_dir else relative_to_inventory(inventory_path, inventory.esphome.dir)
    return Layout(Path(out_dir).resolve(), esphome.resolve())


def server_config_path(inventory: Inventory, inventory_path: Path, given: Path | None) -> Path | None:
    if given is not None:
        return Path(given)
    return relative_to_inventory(inventory_path, inventory.server.config) if inventory.server.config else None


class Provisioner:
    """Everything `motcua provision` writes, for one inventory and output directory."""

    def __init__(self, inventory_path: str | Path, out_dir: str | Path, *, broker_host: str | None = None,
                 esphome_dir: str | Path | None = None, server_config: str | Path | None = None) -> None:
        self.inventory_path = Path(inventory_path).resolve()
        self.broker_host = broker_host
        self.inventory = load_inventory_data(self.inventory_path, broker_host)
        self.layout = layout_for(self.inventory, self.inventory_path, Path(out_dir),
                                 Path(esphome_dir) if esphome_dir else None)
        self.server_config = server_config_path(self.inventory, self.inventory_path,
                                                Path(server_config) if server_config else None)
        self.source = self.inventory_path.name

    # -- the clear-text copies a device needs (also where a later run reads them back)

    def stored_password(self, user: str) -> str | None:
        password = self._stored_password(user)
        # secrets.example.yaml's placeholders, copied as they are, are not passwords.
        return None if password is None or password.startswith("change-me") else password

    def _stored_password(self, user: str) -> str | None:
        if user == SERVER_USER:
            return read_env_password(self.layout.server_env)
        if user == ADMIN_USER:
            return read_env_password(self.layout.admin_env)
        device = self.inventory.device(user)
        if device is not None and device.type == "button_box":
            return read_flat_yaml(self.layout.esphome_secrets).get(device.esphome_secret) or None
        return read_env_password(self.layout.device_env(user))

    def _passwords(self, rotate: set[str], report: Report) -> tuple[dict[str, str], dict[str, str | None]]:
        """(user → hash for passwd, user → clear text or None when it cannot be known)."""
        existing = read_password_file(self.layout.password_file)
        hashes: dict[str, str] = {}
        clear: dict[str, str | None] = {}
        for user in acl_rules(self.inventory):
            stored = self.stored_password(user)
            if user in rotate or (user not in existing and stored is None):
                password = new_password()
                hashes[user], clear[user] = hash_password(password), password
                report.new_passwords.append(user)
            elif stored is not None:
                keep = user in existing and verify_password(stored, existing[user])
                hashes[user], clear[user] = (existing[user] if keep else hash_password(stored)), stored
                if user in existing and not keep:
                    report.warnings.append(f"{user}: the broker's hash did not match the device's copy of its "
                                           "password; the device's copy is kept")
            else:
                hashes[user], clear[user] = existing[user], None
                report.warnings.append(f"{user}: its password is only known to the broker (the device's files "
                                       f"are gone), so they were not written again; `motcua provision rotate "
                                       f"--device {user}` gives it a new one")
        return hashes, clear

    def check_server_config(self) -> None:
        """The site and counters the inventory names must exist in the server config."""
        if self.server_config is None:
            return
        from .consistency import server_config_problems

        problems = server_config_problems(self.inventory, self.server_config, include_mqtt=False)
        if problems:
            raise ProvisionError("the inventory does not match the server config:\n"
                                 + "\n".join(f"  {p}" for p in problems))

    def generate(self, rotate: Iterable[str] = ()) -> Report:
        rotate = set(rotate)
        unknown = rotate - set(acl_rules(self.inventory))
        if unknown:
            raise ProvisionError(f"no such device in {self.inventory_path}: {', '.join(sorted(unknown))}")
        self.check_server_config()
        report = Report()
        hashes, clear = self._passwords(rotate, report)
        layout, inventory = self.layout, self.inventory

        layout.out.mkdir(parents=True, exist_ok=True)
        layout.broker_dir.mkdir(parents=True, exist_ok=True)
        report.written.append(write_file(layout.password_file, password_file_text(hashes), 0o640))
        report.written.append(write_file(layout.acl_file, acl_text(inventory, self.source), 0o640))
        self._broker_group(layout.password_file, layout.acl_file)
        report.written.append(write_file(layout.mosquitto_conf, mosquitto_conf_text(inventory, layout, self.source),
                                         0o644))

        _private_dir(layout.server_env.parent)
        if clear[SERVER_USER] is not None:
            report.written.append(write_file(layout.server_env, env_text(
                clear[SERVER_USER], f"motcua server's broker password (user {SERVER_USER}); "
                                    "systemd: EnvironmentFile= in motcua-server.service"), 0o600))
        report.written.append(write_file(layout.server_mqtt_toml, toml_text(
            {"mqtt": server_mqtt_table(inventory)},
            [f"The [mqtt] table of the site config for the broker of site {inventory.site}.",
             f"The password comes from the environment ({PASSWORD_ENV}, see server/mqtt.env)."]), 0o644))
        _private_dir(layout.admin_env.parent)
        if clear[ADMIN_USER] is not None:
            report.written.append(write_file(layout.admin_env, env_text(
                clear[ADMIN_USER], f"motcua provision's broker password (user {ADMIN_USER})"), 0o600))

        _private_dir(layout.devices_dir)
        for device in inventory.devices:
            if device.type != "button_box":
                report.written += self._write_device(device, clear[device.id])
        report.written += self._write_esphome(clear, report)

        orphans = sorted(p.name for p in layout.devices_dir.iterdir() if p.is_dir() and not inventory.device(p.name))
        for orphan in orphans:
            report.warnings.append(f"devices/{orphan} is not in the inventory: `motcua provision remove --device "
                                   f"{orphan}` deletes its files and clears its retained topics")
        return report

    def _broker_group(self, *paths: Path) -> None:
        """Readable by Mosquitto's group when it runs as its own user (set up by the Debian package)."""
        if os.geteuid() != 0 or self.inventory.broker.user == "root":
            return
        import grp

        try:
            gid = grp.getgrnam(self.inventory.broker.user).gr_gid
        except KeyError:
            return
        for path in paths:
            os.chown(path, 0, gid)

    def _write_device(self, device: Device, password: str | None) -> list[Path]:
        inventory, directory = self.inventory, self.layout.device_dir(device.id)
        _private_dir(directory)
        written = []
        label = device.name or device.id
        if device.type in SETTINGS_FILE:
            data = device_settings(inventory, device)
            path = directory / SETTINGS_FILE[device.type]
            validate_device_settings(device, data, str(path))
            written.append(write_file(path, toml_text(data, [
                f"{device.type} {label} of site {inventory.site}: written by `motcua provision` from {self.source};",
                "edit the inventory and generate again. The broker password is not here: it is in",
                f"mqtt.env ({PASSWORD_ENV}), which the kiosk's autostart passes to the app."]), 0o644))
        if device.type in READ_ONLY_TYPES:
            written.append(write_file(directory / "board.env", (
                f"# {device.type} {label}: the page Chromium shows (firmware_config/deploy/board-kiosk.sh)\n"
                f"MOTCUA_BOARD_URL={board_url(inventory, device)}\n"), 0o644))
        if password is not None:
            written.append(write_file(directory / "mqtt.env", env_text(
                password, f"broker password of {device.id} (user {device.id}); keep it on the device only"), 0o600))
            if device.type in TABLET_TYPES:
                url = enrolment_url(inventory, device, password)
                if not enrolment_png_is_current(directory / "enrol.png", url):
                    written.append(write_file(directory / "enrol.png", enrolment_png(url), 0o600))
        return written

    def _write_esphome(self, clear: dict[str, str | None], report: Report) -> list[Path]:
        inventory, layout = self.inventory, self.layout
        boxes = inventory.of_type("button_box")
        secrets_path = layout.esphome_secrets
        if not boxes and not secrets_path.exists():
            return []
        written = []
        layout.esphome_dir.mkdir(parents=True, exist_ok=True)
        values = {"mqtt_broker": inventory.broker.host,
                  "ntp_server": inventory.esphome.ntp_server or inventory.broker.host}
        values |= {box.esphome_secret: clear[box.id] for box in boxes if clear[box.id] is not None}
        ours = {box.esphome_secret for box in boxes}
        existing = read_flat_yaml(secrets_path)
        stale = [key for key in existing if key.startswith("mqtt_password_") and key not in ours]
        if secrets_path.exists():
            text = secrets_path.read_text(encoding="utf-8")
        else:
            wifi_password = os.environ.get("MOTCUA_WIFI_PASSWORD")
            if not wifi_password:
                report.warnings.append(f"{secrets_path}: set wifi_password (or MOTCUA_WIFI_PASSWORD before "
                                       "generating); later runs keep what you write")
            text = (f"# ESPHome secrets of site {inventory.site}: written by `motcua provision`. Never commit it.\n"
                    "# motcua provision sets mqtt_broker, ntp_server and the mqtt_password_* keys; the rest is yours.\n"
                    + update_flat_yaml("", {"wifi_ssid": inventory.esphome.wifi_ssid,
                                            "wifi_password": wifi_password or "change-me-wifi-password",
                                            "ota_password": new_password()}))
        written.append(write_file(secrets_path, update_flat_yaml(text, values, stale), 0o600))

        # The committed template gets a placeholder, so that the firmware tests (which copy it to
        # secrets.yaml) know every box.
        example = layout.esphome_secrets_example
        if example.exists():
            have = read_flat_yaml(example)
            missing = {box.esphome_secret: f"change-me-{box.id}" for box in boxes if box.esphome_secret not in have}
            if missing:
                written.append(write_file(example, update_flat_yaml(example.read_text(encoding="utf-8"), missing),
                                          0o644))
        named = {read_esphome_substitutions(p).get("device") for p in esphome_device_files(layout.esphome_dir)}
        for box in boxes:
            if box.id not in named:
                path = layout.esphome_dir / f"{box.id}.yaml"
                if path.exists():
                    report.warnings.append(f"{path} exists but does not name device {box.id}; left as it is")
                    continue
                written.append(write_file(path, esphome_device_yaml(inventory, box), 0o644))
        return written

    # -- rotate and remove

    def rotate(self, user: str) -> Report:
        """A new password for one account (a device id, or motcua_server / motcua_admin)."""
        return self.generate(rotate={user})

    def remove(self, device_id: str) -> Report:
        """Take a device out of the inventory file and out of every generated file.

        The broker must re-read its files (`reload_broker`) before `clear_retained`, or a still
        connected device could publish its status again."""
        if not contract.is_id(device_id):
            raise ProvisionError(f"{device_id!r} is not a device id")
        report = Report()
        device = self.inventory.device(device_id)
        if device is not None:
            text = self.inventory_path.read_text(encoding="utf-8")
            new_text = remove_device_from_inventory_text(text, device_id)
            write_file(self.inventory_path, new_text, os.stat(self.inventory_path).st_mode & 0o777)
            report.written.append(self.inventory_path)
            self.inventory = load_inventory_data(self.inventory_path, self.broker_host)
        # The ESPHome file naming the device, and its secret (generate drops stale mqtt_password_*).
        for path in esphome_device_files(self.layout.esphome_dir):
            if read_esphome_substitutions(path).get("device") == device_id:
                path.unlink()
                report.removed.append(path)
        if self.layout.esphome_secrets_example.exists():
            key = "mqtt_password_" + device_id.replace("-", "_")
            example = self.layout.esphome_secrets_example
            if key in read_flat_yaml(example):
                write_file(example, update_flat_yaml(example.read_text(encoding="utf-8"), {}, [key]), 0o644)
                report.written.append(example)
        directory = self.layout.device_dir(device_id)
        if directory.exists():
            shutil.rmtree(directory)
            report.removed.append(directory)
        if device is None and not report.removed:
            report.warnings.append(f"{device_id} was not in the inventory and left no files")
        generated = self.generate()
        report.written += generated.written
        report.new_passwords += generated.new_passwords
        report.warnings += generated.warnings
        return report

    # -- talking to the broker

    def admin_password(self) -> str:
        password = read_env_password(self.layout.admin_env)
        if password is None:
            raise ProvisionError(f"{self.layout.admin_env} is missing: run `motcua provision generate` first")
        return password

    def reload_broker(self) -> None:
        """SIGHUP through [broker].pid_file, else `systemctl reload motcua-broker`."""
        if self.inventory.broker.pid_file:
            reload_broker(Path(self.inventory.broker.pid_file))
            return
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            raise ProvisionError("no broker.pid_file and no systemctl: reload the broker yourself (SIGHUP)")
        result = subprocess.run([systemctl, "reload", "motcua-broker.service"], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise ProvisionError(f"systemctl reload motcua-broker failed: {result.stderr.strip()}")


def remove_device_from_inventory_text(text: str, device_id: str) -> str:
    """The inventory without the `[[devices]]` table of `device_id` (and the comment right above it),
    every other line untouched. ProvisionError when the result is not exactly that."""
    before = tomllib.loads(text)
    lines = text.splitlines(keepends=True)
    header = re.compile(r"^\s*\[")
    starts = [i for i, line in enumerate(lines) if re.match(r"^\s*\[\[\s*devices\s*\]\]", line)]
    expected = [d for d in before.get("devices", []) if d.get("id") != device_id]
    for position, start in enumerate(starts):
        end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # trailing comments introduce the next table
        first = start
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        candidate = "".join(lines[:first] + lines[end:])
        try:
            after = tomllib.loads(candidate)
        except tomllib.TOMLDecodeError:
            continue
        rest_equal = {k: v for k, v in after.items() if k != "devices"} == \
                     {k: v for k, v in before.items() if k != "devices"}
        if after.get("devices", []) == expected and rest_equal and len(expected) < len(before.get("devices", [])):
            return re.sub(r"\n{3,}", "\n\n", candidate)
    raise ProvisionError(f"could not take device {device_id} out of the inventory by itself: delete its "
                         "[[devices]] entry by hand, then run `motcua provision remove` again")


def reload_broker(pid_file: Path) -> int:
    """SIGHUP to the broker in `pid_file`: Mosquitto re-reads its password and ACL files and
    disconnects clients whose account is gone. Returns the pid."""
    try:
        pid = int(Path(pid_file).read_text().strip())
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"cannot read the broker's pid from {pid_file}: {exc}") from None
    os.kill(pid, signal.SIGHUP)
    return pid


def clear_retained(site: str, device_id: str, host: str, port: int, username: str, password: str, *,
                   tls_ca_file: str | None = None, timeout: float = 10.0) -> list[str]:
    """Publish an empty retained message on every retained topic under device/{device_id}/ (and its
    status, whatever is found), as zigbee2mqtt does for a removed device. Returns the topics."""
    import threading

    from queue_server.mqtt.client import connect_and_wait, make_client, subscribe_and_wait

    base = f"{PREFIX}/{site}/device/{device_id}"
    contract.topic_device_status(site, device_id)  # checks both ids
    found: set[str] = set()
    lock = threading.Lock()

    def on_message(client, userdata, message) -> None:
        if message.retain and message.payload:
            with lock:
                found.add(message.topic)

    client = make_client(f"motcua-provision-{site}-{secrets.token_hex(3)}", username=username, password=password)
    if tls_ca_file:
        client.tls_set(ca_certs=tls_ca_file)
    client.on_message = on_message
    connect_and_wait(client, host, port, timeout=timeout)
    try:
        # QoS 0: retained messages are sent at once, not held back by the in-flight window, so
        # once the SUBACK of a second subscription is in, every one of the first has arrived.
        subscribe_and_wait(client, [(f"{base}/#", 0)], timeout=timeout)
        subscribe_and_wait(client, [(contract.topic_device_status(site, device_id), 0)], timeout=timeout)
        with lock:
            topics = sorted(found | {contract.topic_device_status(site, device_id)})
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in infos:
            info.wait_for_publish(timeout)
        return topics
    finally:
        client.disconnect()
        client.loop_stop()
