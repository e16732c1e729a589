"""The site configuration: one TOML file validated into typed models, unknown keys rejected."""
from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z, 0-9, '-' (≤ 32)")]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Strict(BaseModel):
    """Base model: a typo in a key fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Bilingual(Strict):
    vi: str = Field(min_length=1, max_length=120, description="Vietnamese text (shown first)")
    en: str = Field(min_length=1, max_length=120, description="English text")


class OpeningPeriod(Strict):
    """One opening period, e.g. mornings Monday to Friday 07:30–11:30."""

    days: list[Weekday] = Field(min_length=1, description="weekdays this period applies to")
    open: str = Field(description="opening time HH:MM, local")
    close: str = Field(description="closing time HH:MM, local (24:00 allowed)")

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-4]):([0-5]\d)", value)
        if not match or (match.group(1) == "24" and match.group(2) != "00"):
            raise ValueError("must be a time HH:MM between 00:00 and 24:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "OpeningPeriod":
        if self.open_minutes >= self.close_minutes:
            raise ValueError(f"open {self.open} must be before close {self.close}")
        return self

    @property
    def open_minutes(self) -> int:
        hours, minutes = self.open.split(":")
        return int(hours) * 60 + int(minutes)

    @property
    def close_minutes(self) -> int:
        hours, minutes = self.close.split(":")
        return int(hours) * 60 + int(minutes)


DEFAULT_OPENING_HOURS = (
    OpeningPeriod(days=["mon", "tue", "wed", "thu", "fri"], open="07:30", close="11:30"),
    OpeningPeriod(days=["mon", "tue", "wed", "thu", "fri"], open="13:30", close="17:00"),
)


class SiteConfig(Strict):
    id: Identifier = Field(description="site id, used in MQTT topics motcua/{site}/")
    name: Bilingual = Field(description="centre name shown on kiosks, tickets and the board")
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="IANA time zone of the centre")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class FieldOfWork(Strict):
    """A field of work (lĩnh vực) with its own ticket letter and queue."""

    id: Identifier
    letter: str = Field(pattern=r"^[A-Z]$", description="ticket prefix letter, unique per site")
    name: Bilingual
    target_wait_min: int = Field(default=15, ge=1, le=480, description="target wait before being called")
    avg_service_min: float = Field(default=10, gt=0, le=480, description="service time assumed before today's data")
    daily_cap: int | None = Field(default=None, ge=1, le=9999, description="tickets per day; none = no cap")
    opening_hours: list[OpeningPeriod] | None = Field(default=None, description="overrides the site's hours")
    closed: bool = Field(default=False, description="issuing closed for this field")


PriorityPolicyName = Literal["strict", "interleaved"]


class PriorityReason(Strict):
    id: Identifier
    name: Bilingual


DEFAULT_PRIORITY_REASONS = (
    PriorityReason(id="elderly", name=Bilingual(vi="Người cao tuổi", en="Elderly person")),
    PriorityReason(id="disabled", name=Bilingual(vi="Người khuyết tật", en="Person with a disability")),
    PriorityReason(id="pregnant", name=Bilingual(vi="Phụ nữ mang thai", en="Pregnant woman")),
    PriorityReason(id="small-child", name=Bilingual(vi="Người đi cùng trẻ nhỏ", en="With a small child")),
    PriorityReason(id="merit", name=Bilingual(vi="Người có công với cách mạng", en="Person with merit")),
)


class PriorityConfig(Strict):
    policy: PriorityPolicyName = Field(default="interleaved", description="strict: priority always first")
    normal_per_priority: int = Field(default=2, ge=1, le=20, description="interleaved: N normal, then 1 priority")
    reasons: list[PriorityReason] = Field(default_factory=lambda: list(DEFAULT_PRIORITY_REASONS))


class Counter(Strict):
    """A service counter (quầy)."""

    id: Identifier
    number: int = Field(ge=1, le=999, description="the number spoken and shown: 'quầy số 3'")
    fields: list[Identifier] = Field(min_length=1, description="fields of work this counter serves")
    priority_policy: PriorityPolicyName | None = Field(default=None, description="overrides [priority].policy")
    normal_per_priority: int | None = Field(default=None, ge=1, le=20)


class Clerk(Strict):
    id: Identifier = Field(description="also the login name of the clerk's account")
    name: str = Field(min_length=1, max_length=120)
    counters: list[Identifier] = Field(default_factory=list)
    photo: str | None = Field(default=None, description="path of a photo shown on the rating terminal")


class RatingLevel(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="level id sent by devices, e.g. very_satisfied")
    name: Bilingual
    colour: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    satisfied: bool


DEFAULT_RATING_LEVELS = (
    RatingLevel(id="very_satisfied", name=Bilingual(vi="Rất hài lòng", en="Very satisfied"), colour="#1E8E3E", satisfied=True),
    RatingLevel(id="satisfied", name=Bilingual(vi="Hài lòng", en="Satisfied"), colour="#1A73E8", satisfied=True),
    RatingLevel(id="unsatisfied", name=Bilingual(vi="Không hài lòng", en="Unsatisfied"), colour="#D93025", satisfied=False),
)


class RatingConfig(Strict):
    """The rating scale, best level first (the 0–100 index scales the levels in this order)."""

    levels: list[RatingLevel] = Field(default_factory=lambda: list(DEFAULT_RATING_LEVELS), min_length=2, max_length=5)
    window_s: int = Field(default=120, ge=10, le=3600, description="seconds after finishing in which a press counts")
    reasons: list[PriorityReason] = Field(default_factory=list, description="reason chips after a bad rating")
    burst_presses: int = Field(default=5, ge=2, le=100, description="this many presses at one counter…")
    burst_window_s: int = Field(default=10, ge=1, le=600, description="…within this many seconds: misuse")

    @model_validator(mode="after")
    def _consistent(self) -> "RatingConfig":
        ids = [level.id for level in self.levels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"level ids must be unique: {ids}")
        if not any(level.satisfied for level in self.levels) or all(level.satisfied for level in self.levels):
            raise ValueError("at least one level must count as satisfied and one as not")
        return self


class QueueConfig(Strict):
    transfer_keeps_place: bool = Field(default=True, description="a transferred ticket keeps its place in line")


class MqttConfig(Strict):
    """Where the broker is. `embedded` starts one (Mosquitto when installed, else in-process)."""

    mode: Literal["embedded", "external", "disabled"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    ca_file: str | None = None
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")


class ServerConfig(Strict):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: str = Field(default="data", description="database and runtime files; relative to the config file")
    threads: int = Field(default=48, ge=4, le=512, description="HTTP worker threads (event streams hold one each)")
    public_url: str | None = Field(default=None, description="base URL printed in ticket QR codes")


class Config(Strict):
    site: SiteConfig
    fields: list[FieldOfWork] = Field(min_length=1)
    counters: list[Counter] = Field(min_length=1)
    clerks: list[Clerk] = Field(default_factory=list)
    priority: PriorityConfig = Field(default_factory=PriorityConfig)
    rating: RatingConfig = Field(default_factory=RatingConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    opening_hours: list[OpeningPeriod] = Field(default_factory=lambda: list(DEFAULT_OPENING_HOURS))
    holidays: list[date] = Field(default_factory=list, description="public holidays (no issuing, no working day)")
    working_weekdays: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    server: ServerConfig = Field(default_factory=ServerConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

    # --- lookups used everywhere -------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    def field(self, field_id: str) -> FieldOfWork | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def counter(self, counter_id: str) -> Counter | None:
        return next((c for c in self.counters if c.id == counter_id), None)

    def clerk(self, clerk_id: str) -> Clerk | None:
        return next((c for c in self.clerks if c.id == clerk_id), None)

    def level(self, level_id: str) -> RatingLevel | None:
        return next((level for level in self.rating.levels if level.id == level_id), None)

    def priority_reason(self, reason_id: str) -> PriorityReason | None:
        return next((r for r in self.priority.reasons if r.id == reason_id), None)

    def field_for_letter(self, letter: str) -> FieldOfWork | None:
        return next((f for f in self.fields if f.letter == letter), None)

    def hours_for(self, field: FieldOfWork) -> list[OpeningPeriod]:
        return list(field.opening_hours) if field.opening_hours is not None else list(self.opening_hours)

    def policy_for(self, counter: Counter) -> tuple[str, int]:
        return (
            counter.priority_policy or self.priority.policy,
            counter.normal_per_priority or self.priority.normal_per_priority,
        )

    def counters_serving(self, field_id: str) -> list[Counter]:
        return [c for c in self.counters if field_id in c.fields]


class ConfigError(Exception):
    """A config that does not validate; `problems` are (key path, value, message)."""

    def __init__(self, source: str, problems: list[tuple[str, Any, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"]
        lines += [f"  {path}: {message} (value: {value!r})" for path, value, message in problems]
        super().__init__("\n".join(lines))


def _key_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _cross_checks(config: Config) -> list[tuple[str, Any, str]]:
    """Rules that span sections: references between fields, counters and clerks."""
    problems: list[tuple[str, Any, str]] = []

    def unique(items: list, attr: str, section: str) -> None:
        seen: dict[Any, int] = {}
        for index, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                problems.append((f"{section}[{index}].{attr}", value, f"duplicate of {section}[{seen[value]}]"))
            seen.setdefault(value, index)

    unique(config.fields, "id", "fields")
    unique(config.fields, "letter", "fields")
    unique(config.counters, "id", "counters")
    unique(config.counters, "number", "counters")
    unique(config.clerks, "id", "clerks")
    unique(config.priority.reasons, "id", "priority.reasons")
    field_ids = {f.id for f in config.fields}
    counter_ids = {c.id for c in config.counters}
    for index, counter in enumerate(config.counters):
        for position, field_id in enumerate(counter.fields):
            if field_id not in field_ids:
                problems.append((f"counters[{index}].fields[{position}]", field_id, "unknown field id"))
    for index, clerk in enumerate(config.clerks):
        for position, counter_id in enumerate(clerk.counters):
            if counter_id not in counter_ids:
                problems.append((f"clerks[{index}].counters[{position}]", counter_id, "unknown counter id"))
    for index, field in enumerate(config.fields):
        if not config.counters_serving(field.id):
            problems.append((f"fields[{index}].id", field.id, "no counter serves this field"))
    return problems


def validate_model(model: type[BaseModel], data: dict, source: str, cross_checks=None):
    """`data` validated into `model`, or ConfigError naming every problem's key path and value.
    `cross_checks(instance)` returns the problems that span sections."""
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        problems = [
            (_key_path(error["loc"]), _value_at(data, error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError(source, problems) from None
    problems = cross_checks(instance) if cross_checks else []
    if problems:
        raise ConfigError(source, problems)
    return instance


def read_toml(path: str | Path) -> dict:
    """A TOML file as a dict, or ConfigError saying why it cannot be read."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), [("(file)", str(path), "file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("(syntax)", None, f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [("(encoding)", None, f"not UTF-8: {exc}")]) from None


def parse_config(data: dict, source: str = "config") -> Config:
    return validate_model(Config, data, source, _cross_checks)


def load_config(path: str | Path) -> Config:
    return parse_config(read_toml(path), str(path))


def data_dir_for(config: Config, config_path: str | Path | None) -> Path:
    """The data directory; a relative one is taken from the config file's folder."""
    data_dir = Path(config.server.data_dir)
    if not data_dir.is_absolute() and config_path is not None:
        data_dir = Path(config_path).resolve().parent / data_dir
    return data_dir
