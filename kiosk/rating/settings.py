"""A rating terminal's own settings (one TOML file per device), validated like the ticket kiosk's.

A terminal is bound to one counter. Presses are written to a local SQLite outbox before they
are published, so the outbox path must survive a restart (not a temporary folder).
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from queue_server.config import ID_PATTERN, ConfigError, _key_path, _value_at

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
    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), [("(file)", str(path), str(exc))]) from None
    data = merged(data, overrides)
    try:
        return RatingTerminalSettings.model_validate(data)
    except ValidationError as exc:
        problems = [(_key_path(e["loc"]), _value_at(data, e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise ConfigError(str(path or "rating terminal settings"), problems) from None
