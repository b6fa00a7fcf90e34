"""The rehearsal cluster's simulated nodes, derived from platform/platform.yaml and the overlays.

Nothing here names a venue. The node labels come from two places:

* platform/platform.yaml: the egress-gateway node selector and the VPN-gateway node selector of
  every environment (`egressGatewayNodeSelector`, `vpnGateway.nodeSelector`), and the multicast
  NIC names (`multicast.<line>.master`), which become an annotation on the worker nodes;
* the rendered pod templates (StatefulSets, DaemonSets, Deployments, CronJobs): the keys their
  nodeSelector and required node affinity select on (e.g. the PTP label `vcpl.dev/ptp-synced`) and
  the topology keys of their spread constraints and pod (anti-)affinity
  (`topology.kubernetes.io/zone`, `kubernetes.io/hostname`).

The shape: ZONES zones, each with PTP_WORKERS_PER_ZONE workers carrying every label the venue pods
require (the "PTP-synced" workers) and one plain worker carrying none of them; GATEWAY_NODES
egress-gateway nodes and GATEWAY_NODES VPN-gateway nodes spread over the zones. A selector an
overlay uses that this module cannot place on a node (a new key, `NotIn`, `Gt`...) is reported by
`unplaceable()` instead of leaving pods Pending with no explanation.

Every node gets the same capacity, large enough to hold every pod of every overlay at once
(`capacity_for()`), so the rehearsal tests placement rules, never bin packing.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from vcpl import paths
from vcpl.rehearsal.controlplane import kwok_node

Doc = dict[str, Any]

PLATFORM_FILE = paths.ROOT / "platform" / "platform.yaml"
ZONE_KEY = "topology.kubernetes.io/zone"
REGION_KEY = "topology.kubernetes.io/region"
HOSTNAME_KEY = "kubernetes.io/hostname"
# kwok_node() sets these on every node; a selector on them needs nothing from the topology.
WELL_KNOWN = {HOSTNAME_KEY, "kubernetes.io/os", "kubernetes.io/arch"}
ROLE_KEY = "vcpl.rehearsal/role"          # worker-ptp | worker | egress-gateway | vpn-gateway
MULTICAST_ANNOTATION = "vcpl.rehearsal/multicast-nics"  # JSON: env -> line -> NIC name, from platform.yaml

ZONES = ("zone-a", "zone-b", "zone-c")
REGION = "rehearsal-1"
PTP_WORKERS_PER_ZONE = 2
PLAIN_WORKERS_PER_ZONE = 1
GATEWAY_NODES = 2

POD_OWNERS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"}


# --- reading what pods select on ----------------------------------------------------------------------
def pod_template(doc: Doc) -> Doc | None:
    """The pod template of a workload (CronJobs through their job template), else None."""
    if doc.get("kind") in POD_OWNERS:
        return (doc.get("spec") or {}).get("template")
    if doc.get("kind") == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    return None


@dataclass
class Requirements:
    """What the pod templates of a set of documents need from nodes."""

    # label key -> values required (In: the values; Exists: empty set), from nodeSelector / required affinity
    labels: dict[str, set[str]] = field(default_factory=dict)
    # topology keys of spread constraints and pod (anti-)affinity terms
    topology_keys: set[str] = field(default_factory=set)
    # selector expressions the topology cannot satisfy, as readable strings
    unsupported: list[str] = field(default_factory=list)

    def add_label(self, key: str, values: Iterable[str]) -> None:
        self.labels.setdefault(key, set()).update(values)


def node_requirements(pod_spec: Doc) -> tuple[dict[str, set[str]], list[str]]:
    """(label -> acceptable values, unsupported expressions) for one pod spec.

    nodeSelector and the first term of required node affinity (the topology makes nodes that
    satisfy it; terms are ORed, so satisfying the first is enough)."""
    labels: dict[str, set[str]] = {k: {str(v)} for k, v in (pod_spec.get("nodeSelector") or {}).items()}
    unsupported: list[str] = []
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for expr in (terms[0].get("matchExpressions") or []) if terms else []:
        op = expr.get("operator")
        if op == "In":
            labels.setdefault(expr["key"], set()).update(str(v) for v in expr.get("values") or [])
        elif op == "Exists":
            labels.setdefault(expr["key"], set())
        else:
            unsupported.append(f"{expr['key']} {op} {expr.get('values')}")
    return labels, unsupported


def topology_keys(pod_spec: Doc) -> set[str]:
    keys = {c["topologyKey"] for c in pod_spec.get("topologySpreadConstraints") or []}
    affinity = pod_spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        block = affinity.get(kind) or {}
        for term in block.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            keys.add(term["topologyKey"])
        for weighted in block.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
            keys.add(weighted["podAffinityTerm"]["topologyKey"])
    return keys


def requirements(docs: Iterable[Doc]) -> Requirements:
    req = Requirements()
    for doc in docs:
        template = pod_template(doc)
        if not template:
            continue
        spec = template.get("spec") or {}
        labels, unsupported = node_requirements(spec)
        for key, values in labels.items():
            req.add_label(key, values)
        where = f"{doc['kind']}/{doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}"
        req.unsupported += [f"{where}: {u}" for u in unsupported]
        req.topology_keys |= topology_keys(spec)
    return req


# --- the platform file --------------------------------------------------------------------------------
def load_platform(path: Path = PLATFORM_FILE) -> Doc:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _merged_selector(platform: Doc, getter: Any) -> dict[str, str]:
    """One selector for every environment; environments that disagree cannot share a node pool."""
    merged: dict[str, str] = {}
    for env, facts in sorted((platform.get("environments") or {}).items()):
        selector = getter(facts) or {}
        for key, value in selector.items():
            if merged.get(key, str(value)) != str(value):
                raise ValueError(f"platform.yaml: {env} selects {key}={value}, another environment {key}={merged[key]}")
            merged[key] = str(value)
    return merged


def egress_gateway_selector(platform: Doc) -> dict[str, str]:
    return _merged_selector(platform, lambda f: f.get("egressGatewayNodeSelector"))


def vpn_gateway_selector(platform: Doc) -> dict[str, str]:
    return _merged_selector(platform, lambda f: (f.get("vpnGateway") or {}).get("nodeSelector"))


def multicast_nics(platform: Doc) -> dict[str, dict[str, str]]:
    return {env: {line: spec["master"] for line, spec in sorted((facts.get("multicast") or {}).items())}
            for env, facts in sorted((platform.get("environments") or {}).items()) if facts.get("multicast")}


# --- capacity -----------------------------------------------------------------------------------------
_SUFFIX = {"m": 1e-3, "k": 1e3, "Ki": 1024, "M": 1e6, "Mi": 1024**2, "G": 1e9, "Gi": 1024**3, "T": 1e12, "Ti": 1024**4}


def quantity(text: Any) -> float:
    s = str(text)
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * _SUFFIX[suffix]
    return float(s)


def capacity_for(docs: Iterable[Doc], replicas: int = 2, headroom: float = 2.0) -> dict[str, str]:
    """A node capacity that holds every pod template of `docs` `replicas` times over, doubled."""
    cpu = memory = storage = 0.0
    pods = 0
    for doc in docs:
        template = pod_template(doc)
        if not template:
            continue
        pods += replicas
        for container in (template.get("spec") or {}).get("containers") or []:
            req = (container.get("resources") or {}).get("requests") or {}
            cpu += quantity(req.get("cpu", 0)) * replicas
            memory += quantity(req.get("memory", 0)) * replicas
            storage += quantity(req.get("ephemeral-storage", 0)) * replicas
    return {"cpu": str(max(16, math.ceil(cpu * headroom))),
            "memory": f"{max(64, math.ceil(memory * headroom / 1024**3))}Gi",
            "ephemeral_storage": f"{max(100, math.ceil(storage * headroom / 1024**3))}Gi",
            "pods": str(max(110, math.ceil(pods * headroom)))}


# --- the nodes ----------------------------------------------------------------------------------------
@dataclass
class Topology:
    nodes: list[Doc]
    ptp_labels: dict[str, str]          # the labels every PTP worker carries (from the overlays)
    egress_selector: dict[str, str]
    vpn_selector: dict[str, str]
    unplaceable: list[str]

    def names(self, role: str | None = None) -> list[str]:
        return [n["metadata"]["name"] for n in self.nodes if role is None or n["metadata"]["labels"][ROLE_KEY] == role]

    def zone_of(self) -> dict[str, str]:
        return {n["metadata"]["name"]: n["metadata"]["labels"][ZONE_KEY] for n in self.nodes}


def _value_for(key: str, values: set[str]) -> str:
    if len(values) > 1:
        raise ValueError(f"pods require {key} in {sorted(values)}: one node cannot carry several values")
    return next(iter(values)) if values else "true"


def build(docs: Iterable[Doc], platform: Doc | None = None) -> Topology:
    """The kwok Nodes for a cluster that runs every overlay in `docs` (rendered objects of all of them)."""
    docs = list(docs)
    platform = platform if platform is not None else load_platform()
    req = requirements(docs)
    egress = egress_gateway_selector(platform)
    vpn = vpn_gateway_selector(platform)
    unplaceable = list(req.unsupported)
    # Topology keys the nodes get: zone and hostname always; any other key is a label we cannot invent.
    for key in sorted(req.topology_keys - {ZONE_KEY, HOSTNAME_KEY, REGION_KEY}):
        unplaceable.append(f"topology key {key}: no node carries it")

    # Labels of the pod pools: the gateway pools' own selectors are not worker labels.
    gateway_keys = set(egress) | set(vpn)
    ptp: dict[str, str] = {}
    for key, values in sorted(req.labels.items()):
        if key in WELL_KNOWN or key in gateway_keys:
            continue
        try:
            ptp[key] = _value_for(key, values)
        except ValueError as exc:
            unplaceable.append(str(exc))
    for key, values in req.labels.items():  # a pool selector with a value the platform does not give
        for pool in (egress, vpn):
            if key in pool and values and pool[key] not in values:
                unplaceable.append(f"pods require {key} in {sorted(values)}; platform.yaml gives {pool[key]}")

    cap = capacity_for(docs)
    nics = json.dumps(multicast_nics(platform), sort_keys=True)
    nodes: list[Doc] = []

    def add(name: str, zone: str, role: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        node = kwok_node(name, {ZONE_KEY: zone, REGION_KEY: REGION, ROLE_KEY: role, **labels},
                         cpu=cap["cpu"], memory=cap["memory"], pods=cap["pods"], ephemeral_storage=cap["ephemeral_storage"])
        node["metadata"]["annotations"].update(annotations or {})
        nodes.append(node)

    for zone in ZONES:
        short = zone.rsplit("-", 1)[-1]
        for i in range(PTP_WORKERS_PER_ZONE):
            add(f"worker-ptp-{short}{i}", zone, "worker-ptp", ptp, {MULTICAST_ANNOTATION: nics})
        for i in range(PLAIN_WORKERS_PER_ZONE):
            add(f"worker-{short}{i}", zone, "worker", {}, {MULTICAST_ANNOTATION: nics})
    for i in range(GATEWAY_NODES):
        add(f"egress-gw-{i}", ZONES[i % len(ZONES)], "egress-gateway", egress)
    for i in range(GATEWAY_NODES):
        add(f"vpn-gw-{i}", ZONES[(i + 1) % len(ZONES)], "vpn-gateway", vpn)
    return Topology(nodes, ptp, egress, vpn, unplaceable)


def node_satisfies(node_labels: dict[str, str], pod_spec: Doc) -> bool:
    """Whether a node's labels meet the pod's nodeSelector and (first-term) required node affinity."""
    labels, _ = node_requirements(pod_spec)
    return all(key in node_labels and (not values or node_labels[key] in values) for key, values in labels.items())
