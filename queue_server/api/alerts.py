"""Alerts for managers: those open now and those cleared recently (GET /api/v1/alerts)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..alerts_runner import alerts_payload
from . import require_role, service

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")


@bp.get("/alerts")
@require_role("manager")
def alerts():
    # Read only: the rules are evaluated by the server's alert thread, never by a GET.
    return jsonify(alerts_payload(service()))
