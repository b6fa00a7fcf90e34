"""Endpoint look-ups shared by the profile and the engine-specific renderers."""
from __future__ import annotations

from typing import Any

from vcpl.runbook import Runbook

# stunnel listens on 127.0.0.1 from this port upwards, one port per venue endpoint it wraps.
STUNNEL_FIRST_LOCAL_PORT = 16000


def endpoint_roles(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Endpoints in failover order: primary, backup, dr."""
    eps = spec.get("endpoints", {})
    return [(role, eps[role]) for role in ("primary", "backup", "dr") if role in eps]


def reachable_endpoints(rb: Runbook, env: str) -> list[dict[str, Any]]:
    """Every unicast endpoint the gateway connects to in `env` (sessions and recovery)."""
    found = []
    for service in rb["services"]:
        spec = service["environments"][env]
        found += [ep for _, ep in endpoint_roles(spec)]
        found += [r["endpoint"] for r in spec.get("recovery", [])]
    return found


def tls_services(rb: Runbook) -> list[dict[str, Any]]:
    return [s for s in rb["services"] if s.get("tls", {}).get("required")]


def sidecar_endpoints(rb: Runbook, env: str) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(service, role, endpoint) wrapped by the stunnel sidecar, in local-port order."""
    found = []
    for service in tls_services(rb):
        if service["tls"].get("termination") == "sidecar":
            found += [(service, role, ep) for role, ep in endpoint_roles(service["environments"][env])]
    return found


def sidecar_ports(rb: Runbook, env: str) -> dict[tuple[str, str], int]:
    return {
        (svc["name"], role): STUNNEL_FIRST_LOCAL_PORT + index
        for index, (svc, role, _) in enumerate(sidecar_endpoints(rb, env))
    }
