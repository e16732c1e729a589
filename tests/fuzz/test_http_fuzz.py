"""Fuzzing every HTTP endpoint with schemathesis against our own OpenAPI document, in process.

Every operation of GET /api/v1/openapi.json is called with requests schemathesis generates from
it, against the real Flask app on a real SQLite file:

- valid requests (positive mode), each sent twice: with a manager's session cookie and a
  kiosk's device token (so every signed-in path runs, the device one where a device may act),
  and as generated without them (a secured operation must answer 401);
- invalid requests (negative mode: bodies, query strings, headers and cookies that break the
  document), which must be refused with a 4xx.

Whatever is sent: never a 500, only documented statuses and content types, bodies matching the
documented schemas. Path parameters are sometimes swapped for ids that exist (a counter, a
ticket issued today, a dossier), so that the code behind the 404 runs too.

Not checked: that every schema-valid request is accepted (schemathesis' positive_data_acceptance).
Our rules go beyond what a JSON schema says (a period of at most 366 days, `from` not after
`to`, CSV rows naming known fields) and their 400s are documented; status_code_conformance
holds them to that. Short form here; the long form (`-m long`) sends many more.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.security import generate_password_hash

from queue_server.accounts import create_device_token
from queue_server.api.openapi import openapi_document
from queue_server.domain.counters import Action
from queue_server.domain.timeutil import FixedClock
from queue_server.server import Server, build
from tests.conftest import MONDAY_9AM, PASSWORD, make_config

from .forms import long_form, short_form

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
# The board's event stream never ends: read its first event (the snapshot) and hang up.
SCHEMA.config.max_stream_events = 1
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
SHORT_EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
LONG_EXAMPLES = {GenerationMode.POSITIVE: 400, GenerationMode.NEGATIVE: 300}
# Signing in checks a password hash per request (deliberately slow): fewer of those.
SLOW_OPERATIONS = {"POST /api/v1/login": 0.25}
STREAM_TIMEOUT_S = 2.0

CHECKS_SIGNED_IN = [not_a_server_error, status_code_conformance, content_type_conformance,
                    response_headers_conformance, response_schema_conformance]
CHECKS_NEGATIVE = [not_a_server_error, status_code_conformance, content_type_conformance, negative_data_rejection]
# Explicitly not run; see the module docstring (positive_data_acceptance) and the anonymous
# call below, which is what ignored_auth would do.
NOT_RUN = (positive_data_acceptance, ignored_auth)


@dataclass
class Api:
    server: Server
    session_cookie: str
    device_token: str
    known_ids: dict[str, list[str]]

    @property
    def credentials(self) -> dict:
        return {"headers": {"Authorization": f"Bearer {self.device_token}"},
                "cookies": {"session": self.session_cookie}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The test centre on a real SQLite file, a manager signed in, a kiosk token, and a few
    records whose ids the fuzzer may use: tickets, a counter serving one, a dossier."""
    server = build(make_config(), tmp_path_factory.mktemp("http-fuzz"), clock=FixedClock(MONDAY_9AM))
    service = server.service
    now = service.now()
    with server.store.write():
        # A cheap hash: the fuzzer signs in often; the real hashing is test_auth_api's business.
        server.store.add_user("quanly", "manager", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"), now)
    token = create_device_token(server.store, "kiosk-01", now)
    tickets = [service.issue_ticket("dat-dai")[0] for _ in range(3)]
    service.counter_action("quay-1", Action.OPEN, clerk_id="nguyen-van-an")
    service.counter_action("quay-1", Action.NEXT)
    service.receive_dossier("HS-0001", "Cấp giấy chứng nhận", "dat-dai", working_days=5)
    client = server.app.test_client()
    assert client.post("/api/v1/login", json={"username": "quanly", "password": PASSWORD}).status_code == 200
    cookie = client.get_cookie("session")
    assert cookie is not None
    known = {
        "ticket_id": [t["id"] for t in tickets],
        "counter_id": ["quay-1", "quay-2", "quay-3"],
        "code": ["HS-0001", tickets[0]["code"]],  # a dossier code, or a ticket code for the voice
        "filename": ["board.js", "board.css", "chime.wav"],
    }
    yield Api(server, cookie.value, token, known)
    server.store.close()


def _secured(operation) -> bool:
    security = operation.definition.raw.get("security", SCHEMA.raw_schema.get("security", []))
    return bool(security)


def _negatable(operation) -> bool:
    """Whether negative mode can break anything: a body, a query or header parameter, or the
    credentials (path parameters are plain strings: any string is valid)."""
    raw = operation.definition.raw
    parameters = [p for p in raw.get("parameters", []) if p.get("in") != "path"]
    return bool(raw.get("requestBody") or parameters or _secured(operation))


def served_like_waitress(app):
    """The app as a WSGI server runs it: a response body is read to its end and then closed
    (schemathesis' in-process transport reads it but never closes it, which leaves a file
    response's file open). Event streams are passed on as they are: they never end."""

    def wsgi(environ, start_response):
        headers_seen: list = []

        def remember(status, headers, exc_info=None):
            headers_seen.append(dict((name.lower(), value) for name, value in headers))
            return start_response(status, headers, exc_info)

        body = app(environ, remember)
        if headers_seen and headers_seen[0].get("content-type", "").startswith("text/event-stream"):
            return body
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wsgi


def _call_kwargs(api: Api, operation) -> dict:
    """Into the app in process; a bound on the never-ending event stream."""
    kwargs: dict = {"app": served_like_waitress(api.server.app)}
    if operation.path == "/board/stream":
        kwargs["timeout"] = STREAM_TIMEOUT_S
    return kwargs


def _with_known_ids(api: Api, case, choices: list[int]) -> None:
    """Swap some path parameters for ids that exist (one draw per parameter: -1 keeps the
    generated value)."""
    for (name, value), choice in zip(sorted(case.path_parameters.items()), choices):
        known = api.known_ids.get(name)
        if known and choice >= 0:
            case.path_parameters[name] = known[choice % len(known)]


def check_positive(api: Api, operation, case, choices: list[int]) -> None:
    _with_known_ids(api, case, choices)
    # Anonymous first: a call with credentials leaves them in the case's headers.
    anonymous = case.call(**_call_kwargs(api, operation))
    case.validate_response(anonymous, checks=[not_a_server_error, status_code_conformance, content_type_conformance])
    if _secured(operation):
        assert anonymous.status_code == 401, (operation.label, anonymous.status_code, anonymous.text[:200])
    signed_in = case.call(**api.credentials, **_call_kwargs(api, operation))
    case.validate_response(signed_in, checks=CHECKS_SIGNED_IN, headers=api.credentials["headers"])


def check_negative(api: Api, operation, case) -> None:
    components = case.meta.components if case.meta is not None else {}
    broken = {location for location, info in components.items() if info.mode.is_negative}
    # Credentials would overwrite a broken cookie or header: then send the case as generated.
    sign_in = not broken & {ParameterLocation.COOKIE, ParameterLocation.HEADER}
    response = case.call(**(api.credentials if sign_in else {}), **_call_kwargs(api, operation))
    case.validate_response(response, checks=CHECKS_NEGATIVE)


def run(api: Api, operation, mode: GenerationMode, form) -> None:
    """One operation fuzzed in `mode` as one hypothesis test (its settings from `form`)."""
    if mode is GenerationMode.POSITIVE:
        @form
        @given(case=operation.as_strategy(generation_mode=mode),
               choices=st.lists(st.integers(-1, 5), min_size=3, max_size=3))
        def fuzz(case, choices):
            check_positive(api, operation, case, choices)
    else:
        @form
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            check_negative(api, operation, case)
    fuzz()


def examples(operation, mode: GenerationMode, table: dict) -> int:
    return max(2, int(table[mode] * SLOW_OPERATIONS.get(operation.label, 1)))


POSITIVE = [pytest.param(op, id=op.label) for op in OPERATIONS]
NEGATIVE = [pytest.param(op, id=op.label) for op in OPERATIONS if _negatable(op)]


@pytest.mark.parametrize("operation", POSITIVE)
def test_valid_requests(api: Api, operation) -> None:
    mode = GenerationMode.POSITIVE
    run(api, operation, mode, short_form(examples(operation, mode, SHORT_EXAMPLES)))


@pytest.mark.parametrize("operation", NEGATIVE)
def test_invalid_requests(api: Api, operation) -> None:
    mode = GenerationMode.NEGATIVE
    run(api, operation, mode, short_form(examples(operation, mode, SHORT_EXAMPLES)))


@pytest.mark.long
@pytest.mark.parametrize("operation", POSITIVE)
def test_valid_requests_long(api: Api, operation) -> None:
    mode = GenerationMode.POSITIVE
    run(api, operation, mode, long_form(examples(operation, mode, LONG_EXAMPLES)))


@pytest.mark.long
@pytest.mark.parametrize("operation", NEGATIVE)
def test_invalid_requests_long(api: Api, operation) -> None:
    mode = GenerationMode.NEGATIVE
    run(api, operation, mode, long_form(examples(operation, mode, LONG_EXAMPLES)))


def test_every_operation_is_fuzzed_both_ways() -> None:
    """No operation slips out of the fuzzing: all in positive mode, and negative mode for all
    but those with nothing to break (no body, query, header or credentials)."""
    document = openapi_document()
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    assert {op.label for op in OPERATIONS} == documented
    unbreakable = {op.label for op in OPERATIONS} - {p.id for p in NEGATIVE}
    for label in unbreakable:
        method, path = label.split(" ", 1)
        operation = document["paths"][path][method.lower()]
        assert "requestBody" not in operation and "security" not in operation, label
        assert all(p["in"] == "path" for p in operation.get("parameters", [])), label
