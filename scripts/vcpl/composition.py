"""Which components an overlay composes, and which ones its run book calls for."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vcpl import protocols, yamlio
from vcpl.runbook import Runbook, allowlisted_network, vpn_network

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_NAMES:
        path = directory / name
        if path.is_file():
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=yamlio.SafeLoader)
            return data if isinstance(data, dict) else {}
    return {}


def composed(overlay_dir: Path, components_root: Path) -> list[str]:
    """Components reached from an overlay through `components:` and `resources:` folders, by their
    path under components/ ("vpn", "ip-allowlist/cilium-egress-gateway")."""
    found: list[str] = []
    seen: set[Path] = set()
    root = components_root.resolve()

    def walk(directory: Path) -> None:
        directory = directory.resolve()
        if directory in seen:
            return
        seen.add(directory)
        if directory.is_relative_to(root) and directory != root:
            name = str(directory.relative_to(root))
            if name not in found:
                found.append(name)
        data = _kustomization(directory)
        for entry in (data.get("resources") or []) + (data.get("components") or []):
            target = directory / str(entry)
            if target.is_dir():
                walk(target)

    walk(overlay_dir)
    return found


# The order compositions list components in (venue-binding last: it labels what the others add).
VENUE_ORDER = ("credentials", "fix-initiator", "tls", "tls-sidecar", "ip-allowlist", "multicast", "observability",
               "failover", "session-schedule", "clock-sync", "venue-binding")


def venue_components(rb: Runbook) -> list[str]:
    """The components a run book calls for in venues/<id>/kustomization.yaml, in composition order."""
    services = rb["services"]
    wanted = {
        "credentials": any(s["auth"].get("secretKeys") for s in services),
        "fix-initiator": any(protocols.is_quickfix(s) for s in services),
        "tls": any(s.get("tls", {}).get("clientCertificate") is True for s in services),
        "tls-sidecar": any(s.get("tls", {}).get("termination") == "sidecar" for s in services),
        "multicast": any(s["environments"][e].get("channels") for s in services for e in rb["environments"]),
        "session-schedule": not rb["schedule"].get("continuous", False),
        "failover": rb["failover"]["standby"] == "hot",
        "clock-sync": rb["clockSync"]["required"] is True,
    }
    return [name for name in VENUE_ORDER if wanted.get(name, True)]


def expected(rb: Runbook, env: str) -> list[str]:
    """The components the run book's facts call for in one environment's overlay."""
    # Components an overlay adds for its own environment, beside the venue's composition: one per
    # network path that needs it.
    per_env = {"vpn": vpn_network(rb, env) is not None, "ip-allowlist/cilium-egress-gateway": allowlisted_network(rb, env) is not None}
    return sorted(venue_components(rb) + [name for name, needed in per_env.items() if needed])

