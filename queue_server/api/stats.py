"""Figures for the board and managers, and the rejected-input log."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from . import parse_day, require_role, service

bp = Blueprint("stats", __name__, url_prefix="/api/v1")


@bp.get("/stats/today")
def today():
    # Public on the LAN: the lobby board shows these same figures.
    return jsonify(service().stats_today())


@bp.get("/stats/daily")
@require_role("manager")
def daily():
    first = parse_day(request.args.get("from"), "from")
    last = parse_day(request.args.get("to"), "to")
    return jsonify(service().stats_daily(first, last))


@bp.get("/rejects")
@require_role("manager")
def rejects():
    store = service().store
    return jsonify({"counts": store.reject_counts(), "recent": store.recent_rejects(100)})


@bp.get("/devices")
@require_role("manager")
def devices():
    """Every device heard from or given a token: online/offline, last heard, printer state."""
    return jsonify(service().store.list_devices())
