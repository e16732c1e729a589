"""Fuzzing the server's MQTT ingestion end to end (contract → ServerLink → QueueService → SQLite).

Batches of device messages — documented examples mutated one field at a time, and arbitrary
bytes — go through `ServerLink._ingest`, the very function the link's ingest thread runs on what
paho received, against a real SQLite file. Whatever the batch: it commits (nothing logged as a
failure, so nothing would be redelivered forever), no message is recorded as `internal_error`,
every reject carries a documented reason or a rule's code, a message is rejected at most once,
and today's figures equal the figures recomputed from the append-only history.
"""
from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import strategies as st

from queue_server.domain.counters import Action
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.contract import REJECT_REASONS, TOPICS, Direction
from queue_server.mqtt.link import ServerLink, _Inbound
from queue_server.server import Server, build
from tests.mqtt.helpers import site_config

from .forms import in_both_forms
from .payloads import ABSENT, EXAMPLES, NOW, SITE, json_values, mutations

# What the service refuses as bad input (status 400/404): recorded as rejects with its code.
SERVICE_REJECTS = {"unknown_counter", "unknown_level", "unknown_field", "unknown_priority", "too_many_reasons",
                   "bad_lang"}
DEVICE_KINDS = tuple(sorted(kind for kind, definition in TOPICS.items()
                            if definition.direction is Direction.FROM_DEVICE and kind in EXAMPLES))
fresh_ids = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ServerLink]]:
    """The documented examples' centre (hcc-hanoi, quay-1…3, dat-dai) at the examples' instant,
    a counter awaiting its rating and one serving, and a link that never connects: messages are
    handed to it as its network thread would."""
    server = build(site_config(site=SITE, counters=3), tmp_path_factory.mktemp("link-fuzz"), clock=FixedClock(NOW))
    service = server.service
    for _ in range(4):
        service.issue_ticket("dat-dai")
    service.counter_action("quay-3", Action.NEXT)
    service.counter_action("quay-3", Action.FINISH)
    service.counter_action("quay-2", Action.NEXT)
    link = ServerLink(service, "127.0.0.1", 9)  # port 9 (discard): never connected
    yield server, link
    server.store.close()


@st.composite
def device_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """One message as a device might send it: a mutated example (with a fresh msg_id, so that it
    is not dropped as a repeat) or arbitrary bytes, on a device topic of the contract."""
    kind = draw(st.sampled_from(DEVICE_KINDS))
    if draw(st.integers(0, 4)) == 0:
        return EXAMPLES[kind][0], draw(st.binary(max_size=300))
    if TOPICS[kind].payload is None:
        return EXAMPLES[kind][0], draw(st.sampled_from([b"online", b"offline", b"stopped", b"", b"ONLINE"]))
    kind, name, value, document = draw(mutations((kind,)))
    if "msg_id" in document and name != "msg_id":
        document["msg_id"] = f"fuzz:{next(fresh_ids)}"
    if "transaction" in document and name != "transaction" and draw(st.booleans()):
        document["transaction"] = f"fuzz-{next(fresh_ids)}"
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    return EXAMPLES[kind][0], text.encode("utf-8", "surrogatepass")


def check_batches(world: tuple[Server, ServerLink], batch: list[tuple[str, bytes]],
                  caplog: pytest.LogCaptureFixture) -> None:
    server, link = world
    store, service = server.store, server.service
    before = sum(store.reject_counts().values())
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="queue_server"):
        committed = link._ingest([_Inbound(topic, payload, mid=0, qos=0, generation=0) for topic, payload in batch])
    assert committed, "the batch did not commit: it would be retried forever"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    counts = store.reject_counts()
    assert "internal_error" not in counts, store.recent_rejects(5)
    assert set(counts) <= set(REJECT_REASONS) | SERVICE_REJECTS, counts
    assert sum(counts.values()) - before <= len(batch)
    day = service.today()
    assert service.figures(day, day) == service.figures_from_history(day, day)


test_device_message_batches, test_device_message_batches_long = in_both_forms(
    60, 2_000, batch=st.lists(device_messages(), min_size=1, max_size=12),
)(check_batches)


def check_one_field_each(world: tuple[Server, ServerLink], kind: contract.Kind, name: str, value: Any,
                         caplog: pytest.LogCaptureFixture) -> None:
    """Each field of each device payload given any JSON value, one message at a time."""
    topic, payload = EXAMPLES[kind]
    document = json.loads(payload)
    if value is ABSENT:
        document.pop(name, None)
    else:
        document[name] = value
    if "msg_id" in document and name != "msg_id":
        document["msg_id"] = f"fuzz:{next(fresh_ids)}"
    check_batches(world, [(topic, json.dumps(document).encode())], caplog)


JSON_DEVICE_KINDS = [kind for kind in DEVICE_KINDS if TOPICS[kind].payload is not None]
test_each_field_any_value, test_each_field_any_value_long = in_both_forms(
    60, 1_500,
    kind=st.sampled_from(JSON_DEVICE_KINDS),
    name=st.sampled_from(sorted({name for kind in JSON_DEVICE_KINDS for name in TOPICS[kind].payload.model_fields})),
    value=st.one_of(st.just(ABSENT), json_values),
)(check_one_field_each)


def test_the_fuzzed_centre_still_works(world: tuple[Server, ServerLink]) -> None:
    """After whatever the tests above sent (or on its own), a valid press and a ticket request
    are handled normally: the fuzzing left nothing stuck."""
    server, link = world
    service = server.service
    waiting_before = service.queue_state("dat-dai")["waiting"]
    request = contract.TicketRequest(transaction=f"after-{next(fresh_ids)}", field="dat-dai")
    assert link._ingest([_Inbound(contract.topic_ticket_request(SITE, "kiosk-01"), contract.encode(request), 0, 0, 0)])
    assert service.queue_state("dat-dai")["waiting"] == waiting_before + 1
    day = service.today()
    assert service.figures(day, day) == service.figures_from_history(day, day)
