"""The clerk's counter actions: open, next, recall, start, no-show, finish, transfer, close."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from ..config import ID_PATTERN
from ..domain.counters import Action
from . import ApiError, parse_body, require_role, service

bp = Blueprint("counters", __name__, url_prefix="/api/v1/counters")

# URL spelling (no-show) -> action; every action has its own path, as in PROTOCOL.md.
ACTIONS = {"open": Action.OPEN, "close": Action.CLOSE, "next": Action.NEXT, "recall": Action.RECALL, "start": Action.START,
           "no-show": Action.NO_SHOW, "finish": Action.FINISH, "transfer": Action.TRANSFER}


class TransferIn(BaseModel):
    model_config = ConfigDict(strict=True)
    field: str | None = Field(default=None, pattern=ID_PATTERN)
    counter: str | None = Field(default=None, pattern=ID_PATTERN)
    keep_place: bool | None = None


@bp.get("")
def list_counters():
    svc = service()
    return jsonify([svc.counter_view(counter.id) for counter in svc.config.counters])


@bp.get("/<counter_id>")
def get_counter(counter_id: str):
    return jsonify(service().counter_view(counter_id))


@bp.post("/<counter_id>/<action_name>")
@require_role("clerk")
def counter_action(counter_id: str, action_name: str):
    action = ACTIONS.get(action_name)
    if action is None:
        raise ApiError(404, "unknown_action", f"Không có thao tác '{action_name}' / Unknown action '{action_name}'")
    transfer = TransferIn()
    if action is Action.TRANSFER:
        transfer = parse_body(TransferIn)
    elif request.content_length:
        # Other actions take no body; a JSON body is accepted only if it is well-formed.
        if request.mimetype == "application/json" and request.get_json(silent=True) is None:
            raise ApiError(400, "invalid_input", "JSON không hợp lệ / Invalid JSON body")
    view = service().counter_action(
        counter_id, action, clerk_id=g.user["username"],
        transfer_field=transfer.field, transfer_counter=transfer.counter, keep_place=transfer.keep_place,
    )
    return jsonify(view)
