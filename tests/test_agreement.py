"""Rendered manifests agree with the run book.

Expectations here are read straight from the run book, not from the generator's functions, so
a generator bug cannot agree with itself.
"""
from __future__ import annotations

import configparser
import ipaddress
import json
from typing import Any

import pytest
import yaml

from conftest import find
from vcpl import paths, render

OVERLAYS = render.overlays()
IDS = [f"{e}/{v}" for e, v in OVERLAYS]
ROLES = ("primary", "backup", "dr")


def _endpoints(service: dict[str, Any], env: str) -> list[dict[str, Any]]:
    eps = service["environments"][env].get("endpoints", {})
    return [eps[r] for r in ROLES if r in eps]


def _all_endpoints(rb: dict[str, Any], env: str) -> list[dict[str, Any]]:
    found = []
    for service in rb["services"]:
        found += _endpoints(service, env)
        found += [r["endpoint"] for r in service["environments"][env].get("recovery", [])]
    return found


def _egress_pairs(policy: dict[str, Any]) -> tuple[set[tuple[str, int, str]], list[dict[str, Any]]]:
    """(cidr, port, protocol) allowed by ipBlock rules, and the non-ipBlock peers."""
    pairs, others = set(), []
    for rule in policy["spec"]["egress"]:
        for peer in rule["to"]:
            if "ipBlock" in peer:
                pairs |= {(peer["ipBlock"]["cidr"], port, p["protocol"]) for p in rule["ports"] for port in range(p["port"], p.get("endPort", p["port"]) + 1)}
            else:
                others.append({"peer": peer, "ports": rule["ports"]})
    return pairs, others


@pytest.mark.parametrize("env,venue", OVERLAYS, ids=IDS)
def test_egress_allows_exactly_the_run_book_destinations(rendered_overlays, runbooks, env: str, venue: str) -> None:
    rb = runbooks[venue]
    networks = rb["environments"][env]["networks"]
    policy = find(rendered_overlays[(env, venue)], "NetworkPolicy", "venue-egress")
    pairs, others = _egress_pairs(policy)
    dns = [o for o in others if o["peer"].get("podSelector", {}).get("matchLabels") == {"k8s-app": "kube-dns"}]
    assert dns and {p["port"] for p in dns[0]["ports"]} == {53}, "DNS egress missing"
    proto = {"udp": "UDP"}
    if [n["path"] for n in networks] == ["in-cluster"]:
        expected_ports = {(ep["port"], proto.get(ep["transport"], "TCP")) for ep in _all_endpoints(rb, env)}
        sims = [o for o in others if o not in dns]
        assert len(sims) == 1
        assert sims[0]["peer"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == networks[0]["simulatorNamespace"]
        assert {(p["port"], p["protocol"]) for p in sims[0]["ports"]} == expected_ports
        assert not pairs
        return
    # Over every path but in-cluster the pod sends to the venue's own addresses (an IPsec tunnel
    # ends on the VPN-gateway nodes, never in the pod): every endpoint, and every application
    # gateway a connection gateway may assign.
    expected = set()
    if any(n["path"] in ("cross-connect", "extranet", "internet", "ipsec-vpn") for n in networks):
        for ep in _all_endpoints(rb, env):
            cidrs = ep.get("cidrs") or [f"{ep['host']}/32"]
            expected |= {(c, ep["port"], proto.get(ep["transport"], "TCP")) for c in cidrs}
            for ports in ep.get("assigns", {}).get("ports", []):
                expected |= {(c, port, proto.get(ep["transport"], "TCP")) for c in ep["assigns"]["cidrs"]
                             for port in range(ports["port"], ports.get("endPort", ports["port"]) + 1)}
    assert pairs == expected
    assert all(not ipaddress.ip_network(c).prefixlen == 0 for c, _, _ in pairs), "0.0.0.0/0 is never allowed"


def _quickfix(docs: list[dict[str, Any]]) -> configparser.ConfigParser:
    text = find(docs, "ConfigMap", "fix-session")["data"]["session.cfg"]
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # QuickFIX keys are case-sensitive
    # QuickFIX repeats [SESSION]; number the sections so each one stays addressable.
    numbered, count = [], 0
    for line in text.splitlines():
        if line.strip() == "[SESSION]":
            count += 1
            line = f"[SESSION{count}]"
        numbered.append(line)
    parser.read_string("\n".join(numbered))
    return parser


def _stunnel_connects(docs: list[dict[str, Any]]) -> dict[str, str]:
    """127.0.0.1:port -> venue host:port, from the rendered stunnel configuration."""
    text = find(docs, "ConfigMap", "stunnel")["data"]["stunnel.conf"]
    mapping, accept = {}, None
    for line in text.splitlines():
        if line.startswith("accept = "):
            accept = line.split(" = ", 1)[1]
        elif line.startswith("connect = ") and accept:
            mapping[accept] = line.split(" = ", 1)[1]
    return mapping


FIX_OVERLAYS = [(e, v) for e, v in OVERLAYS if any(s["protocol"]["sessionLayer"] in ("fix", "fixt") for s in yaml.safe_load(paths.runbook_path(v).read_text())["services"])]


@pytest.mark.parametrize("env,venue", FIX_OVERLAYS, ids=[f"{e}/{v}" for e, v in FIX_OVERLAYS])
def test_fix_settings_match_the_run_book(rendered_overlays, runbooks, env: str, venue: str) -> None:
    rb = runbooks[venue]
    docs = rendered_overlays[(env, venue)]
    settings = _quickfix(docs)
    schedule = rb["schedule"]
    default = settings["DEFAULT"]
    assert default["TimeZone"] == schedule["timeZone"]
    assert default["FileStorePath"].startswith("/var/lib/venue-gateway/"), "the FIX store must be on the session-state PVC"
    if schedule.get("weekly"):
        assert default["StartDay"].lower() == schedule["weekly"]["open"]["day"]
        assert default["StartTime"] == schedule["weekly"]["open"]["time"] + ":00"
        assert default["EndTime"] == schedule["weekly"]["close"]["time"] + ":00"
    fix_services = [s for s in rb["services"] if s["protocol"]["sessionLayer"] in ("fix", "fixt")]
    assert default["ConnectionType"] == "initiator"
    assert len(settings.sections()) == len(fix_services)  # DEFAULT is not listed among sections
    for index, service in enumerate(fix_services, start=1):
        section = settings[f"SESSION{index}"]
        session = service["environments"][env]["session"]
        assert section["BeginString"] == service["protocol"]["beginString"]
        assert section["SenderCompID"] == session["senderCompID"]
        assert section["TargetCompID"] == session["targetCompID"]
        assert int(section["HeartBtInt"]) == service["heartbeat"]["default"]
        # A DR endpoint the venue must declare first (the sequence restarts or jumps there) is not
        # one QuickFIX may rotate to on its own.
        declared_dr = service.get("failoverSequence", {}).get("dr") in ("reset", "jump")
        eps = service["environments"][env].get("endpoints", {})
        expected = [eps[r] for r in ROLES if r in eps and not (r == "dr" and declared_dr)]
        rendered_targets = []
        for i in range(len(expected)):
            suffix = "" if i == 0 else str(i)
            rendered_targets.append(f"{section['SocketConnectHost' + suffix]}:{section['SocketConnectPort' + suffix]}")
        if service.get("tls", {}).get("termination") == "sidecar":
            connects = _stunnel_connects(docs)
            rendered_targets = [connects[t] for t in rendered_targets]
        assert rendered_targets == [f"{ep['host']}:{ep['port']}" for ep in expected]
        assert len(set(rendered_targets)) == len(rendered_targets), "primary and backup must differ"


MULTICAST_OVERLAYS = [(e, v) for e, v in OVERLAYS if any(s["environments"][e].get("channels") for s in yaml.safe_load(paths.runbook_path(v).read_text())["services"])]


@pytest.mark.parametrize("env,venue", MULTICAST_OVERLAYS, ids=[f"{e}/{v}" for e, v in MULTICAST_OVERLAYS])
def test_multicast_lines_match_the_run_book(rendered_overlays, runbooks, env: str, venue: str) -> None:
    rb = runbooks[venue]
    docs = rendered_overlays[(env, venue)]
    channels = json.loads(find(docs, "ConfigMap", "feed-channels")["data"]["channels.json"])["channels"]
    expected = [
        (c["id"], c["lines"]["a"]["group"], c["lines"]["a"]["port"], c["lines"]["b"]["group"], c["lines"]["b"]["port"])
        for s in rb["services"] for c in s["environments"][env].get("channels", [])
    ]
    assert [(c["id"], c["a"]["group"], c["a"]["port"], c["b"]["group"], c["b"]["port"]) for c in channels] == expected
    nads = {name: json.loads(find(docs, "NetworkAttachmentDefinition", name)["spec"]["config"]) for name in ("feed-a", "feed-b")}
    masters = {name: cfg["plugins"][0]["master"] for name, cfg in nads.items()}
    assert masters["feed-a"] != masters["feed-b"], "lines A and B must use different interfaces"
    sts = find(docs, "StatefulSet", "venue-gateway")
    attached = json.loads(sts["spec"]["template"]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"])
    assert {a["name"] for a in attached} == set(nads), "the pod must attach exactly the feed NADs of the overlay"
    assert len({a["interface"] for a in attached}) == 2


@pytest.mark.parametrize("env,venue", OVERLAYS, ids=IDS)
def test_gateway_config_heartbeats_schedule_and_secrets(rendered_overlays, runbooks, env: str, venue: str) -> None:
    rb = runbooks[venue]
    docs = rendered_overlays[(env, venue)]
    config = json.loads(find(docs, "ConfigMap", "venue-gateway")["data"]["gateway.json"])
    assert (config["venue"], config["environment"]) == (venue, env)
    assert config["schedule"]["timeZone"] == rb["schedule"]["timeZone"]
    by_name = {s["name"]: s for s in config["services"]}
    for service in rb["services"]:
        rendered = by_name[service["name"]]
        if "heartbeat" in service:
            assert rendered["heartbeat"]["default"] == service["heartbeat"]["default"]
            assert rendered["heartbeat"]["unit"] == service["heartbeat"]["unit"]
        assert [(e["host"], e["port"]) for e in rendered["endpoints"]] == [(e["host"], e["port"]) for e in _endpoints(service, env)]
    wanted = sorted(f"{s['name']}-{k}" for s in rb["services"] for k in s["auth"].get("secretKeys", []))
    secrets = [d for d in docs if d["kind"] == "ExternalSecret" and d["metadata"]["name"] == "venue-credentials"]
    assert sorted(i["secretKey"] for s in secrets for i in s["spec"]["data"]) == wanted


@pytest.mark.parametrize("env,venue", OVERLAYS, ids=IDS)
def test_labels_and_alert_scope_name_the_overlay(rendered_overlays, runbooks, env: str, venue: str) -> None:
    docs = rendered_overlays[(env, venue)]
    mic = runbooks[venue]["venue"].get("mic", "none")
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels.get("vcpl.dev/venue") == venue, where
        assert labels.get("vcpl.dev/environment") == env, where
        assert labels.get("vcpl.dev/mic") == mic, where
        assert labels.get("vcpl.dev/owner-team") == runbooks[venue]["venue"]["ownerTeam"], where
    rules = [r for d in docs if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"] for r in g["rules"]]
    assert any("alert" in r for r in rules)
    for rule in rules:
        name = rule.get("alert") or rule["record"]
        scoped = f'venue="{venue}",environment="{env}"' in rule["expr"]
        labelled = rule.get("labels", {}).get("venue") == venue and rule.get("labels", {}).get("environment") == env
        # Platform metrics (cert-manager, PTP) carry no venue label: those rules name the overlay in their labels.
        assert scoped or labelled, f"{name} is not scoped to {venue}/{env}"


@pytest.mark.parametrize("env,venue", OVERLAYS, ids=IDS)
def test_overlay_composition_matches_the_network_path(env: str, venue: str, runbooks) -> None:
    networks = runbooks[venue]["environments"][env]["networks"]
    kustomization = yaml.safe_load((paths.overlay_dir(env, venue) / "kustomization.yaml").read_text())
    components = [c.rstrip("/").split("components/")[-1] for c in kustomization.get("components", [])]
    assert ("vpn" in components) == any(n["path"] == "ipsec-vpn" for n in networks), "vpn component iff a path is ipsec-vpn"
    # On an ipsec-vpn path the allow-listed address is the tunnel's inner source (the vpn component).
    assert ("ip-allowlist/cilium-egress-gateway" in components) == any("allowlistedSourceIP" in n and n["path"] != "ipsec-vpn" for n in networks), (
        "egress gateway iff the run book registers a source IP"
    )


def _needs(rb: dict[str, Any]) -> dict[str, bool]:
    """Which components the run book calls for, read straight from its facts."""
    services = rb["services"]
    return {
        "credentials": any(s["auth"].get("secretKeys") for s in services),
        "fix-initiator": any(s["protocol"]["sessionLayer"] in ("fix", "fixt") for s in services),
        "tls": any(s.get("tls", {}).get("clientCertificate") for s in services),
        "tls-sidecar": any(s.get("tls", {}).get("termination") == "sidecar" for s in services),
        "multicast": any(s["environments"][e].get("channels") for s in services for e in paths.ENVIRONMENTS),
        "session-schedule": not rb["schedule"].get("continuous", False),
        "failover": rb["failover"]["standby"] == "hot",
        "clock-sync": rb["clockSync"]["required"],
        "ip-allowlist": True,
        "observability": True,
        "venue-binding": True,
    }


@pytest.mark.parametrize("venue", paths.venue_ids())
def test_venue_composition_matches_the_run_book(venue: str, runbooks) -> None:
    composition = yaml.safe_load((paths.VENUES / venue / "kustomization.yaml").read_text())
    used = [c.rstrip("/").split("components/")[-1] for c in composition["components"]]
    for component, needed in _needs(runbooks[venue]).items():
        assert (component in used) == needed, f"venues/{venue}: component {component} {'missing' if needed else 'not called for by the run book'}"
    assert used[-1] == "venue-binding", "venue-binding must be the last component"
