"""docs/mqtt.md documents every topic, field and reject reason of the contract, correctly."""
from __future__ import annotations

import re
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel

from queue_server.mqtt.contract import (
    REJECT_REASONS,
    TOPICS,
    Direction,
    Message,
    TopicDef,
    parse_from_server,
    parse_inbound,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text(encoding="utf-8")
EXAMPLE_NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone(timedelta(hours=7)))


def sections() -> dict[str, str]:
    """Level-3 sections by heading text (backticks removed)."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^### ", DOC, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        found[heading.strip().strip("`")] = body.split("\n## ")[0]
    return found


def field_rows(body: str) -> dict[str, str]:
    """`name` → the 'required' column of the section's field table."""
    rows = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells[2]
    return rows


def nested_models(model: type[BaseModel]) -> set[type[Message]]:
    found: set[type[Message]] = set()

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, Message):
            if annotation not in found:
                found.add(annotation)
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    for info in model.model_fields.values():
        visit(info.annotation)
    return found


def assert_fields_documented(model: type[BaseModel], body: str, where: str) -> None:
    rows = field_rows(body)
    assert set(rows) == set(model.model_fields), f"{where}: table fields differ from {model.__name__}"
    for name, info in model.model_fields.items():
        assert rows[name] == ("yes" if info.is_required() else "no"), f"{where}: `{name}` required column"


TOPIC_IDS = [definition.pattern for definition in TOPICS.values()]


@pytest.mark.parametrize("definition", TOPICS.values(), ids=TOPIC_IDS)
def test_topic_has_a_section_with_its_properties(definition: TopicDef) -> None:
    body = sections().get(definition.full_pattern)
    assert body is not None, f"docs/mqtt.md has no section for {definition.full_pattern}"
    assert f"- **From:** {definition.direction.value}\n" in body
    assert f"- **Retained:** {'yes' if definition.retained else 'no'}\n" in body
    assert f"- **QoS:** {definition.qos}\n" in body
    overview = re.search(rf"^\| `{re.escape(definition.full_pattern)}` \|(.*)$", DOC, re.MULTILINE)
    assert overview, f"{definition.full_pattern} missing from the overview table"
    assert f"| {'yes' if definition.retained else 'no'} | {definition.qos} |" in overview.group(1)


@pytest.mark.parametrize("definition", [d for d in TOPICS.values() if d.payload], ids=lambda d: d.pattern)
def test_payload_fields_are_documented_with_required_flags(definition: TopicDef) -> None:
    assert_fields_documented(definition.payload, sections()[definition.full_pattern], definition.pattern)


def test_every_shape_inside_a_payload_has_its_own_section() -> None:
    shapes: set[type[Message]] = set()
    for definition in TOPICS.values():
        if definition.payload:
            shapes |= nested_models(definition.payload)
    documented = sections()
    for shape in sorted(shapes, key=lambda m: m.__name__):
        assert shape.__name__ in documented, f"no section for {shape.__name__}"
        assert_fields_documented(shape, documented[shape.__name__], shape.__name__)


@pytest.mark.parametrize("definition", TOPICS.values(), ids=TOPIC_IDS)
def test_topic_example_is_valid(definition: TopicDef) -> None:
    body = sections()[definition.full_pattern]
    match = re.search(r"Example on `([^`]+)`:\n\n```(?:json|text)\n(.*?)\n```", body, re.DOTALL)
    assert match, f"no example under {definition.full_pattern}"
    topic, payload = match.group(1), match.group(2).encode("utf-8")
    site = topic.split("/")[1]
    if definition.direction is Direction.FROM_DEVICE:
        inbound = parse_inbound(site, topic, payload, now=EXAMPLE_NOW)
    else:
        inbound = parse_from_server(site, topic, payload, now=EXAMPLE_NOW)
    assert inbound.kind is definition.kind


def test_status_words_are_documented() -> None:
    for definition in TOPICS.values():
        if definition.payload is None:
            body = sections()[definition.full_pattern]
            for status in definition.statuses:
                assert f"`{status.value}`" in body, (definition.pattern, status)


def test_every_reject_reason_is_in_the_table() -> None:
    table = set(re.findall(r"^\| `([a-z_0-9]+)` \| ", DOC.split("## Reject reasons")[1], re.MULTILINE))
    assert table == set(REJECT_REASONS)
