"""`motcua provision check`: the inventory, the broker's files, the ESPHome files, each device's
files and the server config all say the same thing.

Every problem names the file and the key (or ACL user, or setting) that disagrees, so that a
device missing from the ACL or an ESPHome file naming an unknown device is found before a
device fails to connect in the field.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from queue_server.config import ConfigError, load_config

from .inventory import ADMIN_USER, SERVER_USER, Inventory
from .provision import (
    SETTINGS_FILE,
    Layout,
    ProvisionError,
    acl_rules,
    device_settings,
    esphome_device_files,
    layout_for,
    load_inventory_data,
    parse_acl,
    read_env_password,
    read_esphome_substitutions,
    read_flat_yaml,
    read_password_file,
    server_config_path,
    server_mqtt_table,
    verify_password,
)


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


def check(inventory_path: str | Path, out_dir: str | Path, *, esphome_dir: str | Path | None = None,
          server_config: str | Path | None = None, broker_host: str | None = None) -> list[Problem]:
    """Every disagreement between the inventory and the files made from it (empty: all agree)."""
    inventory_path = Path(inventory_path).resolve()
    try:
        inventory = load_inventory_data(inventory_path, broker_host)
    except ConfigError as exc:
        return [Problem(exc.source, path, f"{message} (value: {value!r})") for path, value, message in exc.problems]
    layout = layout_for(inventory, inventory_path, Path(out_dir), Path(esphome_dir) if esphome_dir else None)
    problems: list[Problem] = []
    hashes = _password_problems(inventory, layout, problems)
    problems += acl_problems(inventory, layout.acl_file)
    problems += mosquitto_conf_problems(inventory, layout)
    problems += device_file_problems(inventory, layout, hashes)
    problems += esphome_problems(inventory, layout, hashes)
    config_path = server_config_path(inventory, inventory_path, Path(server_config) if server_config else None)
    if config_path is not None:
        problems += server_config_problems(inventory, config_path)
    return problems


def _password_problems(inventory: Inventory, layout: Layout, problems: list[Problem]) -> dict[str, str]:
    name = str(layout.password_file)
    try:
        hashes = read_password_file(layout.password_file)
    except ProvisionError as exc:
        problems.append(Problem(name, "(file)", str(exc)))
        return {}
    if not layout.password_file.exists():
        problems.append(Problem(name, "(file)", "missing: run `motcua provision generate`"))
        return {}
    expected = acl_rules(inventory)
    for user in expected:
        if user not in hashes:
            problems.append(Problem(name, user, "no broker account for this inventory entry"))
    for user in hashes:
        if user not in expected:
            problems.append(Problem(name, user, "an account for a device that is not in the inventory"))
    server = read_env_password(layout.server_env)
    if server is not None and SERVER_USER in hashes and not verify_password(server, hashes[SERVER_USER]):
        problems.append(Problem(str(layout.server_env), "MOTCUA_MQTT_PASSWORD", f"not the password of {SERVER_USER}"))
    admin = read_env_password(layout.admin_env)
    if admin is not None and ADMIN_USER in hashes and not verify_password(admin, hashes[ADMIN_USER]):
        problems.append(Problem(str(layout.admin_env), "MOTCUA_MQTT_PASSWORD", f"not the password of {ADMIN_USER}"))
    return hashes


def acl_problems(inventory: Inventory, acl_path: Path) -> list[Problem]:
    name = str(acl_path)
    if not acl_path.exists():
        return [Problem(name, "(file)", "missing: run `motcua provision generate`")]
    found = parse_acl(acl_path.read_text(encoding="utf-8"))
    problems = []
    if found.get(None):
        problems.append(Problem(name, "(before any user)", "rules that apply to every account, anonymous "
                                                          f"ones included: {found[None]}"))
    if found.get("(pattern)"):
        problems.append(Problem(name, "pattern", f"pattern rules apply to every account: {found['(pattern)']}"))
    for user, rules in acl_rules(inventory).items():
        key = f"user {user}"
        if user not in found:
            problems.append(Problem(name, key, "missing: this inventory entry has no rules in the ACL"))
            continue
        missing = [f"{a} {t}" for a, t in rules if (a, t) not in found[user]]
        extra = [f"{a} {t}" for a, t in found[user] if (a, t) not in rules]
        if missing:
            problems.append(Problem(name, key, "lacks " + "; ".join(missing)))
        if extra:
            problems.append(Problem(name, key, "allows more than the inventory says: " + "; ".join(extra)))
    expected = set(acl_rules(inventory))
    for user in found:
        if user not in expected and user not in (None, "(pattern)"):
            problems.append(Problem(name, f"user {user}", "not in the inventory"))
    return problems


def _conf_values(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            pairs.append((key, value.strip()))
    return pairs


def mosquitto_conf_problems(inventory: Inventory, layout: Layout) -> list[Problem]:
    name = str(layout.mosquitto_conf)
    if not layout.mosquitto_conf.exists():
        return [Problem(name, "(file)", "missing: run `motcua provision generate`")]
    pairs = _conf_values(layout.mosquitto_conf)
    values = dict(pairs)
    problems = []
    wanted = {"allow_anonymous": "false", "password_file": str(layout.password_file),
              "acl_file": str(layout.acl_file), "persistence": "true", "set_tcp_nodelay": "true"}
    for key, value in wanted.items():
        if values.get(key) != value:
            problems.append(Problem(name, key, f"is {values.get(key)!r}, expected {value!r}"))
    ports = {int(value.split()[0]) for key, value in pairs if key == "listener" and value.split()[0].isdigit()}
    expected = {inventory.broker.port}
    if inventory.broker.tls is not None:
        expected.add(inventory.broker.tls.port)
    if inventory.broker.websockets_port is not None:
        expected.add(inventory.broker.websockets_port)
    if ports != expected:
        problems.append(Problem(name, "listener", f"ports {sorted(ports)}, the inventory says {sorted(expected)}"))
    return problems


def _without_none(data: dict) -> dict:
    return {k: (_without_none(v) if isinstance(v, dict) else v) for k, v in data.items() if v is not None}


def device_file_problems(inventory: Inventory, layout: Layout, hashes: dict[str, str]) -> list[Problem]:
    problems = []
    for device in inventory.devices:
        if device.type == "button_box":
            continue
        directory = layout.device_dir(device.id)
        if device.type in SETTINGS_FILE:
            path = directory / SETTINGS_FILE[device.type]
            if not path.exists():
                problems.append(Problem(str(path), "(file)", f"missing for {device.type} {device.id}"))
            else:
                try:
                    written = tomllib.loads(path.read_text(encoding="utf-8"))
                except tomllib.TOMLDecodeError as exc:
                    problems.append(Problem(str(path), "(syntax)", str(exc)))
                else:
                    expected = _without_none(device_settings(inventory, device))
                    for key in sorted(set(expected) | set(written)):
                        if written.get(key) != expected.get(key):
                            problems.append(Problem(str(path), key, f"is {written.get(key)!r}, the inventory "
                                                                    f"says {expected.get(key)!r}"))
        env = directory / "mqtt.env"
        password = read_env_password(env)
        if password is None:
            problems.append(Problem(str(env), "MOTCUA_MQTT_PASSWORD", f"missing: {device.id} cannot connect"))
        elif device.id in hashes and not verify_password(password, hashes[device.id]):
            problems.append(Problem(str(env), "MOTCUA_MQTT_PASSWORD", f"not the broker's password of {device.id}"))
    if layout.devices_dir.is_dir():
        for directory in sorted(layout.devices_dir.iterdir()):
            if directory.is_dir() and inventory.device(directory.name) is None:
                problems.append(Problem(str(directory), "(folder)", "files of a device that is not in the inventory"))
    return problems


def esphome_problems(inventory: Inventory, layout: Layout, hashes: dict[str, str]) -> list[Problem]:
    problems = []
    boxes = {box.id: box for box in inventory.of_type("button_box")}
    files = esphome_device_files(layout.esphome_dir)
    named: set[str] = set()
    for path in files:
        name = str(path)
        substitutions = read_esphome_substitutions(path)
        device_id = substitutions.get("device")
        if not device_id:
            problems.append(Problem(name, "substitutions.device", "missing: which device is this?"))
            continue
        named.add(device_id)
        device = inventory.device(device_id)
        if device is None:
            problems.append(Problem(name, "substitutions.device", f"{device_id!r} is not in the inventory"))
            continue
        if device.type != "button_box":
            problems.append(Problem(name, "substitutions.device", f"{device_id!r} is a {device.type} in the "
                                                                  "inventory, not a button_box"))
            continue
        if path.stem != device_id:
            problems.append(Problem(name, "(file name)", f"should be {device_id}.yaml"))
        checks = {"site": inventory.site, "counter": device.counter,
                  "mqtt_password": f"!secret {device.esphome_secret}",
                  "mqtt_port": str(inventory.broker.port)}
        for key, expected in checks.items():
            actual = substitutions.get(key, "1883" if key == "mqtt_port" else None)
            if actual != expected:
                problems.append(Problem(name, f"substitutions.{key}", f"is {actual!r}, the inventory says {expected!r}"))
    for box in boxes:
        if box not in named:
            problems.append(Problem(str(layout.esphome_dir), box, "button box of the inventory without an ESPHome "
                                                                  "file"))
    secrets = read_flat_yaml(layout.esphome_secrets)
    if boxes and not layout.esphome_secrets.exists():
        problems.append(Problem(str(layout.esphome_secrets), "(file)", "missing: run `motcua provision generate`"))
    elif boxes:
        name = str(layout.esphome_secrets)
        for box in boxes.values():
            password = secrets.get(box.esphome_secret)
            if not password:
                problems.append(Problem(name, box.esphome_secret, f"missing: {box.id} cannot connect"))
            elif box.id in hashes and not verify_password(password, hashes[box.id]):
                problems.append(Problem(name, box.esphome_secret, f"not the broker's password of {box.id}"))
        if secrets.get("mqtt_broker") != inventory.broker.host:
            problems.append(Problem(name, "mqtt_broker", f"is {secrets.get('mqtt_broker')!r}, the inventory says "
                                                         f"{inventory.broker.host!r}"))
    for key in secrets:
        if key.startswith("mqtt_password_") and key not in {box.esphome_secret for box in boxes.values()}:
            problems.append(Problem(str(layout.esphome_secrets), key, "password of a box that is not in the "
                                                                      "inventory"))
    example = layout.esphome_secrets_example
    if example.exists() and files:
        placeholders = read_flat_yaml(example)
        for box in boxes.values():
            if box.id in named and box.esphome_secret not in placeholders:
                problems.append(Problem(str(example), box.esphome_secret, "no placeholder (the firmware tests "
                                                                          "make secrets.yaml from this file)"))
    return problems


def server_config_problems(inventory: Inventory, config_path: Path, *, include_mqtt: bool = True) -> list[Problem]:
    """The site id and the counters the devices name exist in the server config; with
    `include_mqtt`, its [mqtt] table also points at the provisioned broker with the server's account."""
    name = str(config_path)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [Problem(exc.source, path, message) for path, _, message in exc.problems]
    problems = []
    if config.site.id != inventory.site:
        problems.append(Problem(name, "site.id", f"is {config.site.id!r}, the inventory says {inventory.site!r}"))
    counters = {c.id for c in config.counters}
    for index, device in enumerate(inventory.devices):
        if device.counter is not None and device.counter not in counters:
            problems.append(Problem(name, "counters", f"no counter {device.counter!r}, which devices[{index}] "
                                                      f"({device.id}) serves"))
    if include_mqtt:
        expected = server_mqtt_table(inventory)
        actual = config.mqtt.model_dump()
        for key in ("mode", "port", "tls", "username"):
            if actual.get(key) != expected[key]:
                problems.append(Problem(name, f"mqtt.{key}", f"is {actual.get(key)!r}, the provisioned broker "
                                                             f"needs {expected[key]!r}"))
        if not config.mqtt.password_env:
            problems.append(Problem(name, "mqtt.password_env", "not set: the server cannot log in to the broker"))
        if config.mqtt.tls and not config.mqtt.ca_file:
            problems.append(Problem(name, "mqtt.ca_file", "not set while mqtt.tls is true"))
    return problems
