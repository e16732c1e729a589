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
    request_concurrency: int = Field(
        default=2, ge=1, le=512,
        description="requests built at the same time; the others wait their turn (queue_server/server.py, RequestGate)",
    )
    public_url: str | None = Field(default=None, description="base URL printed in ticket QR codes")


AlertKind = Literal["unsatisfied_share", "wait_over_target", "device_offline", "printer_problem"]
AlertSeverity = Literal["warning", "critical"]
PrinterProblem = Literal["paper_low", "paper_out", "offline", "error"]
ALERT_RULE_COMMON = frozenset({"id", "kind", "enabled", "severity"})
# The parameters each kind of rule reads. Setting another one (a `share` on a device rule) is a
# mistake, named like an unknown key, rather than a setting silently ignored.
ALERT_PARAMETERS: dict[str, frozenset[str]] = {
    "unsatisfied_share": frozenset({"window_min", "min_ratings", "share", "counters"}),
    "wait_over_target": frozenset({"fields"}),
    "device_offline": frozenset({"grace_min", "only_when_open", "devices"}),
    "printer_problem": frozenset({"printer_states", "devices"}),
}


class AlertRule(Strict):
    """One alert rule; each kind reads only its own parameters (ALERT_PARAMETERS)."""

    id: Identifier = Field(description="rule id; an alert is keyed by its rule id and its subject")
    kind: AlertKind = Field(
        description="unsatisfied_share: a counter's recent ratings; wait_over_target: a field's oldest waiting "
        "ticket against the field's target_wait_min; device_offline: a device gone (Last Will); "
        "printer_problem: a ticket kiosk's printer state"
    )
    enabled: bool = Field(default=True, description="a disabled rule raises nothing and clears what it raised")
    severity: AlertSeverity = Field(default="warning", description="warning or critical")
    window_min: int = Field(default=15, ge=1, le=480, description="unsatisfied_share: ratings pressed in the last N minutes")
    min_ratings: int = Field(default=4, ge=1, le=1000, description="unsatisfied_share: fewer counted ratings than this in the window never alert")
    share: float = Field(default=0.5, gt=0, le=1, description="unsatisfied_share: alert when unsatisfied / counted ≥ share (0–1)")
    counters: list[Identifier] | None = Field(default=None, description="unsatisfied_share: only these counters (none: every counter)")
    fields: list[Identifier] | None = Field(default=None, description="wait_over_target: only these fields (none: every field)")
    grace_min: int = Field(default=5, ge=0, le=1440, description="device_offline: minutes offline before it alerts (a reboot is not an alert)")
    only_when_open: bool = Field(
        default=True,
        description="device_offline: only while the centre is open (opening hours, holidays excluded): a device "
        "switched off for the night is not an alert",
    )
    printer_states: list[PrinterProblem] = Field(
        default_factory=lambda: ["paper_out", "error", "offline"], min_length=1,
        description="printer_problem: printer states that alert (paper_low, paper_out, offline, error)",
    )
    devices: list[Identifier] | None = Field(default=None, description="device_offline, printer_problem: only these devices (none: every device)")

    @model_validator(mode="after")
    def _only_its_own_parameters(self) -> "AlertRule":
        foreign = sorted(self.model_fields_set - ALERT_RULE_COMMON - ALERT_PARAMETERS[self.kind])
        if foreign:
            allowed = ", ".join(sorted(ALERT_PARAMETERS[self.kind]))
            raise ValueError(f"{', '.join(foreign)}: not a parameter of kind {self.kind} (its parameters: {allowed})")
        return self


DEFAULT_ALERT_RULES = (
    AlertRule(id="unsatisfied", kind="unsatisfied_share", window_min=15, min_ratings=4, share=0.5, severity="warning"),
    AlertRule(id="wait-over-target", kind="wait_over_target", severity="warning"),
    AlertRule(id="device-offline", kind="device_offline", grace_min=5, severity="critical"),
    AlertRule(id="printer", kind="printer_problem", printer_states=["paper_out", "error", "offline"], severity="critical"),
)


class AlertsConfig(Strict):
    """Alerts on the manager dashboard and on MQTT (state/alerts, events/alert)."""

    evaluate_every_s: int = Field(
        default=30, ge=5, le=3600,
        description="rules are checked after every change and at least this often (a wait grows, a device stays away)",
    )
    recent_hours: int = Field(default=24, ge=1, le=720, description="cleared alerts listed as recent for this many hours")
    rules: list[AlertRule] = Field(
        default_factory=lambda: list(DEFAULT_ALERT_RULES), max_length=100,
        description="the rules; a [[alerts.rules]] list replaces the four defaults",
    )


ExportFormat = Literal["csv", "xlsx", "pdf"]


class ExportsConfig(Strict):
    """The scheduled export: at closing time each day's totals are written to a folder."""

    folder: str | None = Field(
        default=None,
        description="where the day's files go (daily-totals-YYYY-MM-DD.csv/.xlsx/.pdf); relative to the data "
        "directory unless absolute; none = no scheduled export",
    )
    at: str | None = Field(
        default=None,
        description="local time HH:MM after which the day's files are written (24:00 = just after midnight); "
        "default: the latest closing time of opening_hours",
    )
    formats: list[ExportFormat] = Field(
        default_factory=lambda: ["csv", "xlsx", "pdf"], min_length=1, description="which files: csv, xlsx, pdf"
    )

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = re.fullmatch(r"([01]\d|2[0-4]):([0-5]\d)", value)
        if not match or (match.group(1) == "24" and match.group(2) != "00"):
            raise ValueError("must be a time HH:MM between 00:00 and 24:00")
        return value

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each format once: {value}")
        return value


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
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    exports: ExportsConfig = Field(default_factory=ExportsConfig)

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
    unique(config.alerts.rules, "id", "alerts.rules")
    for index, rule in enumerate(config.alerts.rules):
        for key, known, what in (("counters", counter_ids, "counter"), ("fields", field_ids, "field")):
            for position, named in enumerate(getattr(rule, key) or []):
                if named not in known:
                    problems.append((f"alerts.rules[{index}].{key}[{position}]", named, f"unknown {what} id"))
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
