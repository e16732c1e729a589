"""Fuzzing every payload parser of the MQTT contract (queue_server/mqtt/contract.py) with hypothesis.

Whatever arrives — arbitrary bytes, arbitrary JSON, or a documented example with one field
mutated — `parse_inbound`, `parse_from_server` and `match_topic` either return a message or raise
`PayloadRejected` with a reason from REJECT_REASONS; nothing else escapes. Where the input says
which reason is right (a required field removed, a field of the wrong JSON type), the test
checks that exact reason, and an accepted payload carries exactly the values that were sent.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from queue_server.mqtt import contract
from queue_server.mqtt.contract import (
    REJECT_REASONS,
    TOPICS,
    Direction,
    Inbound,
    PayloadRejected,
    parse_from_server,
    parse_inbound,
)

from .forms import in_both_forms
from .payloads import (
    ABSENT,
    EXAMPLES,
    NOW,
    SITE,
    directions,
    json_values,
    mutations,
    topics,
)

# Reasons any field may earn, whatever its name.
GENERIC_REASONS = {"missing_field", "wrong_type", "string_too_long", "bad_time", "bad_response", "bad_value",
                   "payload_too_large"}
# Reasons that only a field of that name (at the top of the payload) may earn.
FIELD_REASONS = {
    "msg_id": {"bad_msg_id"},
    "counter": {"bad_counter_id"},
    "field": {"bad_field_id"},
    "level": {"bad_level"},
    "ticket": {"bad_ticket"},
    "at": {"time_out_of_range"},
    "action": {"bad_action"},
    "state": {"bad_state"},
    "transaction": {"bad_transaction"},
    "priority": {"bad_priority"},
    "lang": {"bad_lang"},
    "reasons": {"reasons_not_list", "too_many_reasons", "bad_reason"},
}


def parse(topic: str, payload: bytes, direction: Direction) -> Inbound:
    if direction is Direction.FROM_DEVICE:
        return parse_inbound(SITE, topic, payload, now=NOW)
    return parse_from_server(SITE, topic, payload, now=NOW)


def outcome(topic: str, payload: bytes, direction: Direction) -> Inbound | PayloadRejected:
    """The parsed message or the rejection; anything else raised fails the test."""
    try:
        inbound = parse(topic, payload, direction)
    except PayloadRejected as rejected:
        assert rejected.reason in REJECT_REASONS  # also enforced by PayloadRejected itself
        return rejected
    assert isinstance(inbound, Inbound)
    definition = TOPICS[inbound.kind]
    if inbound.message is not None and definition.payload is not None:
        assert isinstance(inbound.message, definition.payload)
        # What was accepted encodes and parses back to the same message.
        again = parse(topic, contract.encode(inbound.message), direction)
        assert again.message == inbound.message
    return inbound


# --------------------------------------------------------------------------- 1. arbitrary bytes


def check_any_bytes(topic: str, payload: bytes, direction: Direction) -> None:
    outcome(topic, payload, direction)


test_any_bytes_on_any_topic, test_any_bytes_on_any_topic_long = in_both_forms(
    300, 5_000, topic=topics(), payload=st.binary(max_size=600) | st.binary(min_size=4000, max_size=4200),
    direction=directions,
)(check_any_bytes)


def check_any_topic(topic: str) -> None:
    try:
        definition, topic_ids = contract.match_topic(SITE, topic)
    except PayloadRejected as rejected:
        assert rejected.reason in {"topic_not_ours", "unknown_topic", "bad_device_id", "bad_counter_id",
                                   "bad_field_id"}
        return
    # A topic that matches is exactly the one its definition builds from the ids found in it.
    assert definition.topic(SITE, **topic_ids) == topic


test_any_topic_string, test_any_topic_string_long = in_both_forms(
    300, 5_000, topic=topics(),
)(check_any_topic)


# --------------------------------------------------------------------------- 2. arbitrary JSON


def check_any_json(kind: contract.Kind, document: Any, direction: Direction) -> None:
    topic = EXAMPLES[kind][0]
    result = outcome(topic, json.dumps(document).encode(), direction)
    if isinstance(result, PayloadRejected) and TOPICS[kind].direction is direction and TOPICS[kind].payload:
        if not isinstance(document, dict):
            assert result.reason == "not_object"


test_any_json_on_every_topic, test_any_json_on_every_topic_long = in_both_forms(
    300, 5_000, kind=st.sampled_from(sorted(EXAMPLES)), document=json_values, direction=directions,
)(check_any_json)


def check_near_valid(mutation: tuple[contract.Kind, str, Any, dict], escaped: bool) -> None:
    kind, name, value, document = mutation
    definition = TOPICS[kind]
    topic = EXAMPLES[kind][0]
    # Non-ASCII as UTF-8 or as \u escapes (a lone surrogate: invalid bytes, or a valid escape).
    payload = json.dumps(document, ensure_ascii=escaped).encode("utf-8", "surrogatepass")
    result = outcome(topic, payload, definition.direction)
    model = definition.payload
    field = model.model_fields.get(name)
    if isinstance(result, PayloadRejected):
        # The reason belongs to the field that was changed.
        assert field is not None or result.reason in {"invalid_utf8", "payload_too_large"}, (name, result)
        allowed = GENERIC_REASONS | FIELD_REASONS.get(name, set()) | {"invalid_utf8"}
        if name in definition.placeholders:  # counter / field also name the topic
            allowed |= {"bad_counter_id", "bad_field_id"}
        assert result.reason in allowed, (name, value, result)
        if field is not None and field.is_required() and (value is ABSENT or value is None):
            assert result.reason == "missing_field", (name, result)
        if field is not None and value is not ABSENT and value is not None and result.reason == "missing_field":
            # Only something inside the value (a list item, a nested field) can be missing.
            assert result.detail.startswith(f"{name}."), f"{name}={value!r} present but reported missing"
        return
    # Accepted: a required field cannot have been removed, and what was sent is what is held.
    assert field is None or not (field.is_required() and value is ABSENT), (name, result)
    if field is not None and isinstance(value, (str, bool, int)) and not isinstance(getattr(result.message, name), datetime):
        held = getattr(result.message, name)
        assert held == value and type(held) is type(value), (name, value, held)


test_near_valid_payloads, test_near_valid_payloads_long = in_both_forms(
    500, 10_000, mutation=mutations(), escaped=st.booleans(),
)(check_near_valid)


def check_mutated_text(kind: contract.Kind, cut: int, junk: bytes) -> None:
    """The documented example's bytes with a slice replaced by junk: truncated, spliced, garbled."""
    topic, payload = EXAMPLES[kind]
    position = cut % (len(payload) + 1)
    outcome(topic, payload[:position] + junk + payload[position + len(junk):], TOPICS[kind].direction)


test_mutated_bytes_of_examples, test_mutated_bytes_of_examples_long = in_both_forms(
    300, 5_000, kind=st.sampled_from(sorted(EXAMPLES)), cut=st.integers(0, 10_000), junk=st.binary(max_size=8),
)(check_mutated_text)


# --------------------------------------------------------------------------- 4. the examples themselves


def test_every_topic_has_a_documented_example() -> None:
    """Every topic is fuzzed: each one's example is a seed of the mutations above."""
    assert set(EXAMPLES) == set(TOPICS), f"no example in docs/mqtt.md for {set(TOPICS) - set(EXAMPLES)}"


def test_every_documented_example_parses_as_its_own_kind() -> None:
    """The seeds of the mutations above are valid, so a rejection is caused by the mutation."""
    for kind, (topic, payload) in EXAMPLES.items():
        inbound = parse(topic, payload, TOPICS[kind].direction)
        assert inbound.kind is kind
