"""The accounts page in a real Chromium: an admin signs in, adds an account, resets its password
(the new one then signs in), changes its role and disables it (its login is then refused)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, login

from .conftest import screenshot

pytestmark = pytest.mark.slow


def can_sign_in(server, username: str, password: str) -> bool:
    return login(server.app.test_client(), username, password).status_code == 200


def test_an_admin_manages_an_account_from_the_page(page, live, server, people) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # the page asks before a reset or a disable
    page.goto(f"{live.url}/admin/accounts")
    body = page.locator("body")
    expect(body).to_have_attribute("data-view", "login")
    expect(page.locator("#site")).to_contain_text("Trung tâm Phục vụ hành chính công (thử)")

    page.fill("#username", people["admin"])
    page.fill("#password", "not the password")
    page.click("#login button[type=submit]")
    expect(page.locator("#message")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu / Wrong username or password")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    expect(body).to_have_attribute("data-view", "accounts")
    expect(page.locator("#users tr")).to_have_count(3)
    own = page.locator("#users tr[data-username='quantri']")
    expect(own.locator("select.role")).to_be_disabled()  # an admin cannot demote themself here
    expect(own.locator("button.disable")).to_be_disabled()

    # Add a clerk without typing a password: one is generated and shown once.
    page.fill("#new-username", "le-thi-cuc")
    page.select_option("#new-role", "clerk")
    page.click("#add button[type=submit]")
    expect(page.locator("#message")).to_have_text("Đã thêm tài khoản le-thi-cuc / Account le-thi-cuc added")
    expect(page.locator("#once")).to_be_visible()
    expect(page.locator("#once-username")).to_have_text("le-thi-cuc")
    first_password = page.locator("#once-password").inner_text()
    row = page.locator("#users tr[data-username='le-thi-cuc']")
    expect(row.locator("select.role")).to_have_value("clerk")
    expect(row.locator(".state")).to_contain_text("Đang hoạt động")
    assert can_sign_in(server, "le-thi-cuc", first_password)

    # A mistake is explained in both languages and changes nothing.
    page.fill("#new-username", "le-thi-cuc")
    page.fill("#new-password", "12345678")
    page.click("#add button[type=submit]")
    expect(page.locator("#message")).to_have_text("Mật khẩu quá phổ biến, dễ đoán / Password too common, easy to guess")
    expect(page.locator("#users tr")).to_have_count(4)
    page.click("#once-close")
    expect(page.locator("#once")).to_be_hidden()

    # Reset the password: the new one signs in, the first one no longer does.
    row.locator("button.reset").click()
    expect(page.locator("#message")).to_have_text("Đã đặt lại mật khẩu của le-thi-cuc / Password of le-thi-cuc reset")
    new_password = page.locator("#once-password").inner_text()
    assert new_password and new_password != first_password
    assert can_sign_in(server, "le-thi-cuc", new_password)
    assert not can_sign_in(server, "le-thi-cuc", first_password)

    # Change the role.
    row.locator("select.role").select_option("manager")
    expect(page.locator("#message")).to_contain_text("le-thi-cuc is now Manager")
    expect(row.locator("select.role")).to_have_value("manager")
    assert server.store.get_user("le-thi-cuc")["role"] == "manager"

    # Disable: the login is refused from then on.
    row.locator("button.disable").click()
    expect(page.locator("#message")).to_have_text("Đã khoá le-thi-cuc / le-thi-cuc is disabled")
    expect(row.locator(".state")).to_contain_text("Đã khoá")
    expect(row).to_have_attribute("data-disabled", "true")
    assert not can_sign_in(server, "le-thi-cuc", new_password)
    expect(row.locator("button.enable")).to_be_visible()
    screenshot(page, "accounts.png")

    kinds = [(entry["kind"], entry["subject"], entry["actor"]) for entry in server.store.history() if entry["kind"].startswith("user_")]
    assert kinds == [("user_added", "le-thi-cuc", "quantri"), ("user_password_reset", "le-thi-cuc", "quantri"),
                     ("user_role_changed", "le-thi-cuc", "quantri"), ("user_disabled", "le-thi-cuc", "quantri")]


def test_a_manager_signing_in_is_told_the_page_is_for_admins(page, live, people) -> None:
    page.goto(f"{live.url}/admin/accounts")
    page.fill("#username", people["manager"])
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-view", "forbidden")
    expect(page.locator("#forbidden")).to_contain_text("Không đủ quyền")
    expect(page.locator("#forbidden")).to_contain_text("Not allowed for your role")
    response = page.reload()
    assert response.status == 403  # the server says so too, once the manager is signed in
    expect(page.locator("body")).to_have_attribute("data-view", "forbidden")
    page.click("#forbidden-logout")
    expect(page.locator("body")).to_have_attribute("data-view", "login")
    screenshot(page, "accounts-signed-out.png")
