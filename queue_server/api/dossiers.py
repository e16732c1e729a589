"""Dossiers (hồ sơ): received with an appointment date, paused, returned, imported in bulk."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from ..config import ID_PATTERN
from . import ApiError, actor, parse_body, require_role, service

bp = Blueprint("dossiers", __name__, url_prefix="/api/v1/dossiers")


class DossierIn(BaseModel):
    model_config = ConfigDict(strict=True)
    code: str = Field(min_length=1, max_length=64)
    procedure: str = Field(min_length=1, max_length=300)
    field: str = Field(pattern=ID_PATTERN)
    channel: str = Field(default="in_person", pattern=r"^(in_person|online)$")
    working_days: int | None = Field(default=None, ge=1, le=365)
    due_date: dt.date | None = None
    ticket: str | None = Field(default=None, min_length=1, max_length=64)


class DayIn(BaseModel):
    model_config = ConfigDict(strict=True)
    on: dt.date | None = None


class RescheduleIn(BaseModel):
    """A new date for the result, and why it is late (its length is the domain's rule, 1–500)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    reason: str = Field(max_length=4000)
    new_due_date: dt.date


def _optional_day() -> dt.date | None:
    if not request.content_length:
        return None
    return parse_body(DayIn).on


@bp.post("")
@require_role("clerk")
def receive():
    body = parse_body(DossierIn)
    view = service().receive_dossier(
        body.code, body.procedure, body.field, channel=body.channel,
        working_days=body.working_days, due_date=body.due_date, ticket_id=body.ticket, actor=actor(),
    )
    return jsonify(view), 201


@bp.get("")
@require_role("clerk")
def list_dossiers():
    svc = service()
    open_only = request.args.get("open") in ("1", "true")
    return jsonify([svc.dossier_view(d) for d in svc.store.dossiers_list(open_only=open_only)])


@bp.get("/<code>")
@require_role("clerk")
def get_dossier(code: str):
    return jsonify(service().get_dossier(code))


@bp.post("/<code>/return")
@require_role("clerk")
def return_result(code: str):
    return jsonify(service().return_dossier(code, returned_on=_optional_day(), actor=actor()))


@bp.post("/<code>/pause")
@require_role("clerk")
def pause(code: str):
    return jsonify(service().pause_dossier(code, on=_optional_day(), actor=actor()))


@bp.post("/<code>/resume")
@require_role("clerk")
def resume(code: str):
    return jsonify(service().resume_dossier(code, on=_optional_day(), actor=actor()))


@bp.post("/<code>/reschedule")
@require_role("clerk")
def reschedule(code: str):
    body = parse_body(RescheduleIn)
    return jsonify(service().reschedule_dossier(code, body.reason, body.new_due_date, actor=actor()))


@bp.post("/import")
@require_role("clerk")
def import_dossiers():
    """CSV as the body (text/csv) or as the file of a form upload (field `file`)."""
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else request.get_data()
    try:
        text = raw.decode("utf-8-sig")  # spreadsheets often write a BOM
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_utf8", "Tệp phải là UTF-8 / The file must be UTF-8") from None
    return jsonify(service().import_dossiers(text, actor=actor())), 201
