"""`motcua kiosk rating`: the Kivy touchscreen at a counter where the citizen rates the clerk.

Screens: idle (counter, clerk, ticket being served), prompt (one big face per configured level),
reasons (chips after an unsatisfied level) and thanks. The level chosen is never shown
afterwards: idle and thanks look the same whatever was pressed.

Layout lives in kv/*.kv (one file per screen); this module holds the behaviour. Kivy is
imported only inside `create_app`, after the environment is set, never at import time.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .controller import RatingTerminal

KV_DIR = Path(__file__).parent / "kv"
SCREENS = ("idle", "prompt", "reasons", "thanks")

# Every text on screen, Vietnamese first; (vi, en).
TEXTS = {
    "counter": ("QUẦY SỐ {number}", "COUNTER {number}"),
    "counter_unknown": ("QUẦY {counter}", "COUNTER {counter}"),
    "clerk": ("Cán bộ tiếp nhận: {name}", "Officer: {name}"),
    "no_clerk": ("Chưa có cán bộ tại quầy", "No officer at this counter yet"),
    "serving": ("Đang phục vụ số {code}", "Now serving {code}"),
    "idle": ("Sẵn sàng phục vụ", "Ready to serve"),
    "closed": ("Quầy tạm dừng phục vụ", "This counter is closed"),
    "starting": ("Đang kết nối…", "Connecting…"),
    "offline": ("Mất kết nối máy chủ — đánh giá vẫn được lưu và sẽ gửi sau",
                "No connection to the server — ratings are kept and sent later"),
    "prompt": ("Quý công dân vui lòng đánh giá mức độ hài lòng", "Please rate the service you received"),
    "prompt_ticket": ("Số {code} · Quầy số {number}", "Ticket {code} · Counter {number}"),
    "prompt_counter": ("Quầy số {number}", "Counter {number}"),
    "prompt_counter_unknown": ("Quầy {counter}", "Counter {counter}"),
    "reasons": ("Quý công dân chưa hài lòng về điều gì?", "What were you unhappy with?"),
    "reasons_hint": ("Có thể chọn nhiều ý", "You may choose several"),
    "send": ("Gửi", "Send"),
    "skip": ("Bỏ qua", "Skip"),
    "thanks": ("Cảm ơn quý công dân!", "Thank you!"),
    "thanks_detail": ("Ý kiến của quý công dân đã được ghi nhận.", "Your feedback has been recorded."),
}


def text(key: str, lang: str, **values) -> str:
    vi, en = TEXTS[key]
    return (vi if lang == "vi" else en).format(**values)


def other(lang: str) -> str:
    return "en" if lang == "vi" else "vi"


def two_languages(key: str, lang: str, **values) -> tuple[str, str]:
    """The text in the terminal's language, then in the other one (shown smaller)."""
    return text(key, lang, **values), text(key, other(lang), **values)


def face_moods(satisfied: list[bool]) -> list[float]:
    """One mouth per level, best first: smiles for the levels that count as satisfied (1 down
    to 0.3), frowns for the others (down to -1), so no satisfied level looks unhappy."""

    def spread(count: int, start: float, end: float) -> list[float]:
        return [start] if count == 1 else [start + (end - start) * i / (count - 1) for i in range(count)]

    if all(satisfied) or not any(satisfied):  # not a valid scale, but still drawable
        return spread(len(satisfied), 1.0, -1.0)
    smiles = iter(spread(satisfied.count(True), 1.0, 0.3))
    frowns = reversed(spread(satisfied.count(False), -1.0, -0.3))  # a lone unhappy level frowns fully
    return [next(smiles) if flag else next(frowns) for flag in satisfied]


def mouth_points(centre_x: float, centre_y: float, radius: float, mood: float, steps: int = 16) -> list[float]:
    """A mouth as a parabola below the eyes: corners up for a smile, down for a frown."""
    half_width = radius * 0.5
    depth = radius * 0.28 * mood
    base_y = centre_y - radius * 0.32
    points = []
    for step in range(steps + 1):
        u = -1.0 + 2.0 * step / steps
        points += [centre_x + u * half_width, base_y - depth * (1.0 - u * u) + depth * 0.5]
    return points


def create_app(terminal: RatingTerminal, *, size: tuple[int, int] | None = None):
    """Build the Kivy App around a controller (Kivy is imported here, not at module import)."""
    from kivy.app import App
    from kivy.clock import Clock, mainthread
    from kivy.core.window import Window
    from kivy.factory import Factory
    from kivy.lang import Builder
    from kivy.properties import (
        BooleanProperty,
        ColorProperty,
        ListProperty,
        NumericProperty,
        StringProperty,
    )
    from kivy.uix.behaviors import ButtonBehavior
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager
    from kivy.uix.togglebutton import ToggleButton
    from kivy.uix.widget import Widget
    from kivy.utils import get_color_from_hex

    class LevelFace(Widget):
        """A face drawn on the canvas: a disc in the level's colour, two eyes, a curved mouth."""

        colour = ColorProperty((0.5, 0.5, 0.5, 1))
        mood = NumericProperty(0.0)
        mouth = ListProperty([])

        def on_kv_post(self, base_widget):
            self.bind(pos=self._draw_mouth, size=self._draw_mouth, mood=self._draw_mouth)
            self._draw_mouth()

        def _draw_mouth(self, *_):
            radius = min(self.width, self.height) / 2
            self.mouth = mouth_points(self.center_x, self.center_y, radius, self.mood)

    class LevelButton(ButtonBehavior, BoxLayout):
        level = StringProperty("")
        colour = ColorProperty((0.5, 0.5, 0.5, 1))
        mood = NumericProperty(0.0)
        label = StringProperty("")

    class ReasonChip(ToggleButton):
        reason = StringProperty("")

    class RatingIdleScreen(Screen):
        pass

    class RatingPromptScreen(Screen):
        pass

    class RatingReasonsScreen(Screen):
        pass

    class RatingThanksScreen(Screen):
        pass

    screen_classes = (RatingIdleScreen, RatingPromptScreen, RatingReasonsScreen, RatingThanksScreen)
    for cls in (LevelFace, LevelButton, ReasonChip, *screen_classes):
        Factory.register(cls.__name__, cls=cls)

    class RatingTerminalApp(App):
        lang = StringProperty(terminal.settings.screen.lang)
        centre_title = StringProperty("")
        clock_text = StringProperty("")
        banner = StringProperty("")
        counter_title = StringProperty("")
        counter_subtitle = StringProperty("")
        clerk_text = StringProperty("")
        status_text = StringProperty("")
        status_subtitle = StringProperty("")
        serving = BooleanProperty(False)
        prompt_title = StringProperty("")
        prompt_subtitle = StringProperty("")
        prompt_detail = StringProperty("")
        reasons_title = StringProperty("")
        reasons_hint = StringProperty("")
        send_text = StringProperty("")
        skip_text = StringProperty("")
        thanks_title = StringProperty("")
        thanks_subtitle = StringProperty("")
        thanks_detail = StringProperty("")
        level_font_px = NumericProperty(30)
        header_font_px = NumericProperty(26)
        header_px = NumericProperty(72)
        title_font_px = NumericProperty(96)

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.terminal = terminal
            self._chosen: tuple[str, datetime] | None = None  # an unsatisfied level waiting for its reasons
            self._timer = None
            self._tick_event = None
            self._levels_shown: tuple = ()
            self._stopped = False
            terminal.on_update = self._refresh_from_thread

        # --- building ---------------------------------------------------------------------------

        def build(self):
            self.title = "motcua — rating"
            for name in SCREENS:
                path = str(KV_DIR / f"{name}.kv")
                Builder.unload_file(path)  # a second app in the same process must not add its rules twice
                Builder.load_file(path)
            manager = ScreenManager(transition=NoTransition())
            for name, cls in zip(SCREENS, screen_classes):
                manager.add_widget(cls(name=name))
            Window.bind(size=self._resize)
            self._resize()
            self._tick_event = Clock.schedule_interval(lambda dt: self._tick(), 1.0)
            self._tick()
            return manager

        def on_start(self):
            self.terminal.start()

        def on_stop(self):
            # Leave nothing behind that would run after this app (tests start another one): a
            # refresh still queued for the main thread would evaluate our kv rules against it.
            self._stopped = True
            Window.unbind(size=self._resize)
            for event in (self._tick_event, self._timer):
                if event is not None:
                    event.cancel()
            self.terminal.on_update = lambda: None
            self.terminal.stop()

        def _resize(self, *_):
            width, height = Window.size
            short = min(width, height)
            # Readable from a step back: level names at least 28 px on a 1024×600 screen.
            self.level_font_px = max(28, round(short / 20))
            self.header_font_px = max(22, round(short / 24))
            self.header_px = max(60, round(short / 8.5))
            self.title_font_px = max(64, round(short / 6))

        def _tick(self):
            self.clock_text = self.terminal.local_now().strftime("%H:%M")
            self.refresh()  # the rating window ends by the clock, not by a message

        # --- state from the controller ------------------------------------------------------------

        @mainthread
        def _refresh_from_thread(self):
            self.refresh()

        def refresh(self):
            if self._stopped:
                return
            lang, terminal = self.lang, self.terminal
            config = terminal.state.config
            if config is not None:
                self.centre_title = f"[b]{config.name.vi}[/b]\n{config.name.en}" if lang == "vi" else \
                    f"[b]{config.name.en}[/b]\n{config.name.vi}"
            if config is None or terminal.state.counter is None:
                self.banner = text("starting", lang) if terminal.state.broker_connected else text("offline", lang)
            else:
                self.banner = "" if terminal.online() else text("offline", lang)
            self._fill_idle()
            self._fill_prompt()
            self._fill_static()
            if self.root is None:
                return
            current = self.root.current
            if current in ("idle", "prompt"):
                self.root.current = "prompt" if terminal.awaiting_rating() and terminal.levels() else "idle"

        def _fill_idle(self):
            lang, terminal = self.lang, self.terminal
            number = terminal.counter_number()
            if number is not None:
                self.counter_title, self.counter_subtitle = two_languages("counter", lang, number=number)
            else:
                self.counter_title, self.counter_subtitle = two_languages("counter_unknown", lang, counter=terminal.counter_id)
            clerk = terminal.clerk_name()
            self.clerk_text = text("clerk", lang, name=clerk) if clerk else text("no_clerk", lang)
            status = terminal.status()
            code = terminal.serving_ticket()
            self.serving = code is not None
            if code is not None:
                self.status_text, self.status_subtitle = two_languages("serving", lang, code=code)
            elif status == "closed":
                self.status_text, self.status_subtitle = two_languages("closed", lang)
            elif status is None:
                self.status_text, self.status_subtitle = "", ""
            else:
                self.status_text, self.status_subtitle = two_languages("idle", lang)

        def _fill_prompt(self):
            lang, terminal = self.lang, self.terminal
            self.prompt_title, self.prompt_subtitle = two_languages("prompt", lang)
            number = terminal.counter_number()
            code = terminal.rating_ticket()
            if number is None:
                self.prompt_detail = text("prompt_counter_unknown", lang, counter=terminal.counter_id)
            elif code:
                self.prompt_detail = text("prompt_ticket", lang, code=code, number=number)
            else:
                self.prompt_detail = text("prompt_counter", lang, number=number)
            levels = terminal.levels()
            shown = (lang, tuple(levels))
            if not self.root or shown == self._levels_shown:
                return
            self._levels_shown = shown
            row = self.root.get_screen("prompt").ids.levels
            row.clear_widgets()
            secondary = round(self.level_font_px * 0.7)
            moods = face_moods([level.satisfied for level in levels])
            for level, mood in zip(levels, moods):
                first, second = (level.name.vi, level.name.en) if lang == "vi" else (level.name.en, level.name.vi)
                row.add_widget(LevelButton(
                    level=level.id, colour=get_color_from_hex(level.colour), mood=mood,
                    label=f"[b]{first}[/b]\n[size={secondary}]{second}[/size]",
                ))

        def _fill_static(self):
            lang = self.lang
            self.reasons_title = text("reasons", lang)
            self.reasons_hint = f"{text('reasons_hint', lang)} · {text('reasons', other(lang))}"
            self.send_text = f"{text('send', lang)} / {text('send', other(lang))}"
            self.skip_text = f"{text('skip', lang)} / {text('skip', other(lang))}"
            self.thanks_title, self.thanks_subtitle = two_languages("thanks", lang)
            self.thanks_detail = "\n".join(two_languages("thanks_detail", lang))

        def _fill_reasons(self):
            lang = self.lang
            reasons = self.terminal.reasons()
            grid = self.root.get_screen("reasons").ids.chips
            grid.clear_widgets()
            for reason in reasons:
                first, second = (reason.name.vi, reason.name.en) if lang == "vi" else (reason.name.en, reason.name.vi)
                grid.add_widget(ReasonChip(reason=reason.id, text=f"[b]{first}[/b]\n[size={round(self.level_font_px * 0.7)}]{second}[/size]"))

        # --- touches ----------------------------------------------------------------------------

        def choose_level(self, level_id: str):
            if self.root.current != "prompt":
                return  # a second touch after the first one was taken
            at = self.terminal.local_now()
            if not self.terminal.is_satisfied(level_id) and self.terminal.reasons():
                self._chosen = (level_id, at)
                self._fill_reasons()
                self.root.current = "reasons"
                self._arm_timer(self.terminal.settings.screen.reasons_timeout_s, lambda: self.send_reasons([]))
                return
            self.terminal.press(level_id, at=at)
            self.show_thanks()

        def selected_reasons(self) -> list[str]:
            grid = self.root.get_screen("reasons").ids.chips
            return [chip.reason for chip in reversed(grid.children) if isinstance(chip, ReasonChip) and chip.state == "down"]

        def send_reasons(self, reasons: list[str] | None = None):
            """Gửi (with the chips chosen), Bỏ qua (none) or the timeout: the press goes out now."""
            if self._chosen is None or self.root.current != "reasons":
                return
            level_id, at = self._chosen
            self._chosen = None
            chosen = self.selected_reasons() if reasons is None else reasons
            self.terminal.press(level_id, chosen or None, at=at)
            self.show_thanks()

        def show_thanks(self):
            self.root.current = "thanks"
            self._arm_timer(self.terminal.settings.screen.thanks_shown_s, self.go_idle)

        def go_idle(self):
            self._chosen = None
            self.root.current = "idle"
            self.refresh()  # straight to the prompt if another ticket already awaits its rating

        def _arm_timer(self, seconds: float, action):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = Clock.schedule_once(lambda dt: action(), seconds)

    app = RatingTerminalApp()
    if size is not None:
        Window.size = size
    return app
