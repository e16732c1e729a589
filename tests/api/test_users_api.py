"""Accounts over HTTP for admins: list, add, change role, disable, reset passwords, and the rules
that keep at least one admin able to sign in."""
from __future__ import annotations

import json

import pytest

from queue_server import accounts as account_rules
from queue_server.domain.errors import Conflict
from tests.conftest import MONDAY_9AM, PASSWORD, login

from .conftest import assert_error, rejects

NEW_PASSWORD = "mật khẩu mới rất dài"


@pytest.fixture
def admin(server, accounts):
    test_client = server.app.test_client()
    assert login(test_client, "quantri").status_code == 200
    return test_client


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """New passwords get a quick hash here; the real (slow) one is tested in test_auth_api."""
    from functools import partial

    from werkzeug.security import generate_password_hash

    monkeypatch.setattr(account_rules, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1000"))


def signed_in(server, username: str, password: str = PASSWORD):
    test_client = server.app.test_client()
    assert login(test_client, username, password).status_code == 200
    return test_client


def listed(admin) -> dict[str, dict]:
    response = admin.get("/api/v1/users")
    assert response.status_code == 200
    return {user["username"]: user for user in response.get_json()}


def user_history(server) -> list[dict]:
    return [row for row in server.store.history() if row["kind"].startswith("user_")]


# --- who may --------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"username": "le-thi-cuc", "role": "clerk"}),
    ("PATCH", "/api/v1/users/quanly", {"role": "clerk"}),
    ("POST", "/api/v1/users/quanly/password", {}),
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route[0]} {route[1]}")
def test_only_an_admin_may_use_the_accounts_routes(client, clerk, manager, admin, route):
    method, path, body = route
    assert_error(client.open(path, method=method, json=body), 401, "login_required")
    assert_error(clerk.open(path, method=method, json=body), 403, "forbidden")
    assert_error(manager.open(path, method=method, json=body), 403, "forbidden")
    assert rejects(admin) == {"forbidden": 2}
    assert listed(admin)["quanly"]["role"] == "manager"  # nothing changed
    assert "le-thi-cuc" not in listed(admin)


# --- the list --------------------------------------------------------------------------------------


def test_the_list_has_every_account_and_never_a_password_hash(admin):
    response = admin.get("/api/v1/users")
    users = response.get_json()
    assert [user["username"] for user in users] == ["nguyen-van-an", "quanly", "quantri"]
    assert users[0] == {"username": "nguyen-van-an", "role": "clerk", "disabled": False, "created_at": "2026-11-23T02:00:00.000000Z"}
    assert all(set(user) == {"username", "role", "disabled", "created_at"} for user in users)
    assert "hash" not in response.get_data(as_text=True) and "pbkdf2" not in response.get_data(as_text=True)


# --- adding ----------------------------------------------------------------------------------------


def test_an_account_added_with_a_password_signs_in_with_it(server, admin):
    response = admin.post("/api/v1/users", json={"username": "le-thi-cuc", "role": "clerk", "password": NEW_PASSWORD})
    assert response.status_code == 201
    assert response.get_json() == {"username": "le-thi-cuc", "role": "clerk", "disabled": False, "created_at": "2026-11-23T02:00:00.000000Z"}
    assert login(server.app.test_client(), "le-thi-cuc", NEW_PASSWORD).get_json() == {"username": "le-thi-cuc", "role": "clerk"}
    [entry] = user_history(server)
    assert (entry["kind"], entry["subject"], entry["actor"]) == ("user_added", "le-thi-cuc", "quantri")
    assert entry["data"] == {"username": "le-thi-cuc", "change": "added", "role": "clerk", "disabled": False, "previous_role": None}


def test_without_a_password_one_is_generated_and_shown_once(server, admin):
    response = admin.post("/api/v1/users", json={"username": "pham-van-dung", "role": "manager"})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    password = response.get_json()["password"]
    account_rules.check_password_strength(password, "pham-van-dung")
    assert login(server.app.test_client(), "pham-van-dung", password).get_json()["role"] == "manager"
    assert "password" not in listed(admin)["pham-van-dung"]
    assert password not in json.dumps(list(server.store.history()))


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"username": "Le-Thi-Cuc", "role": "clerk"}, 400, "bad_username"),
    ({"username": "c", "role": "clerk"}, 400, "bad_username"),
    ({"username": "le thi cuc", "role": "clerk"}, 400, "bad_username"),
    ({"username": "", "role": "clerk"}, 400, "invalid_input"),
    ({"username": "le-thi-cuc", "role": "boss"}, 400, "invalid_input"),
    ({"username": "le-thi-cuc"}, 400, "invalid_input"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": "ngắn"}, 400, "weak_password"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": "aaaaaaaaaaaa"}, 400, "weak_password"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": "Matkhau123"}, 400, "weak_password"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": "le-thi-cuc-2026"}, 400, "weak_password"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": "x1y2z3" * 50}, 400, "weak_password"),
    ({"username": "le-thi-cuc", "role": "clerk", "password": 12345678901}, 400, "invalid_input"),
    ({"username": "le-thi-cuc", "role": "clerk", "disabled": True}, 400, "invalid_input"),
    ({"username": "quanly", "role": "clerk"}, 409, "user_exists"),
], ids=["upper-case", "too-short", "space", "empty", "unknown-role", "no-role", "short-password", "one-letter-password",
        "common-password", "password-has-username", "password-too-long", "password-number", "unknown-key", "exists"])
def test_a_bad_new_account_is_refused_and_nothing_changes(server, admin, body, status, code):
    before = listed(admin)
    error = assert_error(admin.post("/api/v1/users", json=body), status, code)
    assert " / " in error["message"] or code == "invalid_input"  # Vietnamese / English
    assert listed(admin) == before
    assert user_history(server) == []


def test_a_body_that_is_not_json_is_415(admin):
    assert_error(admin.post("/api/v1/users", data="username=x", content_type="application/x-www-form-urlencoded"), 415)


# --- roles -----------------------------------------------------------------------------------------


def test_a_new_role_applies_to_the_signed_in_user_at_once(server, admin):
    clerk_session = signed_in(server, "nguyen-van-an")
    assert_error(clerk_session.get("/api/v1/rejects"), 403, "forbidden")
    response = admin.patch("/api/v1/users/nguyen-van-an", json={"role": "manager"})
    assert response.status_code == 200 and response.get_json()["role"] == "manager"
    assert clerk_session.get("/api/v1/rejects").status_code == 200
    entry = user_history(server)[-1]
    assert (entry["kind"], entry["actor"]) == ("user_role_changed", "quantri")
    assert entry["data"]["role"] == "manager" and entry["data"]["previous_role"] == "clerk"


def test_setting_the_same_role_changes_nothing_and_records_nothing(server, admin):
    assert admin.patch("/api/v1/users/quanly", json={"role": "manager"}).get_json()["role"] == "manager"
    assert user_history(server) == []


@pytest.mark.parametrize(("body", "code"), [
    ({}, "invalid_input"),
    ({"role": "boss"}, "invalid_input"),
    ({"role": None, "disabled": None}, "invalid_input"),
    ({"disabled": "yes"}, "invalid_input"),
    ({"disabled": 1}, "invalid_input"),
    ({"password": NEW_PASSWORD}, "invalid_input"),
])
def test_a_bad_change_is_400_and_changes_nothing(server, admin, body, code):
    before = listed(admin)
    assert_error(admin.patch("/api/v1/users/quanly", json=body), 400, code)
    assert listed(admin) == before and user_history(server) == []


def test_changing_an_unknown_account_is_404(admin):
    assert_error(admin.patch("/api/v1/users/khong-co-ai", json={"role": "clerk"}), 404, "unknown_user")
    assert_error(admin.post("/api/v1/users/khong-co-ai/password", json={}), 404, "unknown_user")


# --- disabling -------------------------------------------------------------------------------------


def test_disabling_ends_the_sessions_and_refuses_logins_until_enabled(server, admin):
    clerk_session = signed_in(server, "nguyen-van-an")
    response = admin.patch("/api/v1/users/nguyen-van-an", json={"disabled": True})
    assert response.status_code == 200 and response.get_json()["disabled"] is True
    assert_error(clerk_session.get("/api/v1/me"), 401, "login_required")
    assert_error(clerk_session.post("/api/v1/counters/quay-1/open"), 401, "login_required")
    assert_error(login(server.app.test_client(), "nguyen-van-an"), 401, "bad_credentials")

    assert admin.patch("/api/v1/users/nguyen-van-an", json={"disabled": False}).get_json()["disabled"] is False
    # Re-enabled: a new login works, the session cut off before does not come back.
    assert_error(clerk_session.get("/api/v1/me"), 401, "login_required")
    assert signed_in(server, "nguyen-van-an").get("/api/v1/me").status_code == 200
    assert [(e["kind"], e["actor"]) for e in user_history(server)] == [("user_disabled", "quantri"), ("user_enabled", "quantri")]


def test_a_session_cookie_kept_from_before_disabling_stays_refused(server, admin):
    """The cookie is signed, not stored: replaying it after re-enabling must not sign anyone in."""
    clerk_session = signed_in(server, "nguyen-van-an")
    cookie = clerk_session.get_cookie("session").value
    admin.patch("/api/v1/users/nguyen-van-an", json={"disabled": True})
    admin.patch("/api/v1/users/nguyen-van-an", json={"disabled": False})
    replay = server.app.test_client()
    replay.set_cookie("session", cookie)
    assert_error(replay.get("/api/v1/me"), 401, "login_required")


# --- the admins that must remain -------------------------------------------------------------------


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(server, admin):
    for body in ({"role": "manager"}, {"disabled": True}, {"role": "clerk", "disabled": True}):
        error = assert_error(admin.patch("/api/v1/users/quantri", json=body), 409, "last_admin")
        assert error["message"].startswith("Đây là quản trị viên cuối cùng") and "/ This is the last enabled admin" in error["message"]
    assert listed(admin)["quantri"] == {"username": "quantri", "role": "admin", "disabled": False, "created_at": "2026-11-23T02:00:00.000000Z"}
    assert admin.get("/api/v1/me").status_code == 200
    assert user_history(server) == []


def test_an_admin_cannot_demote_or_disable_themself_but_may_another_admin(server, admin):
    admin.post("/api/v1/users", json={"username": "quantri-2", "role": "admin", "password": NEW_PASSWORD})
    for body in ({"role": "manager"}, {"disabled": True}):
        error = assert_error(admin.patch("/api/v1/users/quantri", json=body), 409, "own_account")
        assert "/ You cannot demote or disable your own account" in error["message"]
    assert admin.patch("/api/v1/users/quantri-2", json={"role": "manager"}).status_code == 200
    assert admin.patch("/api/v1/users/quantri-2", json={"role": "admin"}).status_code == 200
    assert admin.patch("/api/v1/users/quantri-2", json={"disabled": True}).status_code == 200
    # quantri-2 is disabled: quantri is the last enabled admin again.
    assert_error(admin.patch("/api/v1/users/quantri", json={"role": "clerk"}), 409, "last_admin")
    # Enabling or promoting is never refused, the own account included.
    assert admin.patch("/api/v1/users/quantri", json={"role": "admin", "disabled": False}).status_code == 200


def test_the_last_admin_rule_holds_for_any_caller_not_only_the_api(server, accounts):
    """The rule lives in accounts.update_account: the command line (actor None) meets it too."""
    with pytest.raises(Conflict) as raised:
        account_rules.update_account(server.store, "quantri", disabled=True, actor=None, at=MONDAY_9AM, tz=server.config.tz)
    assert raised.value.code == "last_admin"
    assert server.store.get_user("quantri")["disabled"] == 0


def test_a_disabled_admin_cannot_act(server, admin):
    admin.post("/api/v1/users", json={"username": "quantri-2", "role": "admin", "password": NEW_PASSWORD})
    second = signed_in(server, "quantri-2", NEW_PASSWORD)
    assert admin.patch("/api/v1/users/quantri-2", json={"disabled": True}).status_code == 200
    assert_error(second.patch("/api/v1/users/quantri", json={"disabled": True}), 401, "login_required")
    assert listed(admin)["quantri"]["disabled"] is False


# --- passwords -------------------------------------------------------------------------------------


def test_a_generated_password_replaces_the_old_one_and_ends_the_sessions(server, admin):
    clerk_session = signed_in(server, "nguyen-van-an")
    response = admin.post("/api/v1/users/nguyen-van-an/password")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"username", "password"} and body["username"] == "nguyen-van-an"
    assert_error(clerk_session.get("/api/v1/me"), 401, "login_required")
    assert_error(login(server.app.test_client(), "nguyen-van-an", PASSWORD), 401, "bad_credentials")
    assert signed_in(server, "nguyen-van-an", body["password"]).get("/api/v1/me").status_code == 200
    entry = user_history(server)[-1]
    assert (entry["kind"], entry["subject"], entry["actor"]) == ("user_password_reset", "nguyen-van-an", "quantri")
    assert body["password"] not in json.dumps(entry)


def test_a_given_password_is_set_and_not_echoed(server, admin):
    response = admin.post("/api/v1/users/nguyen-van-an/password", json={"password": NEW_PASSWORD})
    assert response.status_code == 200 and response.get_json() == {"username": "nguyen-van-an"}
    assert signed_in(server, "nguyen-van-an", NEW_PASSWORD).get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(("body", "code"), [
    ({"password": "ngắn"}, "weak_password"),
    ({"password": "12345678"}, "weak_password"),
    ({"password": "nguyen-van-an!"}, "weak_password"),
    ({"password": 12345678}, "invalid_input"),
    ({"password": NEW_PASSWORD, "role": "admin"}, "invalid_input"),
])
def test_a_bad_new_password_is_refused_and_the_old_one_still_works(server, admin, body, code):
    assert_error(admin.post("/api/v1/users/nguyen-van-an/password", json=body), 400, code)
    assert login(server.app.test_client(), "nguyen-van-an").status_code == 200
    assert user_history(server) == []


def test_an_admin_resetting_their_own_password_stays_signed_in(server, admin):
    other_admin_session = signed_in(server, "quantri")
    assert admin.post("/api/v1/users/quantri/password", json={"password": NEW_PASSWORD}).status_code == 200
    assert admin.get("/api/v1/users").status_code == 200
    assert_error(other_admin_session.get("/api/v1/me"), 401, "login_required")  # e.g. a forgotten browser elsewhere


def test_a_disabled_account_may_get_a_new_password_and_stays_disabled(server, admin):
    admin.patch("/api/v1/users/nguyen-van-an", json={"disabled": True})
    assert admin.post("/api/v1/users/nguyen-van-an/password", json={"password": NEW_PASSWORD}).status_code == 200
    assert_error(login(server.app.test_client(), "nguyen-van-an", NEW_PASSWORD), 401, "bad_credentials")
    assert listed(admin)["nguyen-van-an"]["disabled"] is True
