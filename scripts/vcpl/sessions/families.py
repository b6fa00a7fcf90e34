"""Which simulator and reference client rehearse a service: chosen by its session layer's facts in
the protocol registry (venues/protocols.yaml), never by venue name."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vcpl import protocols
from vcpl.sessions.site import Finding

if TYPE_CHECKING:
    from vcpl.sessions.sandbox import Context

# family -> module under vcpl.sessions exposing rehearse(ctx, services) -> list[Finding]
FAMILIES = {
    "fix": "vcpl.sessions.fix",              # QuickFIX acceptor + the QuickFIX engine as client
    "binary": "vcpl.sessions.binary",        # SoupBinTCP, FIXP and the other binary session layers
    "feed": "vcpl.sessions.feeds",           # multicast A/B lines and the recovery services
    "websocket": "vcpl.sessions.websocket",  # WebSocket feeds
}


def family_of(service: dict[str, Any]) -> str:
    layer = protocols.layer(str(service["protocol"]["sessionLayer"]))
    if layer.get("engine") == "quickfix":
        return "fix"
    return {"tcp": "binary", "multicast": "feed", "websocket": "websocket"}[layer["transport"]]


def rehearse(ctx: Context, only: list[str] | None = None) -> list[Finding]:
    by_family: dict[str, list[dict[str, Any]]] = {}
    for service in ctx.site.runbook["services"]:
        by_family.setdefault(family_of(service), []).append(service)
    findings: list[Finding] = []
    for family, services in by_family.items():
        if only and family not in only:
            continue
        run: Callable[[Context, list[dict[str, Any]]], list[Finding]] = importlib.import_module(FAMILIES[family]).rehearse
        findings += run(ctx, services)
    return findings
