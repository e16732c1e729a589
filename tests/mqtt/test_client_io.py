"""The client's I/O shortcuts: reads served from one buffer, a batch of PUBACKs in one write, and
inbound PUBLISH packets without properties decoded without paho's Properties."""
from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.broker import free_port
from queue_server.mqtt.client import (
    MQTTv5,
    MQTTv311,
    RECEIVE_MAXIMUM,
    MqttClient,
    ReadBufferedSocket,
    connect_and_wait,
    disconnect_and_stop,
    make_client,
    subscribe_and_wait,
)

from .helpers import wait_until


@pytest.fixture
def socket_pair():
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_small_reads_come_from_one_recv_and_pending_says_what_is_left(socket_pair) -> None:
    writer, reader = socket_pair
    buffered = ReadBufferedSocket(reader)
    writer.sendall(b"\x30\x05hello\x40\x02\x00\x01")
    assert buffered.recv(1) == b"\x30"
    assert buffered.pending() == 10
    assert buffered.recv(1) == b"\x05"
    assert buffered.recv(5) == b"hello"
    assert buffered.recv(100) == b"\x40\x02\x00\x01"  # never more than what is buffered
    assert buffered.pending() == 0


def test_nothing_buffered_and_nothing_sent_raises_would_block(socket_pair) -> None:
    _, reader = socket_pair
    reader.setblocking(False)
    buffered = ReadBufferedSocket(reader)
    with pytest.raises(BlockingIOError):
        buffered.recv(1)


def test_end_of_stream_is_an_empty_read(socket_pair) -> None:
    writer, reader = socket_pair
    buffered = ReadBufferedSocket(reader)
    writer.sendall(b"ab")
    writer.shutdown(socket.SHUT_WR)
    assert buffered.recv(1) == b"a"
    assert buffered.recv(1) == b"b"
    assert buffered.recv(1) == b""


def test_everything_else_is_the_socket_itself(socket_pair) -> None:
    _, reader = socket_pair
    buffered = ReadBufferedSocket(reader)
    assert buffered.fileno() == reader.fileno()
    buffered.setblocking(False)
    assert reader.getblocking() is False


def _persistent_manual_ack_subscriber(broker: MosquittoBroker, client_id: str, topic_filter: str, on_message):
    """A connected subscriber with a persistent session that acknowledges messages itself."""
    subscriber = make_client(client_id, clean_start=False)
    subscriber.manual_ack_set(True)
    subscriber.on_message = on_message
    connect_and_wait(subscriber, broker.host, broker.port)
    subscribe_and_wait(subscriber, [(topic_filter, 1)], timeout=10)
    return subscriber


def test_a_batch_of_acks_reaches_the_broker_and_nothing_is_redelivered(tmp_path: Path) -> None:
    """2,000 QoS 1 messages to a persistent subscriber with manual acks, acknowledged with
    ack_many in batches; after a reconnect the broker has nothing left to deliver again."""
    broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "broker")
    broker.start()
    try:
        received: list[int] = []
        flushed = threading.Event()
        lock = threading.Lock()

        def on_message(client, userdata, message) -> None:
            if message.topic == "acks/flushed":
                flushed.set()
                return
            with lock:
                received.append(message.mid)

        subscriber = _persistent_manual_ack_subscriber(broker, "acks-subscriber", "acks/#", on_message)
        publisher = make_client("acks-publisher")
        connect_and_wait(publisher, broker.host, broker.port)
        infos = [publisher.publish(f"acks/{i % 7}", str(i), qos=1) for i in range(2000)]
        for info in infos:
            info.wait_for_publish(10)
        acked = 0
        while acked < 2000:
            batch = wait_until("messages", lambda: list(received), lambda got: len(got) > acked, 10)
            subscriber.ack_many(batch[acked:])
            acked = len(batch)
        assert len(received) == 2000
        # The broker reads a connection in order: once a QoS 0 message the subscriber sent
        # after its acks comes back, the acks were taken. (Disconnecting at once may lose the
        # last acks, with paho's own ack() too: the broker then sends those messages again.)
        subscriber.publish("acks/flushed", b"", qos=0)
        assert flushed.wait(10)
        disconnect_and_stop(publisher)
        disconnect_and_stop(subscriber)

        again: list[bytes] = []
        late = make_client("acks-subscriber", clean_start=False)
        late.manual_ack_set(True)
        late.on_message = lambda client, userdata, message: again.append(message.payload)
        connect_and_wait(late, broker.host, broker.port)
        probe = make_client("acks-probe")
        connect_and_wait(probe, broker.host, broker.port)
        probe.publish("acks/probe", "probe", qos=1).wait_for_publish(10)
        # The probe is published after reconnecting: once it arrives, any redelivery would have too.
        wait_until("probe", lambda: list(again), lambda got: b"probe" in got, 10)
        assert again == [b"probe"]
        disconnect_and_stop(probe)
        disconnect_and_stop(late)
    finally:
        broker.stop()



# --- inbound PUBLISH: decoded directly when it has no properties, by paho otherwise -----------------


def _publish_packet(topic: bytes, payload: bytes, *, qos: int, mid: int = 0, retain: bool = False, dup: bool = False,
                    properties: bytes | None = b"\x00") -> bytes:
    """A PUBLISH as a broker sends it; `properties` is the MQTT 5 property block (None: MQTT 3.1.1)."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"") + (properties or b"") + payload
    length, encoded = len(body), b""
    while True:
        digit, length = length % 128, length // 128
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            break
    return bytes([0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)]) + encoded + body


def _received(packets: list[bytes], *, protocol=MQTTv5, manual_ack: bool = False, lean: bool = True):
    """What on_message gets for `packets` read by a connected client (lean=False: paho's own
    decoding, for comparison), and what the client wrote back."""
    client = MqttClient("decode-test", protocol=protocol)
    if not lean:
        client._handle_publish = lambda: mqtt.Client._handle_publish(client)  # type: ignore[method-assign]
    client.manual_ack_set(manual_ack)
    got: list = []
    client.on_message = lambda c, u, m: got.append(
        (m.topic, m.payload, m.qos, m.mid, m.retain, m.dup,
         None if m.properties is None else m.properties.json(), m.timestamp > 0))
    feeder, mine = socket.socketpair()
    try:
        mine.setblocking(False)
        client._sock = ReadBufferedSocket(mine)
        client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        feeder.sendall(b"".join(packets))
        results = []
        for _ in range(len(packets)):
            results.append(client.loop_read())
        client.loop_write()
        feeder.setblocking(False)
        try:
            written = feeder.recv(1000)
        except BlockingIOError:
            written = b""
        return got, results, written
    finally:
        feeder.close()
        mine.close()


PLAIN = [
    _publish_packet(b"motcua/v1/hcc/device/rating-01/rating", '{"level":"hài lòng"}'.encode(), qos=1, mid=7),
    _publish_packet(b"motcua/v1/hcc/state/today", b"{}", qos=0, retain=True),
    _publish_packet(b"a/b", b"", qos=1, mid=65535, dup=True),
]


def test_a_publish_without_properties_is_what_paho_would_deliver_but_properties_none() -> None:
    lean, lean_results, lean_written = _received(PLAIN)
    paho, paho_results, paho_written = _received(PLAIN, lean=False)
    assert lean_results == paho_results == [mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS] * 3
    assert [item[:6] for item in lean] == [item[:6] for item in paho] == [
        ("motcua/v1/hcc/device/rating-01/rating", '{"level":"hài lòng"}'.encode(), 1, 7, False, False),
        ("motcua/v1/hcc/state/today", b"{}", 0, 0, True, False),
        ("a/b", b"", 1, 65535, False, True),
    ]
    assert all(item[7] for item in lean)  # timestamped
    assert [item[6] for item in lean] == [None, None, None]
    assert [item[6] for item in paho] == [{}, {}, {}]  # paho's empty Properties
    # Automatic acks: the same PUBACK bytes for both QoS 1 messages.
    assert lean_written == paho_written == b"\x40\x02\x00\x07\x40\x02\xff\xff"


def test_manual_acks_leave_the_acks_to_the_application() -> None:
    _, _, written = _received(PLAIN, manual_ack=True)
    assert written == b""


def test_a_publish_with_properties_is_decoded_by_paho() -> None:
    expiry = b"\x02\x00\x00\x00\x1e"  # Message Expiry Interval 30 s
    correlation = b"\x09\x00\x03abc"
    packet = _publish_packet(b"x/y", b"payload", qos=1, mid=3,
                             properties=bytes([len(expiry + correlation)]) + expiry + correlation)
    got, results, _ = _received([packet])
    assert results == [mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS]
    assert got[0][:6] == ("x/y", b"payload", 1, 3, False, False)
    assert got[0][6] == {"MessageExpiryInterval": 30, "CorrelationData": "616263"}


def test_mqtt_311_has_no_property_block() -> None:
    packets = [_publish_packet(b"t/1", b"one", qos=1, mid=1, properties=None),
               _publish_packet(b"t/2", b"two", qos=0, properties=None)]
    lean, _, _ = _received(packets, protocol=MQTTv311)
    paho, _, _ = _received(packets, protocol=MQTTv311, lean=False)
    assert lean == paho
    assert [item[:2] for item in lean] == [("t/1", b"one"), ("t/2", b"two")]


@pytest.mark.parametrize("packet", [
    b"\x32\x01\x00",  # shorter than a topic length
    b"\x32\x04\x00\x09ab",  # topic length beyond the packet
    b"\x32\x05\x00\x01a\x00",  # QoS 1 without a whole packet id
    b"\x32\x05\x00\x01a\x00\x01",  # MQTT 5 without its property block
    b"\x30\x03\x00\x01a",  # MQTT 5 QoS 0 without its property block
])
def test_a_malformed_publish_gets_paho_s_own_answer(packet: bytes) -> None:
    def outcome(lean: bool):
        try:
            got, results, _ = _received([packet], lean=lean)
            return "delivered", got, results
        except Exception as exc:  # paho raises MalformedPacket (or answers with an error code)
            return "raised", type(exc).__name__
    assert outcome(True) == outcome(False)


def test_messages_through_a_real_broker_arrive_whole(tmp_path: Path) -> None:
    """Retained and live, QoS 0 and 1, with and without properties, Vietnamese text: what the
    subscriber gets is what was published."""
    broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "broker")
    broker.start()
    try:
        publisher = make_client("decode-publisher")
        connect_and_wait(publisher, broker.host, broker.port)
        publisher.publish("decode/retained", "Đã giữ lại", qos=1, retain=True).wait_for_publish(10)
        got: list = []
        subscriber = make_client("decode-subscriber")
        subscriber.on_message = lambda c, u, m: got.append(
            (m.topic, m.payload.decode(), m.qos, m.retain, None if m.properties is None else m.properties.json()))
        connect_and_wait(subscriber, broker.host, broker.port)
        subscribe_and_wait(subscriber, [("decode/#", 1)], timeout=10)
        wait_until("retained", lambda: list(got), lambda items: len(items) == 1, 10)
        properties = Properties(PacketTypes.PUBLISH)
        properties.MessageExpiryInterval = 60
        properties.UserProperty = ("quầy", "3")
        publisher.publish("decode/live", "Hài lòng", qos=1).wait_for_publish(10)
        publisher.publish("decode/with-properties", "có thuộc tính", qos=1, properties=properties).wait_for_publish(10)
        publisher.publish("decode/qos0", "không xác nhận", qos=0).wait_for_publish(10)
        wait_until("all", lambda: list(got), lambda items: len(items) == 4, 10)
        by_topic = {item[0]: item[1:] for item in got}
        assert by_topic["decode/retained"] == ("Đã giữ lại", 1, True, None)
        assert by_topic["decode/live"] == ("Hài lòng", 1, False, None)
        assert by_topic["decode/qos0"] == ("không xác nhận", 0, False, None)
        text, qos, retain, props = by_topic["decode/with-properties"]
        assert (text, qos, retain) == ("có thuộc tính", 1, False)
        assert props["UserProperty"] == [("quầy", "3")] and 0 < props["MessageExpiryInterval"] <= 60
        disconnect_and_stop(publisher)
        disconnect_and_stop(subscriber)
    finally:
        broker.stop()


def test_a_broker_sends_at_most_receive_maximum_unacknowledged_messages(tmp_path: Path) -> None:
    """What a client (the server's ingest) holds received but not yet acknowledged is bounded by
    the Receive Maximum it asks for, even from a broker that would send more."""
    broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "broker", max_inflight_messages=5000)
    broker.start()
    try:
        received: list[int] = []
        lock = threading.Lock()

        def on_message(client, userdata, message) -> None:
            with lock:
                received.append(message.mid)

        subscriber = _persistent_manual_ack_subscriber(broker, "bounded-subscriber", "bounded/#", on_message)
        publisher = make_client("bounded-publisher", max_inflight=3000)
        connect_and_wait(publisher, broker.host, broker.port)
        for info in [publisher.publish("bounded/x", str(i), qos=1) for i in range(3000)]:
            info.wait_for_publish(10)
        first = wait_until("the first messages", lambda: list(received), lambda got: len(got) >= RECEIVE_MAXIMUM, 10)
        time.sleep(0.5)  # time for any more to arrive, if the broker were to send them
        with lock:
            assert len(received) == RECEIVE_MAXIMUM == len(first)
        subscriber.ack_many(first)
        wait_until("the rest", lambda: list(received), lambda got: len(got) >= 2 * RECEIVE_MAXIMUM, 10)
        disconnect_and_stop(publisher)
        disconnect_and_stop(subscriber)
    finally:
        broker.stop()


# --- whole packets taken from the read buffer in one piece -------------------------------------------


def test_a_whole_buffered_packet_is_taken_in_one_piece(socket_pair) -> None:
    writer, reader = socket_pair
    buffered = ReadBufferedSocket(reader)
    big = _publish_packet(b"t", b"x" * 300, qos=0)  # a two-byte remaining length
    writer.sendall(b"\xd0\x00" + big + b"\x30\x05\x00")  # PINGRESP, a PUBLISH, the start of another
    assert buffered.whole_packet() is None  # nothing read yet: paho's own read fills the buffer
    assert buffered.recv(1) == b"\xd0"
    assert buffered.recv(1) == b"\x00"
    assert buffered.whole_packet() == (0x30, big[3:])
    assert buffered.whole_packet() is None  # the rest of the last one has not arrived
    assert buffered.pending() == 3  # and nothing of it was taken
    writer.sendall(b"\x01a\x00\x00")
    assert buffered.recv(3) == b"\x30\x05\x00"
    assert buffered.recv(10) == b"\x01a\x00\x00"


def test_a_length_of_five_bytes_is_left_to_paho(socket_pair) -> None:
    writer, reader = socket_pair
    buffered = ReadBufferedSocket(reader)
    writer.sendall(b"\x30\xff\xff\xff\xff\x01" + b"x" * 10)
    assert buffered.recv(1) == b"\x30"
    buffered._position = 0  # as if paho had not read yet
    assert buffered.whole_packet() is None
    assert buffered.pending() == 16


def test_packets_arriving_in_pieces_are_all_delivered_in_order() -> None:
    """Byte by byte, in odd-sized pieces and all at once: the same messages, in order."""
    packets = [_publish_packet(f"t/{n}".encode(), ("tin nhắn " * n).encode(), qos=1, mid=n + 1) for n in range(40)]
    stream = b"".join(packets)
    expected = [(f"t/{n}", ("tin nhắn " * n).encode()) for n in range(40)]
    for piece in (1, 7, 300, len(stream)):
        client = MqttClient("pieces-test")
        client.manual_ack_set(True)
        got: list = []
        client.on_message = lambda c, u, m: got.append((m.topic, m.payload))
        feeder, mine = socket.socketpair()
        try:
            mine.setblocking(False)
            client._sock = ReadBufferedSocket(mine)
            client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
            for start in range(0, len(stream), piece):
                feeder.sendall(stream[start:start + piece])
                while client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and client._sock.pending():
                    pass
            for _ in range(100):  # anything still buffered
                client.loop_read()
            assert got == expected, f"pieces of {piece} bytes"
        finally:
            feeder.close()
            mine.close()


def test_per_filter_callbacks_still_get_their_messages() -> None:
    client = MqttClient("filters-test")
    client.manual_ack_set(True)
    general: list[str] = []
    ratings: list[str] = []
    client.on_message = lambda c, u, m: general.append(m.topic)
    client.message_callback_add("site/+/rating", lambda c, u, m: ratings.append(m.topic))
    feeder, mine = socket.socketpair()
    try:
        mine.setblocking(False)
        client._sock = ReadBufferedSocket(mine)
        client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        feeder.sendall(_publish_packet(b"site/kiosk-1/rating", b"1", qos=0) + _publish_packet(b"site/state", b"2", qos=0))
        client.loop_read()
        client.loop_read()
    finally:
        feeder.close()
        mine.close()
    assert ratings == ["site/kiosk-1/rating"] and general == ["site/state"]
