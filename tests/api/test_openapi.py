"""The OpenAPI document and the app's routes describe the same API, in both directions."""
from __future__ import annotations

import re

import pytest

from queue_server.api.counters import ACTIONS

IGNORED_METHODS = {"HEAD", "OPTIONS"}
ACTION_RULE = "/api/v1/counters/<counter_id>/<action_name>"
SAMPLE = "sample-1"


def openapi_path(rule: str) -> str:
    """Flask's /a/<x> and /a/<path:x> as OpenAPI's /a/{x}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def routed_operations(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every route; the one counter-action route stands for each action."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = {m.lower() for m in rule.methods - IGNORED_METHODS}
        if rule.rule == ACTION_RULE:
            paths = [f"/api/v1/counters/{{counter_id}}/{action}" for action in ACTIONS]
        else:
            paths = [openapi_path(rule.rule)]
        operations |= {(path, method) for path in paths for method in methods}
    return operations


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def documented_operations(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


def test_the_action_route_is_where_the_mapping_expects_it(server):
    # If the counter actions get routes of their own, routed_operations must change with them.
    rules = {rule.rule for rule in server.app.url_map.iter_rules()}
    assert ACTION_RULE in rules
    assert set(ACTIONS) == {"open", "close", "next", "recall", "start", "no-show", "finish", "transfer"}


def test_every_route_is_documented(server, document):
    missing = routed_operations(server.app) - documented_operations(document)
    assert not missing, f"routes missing from openapi.json: {sorted(missing)}"


def test_every_documented_operation_is_routed(server, document):
    extra = documented_operations(document) - routed_operations(server.app)
    assert not extra, f"openapi.json documents operations with no route: {sorted(extra)}"


def test_each_documented_path_reaches_its_own_route(server, document):
    """Routing a documented path lands on the route it describes, not on one that shadows it."""
    adapter = server.app.url_map.bind("localhost")
    for path, method in sorted(documented_operations(document)):
        concrete = re.sub(r"\{[^}]+\}", SAMPLE, path)
        rule, arguments = adapter.match(concrete, method=method.upper(), return_rule=True)
        if rule.rule == ACTION_RULE:
            assert path == f"/api/v1/counters/{{counter_id}}/{arguments['action_name']}", path
            assert arguments["action_name"] in ACTIONS
        else:
            assert openapi_path(rule.rule) == path, (path, rule.rule)


def test_every_path_parameter_is_declared(document):
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path, declared, names)


def test_every_operation_has_a_summary_and_responses(document):
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert any(status.startswith("2") for status in operation["responses"]), (method, path)


def test_schemas_referenced_exist(document):
    text = str(document)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name


def test_operations_that_need_a_login_document_401(server, client, document):
    for path, method in sorted(documented_operations(document)):
        concrete = re.sub(r"\{[^}]+\}", SAMPLE, path)
        response = client.open(concrete, method=method.upper(), json={})
        if response.status_code == 401:
            assert "401" in document["paths"][path][method]["responses"], (method, path)
