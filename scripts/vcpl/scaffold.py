"""Create a new venue from an archetype: a run-book skeleton with every fact to fill marked, the
composition of components the archetype needs, a README and the three overlays.

A marked value reads `FILL-IN <kind>: <what>`; `vcpl validate` lists every one by field path
before anything else, and once all are filled the venue builds and passes the gates with no other
edit (the structural choices — schedule kind, standby, clock sync, network paths — are made by
the archetype and agree with the composition).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcpl import composition, generate, paths, yamlio
from vcpl.errors import VcplError

MARK = "FILL-IN"


def fill(kind: str, what: str) -> str:
    # Hints carry no quotes, so a marked value is always one plain or quoted YAML scalar.
    assert "'" not in what and '"' not in what
    return f"{MARK} {kind}: {what}"


@dataclass(frozen=True)
class Archetype:
    description: str
    order_entry: str  # "fix", "binary" or ""
    market_data: str  # "multicast", "websocket" or ""
    paths: dict[str, str]  # env -> network path
    allowlisted: tuple[str, ...]  # envs where the venue allow-lists our source IP
    colocated: bool  # clock sync, hot standby, session schedule


ARCHETYPES = {
    "fix-cross-connect": Archetype("FIX order entry over a cross-connect", "fix", "", {"cert": "extranet", "prod": "cross-connect"}, ("prod",), True),
    "binary-order-entry-multicast": Archetype("binary order entry and multicast A/B market data", "binary", "multicast", {"cert": "ipsec-vpn", "prod": "cross-connect"}, ("prod",), True),
    "websocket-internet": Archetype("WebSocket market data over the internet", "", "websocket", {"cert": "internet", "prod": "internet"}, (), False),
    "fix-vpn": Archetype("FIX order entry over an IPsec VPN", "fix", "", {"cert": "ipsec-vpn", "prod": "ipsec-vpn"}, ("cert", "prod"), False),
}


def _endpoint(transport: str, dns: bool, source: str) -> dict[str, Any]:
    ep: dict[str, Any] = {
        "host": fill("host", "the address the venue gives for this environment" + (" (DNS name)" if dns else " (IP)")),
        "port": fill("port", "the port"),
        "transport": transport,
    }
    if transport == "wss":
        ep["path"] = fill("path", "the WebSocket request path, e.g. /v2")
    if dns:
        ep["cidrs"] = [fill("cidr", "the addresses the host name resolves into")]
        ep["cidrsSource"] = "ONBOARDING"
    ep["source"] = source
    return ep


def _service_envs(arch: Archetype, kind: str) -> dict[str, Any]:
    envs: dict[str, Any] = {}
    for env in paths.ENVIRONMENTS:
        internet = arch.paths.get(env) == "internet"
        transport = {"fix": "tls" if internet else "tcp", "binary": "tcp", "websocket": "wss", "multicast": "tcp"}[kind]
        if env == "dev":
            dev_ep = {"host": f"{fill('name', 'simulator Service name')}.venue-simulators.svc.cluster.local", "port": fill("port", "simulator port"), "transport": transport, "source": "SIMULATOR"}
            if transport == "wss":
                dev_ep["path"] = fill("path", "the WebSocket request path")
            spec: dict[str, Any] = {"endpoints": {"primary": dev_ep}}
        elif kind == "multicast":
            spec = {
                "channels": [{
                    "id": fill("number", "channel id"),
                    "name": fill("text", "channel name"),
                    "lines": {line: {"group": fill("group", f"line {line.upper()} multicast group"), "port": fill("port", f"line {line.upper()} port"), "source": "ONBOARDING"} for line in ("a", "b")},
                }],
                "recovery": [{"kind": "tcp-replay", "endpoint": _endpoint("tcp", False, "ONBOARDING")}],
            }
        else:
            spec = {"endpoints": {"primary": _endpoint(transport, internet, "ONBOARDING")}}
            if arch.colocated:
                spec["endpoints"]["backup"] = _endpoint(transport, internet, "ONBOARDING")
        if kind == "multicast" and env == "dev":
            spec = {"channels": [{"id": 1, "name": "simulated channel", "lines": {
                "a": {"group": fill("group", "simulator line A group, e.g. 239.x.y.z"), "port": fill("port", "simulator line A port"), "source": "SIMULATOR"},
                "b": {"group": fill("group", "simulator line B group"), "port": fill("port", "simulator line B port"), "source": "SIMULATOR"}}}]}
        if kind == "fix":
            spec["session"] = {"senderCompID": fill("compid", f"our SenderCompID in {env}"), "targetCompID": fill("compid", f"the TargetCompID of the venue in {env}")}
        envs[env] = spec
    return envs


def _services(arch: Archetype) -> list[dict[str, Any]]:
    services = []
    if arch.order_entry:
        fix = arch.order_entry == "fix"
        protocol: dict[str, Any] = {"name": fill("text", "protocol name"), "version": fill("text", "protocol version"),
                                    "encoding": "tag-value" if fix else "binary", "sessionLayer": "fix" if fix else fill("enum", "fixp | soupbintcp")}
        if fix:
            protocol["beginString"] = fill("enum", "FIX.4.2 | FIX.4.4 | FIXT.1.1")
        protocol["source"] = "VENUE-SPEC"
        service: dict[str, Any] = {
            "name": "order-entry", "purpose": "order-entry", "protocol": protocol, "role": "initiator",
            "heartbeat": {"mechanism": "session-heartbeat", "default": fill("number", "heartbeat interval"), "min": fill("number", "the minimum the venue accepts"),
                          "max": fill("number", "the maximum the venue accepts"), "unit": "s", "source": "VENUE-SPEC", "boundsSource": "VENUE-SPEC"},
            "sequenceReset": {"cadence": fill("enum", "weekly | daily | per-connection"), "source": "VENUE-SPEC"},
            "cancelOnDisconnect": {"mode": fill("enum", "mandatory | default-on | optional | unsupported | unknown"), "source": "VENUE-SPEC"},
            "auth": {"method": fill("enum", "password | hmac-sha256 | hmac-sha512 | rsa-pss | jwt"), "secretKeys": [fill("key", "name of a secret key, e.g. password")], "source": "VENUE-SPEC"},
            "tls": {"required": any(p == "internet" for p in arch.paths.values()), "source": "VENUE-SPEC"},
            "environments": _service_envs(arch, arch.order_entry),
        }
        if service["tls"]["required"]:
            service["tls"]["termination"] = "native"
        services.append(service)
    if arch.market_data:
        ws = arch.market_data == "websocket"
        services.append({
            "name": "market-data", "purpose": "market-data",
            "protocol": {"name": fill("text", "protocol name"), "version": fill("text", "protocol version"), "encoding": "json" if ws else "binary",
                         "sessionLayer": "websocket" if ws else fill("enum", "mdp-packet | moldudp64"), "source": "VENUE-SPEC"},
            "role": "client" if ws else "subscriber",
            "sequenceReset": {"cadence": fill("enum", "weekly | daily | none"), "source": "VENUE-SPEC"},
            "auth": {"method": "none", "source": "VENUE-SPEC"},
            **({"tls": {"required": True, "termination": "native", "source": "VENUE-SPEC"}} if ws else {}),
            "environments": _service_envs(arch, arch.market_data),
        })
    return services


def _environments(arch: Archetype) -> dict[str, Any]:
    envs: dict[str, Any] = {"dev": {"network": {"path": "in-cluster", "simulatorNamespace": "venue-simulators", "source": "SIMULATOR"}}}
    for env, path in arch.paths.items():
        network: dict[str, Any] = {"path": path}
        if env in arch.allowlisted:
            network["allowlistedSourceIP"] = fill("ip", "our source IP registered with the venue (egress gateway address)")
            network["allowlistSource"] = "ONBOARDING"
        if path == "ipsec-vpn":
            network["vpn"] = {"type": "ipsec", "peer": fill("ip", "the VPN peer of the venue"), "remoteCIDRs": [fill("cidr", "venue subnet behind the tunnel")],
                              "ikeVersion": 2, "proposals": fill("text", "IKE/ESP proposals, e.g. aes256-sha256-modp2048"), "source": "ONBOARDING"}
        network["source"] = "VENUE-SPEC"
        envs[env] = {"network": network}
    return envs


def runbook_skeleton(venue: str, archetype: str) -> dict[str, Any]:
    arch = ARCHETYPES[archetype]
    schedule: dict[str, Any] = {"timeZone": fill("zone", "IANA time zone of the venue, e.g. America/Chicago")}
    if arch.colocated:
        schedule["weekly"] = {"open": {"day": fill("day", "weekly open day"), "time": fill("clock", "HH:MM")},
                              "close": {"day": fill("day", "weekly close day"), "time": fill("clock", "HH:MM")}}
    else:
        schedule["continuous"] = True
    schedule["source"] = "VENUE-SPEC"
    return {
        "apiVersion": "vcpl.dev/v1alpha1",
        "kind": "VenueRunbook",
        "venue": {"id": venue, "name": fill("text", "venue name"), "operator": fill("text", "operator"), "mic": fill("mic", "ISO 10383 MIC (delete the line if none)"),
                  "ownerTeam": fill("team", "owning team, e.g. futures-connectivity"), "archetype": archetype, "runbookVersion": "0.1.0"},
        "sources": {
            "VENUE-SPEC": {"quality": "P", "ref": fill("text", "URL of the connectivity specification of the venue")},
            "ONBOARDING": {"quality": "U", "ref": "Values from the venue's onboarding pack; confirm with the venue before prod."},
            "SIMULATOR": {"quality": "L", "ref": "In-cluster venue simulator owned by this library (namespace venue-simulators)."},
        },
        "acknowledgements": [{"source": "ONBOARDING", "environments": ["prod"], "by": fill("team", "who accepts the unconfirmed values"),
                              "date": fill("date", "YYYY-MM-DD"), "reason": fill("text", "why prod may run on them")}],
        "schedule": schedule,
        "certification": {"required": True, "steps": [fill("text", "certification step")], "source": "VENUE-SPEC"},
        "contacts": {"venueOperations": {"name": fill("text", "the operations desk of the venue"), "reach": fill("text", "how to reach it"), "source": "VENUE-SPEC"},
                     "escalation": [{"level": 1, "who": fill("text", "our on-call rotation"), "when": "any critical alert"}]},
        "failover": {"reconnect": {"attempts": 3, "intervalSeconds": 5}, "standby": "hot" if arch.colocated else "none",
                     "procedure": [fill("text", "first failover step")], "source": "VENUE-SPEC"},
        "clockSync": {"required": True, "maxDivergenceMicros": 100, "source": "VENUE-SPEC"} if arch.colocated else {"required": False, "source": "VENUE-SPEC"},
        "services": _services(arch),
        "environments": _environments(arch),
    }


def files_for(venue: str, archetype: str) -> dict[Path, str]:
    rb = runbook_skeleton(venue, archetype)
    arch = ARCHETYPES[archetype]
    header = f"# Scaffolded by `vcpl scaffold {venue} --archetype {archetype}`: replace every FILL-IN value, then `make generate && make test`.\n"
    files = {paths.runbook_path(venue): header + yamlio.dump(rb)}
    components = "".join(f"  - ../../components/{c}\n" for c in composition.venue_components(rb))
    files[paths.VENUES / venue / "kustomization.yaml"] = (
        f"apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n# {venue}: {arch.description}.\ncomponents:\n{components}"
    )
    files[paths.VENUES / venue / "README.md"] = f"# {venue}\n\nFacts: [runbook.yaml](runbook.yaml). Composition: [kustomization.yaml](kustomization.yaml).\n\nDecisions: (record here what you decided where the venue's documents are silent).\n"
    for env in paths.ENVIRONMENTS:
        extra = []
        if arch.paths.get(env) == "ipsec-vpn":
            extra.append("  - ../../../components/vpn\n")
        if env in arch.allowlisted:
            extra.append("  - ../../../components/ip-allowlist/cilium-egress-gateway\n")
        image = f"  - name: venue-gateway\n    newName: registry.vcpl.dev/connectivity/{venue}-gateway\n    newTag: \"{fill('tag', 'gateway image tag')}\"\n"
        if env != "dev":
            image += f"    digest: \"{fill('digest', 'sha256 digest of the certified image')}\"\n"
        files[paths.overlay_dir(env, venue) / "kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"namespace: venue-{venue}-{env}\nresources:\n  - ../../../base\ncomponents:\n"
            f"  - ../../../venues/{venue}/generated/{env}\n{''.join(extra)}  - ../../../venues/{venue}\nimages:\n{image}"
        )
    return files


def scaffold(venue: str, archetype: str) -> list[Path]:
    if archetype not in ARCHETYPES:
        raise VcplError(f"unknown archetype '{archetype}'; expected one of {sorted(ARCHETYPES)}")
    if (paths.VENUES / venue).exists():
        raise VcplError(f"venues/{venue} already exists; expected a new venue id")
    return generate.write_atomically(files_for(venue, archetype))


def _cmd(args: argparse.Namespace) -> int:
    written = scaffold(args.venue, args.archetype)
    for path in written:
        print(f"created {paths.relative(path)}")
    print(f"next: replace every {MARK} value (`make validate` lists them), then `make generate && make test`")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("scaffold", help="create a new venue from an archetype")
    p.add_argument("venue", help="the venue id, e.g. eurex")
    p.add_argument("--archetype", required=True, choices=sorted(ARCHETYPES))
    p.set_defaults(func=_cmd)
