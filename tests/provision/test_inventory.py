"""The inventory is validated like the server config: unknown keys rejected, errors with key paths."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from firmware_config.inventory import DEVICE_TYPES, load_inventory, parse_inventory
from queue_server.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "firmware_config" / "inventory.example.toml"


def example_data() -> dict:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def problems_of(data: dict) -> list[tuple[str, object, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_inventory(data, "inventory.toml")
    return caught.value.problems


def paths_of(data: dict) -> list[str]:
    return [path for path, _, _ in problems_of(data)]


def test_the_example_inventory_has_every_device_type() -> None:
    inventory = load_inventory(EXAMPLE)
    assert inventory.site == "hcc-demo"
    assert {device.type for device in inventory.devices} == set(DEVICE_TYPES)
    kiosk = inventory.device("kiosk-01")
    assert kiosk is not None and kiosk.printer == "xprinter-80"
    assert inventory.printers["xprinter-80"].usb_vendor_id == 0x0416  # hex strings, as lsusb prints them
    assert inventory.device("rating-box-quay-2").esphome_secret == "mqtt_password_rating_box_quay_2"


def test_a_misspelt_key_is_rejected_with_its_key_path() -> None:
    data = example_data()
    data["devices"][2]["countr"] = "quay-1"
    data["broker"]["prot"] = 1884
    problems = problems_of(data)
    assert ("devices[2].countr", "quay-1", "Extra inputs are not permitted") in problems
    assert ("broker.prot", 1884, "Extra inputs are not permitted") in problems


def test_bad_values_name_their_key_path_and_value() -> None:
    data = example_data()
    data["devices"][0]["id"] = "Kiosk_01"
    data["devices"][1]["type"] = "kiosk"
    data["printers"]["network-58"]["host"] = None
    data["broker"]["port"] = 70000
    data["broker"]["data_dir"] = "/var/lib/motcua\npassword_file /tmp/mine"  # no line of our own in the conf
    data["devices"][3]["name"] = "box\nuser rating-box-quay-2"  # nor in the ACL's comments
    problems = {path: value for path, value, _ in problems_of(data)}
    assert "broker.data_dir" in problems and "devices[3].name" in problems
    assert problems["devices[0].id"] == "Kiosk_01"
    assert problems["devices[1].type"] == "kiosk"
    assert problems["broker.port"] == 70000
    assert any(path.startswith("printers.network-58") for path in problems)  # network needs a host


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d["devices"].append(copy.deepcopy(d["devices"][0])), "devices[10].id", "duplicate of devices[0]"),
        (lambda d: d["devices"][5].pop("counter"), "devices[5].counter", "needs the counter"),
        (lambda d: d["devices"][8].update(counter="quay-1"), "devices[8].counter", "not bound to a counter"),
        (lambda d: d["devices"][0].pop("printer"), "devices[0].printer", "needs a printer profile"),
        (lambda d: d["devices"][0].update(printer="epson"), "devices[0].printer", "unknown printer profile"),
        (lambda d: d["devices"][2].update(printer="xprinter-80"), "devices[2].printer", "has no printer"),
        (lambda d: (d.update(site="trung-tam-hanh-chinh-cong-tinh"), d["devices"][2].update(id="rating-box-quay-1-tang-2")),
         "devices[2].id", "at most 64 characters"),
        (lambda d: d["server"].pop("url"), "server.url", "opens a page of the server"),
        (lambda d: d["broker"].update(listen="127.0.0.1"), "broker.listen", "this machine only"),
        (lambda d: d["broker"].update(websockets_port=1883), "broker.websockets_port", "same port as broker.port"),
    ],
)
def test_cross_checks(change, path: str, words: str) -> None:
    data = example_data()
    change(data)
    problems = problems_of(data)
    assert any(p == path and words in message for p, _, message in problems), problems


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_inventory(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('site = "hcc-demo"\n[broker\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_inventory(broken)


def test_the_device_types_are_the_six_of_the_issue() -> None:
    assert DEVICE_TYPES == ("ticket_kiosk", "rating_terminal", "button_box", "clerk_keypad", "lobby_board",
                            "counter_display")
