"""A paho-mqtt 2.x client set up the way motcua needs it, and a connect that believes the CONNACK.

Every motcua process (server, kiosks, simulator, tests) gets its client from `make_client`:
callback API v2, TCP_NODELAY on the socket (without it a request/response round trip through
Mosquitto takes ~88 ms instead of ~0.4 ms: Nagle holds back the small PUBACK/PUBLISH packets),
QoS 1 will, and a session that is either clean or persistent with an expiry.

`connect_and_wait` raises when the broker refuses the connection instead of carrying on as
if connected (Frigate marks itself connected on a refused CONNACK).
"""
from __future__ import annotations

import socket
import ssl
import struct
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# A PUBACK with reason Success and no properties: fixed header, remaining length 2, packet id
# (the same bytes paho sends for one ack; MQTT 5 §3.4.2.1 lets both versions omit the rest).
_PUBACK_PACKET = struct.Struct("!BBH")

MQTTv5 = MQTTProtocolVersion.MQTTv5
MQTTv311 = MQTTProtocolVersion.MQTTv311
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600  # a kiosk or the server may be off over a long holiday
# QoS 1 messages a broker may have sent us unacknowledged (MQTT 5 Receive Maximum; the default is
# 65,535): what the server holds received but not yet applied is bounded by this, whatever the
# broker's own limit (motcua's Mosquitto has max_inflight_messages 1000 too).
RECEIVE_MAXIMUM = 1000


class MqttConnectError(Exception):
    """The client could not get a session from the broker."""


class BrokerUnreachable(MqttConnectError):
    """No TCP connection, or no CONNACK within the timeout."""


class ConnectionRefused(MqttConnectError):
    """The broker answered the CONNECT with a failure (bad credentials, not authorised, …)."""

    def __init__(self, reason: ReasonCode) -> None:
        super().__init__(f"broker refused the connection: {reason} (0x{reason.value:02x})")
        self.reason = reason


class MqttSubscribeError(Exception):
    """The broker refused a subscription or did not acknowledge it."""


class ReadBufferedSocket:
    """A plain TCP socket that fills a buffer with one recv() of up to 64 KiB and serves paho's
    small reads from it.

    paho reads every packet with at least three recv() calls (the command byte, the length
    bytes one by one, the rest). At thousands of messages a second those syscalls, and the GIL
    hand-overs around each, cost the server more than handling the messages. paho already
    looks for `pending()` (SSL sockets have it) to keep reading what is buffered without
    waiting in select(), so buffered bytes are never stranded.
    """

    RECV_SIZE = 65536

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock  # the name set_tcp_nodelay looks for
        self._data = b""
        self._position = 0

    def pending(self) -> int:
        return len(self._data) - self._position

    def recv(self, bufsize: int) -> bytes:
        if self._position >= len(self._data):
            data = self._socket.recv(max(bufsize, self.RECV_SIZE))  # BlockingIOError when none
            if len(data) <= bufsize:
                self._data, self._position = b"", 0
                return data  # also b"" at end of stream
            self._data, self._position = data, 0
        start = self._position
        self._position = min(start + bufsize, len(self._data))
        return self._data[start:self._position]

    def whole_packet(self) -> tuple[int, bytes] | None:
        """(first byte, the rest) of the next MQTT packet when all of it is buffered, taken from
        the buffer; None (nothing taken) when it is not, or its length is not a valid one."""
        data, start = self._data, self._position
        end = len(data)
        length, multiplier, position = 0, 1, start + 1
        while True:
            if position >= end or position - start > 4:
                return None
            byte = data[position]
            position += 1
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                break
            multiplier *= 128
        if position + length > end:
            return None
        self._position = position + length
        return data[start], data[position:self._position]

    def __getattr__(self, name: str) -> Any:  # send, fileno, setblocking, close, …
        return getattr(self._socket, name)


class MqttClient(mqtt.Client):
    """A paho Client that remembers its session settings so every (re)connect uses them."""

    def __init__(
        self,
        client_id: str,
        *,
        protocol: MQTTProtocolVersion = MQTTv5,
        clean_start: bool = True,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        transport: str = "tcp",
        userdata: Any = None,
    ) -> None:
        super().__init__(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            # MQTT 3.1.1 carries the flag in the constructor, MQTT 5 in connect().
            clean_session=clean_start if protocol != MQTTv5 else None,
            userdata=userdata,
            protocol=protocol,
            transport=transport,  # type: ignore[arg-type]
        )
        self.clean_start = clean_start
        self.session_expiry_s = session_expiry_s

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            return ReadBufferedSocket(sock)
        return sock  # TLS (buffers itself) and websockets: as paho made them

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered_callbacks = True
        super().message_callback_add(sub, callback)

    _filtered_callbacks = False

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        """A packet already whole in the read buffer is taken in one piece; anything else (a
        packet arriving in parts, TLS, websockets) is read by paho, a byte at a time for its
        header. Handling and the state left behind are paho's."""
        sock = self._sock
        if self._in_packet["command"] == 0 and isinstance(sock, ReadBufferedSocket):
            whole = sock.whole_packet()
            if whole is not None:
                command, body = whole
                self._in_packet.update(command=command, have_remaining=1, remaining_length=len(body),
                                       packet=body, to_process=0, pos=0)
                try:
                    rc = self._packet_handle()
                except MalformedPacket as exc:
                    self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
                    rc = mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
                self._in_packet = {
                    "command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                    "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0,
                }
                with self._msgtime_mutex:
                    self._last_bytes_received = mqtt.time_func()
                return rc
        return super()._packet_read()

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        """paho's dispatch, without walking the topic-filter tree for every message when no
        per-filter callback was ever added (motcua adds none)."""
        if self._filtered_callbacks:
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        """An inbound QoS 0/1 PUBLISH without MQTT 5 properties (every message motcua sends)
        decoded directly; anything else by paho.

        paho builds and clears a `Properties` object for every MQTT 5 PUBLISH even when its
        property block is the single byte 0: about a third of the server's per-message time in
        paho. Here such a message gets `properties = None` (as under MQTT 3.1.1); the topic,
        payload, mid, QoS, retain and dup flags, timestamp, on_message dispatch and automatic
        PUBACK are paho's. QoS 2, properties present, or anything odd (a short or malformed
        packet): paho's own decoding, errors and all.
        """
        command = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (command & 0x06) >> 1
        try:
            if qos == 2:
                raise ValueError("QoS 2: paho's path")
            length = (packet[0] << 8) | packet[1]
            position = 2 + length
            topic = bytes(packet[2:position])
            if len(topic) != length or (not length and self._protocol != MQTTv5):
                raise ValueError("short or empty topic: paho reports it")
            mid = 0
            if qos:
                mid = (packet[position] << 8) | packet[position + 1]
                position += 2
            if self._protocol == MQTTv5:
                if packet[position] != 0:
                    raise ValueError("properties: paho decodes them")
                position += 1
            payload = bytes(packet[position:])
        except (IndexError, ValueError):
            return super()._handle_publish()
        message = mqtt.MQTTMessage(mid=mid, topic=topic)
        message.dup = bool(command & 0x08)
        message.qos = qos
        message.retain = bool(command & 0x01)
        message.properties = None
        message.payload = payload
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages received with manual acks, in one write to the broker.

        `ack(mid, 1)` queues one packet per message, and each costs a wake-up of the network
        thread and a send() of 4 bytes: at thousands of messages a second those syscalls (and
        the GIL hand-overs around them) were a large share of the server's ingest time.
        """
        if not mids or not self._manual_ack:
            return
        packet = b"".join(_PUBACK_PACKET.pack(mqtt.PUBACK, 2, mid) for mid in mids)
        self._packet_queue(mqtt.PUBACK, packet, 0, 0)

    @property
    def is_mqtt5(self) -> bool:
        return self._protocol == MQTTv5

    def connect_arguments(self) -> dict[str, Any]:
        """The keyword arguments of connect() that carry the session settings."""
        if not self.is_mqtt5:
            return {}
        properties = Properties(PacketTypes.CONNECT)
        # A clean start with expiry 0 ends the session at disconnect; a persistent one outlives it.
        properties.SessionExpiryInterval = 0 if self.clean_start else self.session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        return {"clean_start": self.clean_start, "properties": properties}


def set_tcp_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """on_socket_open callback: send small packets at once instead of waiting for Nagle."""
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "_socket", None)
    if isinstance(raw, socket.socket) and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(
    client_id: str,
    *,
    protocol: MQTTProtocolVersion = MQTTv5,
    clean_start: bool = True,
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    will: tuple[str, bytes | str, bool] | None = None,
    username: str | None = None,
    password: str | None = None,
    max_inflight: int = 100,
    transport: str = "tcp",
    userdata: Any = None,
) -> MqttClient:
    """A configured client, not yet connected.

    clean_start=False with a fixed client_id gives a persistent session: the broker keeps the
    subscriptions and queues QoS 1 messages while the client is away. Use MQTTv311 with amqtt.
    `will` is (topic, payload, retain), sent at QoS 1 if the connection is lost.
    """
    client = MqttClient(client_id, protocol=protocol, clean_start=clean_start,
                        session_expiry_s=session_expiry_s, transport=transport, userdata=userdata)
    client.on_socket_open = set_tcp_nodelay
    client.max_inflight_messages_set(max_inflight)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        topic, payload, retain = will
        client.will_set(topic, payload, qos=1, retain=retain)
    return client


def connect_and_wait(client: MqttClient, host: str, port: int, *, timeout: float = 10.0,
                     keepalive: int = 30) -> bool:
    """Connect, start the network thread and wait for the CONNACK.

    Returns the broker's session-present flag (False means a persistent client must
    subscribe again). Raises ConnectionRefused on a failing CONNACK and BrokerUnreachable on
    a socket error or timeout; in both cases the network thread is stopped again.
    """
    answered = threading.Event()
    outcome: dict[str, Any] = {}
    user_on_connect = client.on_connect

    def on_connect(c: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode,
                   properties: Properties | None) -> None:
        if not answered.is_set():
            outcome.update(reason=reason, session_present=flags.session_present)
            if reason.is_failure:
                c.disconnect()  # from the network thread, before paho schedules a reconnect
            answered.set()
        if user_on_connect is not None:
            user_on_connect(c, userdata, flags, reason, properties)

    client.on_connect = on_connect
    try:
        try:
            client.connect(host, port, keepalive=keepalive, **client.connect_arguments())
        except OSError as exc:
            raise BrokerUnreachable(f"cannot reach MQTT broker at {host}:{port}: {exc}") from exc
        client.loop_start()
        if not answered.wait(timeout):
            _abandon(client)
            raise BrokerUnreachable(f"no CONNACK from {host}:{port} within {timeout} s")
        reason: ReasonCode = outcome["reason"]
        if reason.is_failure:
            _abandon(client)
            raise ConnectionRefused(reason)
        return bool(outcome["session_present"])
    finally:
        client.on_connect = user_on_connect


def subscribe_and_wait(client: mqtt.Client, subscriptions: list[tuple[str, int]], *,
                       timeout: float = 10.0) -> None:
    """Subscribe and wait for the SUBACK, so that what is published next is not missed.
    Raises MqttSubscribeError if the broker refuses any filter (e.g. an ACL) or does not answer."""
    acks: dict[int, list[ReasonCode]] = {}  # by mid: a SUBACK may arrive before subscribe() returns
    answered = threading.Condition()
    user_on_subscribe = client.on_subscribe

    def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                     properties: Properties | None) -> None:
        with answered:
            acks[mid] = reasons
            answered.notify_all()
        if user_on_subscribe is not None:
            user_on_subscribe(c, userdata, mid, reasons, properties)

    client.on_subscribe = on_subscribe
    try:
        result, mid = client.subscribe(subscriptions)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise MqttSubscribeError(f"subscribe failed: {mqtt.error_string(result)}")
        with answered:
            if not answered.wait_for(lambda: mid in acks, timeout):
                raise MqttSubscribeError(f"no SUBACK within {timeout} s")
        refused = [topic for (topic, _), reason in zip(subscriptions, acks[mid]) if reason.is_failure]
        if refused:
            raise MqttSubscribeError(f"broker refused subscriptions: {', '.join(refused)}")
    finally:
        client.on_subscribe = user_on_subscribe


def _abandon(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def disconnect_and_stop(client: mqtt.Client) -> None:
    """A clean goodbye (no will is sent) and the network thread joined."""
    client.disconnect()
    client.loop_stop()
