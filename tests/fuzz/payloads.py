"""What the fuzz tests feed the MQTT side: the documented example of every topic (docs/mqtt.md)
as seeds, mutations of them one field at a time, arbitrary JSON and topic strings."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from queue_server.mqtt import contract
from queue_server.mqtt.contract import TOPICS, Direction, TopicDef

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text(encoding="utf-8")
# The documented examples are written for this instant (tests/mqtt/test_docs.py checks them).
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone(timedelta(hours=7)))
SITE = "hcc-hanoi"


def documented_examples() -> dict[contract.Kind, tuple[str, bytes]]:
    """(topic, payload) of the example under each topic's section of docs/mqtt.md (a topic
    without one is reported by test_every_topic_has_a_documented_example, not at collection)."""
    examples = {}
    for definition in TOPICS.values():
        heading = f"### `{definition.full_pattern}`"
        if heading not in DOC:
            continue
        section = DOC.split(heading, 1)[1].split("\n### ", 1)[0]
        match = re.search(r"Example on `([^`]+)`:\n\n```(?:json|text)\n(.*?)\n```", section, re.DOTALL)
        if match:
            examples[definition.kind] = (match.group(1), match.group(2).encode("utf-8"))
    return examples


EXAMPLES = documented_examples()
JSON_EXAMPLES = {kind: (topic, json.loads(payload)) for kind, (topic, payload) in EXAMPLES.items()
                 if TOPICS[kind].payload is not None}


ids = st.from_regex(contract.ID_RE, fullmatch=True)
segments = st.one_of(ids, st.text(max_size=12), st.sampled_from(["+", "#", "", "device", "event", "state"]))


@st.composite
def topics(draw: st.DrawFn) -> str:
    """A contract topic with fuzzed ids, a near miss of one, or any string at all."""
    definition: TopicDef = draw(st.sampled_from(list(TOPICS.values())))
    choice = draw(st.integers(0, 3))
    site = SITE if choice < 3 else draw(st.one_of(ids, st.text(max_size=12)))
    parts = [draw(segments if choice == 1 else ids) if part.startswith("{") else part
             for part in definition.segments]
    if choice == 2:
        parts.insert(draw(st.integers(0, len(parts))), draw(segments))
    if choice == 3 and draw(st.booleans()):
        return draw(st.text(max_size=80))
    return f"{contract.PREFIX}/{site}/" + "/".join(parts)


directions = st.sampled_from(list(Direction))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=40))


def _json_containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)


json_values = st.recursive(json_scalars, _json_containers, max_leaves=20)
# Strings that look like what the contract expects, and the edges around them.
texts = st.one_of(
    st.text(max_size=70),
    ids,
    st.from_regex(r"[\x21-\x7e]{1,140}", fullmatch=True),
    st.sampled_from(["", " ", "quay-3", "dat-dai", "Quầy 3", "very_satisfied", "next", "ok", "vi", "A015",
                     "2026-11-23T09:29:58+07:00", "2026-11-23T09:29:58", "2026-11-23", "2026-11-24T09:29:58Z",
                     "2030-01-01T00:00:00+07:00", "2000-01-01T00:00:00+07:00", "9999-12-31T23:59:59+14:00",
                     "0001-01-01T00:00:00-12:00", "online", "x" * 300, "\ud800", "#1E8E3E"]),
)


ABSENT = object()


@st.composite
def mutations(draw: st.DrawFn, kinds: tuple[contract.Kind, ...] | None = None) -> tuple[contract.Kind, str, Any, dict]:
    """A documented example (of one of `kinds`) with one top-level field removed, nulled or
    given another value (an unknown field added is a mutation too: it must be ignored)."""
    kind = draw(st.sampled_from(sorted(kinds or JSON_EXAMPLES)))
    document = json.loads(json.dumps(JSON_EXAMPLES[kind][1]))
    model = TOPICS[kind].payload
    name = draw(st.sampled_from(sorted(set(document) | set(model.model_fields) | {"extra_field"})))
    value = draw(st.one_of(st.just(ABSENT), st.none(), json_values, texts, st.integers(-10, 10**6),
                           st.lists(texts, max_size=10)))
    if value is ABSENT:
        document.pop(name, None)
    else:
        document[name] = value
    return kind, name, value, document
