"""The operations side's mutable state of one app (an aiohttp app's keys are frozen once it starts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["OpsState", "ops_state_key"]


@dataclass
class OpsState:
    #: set when a SIGTERM/SIGINT started the graceful stop: /readyz answers 503 from then on
    stopping: bool = False
    #: ``KeyState.as_dict()`` of the PII key check at start-up (``/healthz`` and ``/readyz`` show it)
    pii_key: dict[str, Any] = field(default_factory=dict)


ops_state_key = web.AppKey("ops_state", OpsState)
