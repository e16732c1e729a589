"""The MQTT side every kiosk and terminal shares: its client, Last Will and background connect."""
from __future__ import annotations

from queue_server.mqtt import contract
from queue_server.mqtt.client import MQTTv5, MQTTv311, MqttClient, make_client

from .settings import KioskMqtt


def device_client(mqtt: KioskMqtt, site: str, device: str) -> MqttClient:
    """A client named after the device, whose Last Will marks it offline (retained)."""
    client = make_client(
        f"motcua-{device}",
        protocol=MQTTv311 if mqtt.protocol == "3.1.1" else MQTTv5,
        will=(contract.topic_device_status(site, device), contract.Status.OFFLINE.value, True),
        username=mqtt.username,
        password=mqtt.password(),
    )
    if mqtt.tls:
        client.tls_set(ca_certs=mqtt.ca_file)
    return client


def connect_in_background(client: MqttClient, mqtt: KioskMqtt) -> None:
    """Connect without waiting: paho keeps retrying while the broker is unreachable."""
    client.connect_async(mqtt.host, mqtt.port, keepalive=15, **client.connect_arguments())
    client.loop_start()
