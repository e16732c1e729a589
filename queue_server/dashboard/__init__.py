"""The manager dashboard (GET /manage) and the figures it shows (GET /api/v1/stats/breakdown)."""
from __future__ import annotations

from .views import bp

__all__ = ["bp"]
