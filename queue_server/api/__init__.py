"""The HTTP API: a Flask app factory, JSON errors, sessions for people and tokens for devices."""
from __future__ import annotations

import logging
from functools import wraps

from flask import Flask, g, jsonify, request, session
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from ..accounts import device_for_token, role_at_least
from ..domain.errors import DomainError
from ..service import QueueService
from ..store import StorageFull

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024
MAX_IMPORT_BODY = 10 * 1024 * 1024
# Endpoints allowed a larger body than MAX_JSON_BODY.
BODY_LIMITS = {"dossiers.import_dossiers": MAX_IMPORT_BODY}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: object = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: object = None):
    body: dict = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return jsonify({"error": body}), status


def service() -> QueueService:
    from flask import current_app

    return current_app.extensions["motcua.service"]


def record_reject(reason: str, detail: str) -> None:
    svc = service()
    device_id = g.get("device_id")
    header = request.headers.get("Authorization", "")
    if device_id is None and header.startswith("Bearer "):
        # Rejected before authentication (e.g. an oversize body): still name the device if known.
        device_id = device_for_token(svc.store, header[len("Bearer "):].strip())
    svc.store.add_reject(svc.now(), "http", f"{request.method} {request.path}", reason, detail, device_id=device_id)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body validated into `model`, or a 400 naming each bad field."""
    if request.mimetype != "application/json":
        raise ApiError(415, "json_required", "Cần gửi JSON (Content-Type: application/json) / A JSON body is required")
    raw = request.get_data(cache=True)
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        details = [
            {"path": ".".join(str(part) for part in error["loc"]) or "(body)", "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ApiError(400, "invalid_input", "Dữ liệu không hợp lệ / Invalid input", details) from None


def current_user() -> dict | None:
    username = session.get("username")
    if not username:
        return None
    user = service().store.get_user(username)
    # A disabled account, or one whose sessions were ended (disabled, re-enabled, new
    # password) after this cookie was signed, is signed out for good.
    if user is None or user["disabled"] or session.get("epoch", 0) != user["session_epoch"]:
        session.clear()
        return None
    return user


def _bearer_device() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    device_id = device_for_token(service().store, header[len("Bearer "):].strip())
    if device_id is None:
        record_reject("bad_device_token", "unknown or revoked device token")
        raise ApiError(401, "bad_device_token", "Mã thiết bị không hợp lệ / Invalid device token")
    return device_id


def require_role(minimum: str):
    """Only a signed-in person with at least this role (clerk < manager < admin)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                raise ApiError(401, "login_required", "Cần đăng nhập / Login required")
            if not role_at_least(user["role"], minimum):
                record_reject("forbidden", f"{user['username']} ({user['role']}) needs {minimum}")
                raise ApiError(403, "forbidden", "Không đủ quyền / Not allowed for your role")
            g.user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_device_or_role(minimum: str):
    """A device with its token, or a signed-in person with at least this role."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            device_id = _bearer_device()
            if device_id is not None:
                g.device_id = device_id
                return view(*args, **kwargs)
            return require_role(minimum)(view)(*args, **kwargs)

        return wrapped

    return decorator


def actor() -> str | None:
    user = g.get("user")
    return user["username"] if user else g.get("device_id")


def create_app(svc: QueueService, *, secret_key: str, mqtt_status=None) -> Flask:
    """`mqtt_status` is a callable giving the broker link's state for /healthz."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        MAX_CONTENT_LENGTH=MAX_JSON_BODY,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["motcua.service"] = svc
    app.extensions["motcua.mqtt_status"] = mqtt_status or (lambda: "disabled")

    from display_board import board

    from .. import admin, dashboard
    from . import alerts, auth, counters, dossiers, exports, health, stats, tickets, users

    for module in (health, auth, tickets, counters, dossiers, stats, exports, board, dashboard, users, admin, alerts):
        app.register_blueprint(module.bp)

    @app.before_request
    def _limit_body():
        # Every route, whether it reads its body or not: an oversize body is refused up front.
        limit = BODY_LIMITS.get(request.endpoint or "", MAX_JSON_BODY)
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.details or None)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}.get(
            exc.code or 500, "http_error"
        )
        if exc.code == 413:
            record_reject("body_too_large", f"{request.content_length} bytes")
        response, status = error_response(exc.code or 500, code, exc.description or code)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response, status

    @app.errorhandler(StorageFull)
    def _storage_full(exc: StorageFull):
        # Everything was rolled back: the client may send the same request again later.
        log.error("disk full on %s %s: %s", request.method, request.path, exc)
        return error_response(507, "storage_full", "Máy chủ hết chỗ lưu trữ, chưa ghi được gì; vui lòng thử lại sau "
                                                   "và báo kỹ thuật viên / The server's disk is full: nothing was saved; "
                                                   "try again later and tell the technician")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Lỗi máy chủ, đã ghi lại / Server error, it has been logged")

    return app


def parse_day(value: str | None, name: str):
    from datetime import date

    if value is None:
        raise ApiError(400, "invalid_input", f"Thiếu tham số '{name}' / Missing parameter '{name}'")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_input", f"'{name}' phải có dạng YYYY-MM-DD / '{name}' must be YYYY-MM-DD") from None
