"""Sending a rendered ticket to the kiosk's receipt printer, and saying how that went.

`print_ticket` never raises: the kiosk keeps the ticket on screen whatever happens and
publishes the returned state (ok, paper_low, paper_out, offline, error) as its printer event.
Printers are opened when a ticket is printed, never at import time, and closed afterwards, so
a printer that was switched off or replugged is simply found again for the next ticket.
"""
from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from escpos.constants import RT_MASK_LOWPAPER, RT_MASK_NOPAPER, RT_STATUS_PAPER
from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy, File, Network, Serial, Usb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiosk.ticket_layout import PAPER_WIDTHS_PX, PrinterProfile, TicketLayout, escpos_profile

log = logging.getLogger(__name__)

PrinterState = Literal["ok", "paper_low", "paper_out", "offline", "error"]
MAX_DETAIL = 256  # PrinterEvent.detail in the MQTT contract is at most 256 characters


class PrinterConfig(BaseModel):
    """Which printer the kiosk drives and what it can do. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["usb", "serial", "network", "file", "dummy"] = Field(
        description="usb, serial, network (raw TCP, port 9100), file (a device file such as "
                    "/dev/usb/lp0, or a plain file), dummy (bytes are discarded; for demos)")
    host: str | None = Field(default=None, description="network: printer host name or IP address")
    port: int = Field(default=9100, ge=1, le=65535, description="network: raw printing port")
    usb_vendor_id: int | None = Field(default=None, ge=0, le=0xFFFF, description="usb: vendor id, e.g. 0x0416")
    usb_product_id: int | None = Field(default=None, ge=0, le=0xFFFF, description="usb: product id, e.g. 0x5011")
    usb_in_ep: int = Field(default=0x82, ge=0, le=0xFF, description="usb: IN endpoint (status replies)")
    usb_out_ep: int = Field(default=0x01, ge=0, le=0xFF, description="usb: OUT endpoint (print data)")
    serial_device: str | None = Field(default=None, description="serial: device, e.g. /dev/ttyUSB0")
    serial_baudrate: int = Field(default=9600, ge=1200, le=921600, description="serial: baud rate")
    file_path: str | None = Field(default=None, description="file: path written to (truncated per ticket)")
    paper_width_px: int = Field(default=576, description="576 for 80 mm paper, 384 for 58 mm")
    native_qr: bool = Field(default=True, description="the printer draws QR codes itself (GS ( k)")
    native_barcode: bool = Field(default=False, description="the printer draws CODE128 barcodes (GS k)")
    cut: bool = Field(default=True, description="the printer has a cutter")
    timeout_s: float = Field(default=3.0, gt=0, le=60, description="connect and send timeout")
    query_paper_status: bool = Field(
        default=True, description="ask the paper sensor (DLE EOT 4) before printing (usb, serial, network)")
    status_timeout_s: float = Field(
        default=0.5, gt=0, le=10, description="how long to wait for the paper sensor's answer")

    @field_validator("usb_vendor_id", "usb_product_id", "usb_in_ep", "usb_out_ep", mode="before")
    @classmethod
    def _hex_ids(cls, value: Any) -> Any:
        # USB ids are written in hex everywhere (lsusb: 0416:5011); accept "0x0416" and "0416".
        if isinstance(value, str):
            try:
                return int(value, 16)
            except ValueError:
                raise ValueError(f"not a hexadecimal number: {value!r}") from None
        return value

    @field_validator("paper_width_px")
    @classmethod
    def _paper_width(cls, value: int) -> int:
        if value not in PAPER_WIDTHS_PX:
            raise ValueError(f"must be one of {PAPER_WIDTHS_PX} (80 mm or 58 mm paper)")
        return value

    @model_validator(mode="after")
    def _kind_has_its_settings(self) -> PrinterConfig:
        required = {
            "network": ("host",),
            "usb": ("usb_vendor_id", "usb_product_id"),
            "serial": ("serial_device",),
            "file": ("file_path",),
            "dummy": (),
        }[self.kind]
        missing = [name for name in required if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {', '.join(missing)}")
        return self

    @property
    def profile(self) -> PrinterProfile:
        return PrinterProfile(paper_width_px=self.paper_width_px, native_qr=self.native_qr,
                              native_barcode=self.native_barcode, cut=self.cut)


@dataclass(frozen=True)
class PrintResult:
    ok: bool
    state: PrinterState
    detail: str | None = None
    bytes_sent: int = 0


def open_printer(config: PrinterConfig) -> Escpos:
    """Create and connect the python-escpos printer. Raises DeviceNotFoundError when it is not there."""
    profile = escpos_profile(config.profile)
    printer: Escpos
    if config.kind == "network":
        printer = Network(host=config.host, port=config.port, timeout=config.timeout_s, profile=profile)
        # Connected here, not by Network.open(): on a refused or timed-out connect that leaks
        # its socket (ResourceWarning "unclosed socket"); create_connection closes it.
        try:
            printer.device = socket.create_connection((config.host, config.port), timeout=config.timeout_s)
        except OSError as exc:
            raise DeviceNotFoundError(f"could not connect to {config.host}:{config.port}: {exc}") from exc
        return printer
    if config.kind == "usb":
        printer = Usb(idVendor=config.usb_vendor_id, idProduct=config.usb_product_id,
                      timeout=int(config.timeout_s * 1000),  # pyusb counts milliseconds
                      in_ep=config.usb_in_ep, out_ep=config.usb_out_ep, profile=profile)
    elif config.kind == "serial":
        printer = Serial(devfile=config.serial_device, baudrate=config.serial_baudrate,
                         timeout=config.timeout_s, profile=profile)
    elif config.kind == "file":
        printer = File(devfile=config.file_path, profile=profile)
    else:
        printer = Dummy(profile=profile)
    printer.open()  # python-escpos would otherwise connect on first use, mid-ticket
    return printer


def print_ticket(config: PrinterConfig, layout: TicketLayout) -> PrintResult:
    """Send the ticket. Never raises; the caller shows the ticket on screen whatever the result.

    Paper out: the ticket is NOT sent. The printer would keep it in its buffer and print it
    when the paper is changed, minutes later, for someone who has gone; the citizen has it on
    screen. Paper low: sent, state paper_low. A printer that does not answer the paper query
    (many do not on raw TCP) is printed to as usual.
    """
    if layout.image.width != config.paper_width_px:
        return _result(False, "error", f"ticket drawn for {layout.image.width} px paper, "
                                       f"printer has {config.paper_width_px} px; not sent")
    try:
        printer = open_printer(config)
    except DeviceNotFoundError as exc:
        return _result(False, "offline", f"{_where(config)} unreachable: {_one_line(exc.msg or str(exc))}")
    except Exception as exc:  # a broken driver or config must not take the kiosk down
        log.exception("opening printer %s", _where(config))
        return _result(False, "error", f"{_where(config)}: {type(exc).__name__}: {_one_line(str(exc))}")

    try:
        paper, paper_detail = "unknown", None
        if config.query_paper_status and config.kind in ("network", "usb", "serial"):
            paper, paper_detail = _paper_status(printer, config.status_timeout_s)
        if paper == "out":
            return _result(False, "paper_out", f"{_where(config)} reports no paper; ticket not sent")
        printer._raw(layout.commands)
        if paper == "low":
            return _result(True, "paper_low", f"{_where(config)} reports paper running low",
                           len(layout.commands))
        return _result(True, "ok", paper_detail, len(layout.commands))
    except (OSError, DeviceNotFoundError) as exc:  # reset, broken pipe, timeout, unplugged
        return _result(False, "offline", f"{_where(config)} lost while printing: "
                                         f"{type(exc).__name__}: {_one_line(str(exc))}")
    except Exception as exc:
        log.exception("printing on %s", _where(config))
        return _result(False, "error", f"{_where(config)}: {type(exc).__name__}: {_one_line(str(exc))}")
    finally:
        _close(printer)


def _paper_status(printer: Escpos, timeout_s: float) -> tuple[Literal["ok", "low", "out", "unknown"], str | None]:
    """Ask the paper sensor (DLE EOT 4) and read the answer within timeout_s.

    python-escpos's paper_status() says "plenty of paper" when nothing comes back and lets a
    read timeout escape, so its query_status() is used and the byte read here; a byte that is
    not a paper-sensor status (fixed bits 0, 1, 4, 7 = 0, 1, 1, 0) counts as no answer.
    """
    try:
        with _read_timeout(printer, timeout_s):
            status = printer.query_status(RT_STATUS_PAPER)
    except OSError as exc:  # socket timeout, pyusb USBTimeoutError (an IOError); sending will tell if it is gone
        return "unknown", f"paper status unknown (no answer to DLE EOT 4: {type(exc).__name__})"
    if not status:
        return "unknown", "paper status unknown (no answer to DLE EOT 4)"
    byte = status[-1]
    if byte & 0b1001_0011 != 0b0001_0010:
        return "unknown", f"paper status unknown (unexpected answer 0x{byte:02x})"
    if byte & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
        return "out", None
    if byte & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER:
        return "low", None
    return "ok", None


@contextlib.contextmanager
def _read_timeout(printer: Escpos, timeout_s: float) -> Iterator[None]:
    """Shorten the read timeout of the open connection for the status query, then restore it."""
    device = printer.device
    if isinstance(device, socket.socket):
        previous = device.gettimeout()
        device.settimeout(timeout_s)
        try:
            yield
        finally:
            device.settimeout(previous)
    elif hasattr(device, "default_timeout"):  # pyusb Device (milliseconds)
        previous = device.default_timeout
        device.default_timeout = max(1, int(timeout_s * 1000))
        try:
            yield
        finally:
            device.default_timeout = previous
    elif hasattr(device, "timeout"):  # pyserial Serial (seconds)
        previous = device.timeout
        device.timeout = timeout_s
        try:
            yield
        finally:
            device.timeout = previous
    else:
        yield


def _close(printer: Escpos) -> None:
    device = getattr(printer, "_device", None)
    if isinstance(device, socket.socket):
        # A status byte that came late sits unread; closing over it would send a TCP reset,
        # and a reset can make the printer drop the end of the ticket. Read it away first.
        with contextlib.suppress(OSError):
            device.setblocking(False)
            while device.recv(64):
                pass
    try:
        printer.close()
    except Exception as exc:
        log.warning("closing printer: %s: %s", type(exc).__name__, exc)


def _where(config: PrinterConfig) -> str:
    if config.kind == "network":
        return f"printer {config.host}:{config.port}"
    if config.kind == "usb":
        return f"USB printer {config.usb_vendor_id:04x}:{config.usb_product_id:04x}"
    if config.kind == "serial":
        return f"serial printer {config.serial_device}"
    if config.kind == "file":
        return f"printer file {config.file_path}"
    return "dummy printer"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _result(ok: bool, state: PrinterState, detail: str | None, bytes_sent: int = 0) -> PrintResult:
    if detail is not None and len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    if not ok:
        log.warning("ticket not printed: %s (%s)", state, detail)
    return PrintResult(ok=ok, state=state, detail=detail, bytes_sent=bytes_sent)
