"""The real ticket kiosk app (Kivy, offscreen) against a real server, broker and virtual printer."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiosk.settings import load_kiosk_settings
from kiosk.ticket.controller import TicketKiosk
from kiosk.ticket.run import make_printer
from kiosk.ticket_layout import PrintedTicket, render_ticket
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.link import ServerLink
from queue_server.server import build
from tests.conftest import sample_config
from tests.kiosk.virtual_printer import PAPER_OK, VirtualPrinter, decode_raster

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "kiosk"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Broker, server with its MQTT link, a virtual printer, and the kiosk app on screen."""
    from kivy.base import EventLoop

    from kiosk.ticket.app import create_app

    root = tmp_path_factory.mktemp("kiosk-world")
    broker = MosquittoBroker("127.0.0.1", free_port(), root / "broker")
    broker.start()
    server = build(sample_config(**{"chung-thuc": {"closed": True}}), root / "data")
    link = ServerLink(server.service, broker.host, broker.port)
    link.start()
    printer = VirtualPrinter(paper_status=PAPER_OK)
    settings = load_kiosk_settings(
        None, device="kiosk-01", site=server.config.site.id,
        mqtt={"host": broker.host, "port": broker.port},
        screen={"fullscreen": False, "ticket_shown_s": 300},
        requests={"retry_every_s": 0.5, "answer_within_s": 1, "give_up_after_s": 20},
        printer={"kind": "network", "host": printer.host, "port": printer.port, "timeout_s": 2},
    )
    kiosk = TicketKiosk(settings)
    kiosk.printer = make_printer(settings, kiosk)
    app = create_app(kiosk, size=(1024, 600))
    app._run_prepare()  # build and start without entering the blocking main loop

    class World:
        pass

    world = World()
    world.broker, world.server, world.link, world.printer, world.kiosk, world.app = broker, server, link, printer, kiosk, app
    world.pump = lambda: EventLoop.idle()
    world.link_holder = [link]
    yield world
    app.stop()
    kiosk.stop() if kiosk.state.broker_connected else None
    world.link_holder[0].stop()
    printer.close()
    server.store.close()
    broker.stop()


def pump_until(world, condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        world.pump()  # one Kivy frame: clock callbacks (MQTT updates hop here), layout, drawing
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def screen_texts(world) -> str:
    from kivy.uix.label import Label

    screen = world.app.root.current_screen
    return "\n".join(widget.text for widget in screen.walk() if isinstance(widget, Label))


def tiles(world) -> dict:
    from kiosk.ticket.app import create_app  # noqa: F401 - FieldTile is registered by create_app
    from kivy.factory import Factory

    grid = world.app.root.get_screen("home").ids.tiles
    return {tile.field: tile for tile in grid.children if isinstance(tile, Factory.FieldTile)}


def screenshot(world, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    world.app.root.export_to_png(str(path))
    assert path.stat().st_size > 5000
    return path


def home_ready(world) -> None:
    world.app.go_home()
    pump_until(world, lambda: world.kiosk.online() and len(tiles(world)) == 4 and not tiles(world)["dat-dai"].disabled,
               "the kiosk online with its tiles")


def test_home_screen_shows_centre_fields_and_waiting(world) -> None:
    home_ready(world)
    texts = screen_texts(world)
    assert "Trung tâm Phục vụ hành chính công" in texts
    assert "Chạm vào lĩnh vực để lấy số thứ tự" in texts
    labels = {field: tile.text for field, tile in tiles(world).items()}
    assert "Đất đai" in labels["dat-dai"] and "Không phải chờ" in labels["dat-dai"]
    # A closed field is shown as such and cannot be touched.
    assert "Tạm dừng tiếp nhận" in labels["chung-thuc"] and tiles(world)["chung-thuc"].disabled
    assert world.app.tile_font_px >= 32
    screenshot(world, "home-1024x600-vi")


def test_touching_a_tile_issues_prints_and_shows_one_ticket(world) -> None:
    home_ready(world)
    connections_before = len(world.printer.connections)
    tile = tiles(world)["dat-dai"]
    tile.dispatch("on_release")
    tile.dispatch("on_release")  # a double touch
    pump_until(world, lambda: world.app.root.current == "ticket", "the ticket screen")
    rows = world.server.store.db.execute("SELECT id, letter, number FROM tickets WHERE issued_field_id = 'dat-dai'").fetchall()
    assert len(rows) == 1  # one ticket for two touches
    code = f"{rows[0][1]}{rows[0][2]:03d}"
    assert world.app.ticket_code == code
    texts = screen_texts(world)
    assert code in texts and "PHIẾU SỐ THỨ TỰ" in texts and "Số người đang chờ trước bạn: 0" in texts
    assert "Mời nhận phiếu in bên dưới" in texts
    screenshot(world, "ticket-1024x600-vi")

    # The bytes at the printer carry exactly the rendered ticket.
    connection = world.printer.wait_for_connections(connections_before + 1)[-1]
    result = world.app.last_result
    config = world.kiosk.state.config
    expected = render_ticket(
        PrintedTicket(
            centre_name_vi=config.name.vi, centre_name_en=config.name.en, code=code,
            field_name_vi="Đất đai", field_name_en="Land", people_ahead=0,
            est_wait_s=result.ticket.est_wait_s, issued_at=result.ticket.issued_at, url=result.ticket.url,
            timezone=config.timezone,
        ),
        make_printer_profile(world),
    )
    assert connection.printed == expected.commands
    assert decode_raster(connection.printed).tobytes() == expected.image.tobytes()


def make_printer_profile(world):
    from kiosk.printing import PrinterConfig

    return PrinterConfig.model_validate(world.kiosk.settings.printer).profile


def test_english_switch(world) -> None:
    home_ready(world)
    world.app.toggle_lang()
    world.pump()
    assert "Touch a service to get your queue ticket" in screen_texts(world)
    assert "Land" in tiles(world)["dat-dai"].text
    screenshot(world, "home-1024x600-en")
    world.app.toggle_lang()


def test_priority_step(world) -> None:
    home_ready(world)
    world.app.open_priority()
    world.pump()
    assert "Bạn thuộc đối tượng ưu tiên nào?" in screen_texts(world)
    screenshot(world, "priority-1024x600-vi")
    world.app.choose_priority("elderly")
    tiles(world)["ho-tich"].dispatch("on_release")
    pump_until(world, lambda: world.app.root.current == "ticket", "the ticket screen")
    priority = world.server.store.db.execute("SELECT priority FROM tickets WHERE issued_field_id = 'ho-tich'").fetchone()[0]
    assert priority == "elderly"


def test_printer_offline_keeps_the_ticket_on_screen_and_reports_it(world) -> None:
    home_ready(world)
    original = world.kiosk.printer
    offline = world.kiosk.settings.model_copy(update={"printer": {"kind": "network", "host": "127.0.0.1", "port": free_port(), "timeout_s": 1}})
    world.kiosk.printer = make_printer(offline, world.kiosk)
    try:
        tiles(world)["dang-ky-kinh-doanh"].dispatch("on_release")
        pump_until(world, lambda: world.app.root.current == "ticket", "the ticket screen")
        assert world.app.printer_problem
        assert "Máy in đang gặp sự cố" in screen_texts(world) and "chụp ảnh mã QR" in screen_texts(world)
        screenshot(world, "ticket-printer-offline-vi")
        pump_until(world, lambda: any(d["printer_state"] == "offline" for d in world.server.store.list_devices()),
                   "the printer event recorded by the server")
    finally:
        world.kiosk.printer = original


def test_server_down_is_said_plainly_and_tiles_wait(world) -> None:
    home_ready(world)
    world.link_holder[0].stop()  # the server leaves: its status becomes "stopped"
    pump_until(world, lambda: "Mất kết nối với máy chủ" in world.app.banner, "the offline banner")
    assert all(tile.disabled for tile in tiles(world).values())
    screenshot(world, "home-server-down-vi")
    link = ServerLink(world.server.service, world.broker.host, world.broker.port)
    link.start()
    world.link_holder[0] = link
    pump_until(world, lambda: world.app.banner == "", "the banner to clear when the server is back")
