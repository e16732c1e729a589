"""Signing in and out for clerks, managers and admins (a signed session cookie)."""
from __future__ import annotations

from flask import Blueprint, jsonify, session
from pydantic import BaseModel, ConfigDict, Field

from ..accounts import authenticate
from . import ApiError, current_user, parse_body, record_reject, service

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


class LoginIn(BaseModel):
    model_config = ConfigDict(strict=True)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@bp.post("/login")
def login():
    body = parse_body(LoginIn)
    user = authenticate(service().store, body.username, body.password)
    if user is None:
        record_reject("bad_credentials", f"failed login for {body.username!r}")
        raise ApiError(401, "bad_credentials", "Sai tên đăng nhập hoặc mật khẩu / Wrong username or password")
    session.clear()
    session["username"] = user["username"]
    session["epoch"] = user["session_epoch"]  # see current_user: ending sessions raises it
    return jsonify({"username": user["username"], "role": user["role"]})


@bp.post("/logout")
def logout():
    session.clear()
    return jsonify({"ok": True})


@bp.get("/me")
def me():
    user = current_user()
    if user is None:
        raise ApiError(401, "login_required", "Cần đăng nhập / Login required")
    return jsonify({"username": user["username"], "role": user["role"]})
