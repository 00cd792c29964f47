"""A VictoriaMetrics server on 127.0.0.1 (kept here for the collector's tests; it lives in
tests/support/services.py with the other real servers)."""

from __future__ import annotations

from tests.support.services import VictoriaMetrics, victoria_metrics

__all__ = ["VictoriaMetrics", "victoria_metrics"]
