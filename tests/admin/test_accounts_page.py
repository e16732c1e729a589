"""GET /admin/accounts without a browser: who gets the page, who gets 403, its files are served."""
from __future__ import annotations

from tests.conftest import login


def test_nobody_signed_in_gets_the_page_with_its_sign_in_form(client):
    response = client.get("/admin/accounts")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<form id="login"' in html and "Quản lý tài khoản" in html and "Accounts" in html
    assert response.headers["Cache-Control"] == "no-store"


def test_an_admin_gets_the_page(server, people):
    admin = server.app.test_client()
    login(admin, people["admin"])
    assert admin.get("/admin/accounts").status_code == 200


def test_a_manager_or_a_clerk_gets_403_and_it_is_recorded(server, people):
    for role in ("manager", "clerk"):
        browser = server.app.test_client()
        login(browser, people[role])
        response = browser.get("/admin/accounts")
        assert response.status_code == 403 and response.mimetype == "text/html"
        assert "Không đủ quyền" in response.get_data(as_text=True)  # the page's own "not allowed" panel
    assert server.store.reject_counts() == {"forbidden": 2}


def test_the_pages_files_are_served(client):
    for name, mimetype in (("accounts.js", "text/javascript"), ("accounts.css", "text/css")):
        response = client.get(f"/admin/static/{name}")
        assert response.status_code == 200 and response.mimetype == mimetype
        response.close()
    assert client.get("/admin/static/nothing.js").status_code == 404
