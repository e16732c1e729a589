"""Every endpoint answers bad requests with a JSON error, never a traceback or an HTML page."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD

from .conftest import assert_error, rejects

LIMIT = 64 * 1024

# (name, who calls, path, a valid JSON body): every endpoint that reads a JSON body.
JSON_ENDPOINTS = [
    ("login", "anon", "/api/v1/login", {"username": "quanly", "password": PASSWORD}),
    ("tickets", "kiosk", "/api/v1/tickets", {"field": "dat-dai"}),
    ("ratings", "kiosk", "/api/v1/ratings",
     {"msg_id": "rating-01:1:1", "counter": "quay-1", "level": "satisfied", "at": "2026-11-23T09:00:00+07:00"}),
    ("transfer", "clerk", "/api/v1/counters/quay-1/transfer", {"field": "ho-tich"}),
    ("dossiers", "clerk", "/api/v1/dossiers",
     {"code": "HS-1", "procedure": "Cấp giấy chứng nhận", "field": "dat-dai", "working_days": 5}),
    ("dossier-return", "clerk", "/api/v1/dossiers/HS-1/return", {"on": "2026-11-23"}),
    ("dossier-pause", "clerk", "/api/v1/dossiers/HS-1/pause", {"on": "2026-11-23"}),
    ("dossier-resume", "clerk", "/api/v1/dossiers/HS-1/resume", {"on": "2026-11-23"}),
]
ENDPOINT_IDS = [name for name, *_ in JSON_ENDPOINTS]


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_the_valid_body_gets_past_validation(caller, name, who, path, body):
    # The baseline for the tests below: with this body the request is not refused as bad input.
    client, headers = caller(who)
    response = client.post(path, json=body, headers=headers)
    assert response.status_code not in (400, 401, 403, 413, 415), response.get_data(as_text=True)
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize("raw", [b'{"field": "dat-dai"', b"{'a': 1}", b"not json", b'{"a": 1,}', b"\xff\xfe{}"],
                         ids=["truncated", "single-quotes", "text", "trailing-comma", "not-utf8"])
def test_malformed_json_is_400(caller, name, who, path, body, raw):
    client, headers = caller(who)
    response = client.post(path, data=raw, content_type="application/json", headers=headers)
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize("raw", [b"[]", b"null", b"42", b'"text"'], ids=["array", "null", "number", "string"])
def test_json_that_is_not_an_object_is_400(caller, name, who, path, body, raw):
    client, headers = caller(who)
    response = client.post(path, data=raw, content_type="application/json", headers=headers)
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_json_text_sent_as_plain_text_is_415(caller, name, who, path, body):
    import json

    client, headers = caller(who)
    response = client.post(path, data=json.dumps(body), content_type="text/plain", headers=headers)
    assert_error(response, 415, "json_required")


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_form_post_is_415(caller, name, who, path, body):
    client, headers = caller(who)
    form = {key: str(value) for key, value in body.items()}
    response = client.post(path, data=form, headers=headers)
    assert_error(response, 415, "json_required")


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_over_64_kib_is_413_and_recorded(caller, manager, name, who, path, body):
    client, headers = caller(who)
    padded = b'{"pad": "' + b"x" * LIMIT + b'"}'
    response = client.post(path, data=padded, content_type="application/json", headers=headers)
    assert_error(response, 413, "body_too_large")
    assert rejects(manager) == {"body_too_large": 1}


@pytest.mark.parametrize(("name", "who", "path", "body"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_just_under_the_limit_is_not_413(caller, name, who, path, body):
    import json

    client, headers = caller(who)
    filler = LIMIT - len(json.dumps({**body, "pad": ""}).encode()) - 16
    response = client.post(path, json={**body, "pad": "x" * filler}, headers=headers)
    assert response.status_code != 413
    assert response.mimetype == "application/json"


def test_a_json_body_over_64_kib_on_a_counter_action_is_413(clerk, manager):
    padded = b'{"pad": "' + b"x" * LIMIT + b'"}'
    response = clerk.post("/api/v1/counters/quay-1/next", data=padded, content_type="application/json")
    assert_error(response, 413, "body_too_large")
    assert rejects(manager) == {"body_too_large": 1}


@pytest.mark.parametrize(
    ("who", "path"),
    [("clerk", "/api/v1/counters/quay-1/next"), ("anon", "/api/v1/logout")],
    ids=["counter-next", "logout"],
)
def test_a_body_over_64_kib_is_413_even_where_the_body_is_ignored(caller, manager, who, path):
    # The limit is a promise about the server, not about one parser: an oversize body must not
    # be accepted (and buffered by waitress) just because the route does not read it.
    client, headers = caller(who)
    response = client.post(path, data=b"x" * (LIMIT + 1), content_type="text/plain", headers=headers)
    assert_error(response, 413, "body_too_large")
    assert rejects(manager) == {"body_too_large": 1}


def test_a_csv_import_over_10_mib_is_413(clerk, manager):
    big = b"code,procedure,field,received,due,returned\n" + b"x" * (10 * 1024 * 1024)
    response = clerk.post("/api/v1/dossiers/import", data=big, content_type="text/csv")
    assert_error(response, 413, "body_too_large")
    assert rejects(manager) == {"body_too_large": 1}


def test_a_csv_import_may_be_larger_than_64_kib(clerk):
    rows = "".join(f"HS-{n:05d},Thủ tục {n},dat-dai,2026-11-02,2026-11-20,\n" for n in range(1, 2001))
    text = "code,procedure,field,received,due,returned\n" + rows
    assert len(text.encode()) > LIMIT
    response = clerk.post("/api/v1/dossiers/import", data=text.encode(), content_type="text/csv")
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json() == {"imported": 2000, "returned": 0}


def test_a_non_transfer_counter_action_with_malformed_json_is_400(clerk):
    response = clerk.post("/api/v1/counters/quay-1/next", data=b'{"x": ', content_type="application/json")
    assert_error(response, 400, "invalid_input")


# --- routing: unknown paths and wrong methods ----------------------------------------------------

SAMPLE_ARGUMENTS = {"counter_id": "quay-1", "action_name": "next", "ticket_id": "nope", "code": "HS-1", "filename": "x.css",
                    "username": "quanly"}


def concrete(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: SAMPLE_ARGUMENTS[m.group(1)], rule.rule)


def paths_without(server, method: str) -> list[str]:
    """Concrete paths of the app's routes that no route answers for `method`."""
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    adapter = server.app.url_map.bind("localhost")
    found = set()
    for rule in server.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = concrete(rule)
        try:
            adapter.match(path, method=method)
        except MethodNotAllowed:
            found.add(path)
        except NotFound:  # pragma: no cover - every concrete path routes somewhere
            raise AssertionError(f"{path} does not route") from None
    return sorted(found)


def test_every_post_only_route_answers_get_with_405_json(server, clerk):
    post_only = paths_without(server, "GET")
    assert "/api/v1/tickets" in post_only and "/api/v1/counters/quay-1/next" in post_only
    for path in post_only:
        response = clerk.get(path)
        assert_error(response, 405, "method_not_allowed")


def test_every_get_only_route_answers_post_with_405_json(server, clerk):
    get_only = paths_without(server, "POST")
    assert "/healthz" in get_only and "/api/v1/stats/today" in get_only
    for path in get_only:
        response = clerk.post(path, json={})
        assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/ratings", "/api/v1/login", "/api/v1/counters/quay-1/next"])
def test_a_405_names_the_allowed_methods(client, path):
    # RFC 9110 §15.5.6: a 405 response MUST carry an Allow header.
    response = client.get(path)
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers.get("Allow", ""), dict(response.headers)


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v2/tickets", "/api/v1/counters/quay-1/next/again", "/static/nope.css"])
def test_an_unknown_path_is_404_json(client, path):
    assert_error(client.get(path), 404, "not_found")
    assert_error(client.post(path, json={}), 404 if not path.startswith("/static") else 405)


def test_an_unexpected_error_is_a_json_500_without_details(client, service, monkeypatch, caplog):
    def broken():
        raise RuntimeError("disk /var/secret/motcua.sqlite3 exploded")

    monkeypatch.setattr(service, "stats_today", broken)
    response = client.get("/api/v1/stats/today")
    error = assert_error(response, 500, "internal_error")
    assert "exploded" not in response.get_data(as_text=True) and "secret" not in error["message"]
    assert any("unexpected error" in record.getMessage() for record in caplog.records)


def test_errors_are_utf8_json_with_vietnamese_first(client, kiosk):
    response = client.post("/api/v1/tickets", json={"field": "khong-co"}, headers=kiosk)
    error = assert_error(response, 404, "unknown_field")
    assert response.content_type.startswith("application/json")
    assert error["message"].startswith("Không có lĩnh vực")
    assert "Không" in response.get_data(as_text=True)  # not \\u-escaped
