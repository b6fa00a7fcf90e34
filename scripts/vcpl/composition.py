"""Which components an overlay composes, and which ones its run book calls for."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vcpl import yamlio
from vcpl.runbook import FIX_LAYERS, Runbook

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


def expected(rb: Runbook, env: str) -> list[str]:
    """The components the run book's facts call for in one environment."""
    services = rb["services"]
    network = rb["environments"][env]["network"]
    wanted = {
        "credentials": any(s["auth"].get("secretKeys") for s in services),
        "fix-initiator": any(s["protocol"]["sessionLayer"] in FIX_LAYERS for s in services),
        "tls": any(s.get("tls", {}).get("clientCertificate") for s in services),
        "tls-sidecar": any(s.get("tls", {}).get("termination") == "sidecar" for s in services),
        "multicast": any(s["environments"][e].get("channels") for s in services for e in rb["environments"]),
        "session-schedule": not rb["schedule"].get("continuous", False),
        "failover": rb["failover"]["standby"] == "hot",
        "clock-sync": bool(rb["clockSync"]["required"]),
        "vpn": network["path"] == "ipsec-vpn",
        "ip-allowlist/cilium-egress-gateway": "allowlistedSourceIP" in network,
        "ip-allowlist": True,
        "observability": True,
        "venue-binding": True,
    }
    return sorted(name for name, needed in wanted.items() if needed)


# Components whose presence depends on the run book; the rest are always composed.
CONDITIONAL = ("credentials", "fix-initiator", "tls", "tls-sidecar", "multicast", "session-schedule",
               "failover", "clock-sync", "vpn", "ip-allowlist/cilium-egress-gateway")
