"""A virtual network receipt printer for tests, and a reader for the ESC/POS it receives.

`VirtualPrinter` listens on a free port of 127.0.0.1 like a printer's raw port 9100: it takes
one connection at a time, keeps every byte of each, and answers the paper-sensor query
DLE EOT 4 with a settable status byte (or stays silent, as many printers do on TCP).

`parse_commands` splits an ESC/POS stream into commands the way a printer does: it knows the
length of each command it recognises, so bytes inside a picture are never taken for a command.
`decode_raster` turns the GS v 0 pictures of a job back into a 1-bit image.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from PIL import Image

PAPER_OK = 0x12          # DLE EOT 4 answer: fixed bits only
PAPER_LOW = 0x1E         # near-end sensor (bits 2, 3)
PAPER_OUT = 0x72         # paper-end sensor (bits 5, 6)
STATUS_QUERY_PAPER = b"\x10\x04\x04"


# --------------------------------------------------------------------------- ESC/POS parsing


class Incomplete(Exception):
    """The stream ends inside a command."""


@dataclass(frozen=True)
class Command:
    """One ESC/POS command: `name` like "GS v 0", "ESC @", "text" (a printable byte), "LF"."""

    name: str
    raw: bytes
    payload: bytes = b""
    args: tuple[int, ...] = ()


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise Incomplete


def _one(data: bytes, start: int) -> Command:
    """The command starting at data[start]."""
    first = data[start]
    if first == 0x1B:  # ESC
        _need(data, start + 2)
        second = data[start + 1]
        if second == ord("@"):
            return Command("ESC @", data[start:start + 2])
        if second in b"adJ!E-tM23":
            if second == ord("2"):
                return Command("ESC 2", data[start:start + 2])
            _need(data, start + 3)
            return Command(f"ESC {chr(second)}", data[start:start + 3], args=(data[start + 2],))
        return Command(f"ESC 0x{second:02x}", data[start:start + 2])
    if first == 0x10:  # DLE
        _need(data, start + 3)
        if data[start + 1] == 0x04:
            return Command("DLE EOT", data[start:start + 3], args=(data[start + 2],))
        return Command(f"DLE 0x{data[start + 1]:02x}", data[start:start + 3], args=(data[start + 2],))
    if first == 0x1D:  # GS
        _need(data, start + 2)
        second = data[start + 1]
        if second == ord("v"):
            _need(data, start + 8)
            mode, x_low, x_high, y_low, y_high = data[start + 3:start + 8]
            width_bytes = x_low + 256 * x_high
            height = y_low + 256 * y_high
            end = start + 8 + width_bytes * height
            _need(data, end)
            return Command("GS v 0", data[start:end], data[start + 8:end], (mode, width_bytes, height))
        if second == ord("("):
            _need(data, start + 5)
            function = chr(data[start + 2])
            length = data[start + 3] + 256 * data[start + 4]
            end = start + 5 + length
            _need(data, end)
            return Command(f"GS ( {function}", data[start:end], data[start + 5:end])
        if second == ord("V"):
            _need(data, start + 3)
            if data[start + 2] in (65, 66, 97, 98, 103, 104):  # cut with feed: GS V m n
                _need(data, start + 4)
                return Command("GS V", data[start:start + 4], args=(data[start + 2], data[start + 3]))
            return Command("GS V", data[start:start + 3], args=(data[start + 2],))
        if second in b"hwHfa!B":
            _need(data, start + 3)
            return Command(f"GS {chr(second)}", data[start:start + 3], args=(data[start + 2],))
        if second == ord("k"):
            _need(data, start + 3)
            kind = data[start + 2]
            if kind >= 65:  # function B: GS k m n d1…dn
                _need(data, start + 4)
                end = start + 4 + data[start + 3]
                _need(data, end)
                return Command("GS k", data[start:end], data[start + 4:end], (kind,))
            terminator = data.find(b"\x00", start + 3)  # function A: NUL-terminated
            if terminator < 0:
                raise Incomplete
            return Command("GS k", data[start:terminator + 1], data[start + 3:terminator], (kind,))
        return Command(f"GS 0x{second:02x}", data[start:start + 2])
    if first == 0x0A:
        return Command("LF", data[start:start + 1])
    return Command("text" if 0x20 <= first < 0x7F or first >= 0x80 else f"0x{first:02x}", data[start:start + 1])


def parse_commands(data: bytes, *, partial: bool = False) -> tuple[list[Command], int]:
    """Split data into commands. Returns them and how many bytes they use (all unless `partial`)."""
    commands: list[Command] = []
    position = 0
    while position < len(data):
        try:
            command = _one(data, position)
        except Incomplete:
            if partial:
                break
            raise ValueError(f"stream ends inside a command at byte {position}") from None
        commands.append(command)
        position += len(command.raw)
    return commands, position


def raster_commands(data: bytes) -> list[Command]:
    return [command for command in parse_commands(data)[0] if command.name == "GS v 0"]


def decode_raster(data: bytes) -> Image.Image:
    """Every GS v 0 picture of the job, stacked top to bottom, as a mode "1" image.

    In GS v 0 a set bit is a black dot, rows are width_bytes long, most significant bit first;
    Pillow's raw mode "1;I" reads exactly that (inverted: set bit = black = 0).
    """
    bands = []
    for command in raster_commands(data):
        mode, width_bytes, height = command.args
        if mode != 0:
            raise ValueError(f"GS v 0 with density mode {mode}; the tickets use normal density (0)")
        bands.append(Image.frombytes("1", (width_bytes * 8, height), command.payload, "raw", "1;I"))
    if not bands:
        raise ValueError("no GS v 0 picture in the data")
    width = bands[0].width
    if any(band.width != width for band in bands):
        raise ValueError("GS v 0 pictures of different widths")
    picture = Image.new("1", (width, sum(band.height for band in bands)), 1)
    top = 0
    for band in bands:
        picture.paste(band, (0, top))
        top += band.height
    return picture


def without_realtime(data: bytes) -> bytes:
    """The job as printed: data with the real-time status queries (DLE EOT n) taken out."""
    return b"".join(command.raw for command in parse_commands(data)[0] if command.name != "DLE EOT")


# --------------------------------------------------------------------------- the printer


@dataclass
class Connection:
    """What one client connection sent, and the status queries the printer answered."""

    received: bytearray = field(default_factory=bytearray)
    status_queries: list[int] = field(default_factory=list)

    @property
    def printed(self) -> bytes:
        return without_realtime(bytes(self.received))


class VirtualPrinter:
    """A raw-TCP receipt printer on 127.0.0.1. Use as a context manager, or call close().

    paper_status: the byte answered to DLE EOT 4, or None to stay silent.
    """

    def __init__(self, paper_status: int | None = PAPER_OK) -> None:
        self.paper_status = paper_status
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._server.getsockname()[:2]
        self._done: list[Connection] = []
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name=f"virtual-printer-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self) -> VirtualPrinter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing = True
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=5)

    def wait_for_connections(self, count: int = 1, timeout_s: float = 5.0) -> list[Connection]:
        """The first `count` finished connections (client closed), waiting at most timeout_s."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._done) >= count, timeout=timeout_s):
                raise TimeoutError(f"{len(self._done)} of {count} connections finished in {timeout_s} s")
            return list(self._done[:count])

    @property
    def connections(self) -> list[Connection]:
        with self._changed:
            return list(self._done)

    def _serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client:
                connection = self._receive(client)
            with self._changed:
                self._done.append(connection)
                self._changed.notify_all()

    def _receive(self, client: socket.socket) -> Connection:
        connection = Connection()
        pending = b""  # bytes of a command not yet complete
        client.settimeout(10)
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            connection.received += chunk
            commands, used = parse_commands(pending + chunk, partial=True)
            pending = (pending + chunk)[used:]
            for command in commands:
                if command.name == "DLE EOT":
                    connection.status_queries.append(command.args[0])
                    answer = self._answer(command.args[0])
                    if answer is not None:
                        client.sendall(bytes((answer,)))
        return connection

    def _answer(self, query: int) -> int | None:
        if query == 4:
            return self.paper_status
        if query == 1 and self.paper_status is not None:
            return 0x16  # printer status: online, drawer closed
        return None
