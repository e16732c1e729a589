"""`motcua provision check`: the inventory, ACL, password file, ESPHome files, device files and server
config agree, and each disagreement names its file and key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from firmware_config.consistency import Problem, check
from firmware_config.provision import ProvisionError, Provisioner, update_flat_yaml

from .conftest import ESPHOME_DIR, REPO, Site, sample_site_text

EXAMPLE = REPO / "firmware_config" / "inventory.example.toml"


@pytest.fixture
def generated(site: Site) -> Site:
    site.provisioner().generate()
    site.use_provisioned_mqtt()
    assert check(site.inventory, site.out) == []
    return site


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_device_missing_from_the_acl_is_caught(generated: Site) -> None:
    acl = generated.out / "mosquitto" / "acl"
    text = acl.read_text()
    start = text.index("user rating-quay-4\n")
    end = text.index("\n\n", start)
    acl.write_text(text[:start] + text[end + 2:])
    problem = only(check(generated.inventory, generated.out))
    assert (problem.file, problem.key) == (str(acl), "user rating-quay-4")
    assert "missing" in problem.message


def test_an_acl_that_allows_more_than_the_inventory_is_caught(generated: Site) -> None:
    acl = generated.out / "mosquitto" / "acl"
    acl.write_text(acl.read_text().replace("user kiosk-01\n", "user kiosk-01\ntopic write motcua/hcc-demo/device/#\n"))
    problem = only(check(generated.inventory, generated.out))
    assert problem.key == "user kiosk-01" and "write motcua/hcc-demo/device/#" in problem.message
    acl.write_text("topic read #\n" + acl.read_text())
    assert any(p.key == "(before any user)" for p in check(generated.inventory, generated.out))


def test_an_esphome_file_naming_an_unknown_device_is_caught(generated: Site) -> None:
    stray = generated.esphome / "rating-box-quay-9.yaml"
    stray.write_text((generated.esphome / "rating-box-quay-1.yaml").read_text()
                     .replace("rating-box-quay-1", "rating-box-quay-9").replace("rating_box_quay_1", "rating_box_quay_9"))
    problem = only(check(generated.inventory, generated.out))
    assert (problem.file, problem.key) == (str(stray), "substitutions.device")
    assert "'rating-box-quay-9' is not in the inventory" in problem.message


def test_an_esphome_file_that_disagrees_with_the_inventory_is_caught(generated: Site) -> None:
    box = generated.esphome / "rating-box-quay-2.yaml"
    box.write_text(box.read_text().replace("counter: quay-2", "counter: quay-3"))
    problem = only(check(generated.inventory, generated.out))
    assert (problem.file, problem.key) == (str(box), "substitutions.counter")
    box.unlink()
    problem = only(check(generated.inventory, generated.out))
    assert problem.key == "rating-box-quay-2" and "without an ESPHome file" in problem.message


def test_a_box_password_that_is_not_the_brokers_is_caught(generated: Site) -> None:
    secrets_yaml = generated.esphome / "secrets.yaml"
    secrets_yaml.write_text(update_flat_yaml(secrets_yaml.read_text(), {"mqtt_password_rating_box_quay_3": "guess"}))
    problem = only(check(generated.inventory, generated.out))
    assert (problem.file, problem.key) == (str(secrets_yaml), "mqtt_password_rating_box_quay_3")
    assert "not the broker's password" in problem.message


def test_the_password_file_and_device_files_are_checked(generated: Site) -> None:
    passwd = generated.out / "mosquitto" / "passwd"
    lines = passwd.read_text().splitlines(keepends=True)
    passwd.write_text("".join(line for line in lines if not line.startswith("board-lobby:")) + "old-kiosk:$7$1$AA$AA\n")
    kiosk = generated.out / "devices" / "kiosk-01" / "kiosk.toml"
    kiosk.write_text(kiosk.read_text().replace('site = "hcc-demo"', 'site = "hcc-other"'))
    found = {(Path(p.file).name, p.key) for p in check(generated.inventory, generated.out)}
    assert found == {("passwd", "board-lobby"), ("passwd", "old-kiosk"), ("kiosk.toml", "site")}


def test_the_server_config_must_know_the_site_and_counters(generated: Site) -> None:
    config = generated.site_config
    config.write_text(config.read_text().replace('id = "hcc-demo"', 'id = "hcc-other"'))
    inventory = generated.inventory
    inventory.write_text(inventory.read_text().replace('counter = "quay-4"', 'counter = "quay-9"'))
    found = {(p.key, p.message) for p in check(inventory, generated.out) if p.file == str(config)}
    assert found == {("site.id", "is 'hcc-other', the inventory says 'hcc-demo'"),
                     ("counters", "no counter 'quay-9', which devices[1] (rating-quay-4) serves")}
    # …and generating refuses an inventory that the server config does not match.
    with pytest.raises(ProvisionError, match="no counter 'quay-9'"):
        generated.provisioner().generate()


def test_the_server_config_must_use_the_provisioned_broker(site: Site) -> None:
    site.provisioner().generate()  # the site config still runs its own embedded broker
    found = {p.key for p in check(site.inventory, site.out)}
    assert {"mqtt.mode", "mqtt.port", "mqtt.username", "mqtt.password_env"} <= found


def test_the_shipped_example_agrees_with_the_shipped_esphome_files(tmp_path: Path) -> None:
    """firmware_config/inventory.example.toml, the boxes in firmware_config/esphome/ and the sample
    site describe the same centre."""
    shutil.copy(EXAMPLE, tmp_path / "inventory.toml")
    shutil.copytree(ESPHOME_DIR, tmp_path / "esphome", ignore=shutil.ignore_patterns(".esphome", "secrets.yaml"))
    site_config = tmp_path / "site.toml"
    head, _, _ = sample_site_text().partition("[mqtt]")
    site_config.write_text(head)
    provisioner = Provisioner(tmp_path / "inventory.toml", tmp_path / "out", server_config=site_config)
    report = provisioner.generate()
    example = (tmp_path / "esphome" / "secrets.example.yaml")
    assert example not in report.written  # every shipped box already has its placeholder
    site_config.write_text(head + (tmp_path / "out" / "server" / "site-mqtt.toml").read_text())
    assert check(tmp_path / "inventory.toml", tmp_path / "out", server_config=site_config) == []


def test_a_broken_inventory_is_reported_not_raised(site: Site) -> None:
    site.inventory.write_text(site.inventory.read_text().replace('type = "lobby_board"', 'type = "tv"'))
    problem = only(check(site.inventory, site.out))
    assert problem.file == str(site.inventory) and problem.key == "devices[6].type"
