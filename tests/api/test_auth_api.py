"""Signing in, roles and device tokens over HTTP, and the rejected requests they leave behind."""
from __future__ import annotations

import pytest

from queue_server.accounts import add_user
from tests.conftest import PASSWORD, login

from .conftest import assert_error, rejects

RATING = {"msg_id": "rating-01:1:1", "counter": "quay-1", "level": "satisfied", "at": "2026-11-23T09:00:00+07:00"}

# (method, path, JSON body or None): every route that needs a signed-in clerk (or more).
CLERK_ROUTES = [
    ("POST", "/api/v1/counters/quay-1/next", None),
    ("POST", "/api/v1/counters/quay-1/open", None),
    ("POST", "/api/v1/counters/quay-1/transfer", {"field": "ho-tich"}),
    ("POST", "/api/v1/dossiers", {"code": "HS-1", "procedure": "p", "field": "dat-dai", "working_days": 5}),
    ("GET", "/api/v1/dossiers", None),
    ("GET", "/api/v1/dossiers/HS-1", None),
    ("POST", "/api/v1/dossiers/HS-1/return", None),
    ("POST", "/api/v1/dossiers/HS-1/pause", None),
    ("POST", "/api/v1/dossiers/HS-1/resume", None),
    ("POST", "/api/v1/dossiers/import", None),
]
MANAGER_ROUTES = [
    ("GET", "/api/v1/stats/daily?from=2026-11-23&to=2026-11-23", None),
    ("GET", "/api/v1/rejects", None),
]
DEVICE_ROUTES = [
    ("POST", "/api/v1/tickets", {"field": "dat-dai"}),
    ("POST", "/api/v1/ratings", RATING),
]


def send(client, method, path, body, headers=None):
    return client.open(path, method=method, json=body, headers=headers or {})


def route_id(route) -> str:
    return f"{route[0]} {route[1].split('?')[0]}"


# --- sessions ----------------------------------------------------------------------------------


def test_login_me_and_logout(client, accounts):
    assert_error(client.get("/api/v1/me"), 401, "login_required")
    response = login(client, "nguyen-van-an")
    assert response.status_code == 200
    assert response.get_json() == {"username": "nguyen-van-an", "role": "clerk"}
    assert "HttpOnly" in response.headers["Set-Cookie"] and "SameSite=Lax" in response.headers["Set-Cookie"]
    assert client.get("/api/v1/me").get_json() == {"username": "nguyen-van-an", "role": "clerk"}
    assert client.post("/api/v1/logout").get_json() == {"ok": True}
    assert_error(client.get("/api/v1/me"), 401, "login_required")


def test_an_account_made_by_add_user_can_sign_in(server, client):
    # The other API tests use pre-hashed accounts; this one goes through accounts.add_user.
    add_user(server.store, "le-thi-cuc", "clerk", PASSWORD, server.service.now())
    assert login(client, "le-thi-cuc").get_json() == {"username": "le-thi-cuc", "role": "clerk"}
    assert_error(login(client, "le-thi-cuc", PASSWORD + "!"), 401, "bad_credentials")


@pytest.mark.parametrize(
    ("username", "password"),
    [("nguyen-van-an", "wrong password"), ("khong-co-ai", PASSWORD), ("NGUYEN-VAN-AN", PASSWORD)],
    ids=["wrong-password", "unknown-user", "wrong-case"],
)
def test_a_failed_login_is_401_and_leaves_no_session(client, accounts, username, password):
    assert_error(login(client, username, password), 401, "bad_credentials")
    assert_error(client.get("/api/v1/me"), 401, "login_required")


def test_a_failed_login_ends_an_earlier_session_only_when_it_succeeds(client, accounts):
    assert login(client, "nguyen-van-an").status_code == 200
    assert_error(login(client, "quanly", "wrong password"), 401, "bad_credentials")
    assert client.get("/api/v1/me").get_json()["username"] == "nguyen-van-an"
    assert login(client, "quanly").status_code == 200
    assert client.get("/api/v1/me").get_json() == {"username": "quanly", "role": "manager"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"username": 123, "password": PASSWORD}, "username"),
        ({"username": "quanly", "password": 12345678}, "password"),
        ({"username": "quanly"}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "quanly", "password": ["x"]}, "password"),
        ({"username": "x" * 65, "password": PASSWORD}, "username"),
    ],
    ids=["username-int", "password-int", "no-password", "no-username", "empty-username", "password-list", "long-username"],
)
def test_a_login_with_bad_fields_is_400_naming_the_field(client, manager, body, path):
    error = assert_error(client.post("/api/v1/login", json=body), 400, "invalid_input")
    assert [detail["path"] for detail in error["details"]] == [path]
    assert rejects(manager) == {}  # bad input is not a failed login


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", CLERK_ROUTES + MANAGER_ROUTES, ids=route_id)
def test_without_a_login_it_is_401(client, route):
    assert_error(send(client, *route), 401, "login_required")


@pytest.mark.parametrize("route", CLERK_ROUTES + MANAGER_ROUTES, ids=route_id)
def test_a_device_token_does_not_stand_in_for_a_person(client, kiosk, route):
    assert_error(send(client, *route, headers=kiosk), 401, "login_required")


@pytest.mark.parametrize("route", MANAGER_ROUTES, ids=route_id)
def test_a_clerk_on_a_manager_route_is_403_and_recorded(clerk, manager, route):
    assert_error(send(clerk, *route), 403, "forbidden")
    assert rejects(manager) == {"forbidden": 1}
    latest = manager.get("/api/v1/rejects").get_json()["recent"][0]
    assert latest["reason"] == "forbidden" and latest["where"] == f"GET {route[1].split('?')[0]}"
    assert "nguyen-van-an" in latest["detail"]


@pytest.mark.parametrize("route", MANAGER_ROUTES, ids=route_id)
def test_a_manager_and_an_admin_may_use_manager_routes(server, manager, route):
    assert send(manager, *route).status_code == 200
    admin = server.app.test_client()
    assert login(admin, "quantri").status_code == 200
    assert send(admin, *route).status_code == 200


def test_a_clerk_may_not_post_ratings_by_hand(clerk, manager):
    assert_error(clerk.post("/api/v1/ratings", json=RATING), 403, "forbidden")
    response = manager.post("/api/v1/ratings", json=RATING)
    assert response.status_code == 201


def test_a_signed_in_clerk_may_issue_a_ticket(clerk):
    response = clerk.post("/api/v1/tickets", json={"field": "dat-dai"})
    assert response.status_code == 201 and response.get_json()["code"] == "A001"


# --- device tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", DEVICE_ROUTES, ids=route_id)
@pytest.mark.parametrize("token", ["mcd_not-a-real-token", "", "  "], ids=["unknown", "empty", "blank"])
def test_a_bad_device_token_is_401_and_recorded(client, manager, route, token):
    assert_error(send(client, *route, headers={"Authorization": f"Bearer {token}"}), 401, "bad_device_token")
    assert rejects(manager) == {"bad_device_token": 1}


@pytest.mark.parametrize("route", DEVICE_ROUTES, ids=route_id)
def test_no_token_and_no_login_is_401_and_not_recorded(client, manager, route):
    assert_error(send(client, *route), 401, "login_required")
    assert_error(send(client, *route, headers={"Authorization": "Basic a2lvc2s6MTIz"}), 401, "login_required")
    assert rejects(manager) == {}


def test_a_replaced_device_token_stops_working(server, client, kiosk):
    from queue_server.accounts import create_device_token

    assert send(client, *DEVICE_ROUTES[0], headers=kiosk).status_code == 201
    new_token = create_device_token(server.store, "kiosk-01", server.service.now())
    assert_error(send(client, *DEVICE_ROUTES[0], headers=kiosk), 401, "bad_device_token")
    assert send(client, *DEVICE_ROUTES[0], headers={"Authorization": f"Bearer {new_token}"}).status_code == 201


def test_a_bad_token_is_refused_even_with_a_good_session(clerk):
    response = clerk.post("/api/v1/tickets", json={"field": "dat-dai"}, headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "bad_device_token")


# --- the reject log ----------------------------------------------------------------------------


def test_reject_counts_add_up_exactly(client, clerk, manager, kiosk):
    bad_token = {"Authorization": "Bearer mcd_stolen"}
    client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=bad_token)
    client.post("/api/v1/ratings", json=RATING, headers=bad_token)
    for attempt in range(3):
        login(client, "quanly", f"guess {attempt}")
    clerk.get("/api/v1/rejects")
    clerk.get("/api/v1/stats/daily?from=2026-11-23&to=2026-11-23")
    client.post("/api/v1/tickets", data=b"{" + b" " * (64 * 1024) + b"}", content_type="application/json", headers=kiosk)
    # Not rejects: a missing login, bad input, a rule of the centre, an unknown id.
    client.get("/api/v1/rejects")
    client.post("/api/v1/tickets", json={"field": 1}, headers=kiosk)
    client.post("/api/v1/tickets", json={"field": "khong-co"}, headers=kiosk)
    clerk.post("/api/v1/counters/quay-1/finish")

    assert rejects(manager) == {"bad_device_token": 2, "bad_credentials": 3, "forbidden": 2, "body_too_large": 1}
    recent = manager.get("/api/v1/rejects").get_json()["recent"]
    assert len(recent) == 8
    assert [r["reason"] for r in recent] == ["body_too_large", "forbidden", "forbidden", "bad_credentials",
                                             "bad_credentials", "bad_credentials", "bad_device_token", "bad_device_token"]
    assert {r["source"] for r in recent} == {"http"}
    assert recent[0]["where"] == "POST /api/v1/tickets" and recent[0]["device_id"] == "kiosk-01"
    assert recent[-1]["where"] == "POST /api/v1/tickets" and recent[-1]["device_id"] is None
    assert all("guess" not in r["detail"] for r in recent)  # passwords are never logged
