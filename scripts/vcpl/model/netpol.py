"""NetworkPolicy semantics: which policies select a pod, and what the union of their rules allows."""
from __future__ import annotations

from typing import Any

from vcpl.model import selectors

ANY_PORT = {"protocol": "any", "port": "any", "endPort": None}
DIRECTIONS = {"egress": ("Egress", "to"), "ingress": ("Ingress", "from")}


def policy_types(spec: dict[str, Any]) -> set[str]:
    """Kubernetes' defaulting: Ingress always, Egress when an egress section is present."""
    declared = spec.get("policyTypes")
    if declared:
        return set(declared)
    return {"Ingress", "Egress"} if spec.get("egress") is not None else {"Ingress"}


def _peer(peer: dict[str, Any]) -> dict[str, Any]:
    if "ipBlock" in peer:
        block = peer["ipBlock"] or {}
        return {"kind": "ipBlock", "cidr": block.get("cidr"), "except": list(block.get("except") or [])}
    if "namespaceSelector" in peer:
        ns_sel = peer["namespaceSelector"] or {}
        names = selectors.namespace_names(ns_sel)
        if names is not None:
            namespaces: dict[str, Any] = {"names": names}
        elif selectors.is_empty(ns_sel):
            namespaces = {"all": True}
        else:
            namespaces = {"selector": ns_sel}
    else:
        namespaces = {"same": True}
    pod_sel = peer.get("podSelector")
    pods: dict[str, Any] = {"all": True} if selectors.is_empty(pod_sel) else {"selector": pod_sel}
    return {"kind": "pods", "namespaces": namespaces, "pods": pods}


def _ports(rule: dict[str, Any]) -> list[dict[str, Any]]:
    ports = rule.get("ports") or []
    if not ports:
        return [dict(ANY_PORT)]
    return [
        {"protocol": p.get("protocol", "TCP"), "port": p.get("port", "any"), "endPort": p.get("endPort")}
        for p in ports
    ]


def normalized_rules(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    """A policy's rules for one direction; a rule without peers reaches everything."""
    _, peer_key = DIRECTIONS[direction]
    out = []
    for i, rule in enumerate((policy.get("spec") or {}).get(direction) or []):
        rule = rule or {}
        peers = [_peer(p or {}) for p in rule.get(peer_key) or []] or [{"kind": "any"}]
        out.append({
            "object": f"{policy['kind']}/{policy['metadata']['name']}",
            "field": f"spec.{direction}[{i}]",
            "peers": peers,
            "ports": _ports(rule),
        })
    return out


def effective(policies: list[dict[str, Any]], instances: list[dict[str, str]], direction: str) -> dict[str, Any]:
    """Isolation and allowed rules of a workload's pods for one direction, from every policy that
    selects any of them (a policy naming one StatefulSet ordinal still opens that pod)."""
    kind, _ = DIRECTIONS[direction]
    selecting = []
    rules: list[dict[str, Any]] = []
    for policy in policies:
        spec = policy.get("spec") or {}
        if not selectors.matches_any(spec.get("podSelector"), instances):
            continue
        if kind not in policy_types(spec):
            continue
        selecting.append(f"{policy['kind']}/{policy['metadata']['name']}")
        rules += normalized_rules(policy, direction)
    return {"isolated": bool(selecting), "policies": sorted(selecting), "rules": rules}
