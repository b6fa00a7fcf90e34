"""Derive one overlay's ConnectivityProfile from a venue run book and the platform file.

The profile is a `config.kubernetes.io/local-config` object: Kustomize components copy its
fields into their manifests with `replacements`, and it never reaches the cluster. Everything
here is a pure function of (run book, platform, environment), so the checked-in output can be
regenerated and compared byte for byte.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

from vcpl import alerts, protocols, quickfix, runbook, schedule
from vcpl.endpoints import (
    STUNNEL_FIRST_LOCAL_PORT,
    endpoint_roles,
    reachable_endpoints,
    sidecar_endpoints,
    tls_services,
)
from vcpl.runbook import Runbook

GATEWAY_CONFIG_DIR = "/etc/venue-gateway"  # each component mounts a sibling folder here
CREDENTIALS_DIR = "/var/run/secrets/venue"
FEED_INTERFACES = {"a": "feeda", "b": "feedb"}
DNS_RULE: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
# Paths over which the gateway pod sends to the venue's own addresses. Over ipsec-vpn too: the tunnel
# ends on the VPN-gateway nodes (platform/vpn-gateway), which the vpn component steers it to.
VENUE_ADDRESS_PATHS = ("cross-connect", "extranet", "internet", "ipsec-vpn")


def _protocol(transport: str) -> str:
    return "UDP" if transport == "udp" else "TCP"


def _cidrs(endpoint: dict[str, Any]) -> list[str]:
    if "cidrs" in endpoint:
        return list(endpoint["cidrs"])
    return [f"{ipaddress.IPv4Address(endpoint['host'])}/32"]


def _port_entry(port: int, end: int | None, proto: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"port": port, "protocol": proto}
    if end is not None and end != port:
        entry["endPort"] = end
    return entry


def egress_rules(rb: Runbook, env: str) -> list[dict[str, Any]]:
    """NetworkPolicy egress rules: exactly the run book's destinations and ports over each of the
    environment's network paths, plus DNS."""
    rules: list[dict[str, Any]] = [DNS_RULE]
    for network in rb["environments"][env]["networks"]:
        if network["path"] == "in-cluster":
            ports = sorted({(ep["port"], _protocol(ep["transport"])) for ep in reachable_endpoints(rb, env)})
            rules.append(
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": network["simulatorNamespace"]}}}],
                    "ports": [{"port": port, "protocol": proto} for port, proto in ports],
                }
            )
    if any(network["path"] in VENUE_ADDRESS_PATHS for network in rb["environments"][env]["networks"]):
        grouped: dict[tuple[str, ...], set[tuple[int, int | None, str]]] = {}
        for ep in reachable_endpoints(rb, env):
            grouped.setdefault(tuple(_cidrs(ep)), set()).add((ep["port"], None, _protocol(ep["transport"])))
            assigns = ep.get("assigns")
            if assigns:
                ranges = {(r["port"], r.get("endPort"), _protocol(ep["transport"])) for r in assigns["ports"]}
                grouped.setdefault(tuple(assigns["cidrs"]), set()).update(ranges)
        for cidrs, cidr_ports in sorted(grouped.items()):
            rules.append(
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                    "ports": [_port_entry(port, end, proto) for port, end, proto in sorted(cidr_ports, key=lambda p: (p[0], p[1] or 0, p[2]))],
                }
            )
    return rules


def destination_cidrs(rules: list[dict[str, Any]]) -> list[str]:
    return sorted({peer["ipBlock"]["cidr"] for rule in rules for peer in rule["to"] if "ipBlock" in peer})


def credential_items(rb: Runbook, venue: str, env: str) -> list[dict[str, Any]]:
    """ExternalSecret `data` entries: one per secret key name the run book declares."""
    items = []
    for service in rb["services"]:
        for key in service["auth"].get("secretKeys", []):
            items.append(
                {
                    "secretKey": f"{service['name']}-{key}",
                    "remoteRef": {"key": f"vcpl/{venue}/{env}/{service['name']}", "property": key},
                }
            )
    return items


def _nad_config(name: str, line: str, platform_env: dict[str, Any], ssm: bool) -> str:
    nic = platform_env["multicast"][line]
    interface = FEED_INTERFACES[line]
    config = {
        "cniVersion": "0.4.0",
        "name": name,
        "plugins": [
            {
                "type": "macvlan",
                "master": nic["master"],
                "mode": "bridge",
                "ipam": {"type": "whereabouts", "range": nic["ipamRange"]},
            },
            {
                # Venue feeds are sourced from ranges the pod has no route back to: loose
                # reverse-path filtering, and IGMPv3 when the venue publishes source addresses.
                "type": "tuning",
                "sysctl": {
                    f"net.ipv4.conf.{interface}.rp_filter": "2",
                    f"net.ipv4.conf.{interface}.force_igmp_version": "3" if ssm else "2",
                },
            },
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _feed_lines(lines: dict[str, Any]) -> dict[str, Any]:
    """A and B lines as the engine joins them: group, port, sources and the interface."""
    return {line: {**_strip_sources(lines[line]), "interface": FEED_INTERFACES[line]} for line in ("a", "b")}


def multicast_section(rb: Runbook, env: str, platform_env: dict[str, Any]) -> dict[str, Any] | None:
    channels = []
    recovery = []
    for service in rb["services"]:
        spec = service["environments"][env]
        for channel in spec.get("channels", []):
            entry = {"service": service["name"], "id": channel["id"], "name": channel["name"], **_feed_lines(channel["lines"])}
            if "firstLine" in channel:
                entry["firstLine"] = channel["firstLine"]
            channels.append(entry)
        if spec.get("channels"):
            for index, item in enumerate(spec.get("recovery", [])):
                ep = item["endpoint"]
                found: dict[str, Any] = {"service": service["name"], "kind": item["kind"], "host": ep["host"], "port": ep["port"], "transport": ep["transport"]}
                if "lines" in item:
                    # The id the gate matches the run book's retransmission lines by.
                    found["id"] = f"{service['name']}.recovery[{index}]"
                    found.update(_feed_lines(item["lines"]))
                if "limits" in item:
                    found["limits"] = _strip_sources(item["limits"])
                recovery.append(found)
    if not channels:
        return None
    joined = channels + [r for r in recovery if "a" in r]
    ssm = any(ch[line].get("sources") for ch in joined for line in ("a", "b"))
    ingress = []
    for ch in joined:
        for line in ("a", "b"):
            rule: dict[str, Any] = {"ports": [{"port": ch[line]["port"], "protocol": "UDP"}]}
            if ch[line].get("sources"):
                rule["from"] = [{"ipBlock": {"cidr": f"{src}/32"}} for src in ch[line]["sources"]]
            if rule not in ingress:
                ingress.append(rule)
    document = {"venue": rb["venue"]["id"], "environment": env, "channels": channels, "recovery": recovery}
    return {
        "feedA": _nad_config("feed-a", "a", platform_env, ssm),
        "feedB": _nad_config("feed-b", "b", platform_env, ssm),
        "channels": json.dumps(document, indent=2, sort_keys=True) + "\n",
        # Without published source addresses the rule admits any sender, on the channel ports only.
        "ingress": ingress,
    }




def stunnel_config(rb: Runbook, env: str) -> str:
    """Client-mode stunnel: the engine speaks plaintext to localhost, stunnel speaks TLS to the venue."""
    lines = ["; Generated by `vcpl generate` from the venue run book; do not edit.", "foreground = yes", "pid =", ""]
    for index, (service, role, ep) in enumerate(sidecar_endpoints(rb, env)):
        tls = service["tls"]
        lines += [
            f"[{service['name']}-{role}]",
            "client = yes",
            f"accept = 127.0.0.1:{STUNNEL_FIRST_LOCAL_PORT + index}",
            f"connect = {ep['host']}:{ep['port']}",
            f"sni = {ep['host']}",
            f"checkHost = {ep['host']}",
            "verifyChain = yes",
            "CAfile = /etc/ssl/certs/ca-certificates.crt",
            f"sslVersionMin = TLSv{tls.get('minVersion', '1.2')}",
            "",
        ]
    return "\n".join(lines)




def gateway_config(rb: Runbook, env: str) -> str:
    """The generic configuration every gateway image reads, whatever its protocol."""
    services = []
    for service in rb["services"]:
        spec = service["environments"][env]
        entry: dict[str, Any] = {
            "name": service["name"],
            "purpose": service["purpose"],
            "protocol": {k: v for k, v in service["protocol"].items() if k != "source"},
            "role": service["role"],
            "endpoints": [{"role": role, **_strip_sources({k: v for k, v in ep.items() if k != "cidrs"})} for role, ep in endpoint_roles(spec)],
            "session": spec.get("session", {}),
            "credentials": [f"{CREDENTIALS_DIR}/{service['name']}-{key}" for key in service["auth"].get("secretKeys", [])],
            "authMethod": service["auth"]["method"],
        }
        for key in ("heartbeat", "sequenceReset", "cancelOnDisconnect", "tls", "throttle", "failoverSequence"):
            if key in service:
                entry[key] = _strip_sources(service[key])
        if "heartbeat" in service:
            # The interval of this environment (0 where the venue allows no heartbeat outside prod).
            entry["heartbeat"]["interval"] = spec["heartbeat"]
        if protocols.is_quickfix(service):
            entry["quickfixSettings"] = f"{GATEWAY_CONFIG_DIR}/fix/session.cfg"
        if spec.get("channels"):
            entry["channelsFile"] = f"{GATEWAY_CONFIG_DIR}/feeds/channels.json"
        services.append(entry)
    window = {k: v for k, v in rb["schedule"].items() if k != "source"}
    failover = rb["failover"]
    document = {
        "venue": rb["venue"]["id"],
        "environment": env,
        "runbookVersion": rb["venue"]["runbookVersion"],
        "network": {"paths": runbook.network_paths(rb, env)},
        "schedule": _strip_sources(window),
        "failover": {"reconnect": failover["reconnect"], "standby": failover["standby"]},
        "services": services,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _cron(minute_of_week: int, days: str | None = None) -> str:
    """A cron line for a minute of the week (Sunday 00:00 = 0), or for a time on a list of days."""
    minute_of_week %= 7 * 1440
    day, rest = divmod(minute_of_week, 1440)
    return f"{rest % 60} {rest // 60} * * {days if days is not None else day}"


def session_schedule(rb: Runbook, replicas: int, api_server: dict[str, Any]) -> dict[str, Any] | None:
    """CronJob schedules that bring the gateway up at the session open and down at its close,
    and reset sequence numbers after each close at the run book's cadence. None for 24/7 venues."""
    sched = rb["schedule"]
    if sched.get("continuous"):
        return None
    cadences = {s.get("sequenceReset", {}).get("cadence") for s in rb["services"]}
    if "weekly" in sched:
        week = sched["weekly"]
        open_at = schedule.DAYS.index(week["open"]["day"]) * 1440 + schedule.minutes(week["open"]["time"])
        close_at = schedule.DAYS.index(week["close"]["day"]) * 1440 + schedule.minutes(week["close"]["time"])
        crons = {"open": _cron(open_at), "close": _cron(close_at), "reset": _cron(close_at + 5)}
    else:
        daily = sched["daily"]
        days = ",".join(str(schedule.DAYS.index(d)) for d in daily["days"])
        close = schedule.minutes(daily["close"])
        crons = {"open": _cron(schedule.minutes(daily["open"]), days), "close": _cron(close, days), "reset": _cron(close + 5, days)}
    resets = bool(cadences & {"weekly", "daily"})
    return {
        "timeZone": sched["timeZone"],
        "openCron": crons["open"],
        "closeCron": crons["close"],
        # Without a weekly or daily reset in the run book the job never runs (Feb 31st).
        "resetCron": crons["reset"] if resets else "0 0 31 2 *",
        "replicas": str(replicas),
        # The scheduler's jobs talk to the Kubernetes API and nothing else.
        "egress": [DNS_RULE, {"to": [{"ipBlock": {"cidr": api_server["cidr"]}}], "ports": [{"port": api_server["port"], "protocol": "TCP"}]}],
    }


SOURCE_FIELDS = ("source", "boundsSource", "cidrsSource", "allowlistSource")


def _strip_sources(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_sources(v) for k, v in node.items() if k not in SOURCE_FIELDS}
    if isinstance(node, list):
        return [_strip_sources(v) for v in node]
    return node


def build(rb: Runbook, platform: dict[str, Any], env: str) -> dict[str, Any]:
    """The ConnectivityProfile object for one venue in one environment."""
    venue = rb["venue"]
    venue_id = venue["id"]
    platform_env = platform["environments"][env]
    allowlisted = runbook.allowlisted_network(rb, env)
    vpn = runbook.vpn_network(rb, env)
    rules = egress_rules(rb, env)
    # The overlay's namespace follows this convention; tests hold every overlay to it.
    namespace = f"venue-{venue_id}-{env}"
    spec: dict[str, Any] = {
        "venue": venue_id,
        "environment": env,
        "mic": venue.get("mic", "none"),
        "ownerTeam": venue["ownerTeam"],
        "archetype": venue["archetype"],
        "runbookVersion": venue["runbookVersion"],
        "namespace": namespace,
        "networkPath": runbook.primary_network(rb, env)["path"],
        "gateway": {"config": gateway_config(rb, env)},
        "egress": {"rules": rules},
        "monitoring": {
            "selectorLabels": dict(platform_env["monitoringSelector"]),
            "ruleGroups": alerts.rule_groups(rb, env, namespace),
        },
    }
    if allowlisted:
        spec["egressGateway"] = {
            "policyName": f"{venue_id}-{env}-venue-egress",
            "egressIP": allowlisted["allowlistedSourceIP"],
            "destinationCIDRs": destination_cidrs(rules),
            "nodeSelector": dict(platform_env["egressGatewayNodeSelector"]),
        }
    credentials = credential_items(rb, venue_id, env)
    if credentials:
        spec["credentials"] = {"secretStoreRef": dict(platform_env["secretStore"]), "data": credentials}
    fix_settings = quickfix.session_settings(rb, env)
    if fix_settings:
        spec["fix"] = {"sessionSettings": fix_settings, "timeZone": rb["schedule"]["timeZone"]}
    multicast = multicast_section(rb, env, platform_env)
    if multicast:
        spec["multicast"] = multicast
    if tls_services(rb):
        issuer = platform_env["certificateIssuer"]
        spec["tls"] = {
            "commonName": f"{venue_id}-{env}.venue-gateway.vcpl.dev",
            "issuerRef": {"kind": issuer["kind"], "name": issuer["name"], "group": "cert-manager.io"},
            "stunnelConfig": stunnel_config(rb, env),
        }
    replicas = 2 if rb["failover"]["standby"] == "hot" else 1
    spec["failover"] = {
        "replicas": replicas,
        "cancelOnDisconnect": ",".join(
            f"{s['name']}={s['cancelOnDisconnect']['mode']}" for s in rb["services"] if "cancelOnDisconnect" in s
        ) or "none",
    }
    session = session_schedule(rb, replicas, platform_env["apiServer"])
    if session:
        spec["sessionSchedule"] = session
    clock = alerts.clock_rule_groups(rb, env, namespace)
    if clock:
        spec["clockSync"] = {"maxDivergence": f"{rb['clockSync']['maxDivergenceMicros']}us", "ruleGroups": clock}
    if vpn:
        gateway = platform_env["vpnGateway"]
        spec["vpn"] = {
            "policyName": f"{venue_id}-{env}-venue-vpn",
            # The tunnel's inner source: the address the venue registered, else the platform's.
            "egressIP": vpn.get("allowlistedSourceIP", gateway["tunnelSourceIP"]),
            "destinationCIDRs": list(vpn["vpn"]["remoteCIDRs"]),
            "nodeSelector": dict(gateway["nodeSelector"]),
        }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    spec["configHash"] = f"sha256-{digest[:32]}"
    return {
        "apiVersion": "vcpl.dev/v1alpha1",
        "kind": "ConnectivityProfile",
        "metadata": {
            "name": "venue",
            "annotations": {
                "config.kubernetes.io/local-config": "true",
                "vcpl.dev/generated-from": f"venues/{venue_id}/runbook.yaml",
            },
        },
        "spec": spec,
    }
