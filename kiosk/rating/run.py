"""Starting the rating terminal: settings, controller (with its outbox), Kivy window."""
from __future__ import annotations

from ..ticket.run import prepare_kivy_environment
from .controller import RatingTerminal
from .settings import RatingTerminalSettings


def run_rating_terminal(settings: RatingTerminalSettings) -> int:
    prepare_kivy_environment()
    terminal = RatingTerminal(settings)
    from kivy.config import Config

    if settings.screen.fullscreen:
        Config.set("graphics", "fullscreen", "auto")
    from .app import create_app

    create_app(terminal).run()
    return 0
