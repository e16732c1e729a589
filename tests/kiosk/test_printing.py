"""Printing a ticket: the real bytes on a (virtual) network printer, paper states, failures."""
from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from escpos.printer import Dummy
from pydantic import ValidationError

from kiosk.printing import PrinterConfig, open_printer, print_ticket
from kiosk.ticket_layout import PrinterProfile, TicketLayout, render_ticket
from tests.kiosk.test_ticket_layout import ALL_THE_MARKS, TICKET
from tests.kiosk.virtual_printer import (
    PAPER_LOW,
    PAPER_OK,
    PAPER_OUT,
    STATUS_QUERY_PAPER,
    VirtualPrinter,
    decode_raster,
    parse_commands,
    raster_commands,
)


@pytest.fixture(scope="module")
def layout_80() -> TicketLayout:
    return render_ticket(replace(TICKET, field_name_vi=ALL_THE_MARKS), PrinterProfile(paper_width_px=576, native_qr=True))


@pytest.fixture(scope="module")
def layout_58() -> TicketLayout:
    return render_ticket(TICKET, PrinterProfile(paper_width_px=384, native_qr=False))


@pytest.fixture
def printer():
    with VirtualPrinter(paper_status=PAPER_OK) as virtual:
        yield virtual


def network(virtual: VirtualPrinter, **settings: object) -> PrinterConfig:
    return PrinterConfig(kind="network", host=virtual.host, port=virtual.port, timeout_s=2,
                         status_timeout_s=0.2, **settings)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- bytes on the wire


@pytest.mark.parametrize("which", ["layout_80", "layout_58"])
def test_network_printer_receives_the_layout_bytes_and_picture(which: str, request: pytest.FixtureRequest,
                                                                printer: VirtualPrinter) -> None:
    layout: TicketLayout = request.getfixturevalue(which)
    config = network(printer, paper_width_px=layout.image.width, native_qr=layout.qr_data is not None)

    result = print_ticket(config, layout)

    assert result.ok and result.state == "ok", result
    assert result.bytes_sent == len(layout.commands)
    (connection,) = printer.wait_for_connections(1)
    # First the paper-sensor query (answered), then exactly the job.
    assert connection.status_queries == [4]
    assert bytes(connection.received) == STATUS_QUERY_PAPER + layout.commands
    assert connection.printed == layout.commands
    # The picture that arrived is the rendered ticket, dot for dot.
    assert len(raster_commands(connection.printed)) > 1
    arrived = decode_raster(connection.printed)
    assert arrived.size == layout.image.size
    assert arrived.tobytes() == layout.image.tobytes()


def test_without_status_query_the_printer_gets_only_the_job(printer: VirtualPrinter, layout_80: TicketLayout) -> None:
    result = print_ticket(network(printer, query_paper_status=False), layout_80)

    assert result.ok and result.state == "ok"
    (connection,) = printer.wait_for_connections(1)
    assert bytes(connection.received) == layout_80.commands
    assert connection.status_queries == []


def test_native_qr_reaches_the_printer_with_the_url(printer: VirtualPrinter, layout_80: TicketLayout) -> None:
    print_ticket(network(printer), layout_80)

    (connection,) = printer.wait_for_connections(1)
    stored = [command.payload for command in parse_commands(connection.printed)[0]
              if command.name == "GS ( k" and command.payload[:2] == b"1P"]
    assert stored == [b"1P0" + TICKET.url.encode("ascii")]


def test_two_tickets_two_connections(printer: VirtualPrinter, layout_80: TicketLayout) -> None:
    second = render_ticket(replace(TICKET, code="A016", people_ahead=5), PrinterProfile(paper_width_px=576))

    assert print_ticket(network(printer), layout_80).ok
    assert print_ticket(network(printer), second).ok

    first_connection, second_connection = printer.wait_for_connections(2)
    assert first_connection.printed == layout_80.commands
    assert second_connection.printed == second.commands


def test_virtual_printer_takes_picture_bytes_as_data_not_as_queries() -> None:
    # A picture row may well contain 10 04 04; a printer knows the GS v 0 length and so does the parser.
    picture = b"\x1dv0\x00\x01\x00\x03\x00" + STATUS_QUERY_PAPER
    commands, used = parse_commands(b"\x1b@" + picture + STATUS_QUERY_PAPER)

    assert [command.name for command in commands] == ["ESC @", "GS v 0", "DLE EOT"]
    assert used == 2 + len(picture) + 3


# --------------------------------------------------------------------------- paper and failures


def test_paper_low_still_prints(layout_80: TicketLayout) -> None:
    with VirtualPrinter(paper_status=PAPER_LOW) as virtual:
        result = print_ticket(network(virtual), layout_80)

        assert result.ok and result.state == "paper_low"
        (connection,) = virtual.wait_for_connections(1)
        assert connection.printed == layout_80.commands


def test_paper_out_is_reported_and_the_ticket_is_not_sent(layout_80: TicketLayout) -> None:
    # Decided: not sent. The printer would hold it and print it when the roll is changed,
    # long after the citizen left with the ticket shown on screen.
    with VirtualPrinter(paper_status=PAPER_OUT) as virtual:
        result = print_ticket(network(virtual), layout_80)

        assert not result.ok and result.state == "paper_out"
        assert "not sent" in result.detail
        assert result.bytes_sent == 0
        (connection,) = virtual.wait_for_connections(1)
        assert bytes(connection.received) == STATUS_QUERY_PAPER


def test_printer_that_does_not_answer_the_paper_query_still_prints(layout_80: TicketLayout) -> None:
    with VirtualPrinter(paper_status=None) as virtual:
        result = print_ticket(network(virtual), layout_80)

        assert result.ok and result.state == "ok"
        assert "paper status unknown" in result.detail
        (connection,) = virtual.wait_for_connections(1)
        assert connection.printed == layout_80.commands


def test_nothing_listening_is_offline_not_an_exception(layout_80: TicketLayout) -> None:
    port = free_port()
    config = PrinterConfig(kind="network", host="127.0.0.1", port=port, timeout_s=0.5)

    result = print_ticket(config, layout_80)

    assert not result.ok and result.state == "offline"
    assert f"127.0.0.1:{port}" in result.detail
    assert result.bytes_sent == 0


def test_ticket_for_other_paper_is_not_sent(printer: VirtualPrinter, layout_58: TicketLayout) -> None:
    result = print_ticket(network(printer, paper_width_px=576), layout_58)

    assert not result.ok and result.state == "error"
    assert "384" in result.detail and "576" in result.detail
    assert printer.connections == []


def test_missing_serial_device_is_offline(layout_80: TicketLayout) -> None:
    result = print_ticket(PrinterConfig(kind="serial", serial_device="/dev/motcua-no-such-tty"), layout_80)

    assert not result.ok and result.state == "offline"
    assert "/dev/motcua-no-such-tty" in result.detail


def test_unusable_usb_is_reported_not_raised(layout_80: TicketLayout) -> None:
    # No such device (or no libusb at all on the test machine): offline or error, never an exception.
    result = print_ticket(PrinterConfig(kind="usb", usb_vendor_id="0xfffe", usb_product_id="0xfffe"), layout_80)

    assert not result.ok and result.state in ("offline", "error")
    assert "fffe:fffe" in result.detail
    assert len(result.detail) <= 256


# --------------------------------------------------------------------------- file and dummy


def test_file_printer_writes_the_same_bytes(tmp_path: Path, layout_58: TicketLayout) -> None:
    path = tmp_path / "lp0"
    config = PrinterConfig(kind="file", file_path=str(path), paper_width_px=384, native_qr=False)

    result = print_ticket(config, layout_58)

    assert result.ok and result.state == "ok"
    assert path.read_bytes() == layout_58.commands


def test_file_printer_in_a_missing_directory_is_offline(tmp_path: Path, layout_58: TicketLayout) -> None:
    config = PrinterConfig(kind="file", file_path=str(tmp_path / "nope" / "lp0"), paper_width_px=384)

    result = print_ticket(config, layout_58)

    assert not result.ok and result.state == "offline"


def test_dummy_printer(layout_80: TicketLayout) -> None:
    config = PrinterConfig(kind="dummy")

    printer = open_printer(config)
    assert isinstance(printer, Dummy)
    printer._raw(layout_80.commands)
    assert printer.output == layout_80.commands

    result = print_ticket(config, layout_80)
    assert result.ok and result.state == "ok" and result.bytes_sent == len(layout_80.commands)


# --------------------------------------------------------------------------- config


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="hots"):
        PrinterConfig.model_validate({"kind": "network", "host": "10.0.0.9", "hots": "x"})


@pytest.mark.parametrize(("settings", "missing"), [
    ({"kind": "network"}, "host"),
    ({"kind": "usb", "usb_vendor_id": 0x0416}, "usb_product_id"),
    ({"kind": "serial"}, "serial_device"),
    ({"kind": "file"}, "file_path"),
])
def test_config_needs_the_settings_of_its_kind(settings: dict, missing: str) -> None:
    with pytest.raises(ValidationError, match=missing):
        PrinterConfig.model_validate(settings)


def test_config_defaults_and_hex_usb_ids() -> None:
    config = PrinterConfig.model_validate({"kind": "usb", "usb_vendor_id": "0x0416", "usb_product_id": "5011"})

    assert (config.usb_vendor_id, config.usb_product_id) == (0x0416, 0x5011)
    assert PrinterConfig(kind="network", host="10.0.0.9").port == 9100
    assert config.profile == PrinterProfile(paper_width_px=576, native_qr=True, native_barcode=False, cut=True)


def test_config_rejects_other_paper_widths() -> None:
    with pytest.raises(ValidationError, match="paper_width_px"):
        PrinterConfig(kind="dummy", paper_width_px=512)
