"""A TCP proxy on loopback that can cut the network between devices and the MQTT broker.

Devices connect to the proxy instead of the broker; each connection is relayed to the broker
by its own thread. `cut()` models the building's network going down:

- `drop` (default): every relayed connection is closed at once (both sides see the socket
  close, the broker publishes each device's Last Will) and new connections are refused
  (accepted and reset at once), so devices keep failing to reconnect;
- `blackhole`: connections stay open but nothing gets through in either direction, as when a
  switch dies or a cable is pulled: each side notices only when its keepalive runs out, and
  new connections hang (accepted here, never answered).

`restore()` lets traffic through again; devices reconnect on their own.
"""
from __future__ import annotations

import select
import socket
import struct
import threading
from dataclasses import dataclass, field

BUFFER = 65536
POLL_S = 0.05  # how often an idle relay looks at the cut flag


@dataclass
class _Relay:
    device_side: socket.socket
    broker_side: socket.socket
    closed: threading.Event = field(default_factory=threading.Event)
    # Held while bytes are moved: once cut() has taken it, nothing more gets through.
    moving: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.device_side, self.broker_side):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class NetCut:
    """`with NetCut(broker_host, broker_port) as net:` … `net.cut()` … `net.restore()`."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(POLL_S)  # closing a socket does not wake a blocked accept()
        self.host, self.port = self._listener.getsockname()[:2]
        self._mode: str | None = None  # None: traffic flows; "drop" or "blackhole": cut
        self._lock = threading.Lock()
        self._relays: list[_Relay] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepted = 0  # connections relayed to the broker
        self.refused = 0  # connection attempts reset while cut

    # --- control --------------------------------------------------------------------------------

    def start(self) -> NetCut:
        self._spawn(self._accept_loop, "netcut-accept")
        return self

    def cut(self, mode: str = "drop") -> None:
        if mode not in ("drop", "blackhole"):
            raise ValueError(f"unknown cut mode {mode!r}")
        with self._lock:
            self._mode = mode
            relays = list(self._relays)
        for relay in relays:
            with relay.moving:  # a chunk being forwarded right now is the last one
                if mode == "drop":
                    relay.close()

    def restore(self) -> None:
        with self._lock:
            self._mode = None

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    def live_connections(self) -> int:
        with self._lock:
            return sum(1 for relay in self._relays if not relay.closed.is_set())

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            relays = list(self._relays)
        for relay in relays:
            relay.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> NetCut:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- relaying -------------------------------------------------------------------------------

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                device_side, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed: stopping
            device_side.settimeout(None)
            if self._mode == "drop":
                # Refused: a reset rather than an orderly close, as a dead route looks to a client.
                device_side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                device_side.close()
                self.refused += 1
                continue
            try:
                broker_side = socket.create_connection(self.target, timeout=5)
            except OSError:
                device_side.close()
                continue
            broker_side.settimeout(None)
            for sock in (device_side, broker_side):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            relay = _Relay(device_side, broker_side)
            with self._lock:
                self._relays = [r for r in self._relays if not r.closed.is_set()] + [relay]
            self.accepted += 1
            self._spawn(self._pump, "netcut-relay", relay)

    def _pump(self, relay: _Relay) -> None:
        """Both directions of one connection. While blackholed nothing is read: bytes wait in
        the kernel's buffers as they would wait in TCP retransmissions, and flow on when the
        network is back, unless one side gave up on the connection meanwhile."""
        peers = {relay.device_side: relay.broker_side, relay.broker_side: relay.device_side}
        try:
            while not relay.closed.is_set():
                if self._mode == "blackhole":
                    self._stopping.wait(POLL_S)
                    continue
                readable, _, _ = select.select(list(peers), [], [], POLL_S)
                for sock in readable:
                    with relay.moving:
                        if self._mode is not None:
                            break  # cut while waiting: leave the bytes where they are
                        data = sock.recv(BUFFER)
                        if not data:
                            return
                        peers[sock].sendall(data)
        except (OSError, ValueError):
            pass  # closed under us by cut() or stop()
        finally:
            relay.close()
