"""Accounts for admins: list, add, change role, disable or re-enable, reset a password."""
from __future__ import annotations

from flask import Blueprint, jsonify, request, session
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import accounts
from . import actor, parse_body, require_role, service

bp = Blueprint("users", __name__, url_prefix="/api/v1/users")

ROLE_PATTERN = r"^(clerk|manager|admin)$"


class UserIn(BaseModel):
    """A new account; without `password` one is generated and returned once."""

    model_config = ConfigDict(strict=True, extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern=ROLE_PATTERN)
    password: str | None = Field(default=None, max_length=1024)


class UserChangeIn(BaseModel):
    """A new role and/or disabled state (at least one)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    role: str | None = Field(default=None, pattern=ROLE_PATTERN)
    disabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> "UserChangeIn":
        if self.role is None and self.disabled is None:
            raise ValueError("give role and/or disabled")
        return self


class PasswordIn(BaseModel):
    """A new password; without it (or with no body at all) one is generated and returned once."""

    model_config = ConfigDict(strict=True, extra="forbid")
    password: str | None = Field(default=None, max_length=1024)


def _context() -> dict:
    svc = service()
    return {"actor": actor(), "at": svc.now(), "tz": svc.config.tz}


def _no_store(response):
    # A generated password is in the body: no cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@require_role("admin")
def list_users():
    return jsonify(accounts.list_accounts(service().store))


@bp.post("")
@require_role("admin")
def add_user():
    body = parse_body(UserIn)
    account, generated = accounts.create_account(service().store, body.username, body.role, body.password, **_context())
    if generated is not None:
        account["password"] = generated
    return _no_store(jsonify(account)), 201


@bp.patch("/<username>")
@require_role("admin")
def change_user(username: str):
    body = parse_body(UserChangeIn)
    return jsonify(accounts.update_account(service().store, username, role=body.role, disabled=body.disabled, **_context()))


@bp.post("/<username>/password")
@require_role("admin")
def reset_password(username: str):
    password = parse_body(PasswordIn).password if request.content_length else None
    context = _context()
    generated, epoch = accounts.reset_password(service().store, username, password, **context)
    if username == context["actor"]:
        # Every session of the account ended, this one too: keep the admin who did it signed in.
        session["epoch"] = epoch
    body: dict = {"username": username}
    if generated is not None:
        body["password"] = generated
    return _no_store(jsonify(body))
