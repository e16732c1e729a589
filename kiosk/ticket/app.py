"""`motcua kiosk ticket`: the Kivy touchscreen app that issues (and prints) queue tickets.

Layout lives in kv/*.kv (one file per screen); this module holds the behaviour. Kivy is
imported only inside `create_app`/`run`, after the environment is set, never at import time.
"""
from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from .controller import IssueResult, TicketKiosk

KV_DIR = Path(__file__).parent / "kv"
SCREENS = ("home", "priority", "waiting", "ticket", "message")

# Every text on screen, Vietnamese first; (vi, en).
TEXTS = {
    "prompt": ("Chạm vào lĩnh vực để lấy số thứ tự", "Touch a service to get your queue ticket"),
    "priority_button": ("Ưu tiên: người cao tuổi, khuyết tật, mang thai…", "Priority: elderly, disabled, pregnant…"),
    "priority_chosen": ("Đối tượng ưu tiên: {reason} (chạm để đổi)", "Priority: {reason} (touch to change)"),
    "priority_title": ("Bạn thuộc đối tượng ưu tiên nào?", "Which priority applies to you?"),
    "no_priority": ("Không ưu tiên — quay lại", "No priority — go back"),
    "waiting": ("Đang lấy số…", "Getting your ticket…"),
    "slow": ("Đang kết nối lại với máy chủ, vui lòng chờ…\nKhông cần chạm lại.",
             "Reconnecting to the server, please wait…\nNo need to touch again."),
    "heading": ("PHIẾU SỐ THỨ TỰ", "QUEUE TICKET"),
    "ahead": ("Số người đang chờ trước bạn: {n}", "People ahead of you: {n}"),
    "wait": ("Thời gian chờ dự kiến: khoảng {m} phút", "Estimated wait: about {m} min"),
    "wait_short": ("Thời gian chờ dự kiến: dưới 1 phút", "Estimated wait: under 1 min"),
    "printed": ("Mời nhận phiếu in bên dưới", "Please take your printed ticket below"),
    "not_printed": ("Máy in đang gặp sự cố ({state}). Vui lòng chụp ảnh mã QR hoặc ghi nhớ số của bạn.",
                    "The printer has a problem ({state}). Please photograph the QR code or note your number."),
    "no_printer": ("Vui lòng ghi nhớ số hoặc chụp ảnh mã QR", "Please note your number or photograph the QR code"),
    "qr": ("Quét mã để theo dõi lượt", "Scan to follow your turn"),
    "done": ("Xong", "Done"),
    "offline": ("Mất kết nối với máy chủ — đang thử lại. Tạm thời chưa lấy được số.",
                "No connection to the server — retrying. Tickets cannot be issued right now."),
    "starting": ("Đang kết nối…", "Connecting…"),
    "waiting_count": ("Đang chờ: {n} · khoảng {m} phút", "Waiting: {n} · about {m} min"),
    "waiting_none": ("Không phải chờ", "No waiting"),
    "closed": ("Tạm dừng tiếp nhận", "Closed for now"),
    "outside_hours": ("Ngoài giờ làm việc", "Outside opening hours"),
    "holiday": ("Nghỉ lễ", "Public holiday"),
    "cap_reached": ("Đã hết số hôm nay", "No more tickets today"),
}


def text(key: str, lang: str, **values) -> str:
    vi, en = TEXTS[key]
    return (vi if lang == "vi" else en).format(**values)


def wait_minutes_text(est_wait_s: int, lang: str) -> str:
    minutes = math.ceil(est_wait_s / 60)
    return text("wait_short", lang) if minutes < 1 else text("wait", lang, m=minutes)


def create_app(kiosk: TicketKiosk, *, size: tuple[int, int] | None = None):
    """Build the Kivy App around a controller (Kivy is imported here, not at module import)."""
    from kivy.app import App
    from kivy.clock import Clock, mainthread
    from kivy.core.image import Image as CoreImage
    from kivy.core.window import Window
    from kivy.factory import Factory
    from kivy.lang import Builder
    from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
    from kivy.uix.button import Button
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

    class FieldTile(Button):
        field = StringProperty("")
        label = StringProperty("")
        available = BooleanProperty(True)

    class HomeScreen(Screen):
        pass

    class PriorityScreen(Screen):
        pass

    class WaitingScreen(Screen):
        pass

    class TicketScreen(Screen):
        pass

    class MessageScreen(Screen):
        pass

    for cls in (FieldTile, HomeScreen, PriorityScreen, WaitingScreen, TicketScreen, MessageScreen):
        Factory.register(cls.__name__, cls=cls)

    class TicketKioskApp(App):
        lang = StringProperty(kiosk.settings.screen.lang)
        centre_title = StringProperty("")
        clock_text = StringProperty("")
        banner = StringProperty("")
        prompt_text = StringProperty("")
        priority = StringProperty("")
        priority_button_text = StringProperty("")
        priority_title = StringProperty("")
        no_priority_text = StringProperty("")
        ask_priority = BooleanProperty(kiosk.settings.screen.ask_priority)
        waiting_text = StringProperty("")
        ticket_heading = StringProperty("")
        ticket_code = StringProperty("")
        ticket_field = StringProperty("")
        ticket_details = StringProperty("")
        printer_text = StringProperty("")
        printer_problem = BooleanProperty(False)
        qr_texture = ObjectProperty(None, allownone=True)
        qr_caption = StringProperty("")
        done_text = StringProperty("")
        message_text = StringProperty("")
        tile_columns = NumericProperty(3)
        portrait = BooleanProperty(False)
        tile_font_px = NumericProperty(34)
        header_font_px = NumericProperty(28)
        header_px = NumericProperty(80)
        code_font_px = NumericProperty(160)

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.kiosk = kiosk
            self.last_result: IssueResult | None = None
            self._home_timer = None
            kiosk.on_update = self._refresh_from_thread

        # --- building ---------------------------------------------------------------------------

        def build(self):
            self.title = "motcua — kiosk"
            for name in SCREENS:
                Builder.load_file(str(KV_DIR / f"{name}.kv"))
            manager = ScreenManager(transition=NoTransition())
            for name, cls in zip(SCREENS, (HomeScreen, PriorityScreen, WaitingScreen, TicketScreen, MessageScreen)):
                manager.add_widget(cls(name=name))
            Window.bind(size=lambda *_: self._resize())
            self._resize()
            Clock.schedule_interval(lambda dt: self._tick(), 1.0)
            self._tick()
            self.refresh()
            return manager

        def on_start(self):
            self.kiosk.start()

        def on_stop(self):
            self.kiosk.on_update = lambda: None  # no refresh queued for an app that has stopped
            self.kiosk.stop()

        def _resize(self):
            width, height = Window.size
            portrait = self.portrait = height > width
            self.tile_columns = 2 if portrait or width < 1200 else 3
            # Readable at arm's length: tile text at least 32 px on a 1024×600 screen.
            self.tile_font_px = max(32, round(min(width, height) / 17))
            self.header_font_px = max(24, round(min(width, height) / 24))
            self.header_px = max(64, round(min(width, height) / 8))
            self.code_font_px = max(120, round(min(width, height) / 3.6))

        def _tick(self):
            config = self.kiosk.state.config
            tz = ZoneInfo(config.timezone) if config else ZoneInfo("Asia/Ho_Chi_Minh")
            self.clock_text = datetime.now(timezone.utc).astimezone(tz).strftime("%H:%M")

        # --- state from the controller ------------------------------------------------------------

        @mainthread
        def _refresh_from_thread(self):
            self.refresh()

        def refresh(self):
            lang = self.lang
            config = self.kiosk.state.config
            if config is not None:
                self.centre_title = f"[b]{config.name.vi}[/b]\n{config.name.en}"
            self.prompt_text = text("prompt", lang)
            self.priority_title = text("priority_title", lang)
            self.no_priority_text = text("no_priority", lang)
            self.done_text = text("done", lang)
            self.qr_caption = text("qr", lang)
            reason = self._priority_name(self.priority)
            self.priority_button_text = text("priority_chosen", lang, reason=reason) if self.priority else text("priority_button", lang)
            if config is None:
                self.banner = text("starting", lang)
            elif not self.kiosk.online():
                self.banner = text("offline", lang)
            else:
                self.banner = ""
            self._fill_tiles()
            self._fill_priorities()

        def _fill_tiles(self):
            if not self.root:
                return
            grid = self.root.get_screen("home").ids.tiles
            grid.clear_widgets()
            online = self.kiosk.online()
            for tile in self.kiosk.tiles():
                name = tile.name_vi if self.lang == "vi" else tile.name_en
                if not tile.available:
                    detail = text(tile.reason or "closed", self.lang)
                elif tile.waiting == 0:
                    detail = text("waiting_none", self.lang)
                elif tile.waiting is not None:
                    detail = text("waiting_count", self.lang, n=tile.waiting, m=max(1, tile.est_wait_min or 0))
                else:
                    detail = ""
                label = f"[b]{tile.letter} · {name}[/b]\n[size={round(self.tile_font_px * 0.7)}]{detail}[/size]"
                grid.add_widget(FieldTile(field=tile.field, label=label, available=tile.available,
                                          disabled=not (tile.available and online)))

        def _priority_name(self, reason_id: str) -> str:
            config = self.kiosk.state.config
            choice = next((c for c in config.priorities if c.id == reason_id), None) if config else None
            if choice is None:
                return reason_id
            return choice.name.vi if self.lang == "vi" else choice.name.en

        def _fill_priorities(self):
            if not self.root:
                return
            grid = self.root.get_screen("priority").ids.reasons
            grid.clear_widgets()
            config = self.kiosk.state.config
            for choice in (config.priorities if config else []):
                button = Factory.PriorityChoice(text=choice.name.vi if self.lang == "vi" else choice.name.en)
                button.reason = choice.id  # a kv-declared property: set after creation
                grid.add_widget(button)

        # --- touches ----------------------------------------------------------------------------

        def toggle_lang(self):
            self.lang = "en" if self.lang == "vi" else "vi"
            self.refresh()
            self._arm_idle_reset()

        def open_priority(self):
            self.root.current = "priority"
            self._arm_idle_reset()

        def choose_priority(self, reason_id: str):
            self.priority = reason_id
            self.root.current = "home"
            self.refresh()
            self._arm_idle_reset()

        def choose_field(self, field_id: str):
            if self.root.current != "home":
                return  # a second touch while a ticket is on its way
            self.waiting_text = text("waiting", self.lang)
            self.root.current = "waiting"
            self.kiosk.request_ticket(field_id, self.priority or None, self.lang,
                                      on_done=self._issued_from_thread, on_slow=self._slow_from_thread)

        @mainthread
        def _slow_from_thread(self):
            self.waiting_text = text("slow", self.lang)

        @mainthread
        def _issued_from_thread(self, result: IssueResult):
            self.show_result(result)

        def show_result(self, result: IssueResult):
            self.last_result = result
            lang = self.lang
            if result.ticket is None:
                self.message_text = result.error_message or result.error_code or ""
                self.root.current = "message"
            else:
                ticket = result.ticket
                self.ticket_heading = text("heading", lang)
                self.ticket_code = ticket.code
                self.ticket_field = result.field_name_vi if lang == "vi" else result.field_name_en
                self.ticket_details = "\n".join([text("ahead", lang, n=ticket.ahead), wait_minutes_text(ticket.est_wait_s, lang)])
                if self.kiosk.printer is None:
                    self.printer_text, self.printer_problem = text("no_printer", lang), False
                elif result.printed:
                    self.printer_text, self.printer_problem = text("printed", lang), False
                else:
                    self.printer_text = text("not_printed", lang, state=result.printer_state or "error")
                    self.printer_problem = True
                self.qr_texture = qr_texture(ticket.url or ticket.ticket_id, CoreImage)
                self.root.current = "ticket"
            self.priority = ""
            self._arm_home_timer(self.kiosk.settings.screen.ticket_shown_s)

        def go_home(self):
            self.root.current = "home"
            self.priority = ""
            self.refresh()

        def _arm_home_timer(self, seconds: float):
            if self._home_timer is not None:
                self._home_timer.cancel()
            self._home_timer = Clock.schedule_once(lambda dt: self.go_home(), seconds)

        def _arm_idle_reset(self):
            self._arm_home_timer(self.kiosk.settings.screen.idle_reset_s)

    app = TicketKioskApp()
    if size is not None:
        Window.size = size
    return app


def qr_texture(data: str, core_image_cls):
    """The ticket's QR code as a Kivy texture (drawn with qrcode + Pillow)."""
    import qrcode

    image = qrcode.make(data, box_size=10, border=2).get_image().convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return core_image_cls(buffer, ext="png").texture
