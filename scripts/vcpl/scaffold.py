"""Create a new venue from an archetype: a run-book skeleton with every fact to fill marked, the
composition of components the archetype needs, a README and the three overlays.

A marked value reads `FILL-IN <kind>: <what>`; `vcpl validate` lists every one by field path
before anything else, and once all are filled the venue builds and passes the gates with no other
edit (the structural choices — schedule kind, standby, clock sync, network paths — are made by
the archetype and agree with the composition).
"""
from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcpl import composition, generate, paths, protocols, runbook, yamlio
from vcpl.errors import VcplError
from vcpl.yamlio import Flow

MARK = "FILL-IN"


def fill(kind: str, what: str) -> str:
    # Hints carry no quotes, so a marked value is always one plain or quoted YAML scalar.
    assert "'" not in what and '"' not in what
    return f"{MARK} {kind}: {what}"


@dataclass(frozen=True)
class Archetype:
    description: str
    choose: str  # when to choose it (docs/archetypes.md)
    order_entry: str  # "fix", "binary" or ""
    market_data: str  # "multicast", "websocket" or ""
    paths: dict[str, str]  # env -> network path
    allowlisted: tuple[str, ...]  # envs where the venue allow-lists our source IP
    colocated: bool  # clock sync, hot standby, session schedule


ARCHETYPES = {
    "fix-cross-connect": Archetype(
        "FIX order entry over a cross-connect",
        "a regulated venue whose order entry is FIX tag=value and which you reach in its data centre or over an extranet",
        "fix", "", {"cert": "extranet", "prod": "cross-connect"}, ("prod",), True),
    "binary-order-entry-multicast": Archetype(
        "binary order entry and multicast A/B market data",
        "a colocated exchange with its own binary order-entry protocol (FIXP/SBE, SoupBinTCP, a proprietary session) and A/B multicast feeds",
        "binary", "multicast", {"cert": "ipsec-vpn", "prod": "cross-connect"}, ("prod",), True),
    "fix-tls-internet": Archetype(
        "FIX order entry over TLS on the internet",
        "a venue (often crypto) that offers FIX over TLS on public DNS names, with no colocation and no fixed trading week",
        "fix", "", {"cert": "internet", "prod": "internet"}, (), False),
    "websocket-internet": Archetype(
        "WebSocket market data over the internet",
        "a venue whose API is JSON over WebSocket on the internet",
        "", "websocket", {"cert": "internet", "prod": "internet"}, (), False),
    "fix-vpn": Archetype(
        "FIX order entry over an IPsec VPN",
        "a venue that offers FIX over a site-to-site IPsec VPN and allow-lists the source address behind it",
        "fix", "", {"cert": "ipsec-vpn", "prod": "ipsec-vpn"}, ("cert", "prod"), False),
}

# Ports of the library's own simulators in dev (venue-simulators namespace), by what they serve.
SIMULATOR_PORTS = {"fix": 9000, "binary": 9000, "websocket": 8443, "replay": 9100}
ENUM_SEP = " | "


def _binary_encodings() -> str:
    return ENUM_SEP.join(k for k, v in protocols.encodings().items() if v["byteOrder"] != "text")


def _layers(transport: str) -> str:
    return ENUM_SEP.join(k for k, v in protocols.session_layers().items() if v["transport"] == transport and v["engine"] == "native")


def _simulator(venue: str, name: str) -> str:
    return f"{venue}-{name}.venue-simulators.svc.cluster.local"


def _endpoint(transport: str, dns: bool) -> Flow:
    ep = Flow(host=fill("host", "the address the venue gives for this environment" + (" (DNS name)" if dns else " (IP)")),
              port=fill("port", "the port"), transport=transport)
    if transport == "wss":
        ep["path"] = fill("path", "the WebSocket request path, e.g. /v2")
    if dns:
        ep["cidrs"] = [fill("cidr", "the addresses the host name resolves into")]
    return ep


def _dev_group(venue: str, index: int, line: str) -> str:
    # 239.0.0.0/8 is administratively scoped: simulator feeds never leave the cluster.
    octet = 100 + int(hashlib.sha256(venue.encode()).hexdigest(), 16) % 100
    return f"239.{octet}.{index * 2 + (line == 'b')}.1"


def _service_envs(venue: str, arch: Archetype, kind: str, name: str) -> dict[str, Any]:
    envs: dict[str, Any] = {}
    for env in paths.ENVIRONMENTS:
        # A FIX service that needs TLS somewhere speaks it to the simulator too (SocketUseSSL=Y everywhere).
        internet = arch.paths.get(env) == "internet" or (env == "dev" and "internet" in arch.paths.values())
        transport = {"fix": "tls" if internet else "tcp", "binary": "tcp", "websocket": "wss", "multicast": "tcp"}[kind]
        spec: dict[str, Any] = {}
        if env == "dev":
            # The simulator is ours (source SIMULATOR): its names and ports follow the library's convention.
            spec["source"] = "SIMULATOR"
            if kind == "multicast":
                spec["channels"] = [{"id": 1, "name": "simulated channel 1",
                                     "lines": {line: Flow(group=_dev_group(venue, 0, line), port=30001) for line in ("a", "b")}}]
                spec["recovery"] = [{"kind": "tcp-replay", "endpoint": Flow(host=_simulator(venue, "replay"), port=SIMULATOR_PORTS["replay"], transport="tcp")}]
            else:
                dev = Flow(host=_simulator(venue, name), port=SIMULATOR_PORTS[kind], transport=transport)
                if transport == "wss":
                    dev["path"] = "/"
                spec["endpoints"] = {"primary": dev}
                if arch.colocated:
                    spec["endpoints"]["backup"] = Flow(dev, host=_simulator(venue, f"{name}-backup"))
        else:
            spec["source"] = "ONBOARDING"
            if kind == "multicast":
                spec["channels"] = [{
                    "id": fill("number", "channel id"),
                    "name": fill("text", "channel name"),
                    "lines": {line: Flow(group=fill("group", f"line {line.upper()} multicast group"), port=fill("port", f"line {line.upper()} port")) for line in ("a", "b")},
                }]
                spec["recovery"] = [{"kind": fill("enum", "tcp-replay | tcp-snapshot | udp-rerequest | multicast-snapshot | multicast-retransmission"),
                                     "endpoint": _endpoint("tcp", False)}]
            else:
                spec["endpoints"] = {"primary": _endpoint(transport, internet)}
                if arch.colocated:
                    spec["endpoints"]["backup"] = _endpoint(transport, internet)
        if kind == "fix":
            spec["session"] = Flow(senderCompID=fill("compid", f"our SenderCompID in {env}"), targetCompID=fill("compid", f"the venue TargetCompID in {env}"))
        envs[env] = spec
    return envs


def _order_entry(venue: str, arch: Archetype) -> dict[str, Any]:
    fix = arch.order_entry == "fix"
    protocol: dict[str, Any] = {"name": fill("text", "protocol name"), "version": fill("text", "protocol version")}
    if fix:
        protocol.update(encoding="tag-value", sessionLayer="fix", beginString=fill("enum", "FIX.4.2 | FIX.4.4 | FIXT.1.1"))
    else:
        protocol.update(encoding=fill("enum", _binary_encodings()), sessionLayer=fill("enum", _layers("tcp")))
    internet = any(p == "internet" for p in arch.paths.values())
    return {
        "name": "order-entry", "purpose": "order-entry", "protocol": protocol, "role": "initiator",
        # Bounds (min, max) only where the venue states them.
        "heartbeat": {"default": fill("number", "heartbeat interval, in the unit of the session layer")},
        "sequenceReset": {"cadence": fill("enum", "weekly | daily | per-connection")},
        "cancelOnDisconnect": {"mode": fill("enum", "mandatory | default-on | optional | unsupported | unknown")},
        "auth": {"method": fill("enum", "password | hmac-sha256 | hmac-sha512 | rsa-pss | jwt"), "secretKeys": [fill("key", "name of a secret key, e.g. password")]},
        "tls": {"required": True, "termination": "native"} if internet else {"required": False},
        "environments": _service_envs(venue, arch, arch.order_entry, "order-entry"),
    }


def _market_data(venue: str, arch: Archetype) -> dict[str, Any]:
    ws = arch.market_data == "websocket"
    protocol = {"name": fill("text", "protocol name"), "version": fill("text", "protocol version")}
    if ws:
        protocol.update(encoding="json", sessionLayer="websocket")
    else:
        protocol.update(encoding=fill("enum", _binary_encodings()), sessionLayer=fill("enum", _layers("multicast")))
    service: dict[str, Any] = {
        "name": "market-data", "purpose": "market-data", "protocol": protocol,
        "role": "client" if ws else "subscriber",
        "sequenceReset": {"cadence": fill("enum", "weekly | daily | per-connection | per-product | none")},
        "auth": {"method": "none"},
    }
    if ws:
        service["tls"] = {"required": True, "termination": "native"}
    service["environments"] = _service_envs(venue, arch, arch.market_data, "market-data")
    return service


def _environments(arch: Archetype) -> dict[str, Any]:
    envs: dict[str, Any] = {"dev": {"networks": [Flow(path="in-cluster", simulatorNamespace="venue-simulators", source="SIMULATOR")]}}
    for env, path in arch.paths.items():
        network: dict[str, Any] = {"path": path}
        if env in arch.allowlisted:
            held_by = "the tunnel source on the VPN-gateway nodes" if path == "ipsec-vpn" else "egress gateway address"
            network["allowlistedSourceIP"] = fill("ip", f"our source IP registered with the venue ({held_by})")
            network["allowlistSource"] = "ONBOARDING"
        if path == "ipsec-vpn":
            network["vpn"] = {"type": "ipsec", "peer": fill("ip", "the VPN peer of the venue"), "remoteCIDRs": [fill("cidr", "venue subnet behind the tunnel")],
                              "ikeVersion": 2, "proposals": fill("text", "IKE/ESP proposals, e.g. aes256-sha256-modp2048"), "source": "ONBOARDING"}
        envs[env] = {"networks": [network]}
    return envs


def runbook_skeleton(venue: str, archetype: str) -> dict[str, Any]:
    """A v2 run book with what the archetype decides filled in and every venue fact marked. Facts
    cite the top-level source (the venue's specification) unless they are onboarding values
    (ONBOARDING) or the library's simulator (SIMULATOR)."""
    arch = ARCHETYPES[archetype]
    schedule: dict[str, Any] = {"timeZone": fill("zone", "IANA time zone of the venue, e.g. America/Chicago")}
    if arch.colocated:
        schedule["weekly"] = {"open": Flow(day=fill("day", "weekly open day"), time=fill("clock", "HH:MM")),
                              "close": Flow(day=fill("day", "weekly close day"), time=fill("clock", "HH:MM"))}
    else:
        schedule["continuous"] = True
    services = ([_order_entry(venue, arch)] if arch.order_entry else []) + ([_market_data(venue, arch)] if arch.market_data else [])
    return {
        "apiVersion": runbook.API_VERSION,
        "kind": "VenueRunbook",
        "venue": {"id": venue, "name": fill("text", "venue name"), "operator": fill("text", "operator"), "mic": fill("mic", "ISO 10383 MIC (delete the line if none)"),
                  "ownerTeam": fill("team", "owning team, e.g. futures-connectivity"), "archetype": archetype, "runbookVersion": "0.1.0"},
        "source": "VENUE-SPEC",
        "sources": {
            "VENUE-SPEC": Flow(quality="P", ref=fill("text", "URL of the connectivity specification of the venue")),
            "ONBOARDING": Flow(quality="U", ref="Values from the venue's onboarding pack; confirm with the venue before prod."),
            "SIMULATOR": Flow(quality="L", ref="In-cluster venue simulator owned by this library (namespace venue-simulators)."),
            **({"FIRM-RTS25": Flow(quality="F", ref="Firm policy: colocated algorithmic venues follow the RTS 25 HFT tier, 100 microseconds to UTC")} if arch.colocated else {}),
        },
        "acknowledgements": [{"source": "ONBOARDING", "environments": ["prod"], "by": fill("team", "who accepts the unconfirmed values"),
                              "date": fill("date", "YYYY-MM-DD"), "reason": fill("text", "why prod may run on them")}],
        "schedule": schedule,
        "certification": {"required": True, "steps": [fill("text", "certification step")]},
        "contacts": {"venueOperations": {"name": fill("text", "the operations desk of the venue"), "reach": fill("text", "how to reach it")},
                     "escalation": [Flow(level=1, who=fill("text", "our on-call rotation"), when="any critical alert")]},
        "failover": {"reconnect": {"steps": [Flow(attempts=3, intervalSeconds=5)], "then": "repeat"}, "standby": "hot" if arch.colocated else "none",
                     "procedure": [fill("text", "first failover step")]},
        "clockSync": {"required": True, "maxDivergenceMicros": 100, "source": "FIRM-RTS25"} if arch.colocated else {"required": False},
        "services": services,
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
        # On a VPN path the allow-listed address is the tunnel's source (components/vpn).
        if env in arch.allowlisted and arch.paths.get(env) != "ipsec-vpn":
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
