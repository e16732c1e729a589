"""Starting the ticket kiosk: settings, printer, controller, Kivy window."""
from __future__ import annotations

import os
from pathlib import Path

from ..settings import KioskSettings
from .controller import IssueResult, TicketKiosk


def make_printer(settings: KioskSettings, kiosk: TicketKiosk):
    """A callable printing an issued ticket on the configured printer (None: no printer)."""
    from ..printing import PrinterConfig, print_ticket
    from ..ticket_layout import PrintedTicket, render_ticket

    printer_config = PrinterConfig.model_validate(settings.printer)

    def print_issued(result: IssueResult) -> tuple[bool, str, str | None]:
        config = kiosk.state.config
        ticket = result.ticket
        assert ticket is not None
        printed = PrintedTicket(
            centre_name_vi=config.name.vi if config else "",
            centre_name_en=config.name.en if config else "",
            code=ticket.code,
            field_name_vi=result.field_name_vi,
            field_name_en=result.field_name_en,
            people_ahead=ticket.ahead,
            est_wait_s=ticket.est_wait_s,
            issued_at=ticket.issued_at,
            url=ticket.url,
            timezone=config.timezone if config else "Asia/Ho_Chi_Minh",
        )
        layout = render_ticket(printed, printer_config.profile, lang=result.lang)
        outcome = print_ticket(printer_config, layout)
        return outcome.ok, outcome.state, outcome.detail

    return print_issued


def prepare_kivy_environment(kivy_home: Path | None = None, *, headless: bool = False) -> None:
    """Kivy reads its settings from the environment at import: set them first."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    if kivy_home is not None:
        os.environ["KIVY_HOME"] = str(kivy_home)
    if headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def run_ticket_kiosk(settings: KioskSettings) -> int:
    prepare_kivy_environment()
    kiosk = TicketKiosk(settings)
    kiosk.printer = make_printer(settings, kiosk)
    from kivy.config import Config

    if settings.screen.fullscreen:
        Config.set("graphics", "fullscreen", "auto")
    from .app import create_app

    create_app(kiosk).run()
    return 0
