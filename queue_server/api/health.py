"""Health and the API's own description."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from . import service
from .openapi import openapi_document

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    store = service().store
    try:
        db = store.check()
    except Exception as exc:  # reported, not raised: health must answer even when the disk fails
        db = f"error: {exc}"
    if db == "ok" and store.storage_full is not None:
        db = f"full: {store.storage_full}"  # readable, but the last write failed for want of space
    mqtt = current_app.extensions["motcua.mqtt_status"]()
    ok = db == "ok" and mqtt in ("connected", "disabled")
    return jsonify({"status": "ok" if ok else "degraded", "db": db, "mqtt": mqtt}), 200 if ok else 503


@bp.get("/api/v1/openapi.json")
def openapi():
    return jsonify(openapi_document())
