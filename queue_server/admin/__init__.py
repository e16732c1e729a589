"""Admin pages: the accounts page (GET /admin/accounts) and its static files.

The page is a static file filled in by its script through /api/v1/users; the check here only
decides what the browser is first given: the page (it shows its sign-in form when nobody is
signed in), or a 403 for a signed-in clerk or manager. Every change still goes through the API,
which checks the admin role again on each request.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from ..accounts import role_at_least
from ..api import current_user, record_reject

STATIC_DIR = Path(__file__).with_name("static")

bp = Blueprint("admin", __name__, static_folder="static", static_url_path="/admin/static")


@bp.get("/admin/accounts")
def accounts_page():
    user = current_user()
    forbidden = user is not None and not role_at_least(user["role"], "admin")
    if forbidden:
        record_reject("forbidden", f"{user['username']} ({user['role']}) needs admin")
    # The same page either way: for a clerk or manager its script shows "not allowed" and a
    # sign-out button, so an admin can sign in on the same screen.
    response = Response((STATIC_DIR / "accounts.html").read_bytes(), status=403 if forbidden else 200, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response
