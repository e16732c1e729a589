"""A kiosk's own settings (one TOML file per device), validated like the server's config."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from queue_server.config import ID_PATTERN, read_toml, validate_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KioskMqtt(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="3.1.1 for the in-process broker")
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    tls: bool = False
    ca_file: str | None = None

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class KioskScreen(Strict):
    lang: Literal["vi", "en"] = "vi"
    fullscreen: bool = True
    ask_priority: bool = Field(default=True, description="offer the priority step (elderly, disabled, …)")
    ticket_shown_s: int = Field(default=20, ge=3, le=300, description="seconds the ticket stays on screen")
    idle_reset_s: int = Field(default=45, ge=5, le=600, description="back to the start after no touch")


class KioskRequests(Strict):
    answer_within_s: float = Field(default=4.0, gt=0, le=60, description="before telling the citizen we keep trying")
    retry_every_s: float = Field(default=3.0, gt=0, le=60, description="republish the same transaction")
    give_up_after_s: float = Field(default=60.0, gt=0, le=600, description="then say plainly it failed")


class KioskSettings(Strict):
    device: str = Field(pattern=ID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    mqtt: KioskMqtt = Field(default_factory=KioskMqtt)
    screen: KioskScreen = Field(default_factory=KioskScreen)
    requests: KioskRequests = Field(default_factory=KioskRequests)
    printer: dict = Field(default_factory=lambda: {"kind": "dummy"}, description="see kiosk.printing.PrinterConfig")


def load_kiosk_settings(path: str | Path | None, **overrides) -> KioskSettings:
    data: dict = read_toml(path) if path is not None else {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    return validate_model(KioskSettings, data, str(path or "kiosk settings"))
