"""ESPHome device configs (firmware_config/esphome): valid for ESPHome and true to the MQTT contract.

Each device file is validated by the pinned ESPHome itself (`esphome config FILE`, offline,
no compiling) in a temporary copy of the folder whose secrets.yaml is made from
secrets.example.yaml, so the real secrets are never needed. The resolved config ESPHome
prints is then checked against queue_server.mqtt.contract: topics from its builders, level
ids from the default rating scale, and a payload made the way the box's lambda makes it
must pass `parse_inbound`.

ESPHome lives in .venv-esphome (scripts/setup-esphome.sh): a missing one fails, never skips.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from queue_server.config import DEFAULT_RATING_LEVELS, load_config
from queue_server.mqtt import contract

ROOT = Path(__file__).resolve().parents[2]
ESPHOME_DIR = ROOT / "firmware_config" / "esphome"
ESPHOME = ROOT / ".venv-esphome" / "bin" / "esphome"
REQUIREMENTS = ROOT / "firmware_config" / "esphome-requirements.txt"
SAMPLE_SITE = ROOT / "queue_server" / "sample_site.toml"
SECRET_FILES = {"secrets.yaml", "secrets.example.yaml"}
# Device files are the YAML files at the top of the folder; shared packages live in common/.
DEVICE_FILES = sorted(p.name for p in ESPHOME_DIR.glob("*.yaml") if p.name not in SECRET_FILES)
# Broken copies of a valid box: (name, what to break, text ESPHome's error must contain).
BROKEN_KEY = "discovry"
BROKEN_PIN = "GPIO99"
ESPHOME_TIMEOUT_S = 120
# Monday 2026-11-23 09:29:58 in Hà Nội, as a box would stamp a press.
PRESS_AT = datetime(2026, 11, 23, 2, 29, 58, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- running ESPHome


@dataclass(frozen=True)
class EsphomeRun:
    file: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def _esphome_config(folder: Path, file: str) -> EsphomeRun:
    # The project venv must not leak into ESPHome's interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        [str(ESPHOME), "config", file], cwd=folder, env=env, capture_output=True, text=True,
        timeout=ESPHOME_TIMEOUT_S, check=False,
    )
    return EsphomeRun(file, done.returncode, done.stdout, done.stderr)


def _break_key(folder: Path) -> str:
    """A copy of box 1 whose package misspells an MQTT key."""
    package = (folder / "common" / "rating_box.yaml").read_text(encoding="utf-8")
    assert "  discovery: false\n" in package
    (folder / "common" / "broken_key.yaml").write_text(
        package.replace("  discovery: false\n", f"  {BROKEN_KEY}: false\n"), encoding="utf-8")
    device = (folder / DEVICE_FILES[0]).read_text(encoding="utf-8")
    (folder / "broken-key.yaml").write_text(
        device.replace("common/rating_box.yaml", "common/broken_key.yaml"), encoding="utf-8")
    return "broken-key.yaml"


def _break_pin(folder: Path) -> str:
    """A copy of box 1 with button 2 on a pin the ESP32 does not have."""
    device = (folder / DEVICE_FILES[0]).read_text(encoding="utf-8")
    assert "substitutions:\n" in device
    (folder / "broken-pin.yaml").write_text(
        device.replace("substitutions:\n", f"substitutions:\n  button_2_pin: {BROKEN_PIN}\n", 1),
        encoding="utf-8")
    return "broken-pin.yaml"


@pytest.fixture(scope="module")
def esphome_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EsphomeRun]:
    """`esphome config` of every device file and of the broken copies, run side by side."""
    if not ESPHOME.exists():
        pytest.fail(f"{ESPHOME.relative_to(ROOT)} not found: run `bash scripts/setup-esphome.sh` "
                    "to install the pinned ESPHome (the firmware tests need it)", pytrace=False)
    pinned = re.search(r"^esphome==(\S+)$", REQUIREMENTS.read_text(encoding="utf-8"), re.MULTILINE)
    installed = sorted(p.name for p in ESPHOME.parents[1].glob("lib/python*/site-packages/esphome-*.dist-info"))
    if pinned is None or installed != [f"esphome-{pinned.group(1)}.dist-info"]:
        pytest.fail(f"{ESPHOME.parents[1].relative_to(ROOT)} has {installed}, the pin is "
                    f"{pinned.group(0) if pinned else 'missing'}: run `bash scripts/setup-esphome.sh`",
                    pytrace=False)
    folder = tmp_path_factory.mktemp("esphome") / "esphome"
    shutil.copytree(ESPHOME_DIR, folder, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome", "build"))
    shutil.copyfile(folder / "secrets.example.yaml", folder / "secrets.yaml")
    files = [*DEVICE_FILES, _break_key(folder), _break_pin(folder)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return {run.file: run for run in pool.map(lambda file: _esphome_config(folder, file), files)}


# --------------------------------------------------------------------------- reading its output


class _Tagged(str):
    """A value ESPHome prints with a tag (`!lambda`, `!secret`): its text, and the tag."""

    tag: str

    def __new__(cls, value: str, tag: str) -> "_Tagged":
        made = super().__new__(cls, value)
        made.tag = tag
        return made


class _EsphomeLoader(yaml.SafeLoader):
    """Reads ESPHome's printed config: any `!tag scalar` becomes a _Tagged string."""


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _Tagged(loader.construct_scalar(node), "!" + tag_suffix)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_EsphomeLoader.add_multi_constructor("!", _construct_tagged)


def _resolved(run: EsphomeRun) -> dict[str, Any]:
    assert run.returncode == 0, f"esphome config {run.file} failed:\n{run.output}"
    return yaml.load(run.stdout, Loader=_EsphomeLoader)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in the config, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _actions(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [mapping[name] for mapping in _walk(config) if isinstance(mapping.get(name), dict)]


@dataclass(frozen=True)
class Box:
    """What the contract checks need from one resolved device config."""

    site: str
    device: str
    counter: str
    config: dict[str, Any]

    @classmethod
    def of(cls, run: EsphomeRun) -> "Box":
        config = _resolved(run)
        subs = config["substitutions"]
        return cls(subs["site"], subs["device"], subs["counter"], config)

    @property
    def rating_publish(self) -> dict[str, Any]:
        publishes = _actions(self.config, "mqtt.publish_json") + _actions(self.config, "mqtt.publish")
        assert len(publishes) == 1, f"{self.device}: expected one MQTT publish action, got {publishes}"
        return publishes[0]

    @property
    def button_levels(self) -> list[str]:
        return [action["level"] for action in _actions(self.config, "script.execute")
                if action.get("id") == "rate"]

    @property
    def script_lambdas(self) -> str:
        """All lambda text of the `rate` script (guards and payload)."""
        (rate,) = [script for script in self.config["script"] if script["id"] == "rate"]
        return "\n".join(value for mapping in _walk(rate) for value in mapping.values()
                         if isinstance(value, _Tagged) and value.tag == "!lambda")

    def payload_like_the_lambda(self, level: str, at: datetime, *, boot: int, seq: int) -> bytes:
        """The JSON the payload lambda builds, made here by following its own text."""
        text = self.rating_publish["payload"]
        (time_format,) = re.findall(r'utcnow\(\)\.strftime\("([^"]+)"\)', text)
        (boot_format,) = re.findall(r'snprintf\(boot, sizeof\(boot\), "([^"]+)"', self.script_lambdas)
        (seq_format,) = re.findall(r'snprintf\(seq, sizeof\(seq\), "([^"]+)"', text)
        (msg_prefix,) = re.findall(r'root\["msg_id"\] = std::string\("([^"]*)"\) \+ id\(boot_id\) \+ ":" \+ seq;', text)
        (counter,) = re.findall(r'root\["counter"\] = "([^"]*)";', text)
        assert 'root["level"] = level;' in text
        return json.dumps({
            "msg_id": msg_prefix + (boot_format % boot) + ":" + (seq_format % seq),
            "counter": counter,
            "level": level,
            "at": at.astimezone(timezone.utc).strftime(time_format),
        }).encode("utf-8")


@pytest.fixture(scope="module")
def boxes(esphome_runs: dict[str, EsphomeRun]) -> dict[str, Box]:
    return {file: Box.of(esphome_runs[file]) for file in DEVICE_FILES}


# --------------------------------------------------------------------------- ESPHome accepts them


def test_device_files_found() -> None:
    assert DEVICE_FILES, f"no device YAML in {ESPHOME_DIR}"
    assert (ESPHOME_DIR / "common" / "rating_box.yaml").is_file()


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_esphome_accepts_device_config(esphome_runs: dict[str, EsphomeRun], file: str) -> None:
    run = esphome_runs[file]
    assert run.returncode == 0, f"esphome config {file} failed:\n{run.output}"
    assert "Configuration is valid!" in run.output


def test_esphome_rejects_a_misspelt_key(esphome_runs: dict[str, EsphomeRun]) -> None:
    run = esphome_runs["broken-key.yaml"]
    assert run.returncode != 0
    assert f"[{BROKEN_KEY}] is an invalid option for [mqtt]" in run.output, run.output


def test_esphome_rejects_a_pin_the_board_lacks(esphome_runs: dict[str, EsphomeRun]) -> None:
    run = esphome_runs["broken-pin.yaml"]
    assert run.returncode != 0
    assert "Invalid pin number: 99" in run.output and BROKEN_PIN in run.output, run.output


# --------------------------------------------------------------------------- secrets


def test_every_secret_has_a_placeholder_in_the_example() -> None:
    example = yaml.safe_load((ESPHOME_DIR / "secrets.example.yaml").read_text(encoding="utf-8"))
    used = {name for path in ESPHOME_DIR.rglob("*.yaml") if path.name not in SECRET_FILES
            for name in re.findall(r"!secret\s+(\w+)", path.read_text(encoding="utf-8"))}
    assert used <= set(example), f"secrets missing from secrets.example.yaml: {sorted(used - set(example))}"


def test_real_secrets_are_not_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "firmware_config/esphome/secrets.yaml"],
                             cwd=ROOT, check=False)
    assert ignored.returncode == 0, "firmware_config/esphome/secrets.yaml must be git-ignored"


# --------------------------------------------------------------------------- the MQTT contract


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_ids_are_contract_ids(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    for name in ("site", "device", "counter"):
        assert contract.is_id(getattr(box, name)), f"{file}: {name} {getattr(box, name)!r}"
    assert box.config["esphome"]["name"] == box.device
    assert file == f"{box.device}.yaml", "one file per device, named after it"


def test_device_ids_are_unique(boxes: dict[str, Box]) -> None:
    devices = [box.device for box in boxes.values()]
    assert len(devices) == len(set(devices))


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_counter_exists_in_the_sample_site(boxes: dict[str, Box], file: str) -> None:
    sample = load_config(SAMPLE_SITE)
    box = boxes[file]
    if box.site == sample.site.id:
        assert box.counter in {counter.id for counter in sample.counters}


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_status_birth_and_will(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    mqtt = box.config["mqtt"]
    assert mqtt["discovery"] is False
    assert mqtt["log_topic"] is None
    assert mqtt["client_id"] == box.device
    topic = contract.topic_device_status(box.site, box.device)
    expected = {"birth_message": contract.Status.ONLINE, "will_message": contract.Status.OFFLINE,
                "shutdown_message": contract.Status.OFFLINE}
    for key, status in expected.items():
        message = mqtt[key]
        assert message == {"topic": topic, "payload": status.value, "qos": contract.QOS, "retain": True}, key
        received = contract.parse_inbound(box.site, topic, message["payload"].encode(), now=PRESS_AT)
        assert received.kind is contract.Kind.DEVICE_STATUS and received.message is status


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_rating_publish_topic_qos_retain(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    publish = box.rating_publish
    assert publish["topic"] == contract.topic_rating(box.site, box.device)
    assert publish["qos"] == contract.QOS
    assert publish["retain"] is False
    definition = contract.TOPICS[contract.Kind.RATING]
    assert definition.retained is False and definition.direction is contract.Direction.FROM_DEVICE


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_levels_are_the_default_scale(boxes: dict[str, Box], file: str) -> None:
    levels = [level for level in boxes[file].button_levels if level]
    default_scale = [level.id for level in DEFAULT_RATING_LEVELS]
    assert len(levels) == len(set(levels)), f"two buttons send the same level: {levels}"
    assert sorted(levels) == sorted(default_scale), f"buttons send {levels}, the scale is {default_scale}"
    assert levels == default_scale, "buttons are wired best level first, like the scale"


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_payload_fields_are_rating_event_fields(boxes: dict[str, Box], file: str) -> None:
    # The server ignores unknown fields, so a misspelt one would be dropped without a word.
    written = set(re.findall(r'root\["(\w+)"\]', boxes[file].rating_publish["payload"]))
    fields = contract.RatingEvent.model_fields
    required = {name for name, field in fields.items() if field.is_required()}
    assert written <= set(fields), f"not RatingEvent fields: {sorted(written - set(fields))}"
    assert required <= written, f"required fields not sent: {sorted(required - written)}"
    assert "ticket" not in written, "the server binds a box's press to the counter's pending ticket"


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_payload_as_the_lambda_builds_it_passes_the_contract(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    topic = contract.topic_rating(box.site, box.device)
    for level in (level for level in box.button_levels if level):
        payload = box.payload_like_the_lambda(level, PRESS_AT, boot=0x5EED1234, seq=42)
        received = contract.parse_inbound(box.site, topic, payload, now=PRESS_AT + timedelta(seconds=2))
        event = received.message
        assert isinstance(event, contract.RatingEvent)
        assert (event.counter, event.level, event.ticket) == (box.counter, level, None)
        assert event.msg_id == f"{box.device}:5eed1234:42"
        assert event.at == PRESS_AT


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_msg_id_stays_within_the_contract_at_its_longest(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    payload = box.payload_like_the_lambda(box.button_levels[0], PRESS_AT, boot=0xFFFFFFFF, seq=2**32 - 1)
    msg_id = json.loads(payload)["msg_id"]
    assert re.fullmatch(r"[\x21-\x7e]{1,128}", msg_id), msg_id
    # The longest possible device id still fits.
    assert len(msg_id) - len(box.device) + 32 <= 128


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_time_is_utc_and_only_sent_once_synchronised(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    payload_lambda = box.rating_publish["payload"]
    # UTC with a `Z`: an offset written by hand would go wrong with another timezone.
    assert 'id(sntp_time).utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")' in payload_lambda
    assert "id(sntp_time).now().is_valid()" in box.script_lambdas, "presses must wait for the clock"
    assert box.config["time"][0]["platform"] == "sntp" and box.config["time"][0]["id"] == "sntp_time"
    # Why the guard matters: an unsynchronised ESP32 clock starts at 1970 and is rejected.
    unsynced = box.payload_like_the_lambda(box.button_levels[0], datetime(1970, 1, 1, tzinfo=timezone.utc),
                                           boot=1, seq=1)
    with pytest.raises(contract.PayloadRejected) as rejected:
        contract.parse_inbound(box.site, contract.topic_rating(box.site, box.device), unsynced, now=PRESS_AT)
    assert rejected.value.reason == "time_out_of_range"


@pytest.mark.parametrize("file", DEVICE_FILES)
def test_buttons_are_debounced(boxes: dict[str, Box], file: str) -> None:
    box = boxes[file]
    buttons = [sensor for sensor in box.config["binary_sensor"] if sensor["platform"] == "gpio"]
    assert len(buttons) == 4
    for button in buttons:
        filters = {key for step in button["filters"] for key in step}
        assert {"delayed_on", "delayed_off"} <= filters, button["id"]
        assert button["internal"] is True, "button states are not published over MQTT"
    guard = int(box.config["substitutions"]["press_guard_ms"])
    assert 1000 <= guard <= 3000
    assert f"millis() - id(last_press_ms) < {guard}" in box.script_lambdas
