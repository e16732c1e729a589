"""A rating terminal's own settings (one TOML file per device), validated like the ticket kiosk's.

A terminal is bound to one counter. Presses are written to a local SQLite outbox before they
are published, so the outbox path must survive a restart (not a temporary folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from queue_server.config import ID_PATTERN, read_toml, validate_model

from ..settings import KioskMqtt, Strict


class RatingScreen(Strict):
    lang: Literal["vi", "en"] = Field(default="vi", description="the first language; the other is shown smaller below it")
    fullscreen: bool = True
    thanks_shown_s: int = Field(default=5, ge=1, le=60, description="seconds the thank-you screen stays")
    reasons_timeout_s: int = Field(default=20, ge=3, le=300,
                                   description="an unanswered reasons screen sends the rating without reasons")


def default_outbox_path(device: str) -> Path:
    """$XDG_STATE_HOME/motcua/{device}.outbox.sqlite3 (~/.local/state when unset)."""
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state_home / "motcua" / f"{device}.outbox.sqlite3"


class RatingTerminalSettings(Strict):
    device: str = Field(pattern=ID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    counter: str = Field(pattern=ID_PATTERN, description="the one counter this terminal rates")
    mqtt: KioskMqtt = Field(default_factory=KioskMqtt)
    screen: RatingScreen = Field(default_factory=RatingScreen)
    outbox: str | None = Field(default=None, description="SQLite file of presses not yet acknowledged by the broker "
                                                         "(default: see default_outbox_path)")

    def outbox_path(self) -> Path:
        return Path(self.outbox).expanduser() if self.outbox else default_outbox_path(self.device)


def merged(base: dict, overrides: dict) -> dict:
    """`overrides` on top of `base`; tables are merged key by key, None values are ignored."""
    result = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def load_rating_settings(path: str | Path | None, **overrides) -> RatingTerminalSettings:
    """The settings file (if any) with overrides, e.g. from the command line: `mqtt={"port": 1884}`
    changes the port and keeps the file's host. Errors name the key path, whichever side it came from."""
    data = merged(read_toml(path) if path is not None else {}, overrides)
    return validate_model(RatingTerminalSettings, data, str(path or "rating terminal settings"))
