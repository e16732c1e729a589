"""The client's I/O shortcuts: reads served from one buffer, and a batch of PUBACKs in one write."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.broker import free_port
from queue_server.mqtt.client import (
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

        subscriber = make_client("acks-subscriber", clean_start=False)
        subscriber.manual_ack_set(True)
        subscriber.on_message = on_message
        connect_and_wait(subscriber, broker.host, broker.port)
        subscribe_and_wait(subscriber, [("acks/#", 1)], timeout=10)
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

