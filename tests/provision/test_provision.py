"""`motcua provision` against a real Mosquitto running the config it generated: anonymous clients
refused, a device cannot publish as another, a rotated password stops working, a removed device
leaves no retained status, and the server, a kiosk, a rating terminal and a button box work end to
end on the secured broker."""
from __future__ import annotations

import argparse
import json
import shutil
import stat
import subprocess
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from firmware_config.cli import add_cli
from firmware_config.consistency import check
from firmware_config.inventory import ADMIN_USER, SERVER_USER
from firmware_config.provision import (
    HASH_ITERATIONS,
    ProvisionError,
    acl_rules,
    clear_retained,
    enrolment_url,
    hash_password,
    parse_acl,
    parse_enrolment_url,
    read_flat_yaml,
    read_password_file,
    remove_device_from_inventory_text,
    verify_password,
)
from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings
from kiosk.settings import load_kiosk_settings
from kiosk.ticket.controller import TicketKiosk
from queue_server.config import load_config
from queue_server.domain.counters import Action
from queue_server.mqtt import contract
from queue_server.mqtt.client import (
    ConnectionRefused,
    MqttClient,
    connect_and_wait,
    make_client,
    subscribe_and_wait,
)
from queue_server.mqtt.link import ServerLink
from queue_server.server import build

from .conftest import WAIT_S, GeneratedBroker, Inbox, Site, make_site, start_broker, wait_until

SITE = "hcc-demo"
NOT_AUTHORIZED = 0x87


@pytest.fixture
def clients():
    """A factory of clients (same arguments as make_client), all disconnected at teardown."""
    made: list[MqttClient] = []

    def factory(client_id: str, **options) -> MqttClient:
        client = make_client(client_id, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.disconnect()
        client.loop_stop()


def connect_as(clients, site: Site, user: str | None, *, password: str | None = None, inbox: Inbox | None = None,
               **options) -> MqttClient:
    if user is not None and password is None:
        password = site.password_of(user)
    client = clients(f"test-{user}-{uuid.uuid4().hex[:6]}", username=user, password=password, **options)
    if inbox is not None:
        client.on_message = inbox.on_message
        client.on_publish = inbox.on_publish
    connect_and_wait(client, "127.0.0.1", site.port, timeout=WAIT_S)
    return client


def rating_event(device: str, counter: str) -> bytes:
    return json.dumps({"msg_id": f"{device}:test:{uuid.uuid4().hex[:8]}", "counter": counter, "level": "satisfied",
                       "at": datetime.now(timezone.utc).isoformat()}).encode()


# --------------------------------------------------------------------------- password hashes


def test_hashes_are_mosquitto_2_pbkdf2_sha512() -> None:
    hashed = hash_password("mật khẩu", salt=bytes(range(12)))
    kind, iterations, salt, digest = hashed.split("$")[1:]
    assert (kind, int(iterations), salt) == ("7", HASH_ITERATIONS, "AAECAwQFBgcICQoL")
    assert len(digest) == 88  # 64 bytes in base64
    assert verify_password("mật khẩu", hashed) and not verify_password("mat khau", hashed)
    assert not verify_password("x", "$7$101$not-base64!$zz") and not verify_password("x", "plain")


def test_hashes_made_by_mosquitto_passwd_verify(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is not installed (it comes with the mosquitto package)")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-b", "-c", str(path), "kiosk-01", "s3cret-Pass"], check=True, capture_output=True)
    hashed = read_password_file(path)["kiosk-01"]
    assert hashed.startswith("$7$")
    assert verify_password("s3cret-Pass", hashed) and not verify_password("s3cret-pass", hashed)


# --------------------------------------------------------------------------- generated files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_hashes_only_and_secrets_owner_only(site: Site) -> None:
    report = site.provisioner().generate()
    out = site.out
    assert set(report.new_passwords) == {SERVER_USER, ADMIN_USER, "kiosk-01", "rating-quay-4", "rating-box-quay-1",
                                         "rating-box-quay-2", "rating-box-quay-3", "keypad-quay-1", "board-lobby",
                                         "display-quay-2"}
    hashes = read_password_file(out / "mosquitto" / "passwd")
    assert list(hashes) == list(acl_rules(site.provisioner().inventory))
    passwd_text = (out / "mosquitto" / "passwd").read_text()
    for user in hashes:
        password = site.password_of(user)
        assert len(password) >= 32 and password not in passwd_text and verify_password(password, hashes[user])
    assert len({site.password_of(user) for user in hashes}) == len(hashes)

    for path in (out / "server" / "mqtt.env", out / "admin" / "mqtt.env", out / "devices" / "kiosk-01" / "mqtt.env",
                 out / "devices" / "kiosk-01" / "enrol.png", site.esphome / "secrets.yaml"):
        assert mode(path) == 0o600, path
    assert mode(out / "mosquitto" / "passwd") == 0o640 and mode(out / "mosquitto" / "acl") == 0o640
    assert mode(out / "devices") == 0o700
    # The settings files hold no password, only where to find it.
    kiosk_text = (out / "devices" / "kiosk-01" / "kiosk.toml").read_text()
    assert site.password_of("kiosk-01") not in kiosk_text and 'password_env = "MOTCUA_MQTT_PASSWORD"' in kiosk_text


def test_generating_again_keeps_every_password_and_rotate_changes_one(site: Site) -> None:
    provisioner = site.provisioner()
    provisioner.generate()
    before = read_password_file(site.out / "mosquitto" / "passwd")
    passwords = {user: site.password_of(user) for user in before}

    again = site.provisioner().generate()
    assert again.new_passwords == [] and again.warnings == []
    assert read_password_file(site.out / "mosquitto" / "passwd") == before
    qr = site.out / "devices" / "rating-quay-4" / "enrol.png"
    assert qr not in again.written  # the same URL: the picture is not drawn again

    assert qr in site.provisioner().rotate("rating-quay-4").written
    rotated = site.provisioner().rotate("rating-box-quay-2")
    assert rotated.new_passwords == ["rating-box-quay-2"]
    after = read_password_file(site.out / "mosquitto" / "passwd")
    assert {u for u in after if after[u] != before[u]} == {"rating-quay-4", "rating-box-quay-2"}
    assert site.password_of("rating-box-quay-2") != passwords["rating-box-quay-2"]
    assert verify_password(site.password_of("rating-box-quay-2"), after["rating-box-quay-2"])
    with pytest.raises(ProvisionError, match="no such device"):
        site.provisioner().rotate("kiosk-99")


def test_secrets_yaml_keeps_what_the_technician_wrote(site: Site) -> None:
    site.provisioner().generate()
    secrets_yaml = site.esphome / "secrets.yaml"
    text = secrets_yaml.read_text().replace('wifi_password: "change-me-wifi-password"',
                                            "wifi_password: 'the site''s wifi'  # set by hand")
    secrets_yaml.write_text(text + "# a note of the technician\n")
    site.provisioner().generate()
    values = read_flat_yaml(secrets_yaml)
    assert values["wifi_password"] == "the site's wifi"
    assert values["mqtt_broker"] == "127.0.0.1"
    assert "# a note of the technician" in secrets_yaml.read_text()


def test_a_new_box_gets_its_esphome_file_and_a_placeholder(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", extra_devices='\n[[devices]]\nid = "rating-box-quay-5"\ntype = "button_box"\n'
                                                      'counter = "quay-5"\n')
    report = site.provisioner().generate()
    site.use_provisioned_mqtt()
    device_file = site.esphome / "rating-box-quay-5.yaml"
    assert device_file in report.written
    text = device_file.read_text()
    assert "device: rating-box-quay-5" in text and "mqtt_password: !secret mqtt_password_rating_box_quay_5" in text
    assert f'mqtt_port: "{site.port}"' in text  # not the default 1883
    assert read_flat_yaml(site.esphome / "secrets.example.yaml")["mqtt_password_rating_box_quay_5"].startswith(
        "change-me")
    assert check(site.inventory, site.out) == []


def test_device_settings_load_with_the_kiosks_own_loaders(site: Site) -> None:
    site.provisioner().generate()
    devices = site.out / "devices"
    kiosk = load_kiosk_settings(devices / "kiosk-01" / "kiosk.toml")
    assert (kiosk.device, kiosk.site, kiosk.printer) == ("kiosk-01", SITE, {"kind": "dummy"})
    assert (kiosk.mqtt.host, kiosk.mqtt.port, kiosk.mqtt.username, kiosk.mqtt.tls) == ("127.0.0.1", site.port,
                                                                                       "kiosk-01", False)
    terminal = load_rating_settings(devices / "rating-quay-4" / "rating.toml")
    assert (terminal.device, terminal.counter, terminal.mqtt.username) == ("rating-quay-4", "quay-4", "rating-quay-4")
    keypad = tomllib.loads((devices / "keypad-quay-1" / "keypad.toml").read_text())
    assert keypad["counter"] == "quay-1" and keypad["mqtt"]["username"] == "keypad-quay-1"
    assert (devices / "board-lobby" / "board.env").read_text().endswith("MOTCUA_BOARD_URL=http://127.0.0.1:8080/board\n")
    assert "/counter/quay-2" in (devices / "display-quay-2" / "board.env").read_text()
    assert not (devices / "rating-box-quay-1").exists()  # a box's password is in ESPHome's secrets.yaml


def test_the_enrolment_qr_carries_what_a_tablet_needs(site: Site) -> None:
    provisioner = site.provisioner()
    provisioner.generate()
    device = provisioner.inventory.device("rating-quay-4")
    url = enrolment_url(provisioner.inventory, device, site.password_of("rating-quay-4"))
    assert parse_enrolment_url(url) == {
        "site": SITE, "device": "rating-quay-4", "type": "rating_terminal", "counter": "quay-4",
        "mqtt": {"host": "127.0.0.1", "port": site.port, "tls": False, "username": "rating-quay-4",
                 "password": site.password_of("rating-quay-4")},
    }
    with Image.open(site.out / "devices" / "rating-quay-4" / "enrol.png") as image:
        assert image.format == "PNG" and image.size[0] >= 200
    for bad in ("https://enrol?v=1", "motcua://enrol?v=2&site=x", "motcua://enrol?v=1&site=x"):
        with pytest.raises(ValueError):
            parse_enrolment_url(bad)


def test_the_acl_lets_each_device_write_only_its_own_topics(site: Site) -> None:
    site.provisioner().generate()
    rules = parse_acl((site.out / "mosquitto" / "acl").read_text())
    assert None not in rules and "(pattern)" not in rules  # nothing applies to every account
    base = f"motcua/{SITE}"
    assert rules[SERVER_USER] == [("read", f"{base}/device/#"), ("write", f"{base}/state/#"),
                                  ("write", f"{base}/events/#"), ("write", f"{base}/server/status"),
                                  ("write", f"{base}/device/+/response/#")]
    for user, user_rules in rules.items():
        if user in (SERVER_USER, ADMIN_USER):
            continue
        for access, topic in user_rules:
            if access != "read":
                assert access == "write" and topic.startswith(f"{base}/device/{user}/"), (user, topic)
    assert [a for a, _ in rules["board-lobby"]] == ["read"] * 3
    assert ("read", f"{base}/state/counter/quay-1") in rules["rating-box-quay-1"]
    assert ("read", f"{base}/state/#") not in rules["rating-box-quay-1"]  # a box reads only its counter
    assert ("read", f"{base}/device/kiosk-01/response/ticket") in rules["kiosk-01"]
    # A kiosk reads the config, the queues and the server's status, not all state or the calls.
    assert [topic for access, topic in rules["kiosk-01"] if access == "read"] == [
        topic for topic, _ in contract.ticket_kiosk_subscriptions(SITE, "kiosk-01")]
    assert ("read", f"{base}/state/queue/+") in rules["kiosk-01"]
    assert ("read", f"{base}/state/#") not in rules["kiosk-01"]


def test_mosquitto_conf_has_persistence_nodelay_and_the_optional_listeners(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", tls={"port": 18883, "cafile": "/etc/motcua/tls/ca.crt",
                                             "certfile": "/etc/motcua/tls/broker.crt",
                                             "keyfile": "/etc/motcua/tls/broker.key"})
    site.provisioner().generate()
    conf = (site.out / "mosquitto" / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "persistence true", "set_tcp_nodelay true", f"listener {site.port} 127.0.0.1",
                 "listener 18883 127.0.0.1\nsocket_domain ipv4\ncafile /etc/motcua/tls/ca.crt\n"
                 "certfile /etc/motcua/tls/broker.crt\nkeyfile /etc/motcua/tls/broker.key",
                 f"listener {site.ws_port} 127.0.0.1\nprotocol websockets",
                 f"password_file {site.out / 'mosquitto' / 'passwd'}"):
        assert line in conf, line
    # With TLS, kiosks connect through it.
    kiosk = load_kiosk_settings(site.out / "devices" / "kiosk-01" / "kiosk.toml")
    assert (kiosk.mqtt.port, kiosk.mqtt.tls, kiosk.mqtt.ca_file) == (18883, True, "/etc/motcua/ca.crt")


def test_removing_a_device_from_the_inventory_text_keeps_everything_else(site: Site) -> None:
    text = site.inventory.read_text()
    after = remove_device_from_inventory_text(text, "rating-box-quay-3")
    assert "rating-box-quay-3" not in after and "# The box at the third counter." not in after
    assert after.count("[[devices]]") == text.count("[[devices]]") - 1
    before, now = tomllib.loads(text), tomllib.loads(after)
    assert [d for d in before["devices"] if d["id"] != "rating-box-quay-3"] == now["devices"]
    inline = 'site = "x"\ndevices = [{ id = "a", type = "lobby_board" }]\n'
    with pytest.raises(ProvisionError, match="by hand"):
        remove_device_from_inventory_text(inline, "a")
    with pytest.raises(ProvisionError, match="not a device id"):
        site.provisioner().remove("../mosquitto")  # never a path outside devices/


# --------------------------------------------------------------------------- the real broker


def test_anonymous_clients_and_wrong_passwords_are_refused(running, clients) -> None:
    site, _ = running
    with pytest.raises(ConnectionRefused) as anonymous:
        connect_as(clients, site, None)
    assert anonymous.value.reason.value == NOT_AUTHORIZED
    with pytest.raises(ConnectionRefused):
        connect_as(clients, site, "kiosk-01", password="not-the-password")
    with pytest.raises(ConnectionRefused):
        connect_as(clients, site, "kiosk-99", password=site.password_of("kiosk-01"))  # another's password
    websocket = clients("test-anonymous-ws", transport="websockets")
    with pytest.raises(ConnectionRefused):
        connect_and_wait(websocket, "127.0.0.1", site.ws_port, timeout=WAIT_S)
    # …while the devices' own accounts work, over websockets too.
    connect_as(clients, site, "kiosk-01")
    board = clients("test-board-ws", transport="websockets", username="board-lobby",
                    password=site.password_of("board-lobby"))
    connect_and_wait(board, "127.0.0.1", site.ws_port, timeout=WAIT_S)


def test_a_device_cannot_publish_as_another(running, clients) -> None:
    site, _ = running
    server_inbox, box_inbox = Inbox(), Inbox()
    server_side = connect_as(clients, site, SERVER_USER, inbox=server_inbox)
    subscribe_and_wait(server_side, contract.server_subscriptions(SITE))
    box_1 = connect_as(clients, site, "rating-box-quay-1", inbox=box_inbox)

    forged = box_1.publish(contract.topic_rating(SITE, "rating-box-quay-2"), rating_event("rating-box-quay-2", "quay-2"),
                           qos=1)
    forged_status = box_1.publish(contract.topic_device_status(SITE, "rating-box-quay-2"), b"offline", qos=1,
                                  retain=True)
    own = box_1.publish(contract.topic_rating(SITE, "rating-box-quay-1"), rating_event("rating-box-quay-1", "quay-1"),
                        qos=1)
    box_inbox.wait_for(lambda inbox: {forged.mid, forged_status.mid, own.mid} <= set(inbox.acks), "three PUBACKs")
    assert box_inbox.acks[forged.mid] == NOT_AUTHORIZED and box_inbox.acks[forged_status.mid] == NOT_AUTHORIZED
    assert box_inbox.acks[own.mid] == 0
    # One publisher, one subscriber, QoS 1: had the forged ones passed, they would have come first.
    server_inbox.wait_for(lambda inbox: contract.topic_rating(SITE, "rating-box-quay-1") in inbox.topics(),
                          "the box's own press")
    assert server_inbox.topics() == [contract.topic_rating(SITE, "rating-box-quay-1")]


def test_a_device_reads_only_what_it_needs_and_a_board_only_reads(running, clients) -> None:
    site, _ = running
    publisher = connect_as(clients, site, SERVER_USER)
    for topic in (contract.topic_config(SITE), contract.topic_counter_state(SITE, "quay-1"),
                  contract.topic_counter_state(SITE, "quay-2"),
                  contract.topic_ticket_response(SITE, "kiosk-01"), contract.topic_queue_state(SITE, "dat-dai"),
                  contract.topic_today(SITE)):
        publisher.publish(topic, b"{}", qos=1, retain=True).wait_for_publish(WAIT_S)

    box_inbox = Inbox()
    box = connect_as(clients, site, "rating-box-quay-1", inbox=box_inbox)
    subscribe_and_wait(box, [(f"motcua/{SITE}/#", 0)])
    subscribe_and_wait(box, [(contract.topic_server_status(SITE), 0)])  # its SUBACK comes after every retained one
    assert box_inbox.topics() == [contract.topic_counter_state(SITE, "quay-1")]

    kiosk_inbox = Inbox()
    kiosk = connect_as(clients, site, "kiosk-01", inbox=kiosk_inbox)
    subscribe_and_wait(kiosk, [(f"motcua/{SITE}/#", 0)])
    subscribe_and_wait(kiosk, [(contract.topic_server_status(SITE), 0)])
    assert sorted(kiosk_inbox.topics()) == sorted([contract.topic_config(SITE),
                                                   contract.topic_queue_state(SITE, "dat-dai"),
                                                   contract.topic_ticket_response(SITE, "kiosk-01")])

    board_inbox = Inbox()
    board = connect_as(clients, site, "board-lobby", inbox=board_inbox)
    subscribe_and_wait(board, [(f"motcua/{SITE}/#", 0)])
    subscribe_and_wait(board, [(contract.topic_server_status(SITE), 0)])
    assert sorted(board_inbox.topics()) == sorted([contract.topic_config(SITE),
                                                   contract.topic_counter_state(SITE, "quay-1"),
                                                   contract.topic_counter_state(SITE, "quay-2"),
                                                   contract.topic_queue_state(SITE, "dat-dai"),
                                                   contract.topic_today(SITE)])
    status = board.publish(contract.topic_device_status(SITE, "board-lobby"), b"online", qos=1, retain=True)
    board_inbox.wait_for(lambda inbox: status.mid in inbox.acks, "the PUBACK")
    assert board_inbox.acks[status.mid] == NOT_AUTHORIZED


def test_a_rotated_credential_stops_working(running, clients) -> None:
    site, broker = running
    old_password = site.password_of("kiosk-01")
    connected = connect_as(clients, site, "kiosk-01")

    site.provisioner().rotate("kiosk-01")
    new_password = site.password_of("kiosk-01")
    assert new_password != old_password
    broker.reload()

    with pytest.raises(ConnectionRefused):
        connect_as(clients, site, "kiosk-01", password=old_password)
    # Mosquitto 2.0 checks connected clients again on reload: the old session is closed too.
    wait_until(lambda: not connected.is_connected(), "the client with the old password to be dropped")
    connect_as(clients, site, "kiosk-01", password=new_password)
    assert check(site.inventory, site.out) == []


def test_a_removed_device_loses_its_account_and_its_retained_status(running, clients) -> None:
    site, broker = running
    password = site.password_of("rating-box-quay-3")
    box = connect_as(clients, site, "rating-box-quay-3")
    box.publish(contract.topic_device_status(SITE, "rating-box-quay-3"), b"online", qos=1,
                retain=True).wait_for_publish(WAIT_S)

    provisioner = site.provisioner()
    report = provisioner.remove("rating-box-quay-3")
    assert site.esphome / "rating-box-quay-3.yaml" in report.removed
    assert provisioner.inventory.device("rating-box-quay-3") is None
    assert "rating-box-quay-3" not in site.inventory.read_text()
    assert "mqtt_password_rating_box_quay_3" not in read_flat_yaml(site.esphome / "secrets.yaml")
    assert "rating-box-quay-3" not in read_password_file(site.out / "mosquitto" / "passwd")
    broker.reload()
    wait_until(lambda: not box.is_connected(), "the removed box to be dropped")  # its Last Will is published now
    with pytest.raises(ConnectionRefused):
        connect_as(clients, site, "rating-box-quay-3", password=password)

    cleared = clear_retained(SITE, "rating-box-quay-3", "127.0.0.1", site.port, ADMIN_USER, provisioner.admin_password())
    assert cleared == [contract.topic_device_status(SITE, "rating-box-quay-3")]
    inbox = Inbox()
    watcher = connect_as(clients, site, SERVER_USER, inbox=inbox)
    subscribe_and_wait(watcher, [(f"motcua/{SITE}/device/#", 0)])
    subscribe_and_wait(watcher, [(contract.topic_device_status(SITE, "rating-box-quay-3"), 0)])
    assert [t for t, payload, retained in inbox.messages if retained and payload] == []
    assert check(site.inventory, site.out) == []


def test_server_and_devices_work_end_to_end_on_the_secured_broker(running, clients, monkeypatch, tmp_path) -> None:
    site, _ = running
    config = load_config(site.site_config)
    assert check(site.inventory, site.out, server_config=site.site_config) == []
    server = build(config, site.data_dir)
    link = ServerLink(server.service, config.mqtt.host, config.mqtt.port, username=config.mqtt.username,
                      password=site.password_of(SERVER_USER))
    link.start(timeout=WAIT_S)
    devices: list = []
    try:
        for counter, clerk in (("quay-1", "nguyen-van-an"), ("quay-4", "pham-thu-dung")):
            server.service.counter_action(counter, Action.OPEN, clerk_id=clerk)

        # The ticket kiosk, from its generated settings and mqtt.env.
        monkeypatch.setenv("MOTCUA_MQTT_PASSWORD", site.password_of("kiosk-01"))
        kiosk = TicketKiosk(load_kiosk_settings(site.out / "devices" / "kiosk-01" / "kiosk.toml"))
        devices.append(kiosk)
        kiosk.start()
        wait_until(kiosk.online, "the kiosk to see the server online")
        results = []
        kiosk.request_ticket("dat-dai", None, "vi", results.append)
        wait_until(lambda: results, "the kiosk's ticket")
        assert results[0].ticket is not None and results[0].ticket.code.startswith("A"), results[0]

        # The rating terminal, likewise.
        monkeypatch.setenv("MOTCUA_MQTT_PASSWORD", site.password_of("rating-quay-4"))
        settings = load_rating_settings(site.out / "devices" / "rating-quay-4" / "rating.toml",
                                        outbox=str(tmp_path / "rating-quay-4.outbox.sqlite3"))
        terminal = RatingTerminal(settings)
        devices.append(terminal)
        terminal.start()
        server.service.issue_ticket("dang-ky-kinh-doanh")
        served = server.service.counter_action("quay-4", Action.NEXT)["tickets"][-1]
        server.service.counter_action("quay-4", Action.FINISH)
        wait_until(terminal.awaiting_rating, "the terminal to offer a rating")
        terminal.press("very_satisfied")

        # The ESPHome box, as its firmware does it: user = device id, password from secrets.yaml.
        box = connect_as(clients, site, "rating-box-quay-1", password=read_flat_yaml(site.esphome / "secrets.yaml")[
            "mqtt_password_rating_box_quay_1"])
        server.service.issue_ticket("dat-dai")
        server.service.counter_action("quay-1", Action.NEXT)
        server.service.counter_action("quay-1", Action.FINISH)
        box.publish(contract.topic_rating(SITE, "rating-box-quay-1"), rating_event("rating-box-quay-1", "quay-1"),
                    qos=1).wait_for_publish(WAIT_S)

        def counted() -> dict[str, str]:
            rows = server.store.db.execute("SELECT device_id, ticket_id FROM ratings WHERE counted = 1").fetchall()
            return dict(rows)

        wait_until(lambda: {"rating-quay-4", "rating-box-quay-1"} <= set(counted()), "both ratings counted")
        assert counted()["rating-quay-4"] == served["id"]
        assert server.store.db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0] == 0
    finally:
        for device in devices:
            device.stop()
        link.stop()
        server.store.close()


def make_certificates(directory: Path) -> dict[str, str]:
    """A throwaway CA and a broker certificate for 127.0.0.1 (openssl, EC keys: fast)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed")
    directory.mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=motcua test CA")
    run("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")
    return {name: str(directory / f"{stem}") for name, stem in
            (("cafile", "ca.crt"), ("certfile", "broker.crt"), ("keyfile", "broker.key"))}


def test_the_tls_listener_with_the_given_certificates(tmp_path: Path, clients) -> None:
    from queue_server.mqtt.broker import free_port

    certificates = make_certificates(tmp_path / "tls")
    tls_port = free_port()
    site = make_site(tmp_path / "site", tls={"port": tls_port, **certificates,
                                             "device_ca_file": certificates["cafile"]})
    site.provisioner().generate()
    broker = start_broker(site, tls_port=tls_port)
    try:
        kiosk = load_kiosk_settings(site.out / "devices" / "kiosk-01" / "kiosk.toml")
        assert (kiosk.mqtt.port, kiosk.mqtt.tls) == (tls_port, True)
        client = clients("test-kiosk-tls", username="kiosk-01", password=site.password_of("kiosk-01"))
        client.tls_set(ca_certs=kiosk.mqtt.ca_file)
        connect_and_wait(client, kiosk.mqtt.host, kiosk.mqtt.port, timeout=WAIT_S)
        anonymous = clients("test-anonymous-tls")
        anonymous.tls_set(ca_certs=kiosk.mqtt.ca_file)
        with pytest.raises(ConnectionRefused):
            connect_and_wait(anonymous, kiosk.mqtt.host, kiosk.mqtt.port, timeout=WAIT_S)
    finally:
        broker.stop()


# --------------------------------------------------------------------------- the commands


def motcua(*args: str) -> int:
    parser = argparse.ArgumentParser(prog="motcua")
    add_cli(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(list(args))
    return parsed.handler(parsed)


def test_the_provision_commands(site: Site, capsys) -> None:
    where = ["--inventory", str(site.inventory), "--out", str(site.out)]
    assert motcua("provision", "generate", *where) == 0
    assert "wrote" in capsys.readouterr().out
    # The site config as shipped (embedded broker): the check names what to change.
    assert motcua("provision", "check", *where) == 1
    assert "mqtt.mode: is 'embedded'" in capsys.readouterr().err
    site.use_provisioned_mqtt()
    assert motcua("provision", "check", *where) == 0
    assert "OK" in capsys.readouterr().out
    assert motcua("provision", "rotate", *where, "--device", "nobody") == 1
    assert "no such device" in capsys.readouterr().err

    broker = GeneratedBroker(site.out / "mosquitto" / "mosquitto.conf", site.root / "mosquitto.log", [site.port])
    (site.root / "mosquitto-data").mkdir()
    broker.start()
    try:
        # --reload signals the broker through [broker].pid_file, then the retained status is cleared.
        assert motcua("provision", "remove", *where, "--device", "kiosk-01", "--reload") == 0
        out = capsys.readouterr().out
        assert "broker reloaded" in out and f"cleared retained motcua/{SITE}/device/kiosk-01/status" in out
        assert not (site.out / "devices" / "kiosk-01").exists()
        assert motcua("provision", "check", *where) == 0
    finally:
        broker.stop()
