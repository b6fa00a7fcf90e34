"""The mutation operators: dangerous changes, each made the way a careless engineer makes it.

An operator is a change, not a rule: it edits the files a person edits (an overlay's
kustomization, a component, a run book, the platform file, a generated profile by hand) and says
in one line what harm the change does. Whether the gate notices is for the gate to show; nothing
here knows how the gate or its model work.

Each operator plans where it applies (every shipped overlay where the harm is real) and edits a
private copy of the repository (tests/mutation/tree.py). See README.md for how to add one.
"""
from __future__ import annotations

import base64
import configparser
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from .catalogue import Catalogue, Overlay
from .tree import Tree, dump_yaml

Key = tuple[str, str]
SITES = ("overlay", "generated", "component", "composition", "runbook", "platform")


@dataclass(frozen=True)
class Plan:
    """One edit of the repository (one gate case), judged on one or more overlays."""

    operator: str
    target: str                      # what is edited, for people: "prod/cme", "components/failover"
    overlays: tuple[Key, ...]        # where the harm lands
    together: bool = False           # one mutant caught by a finding on any of `overlays`
    params: tuple[Any, ...] = ()
    regenerate: tuple[str, ...] = ()  # venues whose generated files `vcpl generate` rewrites

    @property
    def case_id(self) -> str:
        return f"{self.operator}@{self.target}"

    def mutants(self) -> list[Mutant]:
        if self.together:
            return [Mutant(self.operator, self.target, self.overlays, self.case_id)]
        return [Mutant(self.operator, self.target, (key,), self.case_id) for key in self.overlays]


@dataclass(frozen=True)
class Mutant:
    operator: str
    target: str
    overlays: tuple[Key, ...]
    case_id: str

    @property
    def id(self) -> str:
        where = ",".join(f"{e}/{v}" for e, v in self.overlays)
        return self.case_id if where == self.target else f"{self.case_id}#{where}"


@dataclass(frozen=True)
class Operator:
    id: str
    site: str
    harm: str
    plan: Callable[[Catalogue], list[Plan]] = field(repr=False)
    edit: Callable[[Tree, Catalogue, Plan], None] = field(repr=False)
    variant: bool = False
    per_env: bool = True  # False: the harm is the same in every environment, judged on prod


OPERATORS: list[Operator] = []


def _register(op: Operator) -> None:
    assert op.site in SITES, op.site
    assert all(o.id != op.id for o in OPERATORS), f"operator {op.id} registered twice"
    OPERATORS.append(op)


def _cert_differs(o: Overlay) -> bool:
    envs = o.runbook["environments"]
    return [n["path"] for n in envs["cert"]["networks"]] != [n["path"] for n in envs["prod"]["networks"]]


def per_overlay(op_id: str, site: str, harm: str, when: Callable[[Overlay], bool] = lambda o: True, variant: bool = False,
                per_env: bool = True):
    """An edit of one overlay (its folder, or its generated profile), judged on that overlay.

    A `variant` is a second shape of a harm another operator already applies everywhere, and a
    harm that is the same in every environment (`per_env=False`: the workload's own security
    context, exposure, RBAC, a literal credential) is judged once per venue: both run on the prod
    overlays only. Other operators run on dev and prod, and on cert where it differs from prod in
    what the gate reasons about (its network paths): otherwise cert is prod with other values, and
    judging it again costs time without covering anything new."""
    def applies(o: Overlay) -> bool:
        if variant or not per_env:
            return when(o) and o.env == "prod"
        return when(o) and (o.env != "cert" or _cert_differs(o))

    def decorate(edit: Callable[[Tree, Overlay], None]) -> Callable[[Tree, Overlay], None]:
        def plan(cat: Catalogue) -> list[Plan]:
            return [Plan(op_id, o.label, (o.key,), params=o.key) for o in cat.overlays if applies(o)]

        _register(Operator(op_id, site, harm, plan, lambda tree, cat, p: edit(tree, cat.get(*p.params)), variant, per_env))
        return edit
    return decorate


def shared(op_id: str, site: str, harm: str, plan: Callable[[Catalogue], list[Plan]], variant: bool = False):
    """An edit of something several overlays share (a component, a run book, the platform file)."""
    def decorate(edit: Callable[[Tree, Catalogue, Plan], None]) -> Callable[[Tree, Catalogue, Plan], None]:
        _register(Operator(op_id, site, harm, plan, edit, variant))
        return edit
    return decorate


def operator(op_id: str) -> Operator:
    for op in OPERATORS:
        if op.id == op_id:
            return op
    raise KeyError(op_id)


# ---------------------------------------------------------------------------------------------
# Editing helpers: how a person changes an overlay


def _kustomization_path(ov: Overlay) -> str:
    return f"{ov.dir}/kustomization.yaml"


def _edit_kustomization(tree: Tree, rel: str, change: Callable[[dict[str, Any]], None]) -> None:
    data = tree.read_yaml(rel)
    change(data)
    tree.write_yaml(rel, data)


def add_resource(tree: Tree, ov: Overlay, filename: str, *docs: dict[str, Any]) -> None:
    tree.write(f"{ov.dir}/{filename}", "---\n".join(dump_yaml(d) for d in docs))
    _edit_kustomization(tree, _kustomization_path(ov), lambda k: k.setdefault("resources", []).append(filename))


def add_patch(tree: Tree, ov: Overlay, patch: Any, *, target: dict[str, str] | None = None, filename: str | None = None) -> None:
    """A `patches:` entry: strategic merge when `patch` is an object, JSON6902 when it is a list."""
    text = dump_yaml(patch)
    entry: dict[str, Any] = {}
    if filename:
        tree.write(f"{ov.dir}/{filename}", text)
        entry["path"] = filename
    else:
        entry["patch"] = text
    if target:
        entry["target"] = target
    _edit_kustomization(tree, _kustomization_path(ov), lambda k: k.setdefault("patches", []).append(entry))


def gateway_patch(pod_spec: dict[str, Any] | None = None, container: dict[str, Any] | None = None,
                  template_meta: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A strategic-merge patch of the gateway StatefulSet (pod spec, the gateway container, or both)."""
    pod = dict(pod_spec or {})
    if container is not None:
        pod["containers"] = [{"name": "gateway", **container}]
    template: dict[str, Any] = {"spec": pod}
    if template_meta:
        template["metadata"] = template_meta
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "venue-gateway"},
            "spec": {**(spec or {}), "template": template}}


def json_patch(*ops: dict[str, Any]) -> list[dict[str, Any]]:
    return list(ops)


def netpol(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


GATEWAY = {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}}
STATE_DIR = "/var/lib/venue-gateway"
FIX_DIR = "/var/lib/venue-gateway/fix"


def _scheduled(o: Overlay) -> bool:
    return o.has("session-schedule")


def _multicast(o: Overlay) -> bool:
    return o.has("multicast")


def _quickfix(o: Overlay) -> bool:
    return o.has("fix-initiator") and bool(o.quickfix)


def _prod_with_standby(o: Overlay) -> bool:
    return o.env == "prod" and o.gateway_pods > 1


def _sequenced(o: Overlay) -> bool:
    """A venue session whose sequence numbers must survive a restart."""
    return any(s["purpose"] != "market-data" for s in o.services())


# ---------------------------------------------------------------------------------------------
# Overlays: network policies


@per_overlay("np-second-policy-egress-10-8", "overlay",
             "every pod of the namespace, the gateway included, may connect to any address in 10.0.0.0/8, past the venue allow-list")
def _np_second_policy(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "networkpolicy.allow-internal.yaml", netpol("allow-internal-egress", {
        "podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}))


@per_overlay("np-pod-name-egress-anywhere", "overlay",
             "the running gateway pod, selected by its StatefulSet pod-name label, may connect anywhere, inside or outside the cluster")
def _np_pod_name(tree: Tree, ov: Overlay) -> None:
    # An empty rule: "allow everything" without writing any address.
    add_resource(tree, ov, "networkpolicy.gateway-0-debug.yaml", netpol("venue-gateway-0-debug", {
        "podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "venue-gateway-0"}},
        "policyTypes": ["Egress"], "egress": [{}]}))


@per_overlay("np-egress-ports-without-to", "overlay",
             "an egress rule with ports and no `to` lets the gateway reach port 443 of every address, inside and outside the cluster")
def _np_ports_no_to(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/egress/-", "value": {"ports": [{"port": 443, "protocol": "TCP"}]}}),
              target={"kind": "NetworkPolicy", "name": "venue-egress"})


@per_overlay("np-egress-all-namespaces", "overlay",
             "an empty namespaceSelector lets the gateway reach every pod of every namespace on every port", variant=True)
def _np_all_namespaces(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/egress/-", "value": {"to": [{"namespaceSelector": {}}]}}),
              target={"kind": "NetworkPolicy", "name": "venue-egress"})


@per_overlay("np-egress-port-range", "overlay",
             "an endPort turns one venue port into a range up to 65535: the gateway reaches every service on that destination", variant=True)
def _np_port_range(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/egress/1/ports/0/endPort", "value": 65535}),
              target={"kind": "NetworkPolicy", "name": "venue-egress"})


@per_overlay("np-match-expressions-egress-10-8", "overlay",
             "a policy selecting the gateway through matchExpressions lets it connect anywhere in 10.0.0.0/8, past the venue allow-list",
             variant=True)
def _np_match_expressions(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "networkpolicy.gateway-internal.yaml", netpol("venue-gateway-internal", {
        "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["venue-gateway", "venue-gateway-canary"]}]},
        "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}))


@per_overlay("np-ingress-every-namespace", "overlay",
             "every namespace may reach the gateway's order-entry API through its named port, not only opted-in consumers",
             variant=True)
def _np_ingress_every_namespace(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "networkpolicy.api-from-anywhere.yaml", netpol("venue-gateway-api", {
        "podSelector": GATEWAY, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": "api", "protocol": "TCP"}]}]}))


@per_overlay("np-allow-all-ingress", "overlay",
             "any pod of any namespace may connect to the gateway's order-entry API and metrics port")
def _np_allow_all_ingress(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "networkpolicy.allow-all-ingress.yaml", netpol("allow-all-ingress", {
        "podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}))


@per_overlay("np-empty-rule-in-gateway-ingress", "overlay",
             "an empty rule {} in the gateway's ingress policy admits every source on every port")
def _np_empty_ingress_rule(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/ingress/-", "value": {}}),
              target={"kind": "NetworkPolicy", "name": "venue-gateway-ingress"})


@per_overlay("np-gateway-egress-deleted", "overlay",
             "without its egress policy the gateway, under default-deny, reaches neither DNS nor the venue: the session never logs on", variant=True)
def _np_gateway_egress_deleted(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "venue-egress"}, "$patch": "delete"})


@per_overlay("np-scheduler-egress-anywhere", "overlay",
             "the session-scheduler jobs, which hold an API token, may send it to any HTTPS endpoint on the internet",
             when=_scheduled)
def _np_scheduler_anywhere(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/egress/-", "value": {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
        "ports": [{"port": 443, "protocol": "TCP"}]}}),
        target={"kind": "NetworkPolicy", "name": "venue-session-scheduler-egress"})


@per_overlay("mnp-feed-lines-open", "overlay",
             "any host on the feed VLANs may send any port and protocol into the gateway's feed interfaces",
             when=_multicast, variant=True)
def _mnp_open(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/spec/ingress/-", "value": {}}),
              target={"kind": "MultiNetworkPolicy", "name": "feed-lines"})


# ---------------------------------------------------------------------------------------------
# Overlays: the gateway workload


@per_overlay("wl-read-only-root-false", "overlay",
             "the gateway's root filesystem becomes writable: an intruder can replace binaries and libraries in place", per_env=False)
def _wl_rw_root(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"securityContext": {"readOnlyRootFilesystem": False}}))


@per_overlay("wl-automount-token", "overlay",
             "the gateway pod mounts a Kubernetes API token it has no use for: a compromised engine can talk to the API server", per_env=False)
def _wl_automount(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"automountServiceAccountToken": True}))


@per_overlay("wl-projected-token", "overlay",
             "a projected service-account token volume hands the gateway an API token although automount is off", per_env=False)
def _wl_projected(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(
        {"volumes": [{"name": "api-token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}]},
        {"volumeMounts": [{"name": "api-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True}]}),
        filename="statefulset.token.yaml")


def namespace_patch(ov: Overlay, labels: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "venue", "labels": labels}}


@per_overlay("ns-enforce-privileged", "overlay",
             "the venue namespace is relabelled privileged: the API server admits root, added capabilities and host namespaces there",
             per_env=False)
def _ns_privileged(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, namespace_patch(ov, {"pod-security.kubernetes.io/enforce": "privileged"}))


@per_overlay("ns-level-label-removed", "overlay",
             "the Pod Security level label is dropped from the venue namespace: the cluster's default (often privileged) applies",
             per_env=False, variant=True)
def _ns_unlabelled(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, [{"op": "remove", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce"}], target={"kind": "Namespace"})


@per_overlay("wl-vpn-sidecar-in-gateway", "overlay",
             "an engineer puts strongSwan back into the gateway pod (root, NET_ADMIN) to reach a venue over IPsec: the venue namespace can no longer be restricted",
             when=lambda o: o.has("vpn"))
def _wl_vpn_sidecar(tree: Tree, ov: Overlay) -> None:
    sidecar = {
        "name": "strongswan", "image": "registry.vcpl.dev/connectivity/strongswan:6.0.1@sha256:" + "b" * 64, "restartPolicy": "Always",
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_BIND_SERVICE"]}},
    }
    add_patch(tree, ov, gateway_patch({"initContainers": [sidecar]}, template_meta={"annotations": {
        "vcpl.dev/capabilities-justification": "strongSwan installs IPsec SAs and XFRM policies and binds IKE on UDP 500"}}))


@per_overlay("wl-share-process-namespace", "overlay",
             "the stunnel sidecar sees the gateway's processes and their /proc environment and memory, and can signal them",
             when=lambda o: o.has("tls-sidecar"), per_env=False)
def _wl_share_pid(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"shareProcessNamespace": True}))


@per_overlay("wl-requests-below-limits", "overlay",
             "requests below limits drop the gateway out of Guaranteed QoS: throttled, evicted first and never on pinned cores", per_env=False)
def _wl_requests(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}))


@per_overlay("wl-privileged", "overlay",
             "a privileged gateway container has every capability and every host device: escaping to the node is trivial", per_env=False)
def _wl_privileged(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"securityContext": {"privileged": True, "allowPrivilegeEscalation": True}}))


@per_overlay("wl-run-as-root", "overlay",
             "the gateway engine runs as uid 0: a compromise owns every file the container can see", per_env=False)
def _wl_root(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}))


@per_overlay("wl-host-network", "overlay",
             "on the host network the gateway bypasses every NetworkPolicy and can bind or sniff the node's interfaces", per_env=False)
def _wl_host_network(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}))


@per_overlay("wl-capabilities-added", "overlay",
             "NET_RAW and SYS_PTRACE on the gateway: raw packets on the pod network and tracing of other processes", variant=True)
def _wl_caps(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"securityContext": {"capabilities": {"add": ["NET_RAW", "SYS_PTRACE"]}}}))


@per_overlay("wl-host-pid", "overlay",
             "the gateway shares the node's PID namespace: it sees, and as root could signal, every process on the node",
             variant=True)
def _wl_host_pid(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"hostPID": True}))


@per_overlay("wl-host-path-volume", "overlay",
             "the node's root filesystem is mounted into the gateway: a compromise reads kubelet credentials and other pods' data",
             variant=True)
def _wl_host_path(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(
        {"volumes": [{"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}]},
        {"volumeMounts": [{"name": "host-root", "mountPath": "/host", "readOnly": True}]}))


@per_overlay("wl-sidecar-requests-below-limits", "overlay",
             "the TLS sidecar's requests drop below its limits: the pod leaves Guaranteed QoS and the whole pod is throttled and evicted first",
             when=lambda o: o.has("tls-sidecar"), variant=True)
def _wl_sidecar_requests(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "venue-gateway"},
                         "spec": {"template": {"spec": {"initContainers": [{"name": "stunnel", "resources": {"requests": {"cpu": "20m", "memory": "16Mi"}}}]}}}})


@per_overlay("wl-second-replica-single-session", "overlay",
             "a second gateway replica for a venue without standby logs on twice with the same identity: the venue logs one out or rejects both",
             when=lambda o: o.gateway_pods == 1 and bool(o.fix_sessions))
def _wl_two_replicas(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(spec={"replicas": 2}))


@per_overlay("wl-autoscaled-single-session", "overlay",
             "a HorizontalPodAutoscaler may start a second gateway for a venue without standby: two logons with one identity",
             when=lambda o: o.gateway_pods == 1 and bool(o.fix_sessions), variant=True)
def _wl_hpa(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "hpa.venue-gateway.yaml", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "venue-gateway"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "venue-gateway"},
                 "minReplicas": 1, "maxReplicas": 2,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})


# ---------------------------------------------------------------------------------------------
# Overlays: session state


@per_overlay("store-emptydir-over-state-dir", "overlay",
             "the gateway's state directory is an emptyDir instead of the PVC: sequence numbers are lost at every restart",
             when=_sequenced)
def _store_state(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(
        {"volumes": [{"name": "state-cache", "emptyDir": {"sizeLimit": "1Gi"}}]},
        {"volumeMounts": [{"name": "state-cache", "mountPath": STATE_DIR}]}))


@per_overlay("store-emptydir-over-fix-store", "overlay",
             "an emptyDir mounted over the QuickFIX store shadows the PVC: sequence numbers are lost at every restart",
             when=_quickfix)
def _store_fix(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(
        {"volumes": [{"name": "fix-scratch", "emptyDir": {}}]},
        {"volumeMounts": [{"name": "fix-scratch", "mountPath": FIX_DIR}]}), filename="statefulset.fix-scratch.yaml")


# ---------------------------------------------------------------------------------------------
# Overlays: multicast attachments


@per_overlay("net-same-nad-twice", "overlay",
             "both feed interfaces attach the line-A NAD: A and B arrive on one NIC, whose failure loses both lines",
             when=_multicast)
def _net_same_nad(tree: Tree, ov: Overlay) -> None:
    networks = json.dumps([{"name": "feed-a", "interface": "feeda"}, {"name": "feed-a", "interface": "feedb"}], separators=(",", ":"))
    add_patch(tree, ov, gateway_patch(template_meta={"annotations": {"k8s.v1.cni.cncf.io/networks": networks}}))


@per_overlay("net-line-b-not-attached", "overlay",
             "the pod attaches only the line-A network: line B never reaches the gateway, arbitration has no spare",
             when=_multicast, variant=True)
def _net_line_b(tree: Tree, ov: Overlay) -> None:
    networks = json.dumps([{"name": "feed-a", "interface": "feeda"}], separators=(",", ":"))
    add_patch(tree, ov, gateway_patch(template_meta={"annotations": {"k8s.v1.cni.cncf.io/networks": networks}}))


# ---------------------------------------------------------------------------------------------
# Overlays: availability in prod


@per_overlay("ha-anti-affinity-removed", "overlay",
             "primary and standby gateways may be scheduled on the same node: one node failure takes both down",
             when=_prod_with_standby)
def _ha_anti_affinity(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"affinity": {"podAntiAffinity": None}}))


@per_overlay("ha-spread-and-anti-affinity-removed", "overlay",
             "without anti-affinity and zone spread the two gateways the opening job starts may share a node and a zone",
             when=_prod_with_standby)
def _ha_spread(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"affinity": {"podAntiAffinity": None}, "topologySpreadConstraints": None}))


@per_overlay("ha-anti-affinity-preferred", "overlay",
             "anti-affinity only preferred: under pressure the scheduler puts primary and standby on one node",
             when=_prod_with_standby, variant=True)
def _ha_preferred(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch({"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": None,
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": GATEWAY}}]}}}))


@per_overlay("ha-pdb-deleted", "overlay",
             "without a PodDisruptionBudget a node drain evicts primary and standby together",
             when=_prod_with_standby)
def _ha_pdb_deleted(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "venue-gateway"}, "$patch": "delete"})


@per_overlay("ha-pdb-selects-nothing", "overlay",
             "the PodDisruptionBudget selects a label the gateway pods do not carry: drains evict both gateways at once",
             when=_prod_with_standby, variant=True)
def _ha_pdb_selector(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "replace", "path": "/spec/selector", "value": {"matchLabels": {"app": "venue-gateway"}}}),
              target={"kind": "PodDisruptionBudget", "name": "venue-gateway"})


@per_overlay("obs-prometheusrule-deleted", "overlay",
             "the venue's session and feed alerts are gone in prod: a session or feed outage pages nobody",
             when=lambda o: o.env == "prod")
def _obs_rule_deleted(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "venue-gateway"}, "$patch": "delete"})


@per_overlay("obs-alert-group-dropped", "overlay",
             "the alert group is removed while the recording rules stay: dashboards look alive, nothing pages",
             when=lambda o: o.env == "prod", variant=True)
def _obs_group_dropped(tree: Tree, ov: Overlay) -> None:
    # The PrometheusRule's groups are the profile's, in order: drop the one that holds alerts.
    index = next(i for i, g in enumerate(ov.profile["monitoring"]["ruleGroups"]) if any("alert" in r for r in g["rules"]))
    add_patch(tree, ov, json_patch({"op": "remove", "path": f"/spec/groups/{index}"}),
              target={"kind": "PrometheusRule", "name": "venue-gateway"})


@per_overlay("img-latest-tag", "overlay",
             "prod runs whatever was last pushed as :latest: an untested image reaches the venue without promotion",
             when=lambda o: o.env == "prod")
def _img_latest(tree: Tree, ov: Overlay) -> None:
    def change(k: dict[str, Any]) -> None:
        image = next(i for i in k["images"] if i["name"] == "venue-gateway")
        image["newTag"] = "latest"
        image.pop("digest", None)
    _edit_kustomization(tree, _kustomization_path(ov), change)


# ---------------------------------------------------------------------------------------------
# Overlays: exposure


@per_overlay("exp-nodeport-service", "overlay",
             "a NodePort Service opens the gateway's order-entry API on every node's address", per_env=False)
def _exp_nodeport(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "service.venue-gateway-debug.yaml", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "venue-gateway-debug"},
        "spec": {"type": "NodePort", "selector": {"app.kubernetes.io/name": "venue-gateway"},
                 "ports": [{"name": "api", "port": 7000, "targetPort": "api", "protocol": "TCP"}]}})


@per_overlay("exp-load-balancer", "overlay",
             "the gateway Service becomes a LoadBalancer: the order-entry API gets an externally routable address", variant=True)
def _exp_lb(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "venue-gateway"}, "spec": {"type": "LoadBalancer"}})


@per_overlay("exp-external-ips", "overlay",
             "externalIPs make every node accept traffic for that address and forward it to the gateway", per_env=False)
def _exp_external_ips(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "venue-gateway"}, "spec": {"externalIPs": ["198.51.100.20"]}})


@per_overlay("exp-host-port", "overlay",
             "a hostPort publishes the order-entry API on the node's own address, outside every NetworkPolicy", per_env=False)
def _exp_host_port(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"ports": [{"containerPort": 7000, "hostPort": 7000, "protocol": "TCP", "name": "api"}]}))


# ---------------------------------------------------------------------------------------------
# Overlays: identity


def _crb(name: str, role: str, sa: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}


@per_overlay("rbac-clusterrole-secrets-to-gateway", "overlay",
             "the gateway's ServiceAccount may read every Secret of the cluster: one compromise leaks every venue's credentials", per_env=False)
def _rbac_secrets(tree: Tree, ov: Overlay) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"{ov.venue}-{ov.env}-secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]}
    add_resource(tree, ov, "rbac.secret-reader.yaml", role,
                 _crb(f"{ov.venue}-{ov.env}-secret-reader", role["metadata"]["name"], "venue-gateway", ov.namespace))


@per_overlay("rbac-gateway-edit-rolebinding", "overlay",
             "the gateway's ServiceAccount gets the built-in `edit` role in its namespace: it can read Secrets and change every workload there", variant=True)
def _rbac_edit(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "rolebinding.gateway-edit.yaml", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "venue-gateway-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "venue-gateway"}]})


@per_overlay("rbac-scheduler-wildcard", "overlay",
             "`*` on every resource for the scheduler's token: the CronJob can do anything in the namespace",
             when=_scheduled, per_env=False)
def _rbac_wildcard(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/rules/-", "value": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}}),
              target={"kind": "Role", "name": "venue-session-scheduler"})


@per_overlay("rbac-scheduler-pods-exec", "overlay",
             "pods/exec for the scheduler's token: the CronJob can run commands inside the gateway and read its credentials",
             when=_scheduled, per_env=False)
def _rbac_exec(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, json_patch({"op": "add", "path": "/rules/-", "value": {
        "apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "list", "create"]}}),
        target={"kind": "Role", "name": "venue-session-scheduler"})


@per_overlay("rbac-scheduler-cluster-admin", "overlay",
             "the scheduler's token is bound to cluster-admin: a compromised CronJob owns the cluster",
             when=_scheduled, per_env=False)
def _rbac_cluster_admin(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "clusterrolebinding.scheduler-admin.yaml",
                 _crb(f"{ov.venue}-{ov.env}-scheduler-admin", "cluster-admin", "venue-session-scheduler", ov.namespace))


# ---------------------------------------------------------------------------------------------
# Overlays: credentials in git (fake values shaped like real ones)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


_JWT = ".".join([_b64url(b'{"alg":"RS256","typ":"JWT"}'),
                 _b64url(b'{"iss":"venue-auth","sub":"vcpl-gateway","aud":"order-entry","exp":1893456000}'),
                 "Qm9ndXNTaWduYXR1cmVGb3JNdXRhdGlvblRlc3RzT25seUtlZXBPdXQtX3o5"])
# The armour is assembled at run time so the repository's own secret scan does not flag this file.
_ARMOUR = "PRIVATE " + "KEY"
_PEM = "\n".join([f"-----BEGIN {_ARMOUR}-----",
                  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDMutationTest0n",
                  "lyK3yNotRealButShapedLikeOneQm9ndXMgcHJpdmF0ZSBrZXkgZm9yIHRlc3Rz",
                  f"-----END {_ARMOUR}-----", ""])


@per_overlay("cred-bearer-token-in-env", "overlay",
             "a live bearer token sits in git and in the pod spec, under an env var whose name says nothing about it", per_env=False)
def _cred_bearer(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, gateway_patch(container={"env": [{"name": "UPSTREAM_HINT", "value": f"Bearer {_JWT}"}]}))


@per_overlay("cred-token-in-annotation", "overlay",
             "a personal access token pasted into an annotation sits in git and in every copy of the object's metadata",
             variant=True)
def _cred_annotation(tree: Tree, ov: Overlay) -> None:
    token = "ghp_" + "R7cK2mW9qZ4xT1vB8nL3pH6sD0fJ5gYaE2uI"
    add_patch(tree, ov, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "venue-gateway", "annotations": {
        "vcpl.dev/notes": f"registry pull fixed with {token}, rotate later"}}})


@per_overlay("cred-password-in-configmap", "overlay",
             "the FIX password sits in git and in a ConfigMap every reader of the namespace can see", per_env=False)
def _cred_cm_password(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "configmap.gateway-overrides.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gateway-overrides"},
        "data": {"overrides.properties": "fix.reconnect.interval=10\nfix.password=Wint3r-Tr4ding-2026!\n"}})


@per_overlay("cred-private-key-in-configmap", "overlay",
             "a client private key sits in git and in a ConfigMap: anyone who reads it can log on as us", variant=True)
def _cred_pem(tree: Tree, ov: Overlay) -> None:
    add_resource(tree, ov, "configmap.client-tls.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "client-tls-bundle"}, "data": {"client.key": _PEM}})


@per_overlay("cred-secret-generator-literal", "overlay",
             "a secretGenerator literal commits the session password to git in clear", variant=True)
def _cred_secret_generator(tree: Tree, ov: Overlay) -> None:
    _edit_kustomization(tree, _kustomization_path(ov), lambda k: k.setdefault("secretGenerator", []).append(
        {"name": "venue-session-password", "literals": ["password=Sup3r-S3cret-2026"]}))


# ---------------------------------------------------------------------------------------------
# Generated profiles, edited by hand without running `vcpl generate`


def edit_profile(tree: Tree, ov: Overlay, change: Callable[[dict[str, Any]], None]) -> None:
    text = tree.read(ov.profile_path)
    # A hand edit keeps the "generated, do not edit" line it ignores.
    header = text.split("\n", 1)[0] + "\n" if text.startswith("#") else ""
    data = yaml.safe_load(text)
    change(data["spec"])
    tree.write(ov.profile_path, header + dump_yaml(data))


def _edit_gateway_json(spec: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    config = json.loads(spec["gateway"]["config"])
    change(config)
    spec["gateway"]["config"] = json.dumps(config, indent=2, sort_keys=True) + "\n"


def _edit_quickfix(spec: dict[str, Any], change: Callable[[str], str]) -> None:
    before = spec["fix"]["sessionSettings"]
    after = change(before)
    assert after != before, "the QuickFIX edit changed nothing"
    spec["fix"]["sessionSettings"] = after


def _set_setting(text: str, key: str, value: str, count: int = 1) -> str:
    return re.sub(rf"(?m)^{key}=.*$", f"{key}={value}", text, count=count)


def _stunnel_targets(ov: Overlay) -> list[tuple[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string("[global]\n" + (ov.stunnel or ""))
    return [tuple(parser[s]["connect"].rsplit(":", 1)) for s in parser.sections() if "connect" in parser[s]]  # type: ignore[misc]


@per_overlay("gen-quickfix-direct-plaintext", "generated",
             "the FIX engine connects straight to the venue's host without TLS while gateway.json still says tls: logons and orders cross the network in clear",
             when=lambda o: _quickfix(o) and o.has("tls-sidecar") and o.env != "dev" and bool(_stunnel_targets(o)))
def _gen_direct(tree: Tree, ov: Overlay) -> None:
    host, port = _stunnel_targets(ov)[0]

    def change(text: str) -> str:
        text = _set_setting(text, "SocketConnectHost", host)
        text = _set_setting(text, "SocketConnectPort", port)
        return _set_setting(text, "SocketUseSSL", "N")
    edit_profile(tree, ov, lambda spec: _edit_quickfix(spec, change))


def _engine_services(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Services whose engine connects where gateway.json says (a QuickFIX service follows its
    settings file instead, which other operators change)."""
    return [s for s in config.get("services", []) if not s.get("quickfixSettings")]


def _first_endpoint(config: dict[str, Any]) -> dict[str, Any] | None:
    for service in _engine_services(config):
        for endpoint in service.get("endpoints", []):
            return endpoint
    return None


@per_overlay("gen-endpoint-port-changed", "generated",
             "the engine connects to a port the run book does not list: another venue environment or a service we are not certified for",
             when=lambda o: _first_endpoint(o.gateway_config) is not None)
def _gen_port(tree: Tree, ov: Overlay) -> None:
    def change(config: dict[str, Any]) -> None:
        endpoint = _first_endpoint(config)
        assert endpoint is not None
        endpoint["port"] = int(endpoint["port"]) + 1
    edit_profile(tree, ov, lambda spec: _edit_gateway_json(spec, change))


@per_overlay("gen-quickfix-wrong-time-zone", "generated",
             "a valid but wrong TimeZone moves the session's start and end by hours: the engine logs on or out at the wrong time",
             when=_quickfix)
def _gen_tz(tree: Tree, ov: Overlay) -> None:
    zone = "Europe/London" if "TimeZone=Europe/London" not in (ov.quickfix or "") else "Asia/Tokyo"
    edit_profile(tree, ov, lambda spec: _edit_quickfix(spec, lambda t: _set_setting(t, "TimeZone", zone)))


@per_overlay("gen-channels-line-b-removed", "generated",
             "line B of a channel is gone from channels.json: one dropped packet on line A is a gap nobody can fill",
             when=_multicast)
def _gen_line_b(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        channels = json.loads(spec["multicast"]["channels"])
        del channels["channels"][0]["b"]
        spec["multicast"]["channels"] = json.dumps(channels, indent=2, sort_keys=True) + "\n"
    edit_profile(tree, ov, change)


def _has_failover_order(config: dict[str, Any]) -> bool:
    return any(len(s.get("endpoints", [])) >= 2 for s in _engine_services(config))


@per_overlay("gen-backup-before-primary", "generated",
             "the engine tries the backup gateway first: it logs on where the venue does not expect the session, or splits the session across sites",
             when=lambda o: _has_failover_order(o.gateway_config))
def _gen_backup_first(tree: Tree, ov: Overlay) -> None:
    def change(config: dict[str, Any]) -> None:
        service = next(s for s in _engine_services(config) if len(s.get("endpoints", [])) >= 2)
        eps = service["endpoints"]
        eps[0], eps[1] = eps[1], eps[0]
    edit_profile(tree, ov, lambda spec: _edit_gateway_json(spec, change))


@per_overlay("gen-quickfix-backup-first", "generated",
             "QuickFIX's first connect host is the backup (or DR) one: the session starts on the wrong site",
             when=lambda o: _quickfix(o) and "SocketConnectHost1=" in (o.quickfix or ""), variant=True)
def _gen_qf_backup_first(tree: Tree, ov: Overlay) -> None:
    def change(text: str) -> str:
        values = dict(re.findall(r"(?m)^(SocketConnect(?:Host|Port)1?)=(.*)$", text))
        text = _set_setting(text, "SocketConnectHost", values["SocketConnectHost1"])
        text = _set_setting(text, "SocketConnectPort", values["SocketConnectPort1"])
        text = _set_setting(text, "SocketConnectHost1", values["SocketConnectHost"])
        return _set_setting(text, "SocketConnectPort1", values["SocketConnectPort"])
    edit_profile(tree, ov, lambda spec: _edit_quickfix(spec, change))


def _other_env_sender(ov: Overlay) -> str | None:
    if not ov.fix_sessions:
        return None
    _, service = ov.fix_sessions[0]
    other = {"dev": "cert", "cert": "dev", "prod": "cert"}[ov.env]
    sender = ((service["environments"].get(other) or {}).get("session") or {}).get("senderCompID")
    return sender if sender and sender != ov.service_env(service)["session"]["senderCompID"] else None


@per_overlay("gen-quickfix-wrong-sender-comp-id", "generated",
             "the engine logs on with another environment's SenderCompID: orders land in the wrong session (or cert orders in prod)",
             when=lambda o: _quickfix(o) and _other_env_sender(o) is not None)
def _gen_sender(tree: Tree, ov: Overlay) -> None:
    sender = _other_env_sender(ov)
    assert sender
    edit_profile(tree, ov, lambda spec: _edit_quickfix(spec, lambda t: _set_setting(t, "SenderCompID", sender)))


def _heartbeat_out_of_bounds(ov: Overlay) -> int:
    _, service = ov.fix_sessions[0]
    heartbeat = service.get("heartbeat") or {}
    if heartbeat.get("max"):
        return int(heartbeat["max"]) + 30
    return int(heartbeat.get("default", 30)) * 10


@per_overlay("gen-quickfix-heartbeat-out-of-bounds", "generated",
             "HeartBtInt above the venue's maximum (or far from the run book's value): the venue rejects the Logon or a dead link goes unnoticed",
             when=lambda o: _quickfix(o) and bool(o.fix_sessions), variant=True)
def _gen_heartbeat(tree: Tree, ov: Overlay) -> None:
    value = str(_heartbeat_out_of_bounds(ov))
    edit_profile(tree, ov, lambda spec: _edit_quickfix(spec, lambda t: _set_setting(t, "HeartBtInt", value)))


@per_overlay("gen-egress-widened", "generated",
             "the gateway's allow-list is widened by hand (a /8 around the venue, or every namespace instead of the simulators'): the gateway reaches far more than the run book's destinations", variant=True)
def _gen_egress(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        for rule in spec["egress"]["rules"]:
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    first = peer["ipBlock"]["cidr"].split(".")[0]
                    peer["ipBlock"] = {"cidr": f"{first}.0.0.0/8"}
                    return
        for rule in spec["egress"]["rules"]:
            for peer in rule.get("to", []):
                labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                if labels and "kube-system" not in labels.values():
                    peer["namespaceSelector"] = {}
                    peer.pop("podSelector", None)
                    return
        raise AssertionError("no egress rule to widen")
    edit_profile(tree, ov, change)


def _retransmitted(o: Overlay) -> bool:
    channels = (o.profile.get("multicast") or {}).get("channels")
    return bool(channels) and any("a" in r for r in json.loads(channels).get("recovery", []))


@per_overlay("gen-retransmission-lines-dropped", "generated",
             "retransmissions are requested over TCP but the engine never joins the multicast groups they arrive on: every gap request is answered into the void",
             when=_retransmitted)
def _gen_retransmission_lines(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        document = json.loads(spec["multicast"]["channels"])
        for item in document["recovery"]:
            for key in ("id", "a", "b"):
                item.pop(key, None)
        spec["multicast"]["channels"] = json.dumps(document, indent=2, sort_keys=True) + "\n"
    edit_profile(tree, ov, change)


@per_overlay("gen-reconnect-without-end", "generated",
             "the gateway keeps reconnecting where the run book says stop and call the venue: failed logons pile up until the venue closes the port",
             when=lambda o: (o.runbook["failover"].get("reconnect") or {}).get("then") == "call-venue")
def _gen_reconnect_forever(tree: Tree, ov: Overlay) -> None:
    edit_profile(tree, ov, lambda spec: _edit_gateway_json(spec, lambda c: c["failover"]["reconnect"].update(then="repeat")))


def _assigns(o: Overlay) -> bool:
    return any("assigns" in ep for s in o.services() for ep in (o.service_env(s).get("endpoints") or {}).values())


@per_overlay("gen-assigned-gateways-unreachable", "generated",
             "egress allows the connection gateway but not the application gateways it assigns: logon succeeds at the lookup and fails at the trading gateway",
             when=_assigns)
def _gen_assigned_unreachable(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        before = len(spec["egress"]["rules"])
        spec["egress"]["rules"] = [r for r in spec["egress"]["rules"] if not any("endPort" in p for p in r.get("ports", []))]
        assert len(spec["egress"]["rules"]) < before, "no assigned range in the egress rules"
    edit_profile(tree, ov, change)


@per_overlay("gen-vpn-traffic-on-egress-nodes", "generated",
             "the venue's subnets are steered to the egress-gateway nodes, which hold no tunnel: the traffic leaves in clear, without the tunnel",
             when=lambda o: o.has("vpn"))
def _gen_vpn_nodes(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["vpn"]["nodeSelector"] = {"vcpl.dev/egress-gateway": "true"}
    edit_profile(tree, ov, change)


@per_overlay("ovl-egress-address-changed", "overlay",
             "the egress address is patched to one the venue never registered: every connection from the allow-listed path is refused",
             when=lambda o: o.has("ip-allowlist/cilium-egress-gateway"))
def _ovl_egress_address(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, [{"op": "replace", "path": "/spec/egressGateway/egressIP", "value": "10.250.99.99"}],
              target={"group": "cilium.io", "kind": "CiliumEgressGatewayPolicy"})


@per_overlay("ovl-egress-policy-selects-other-pods", "overlay",
             "the egress policy's pod selector is patched to a label the gateway does not carry: its traffic leaves from the node's own address, outside the allow-list or the tunnel",
             when=lambda o: o.has("vpn") or o.has("ip-allowlist/cilium-egress-gateway"), variant=True)
def _ovl_egress_selector(tree: Tree, ov: Overlay) -> None:
    add_patch(tree, ov, [{"op": "replace", "path": "/spec/selectors/0/podSelector/matchLabels/app.kubernetes.io~1name", "value": "venue-gateway-canary"}],
              target={"group": "cilium.io", "kind": "CiliumEgressGatewayPolicy"})


def _cni_master(config: str) -> str:
    return json.loads(config)["plugins"][0]["master"]


@per_overlay("gen-nad-same-master", "generated",
             "the line-B NAD is put on line A's NIC by hand: one NIC failure or overrun loses both lines",
             when=_multicast, variant=True)
def _gen_same_master(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        feed_b = json.loads(spec["multicast"]["feedB"])
        feed_b["plugins"][0]["master"] = _cni_master(spec["multicast"]["feedA"])
        spec["multicast"]["feedB"] = json.dumps(feed_b, separators=(",", ":"), sort_keys=True)
    edit_profile(tree, ov, change)


def _wss(config: dict[str, Any]) -> bool:
    return any(e.get("transport") == "wss" for s in config.get("services", []) for e in s.get("endpoints", []))


@per_overlay("gen-wss-downgraded-to-ws", "generated",
             "a WebSocket endpoint is switched from wss to ws: subscriptions and signed requests cross the internet in clear",
             when=lambda o: o.env != "dev" and _wss(o.gateway_config), variant=True)
def _gen_ws(tree: Tree, ov: Overlay) -> None:
    def change(config: dict[str, Any]) -> None:
        for service in config["services"]:
            for endpoint in service.get("endpoints", []):
                if endpoint.get("transport") == "wss":
                    endpoint["transport"] = "ws"
    edit_profile(tree, ov, lambda spec: _edit_gateway_json(spec, change))


@per_overlay("gen-stunnel-no-verification", "generated",
             "stunnel stops verifying the venue's certificate: anyone on the path can impersonate the venue",
             when=lambda o: o.has("tls-sidecar") and o.env != "dev" and bool(_stunnel_targets(o)), variant=True)
def _gen_stunnel(tree: Tree, ov: Overlay) -> None:
    def change(spec: dict[str, Any]) -> None:
        text = spec["tls"]["stunnelConfig"]
        text = re.sub(r"(?m)^verifyChain = yes$", "verifyChain = no", text)
        text = re.sub(r"(?m)^checkHost = .*\n", "", text)
        assert text != spec["tls"]["stunnelConfig"]
        spec["tls"]["stunnelConfig"] = text
    edit_profile(tree, ov, change)


# ---------------------------------------------------------------------------------------------
# Components: one edit, every overlay that composes the component


def _component_plan(op_id: str, component: str, judged: Callable[[Overlay], bool]) -> Callable[[Catalogue], list[Plan]]:
    def plan(cat: Catalogue) -> list[Plan]:
        overlays = tuple(o.key for o in cat.composing(component) if judged(o))
        return [Plan(op_id, f"components/{component}", overlays)] if overlays else []
    return plan


@shared("comp-multicast-feed-b-from-feed-a", "component",
        "the component fills the line-B NAD from line A's settings: both lines on one NIC and one address range",
        _component_plan("comp-multicast-feed-b-from-feed-a", "multicast", lambda o: True))
def _comp_feed_b(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    rel = "components/multicast/kustomization.yaml"

    def change(k: dict[str, Any]) -> None:
        for replacement in k["replacements"]:
            if replacement["source"].get("fieldPath") == "spec.multicast.feedB":
                replacement["source"]["fieldPath"] = "spec.multicast.feedA"
                return
        raise AssertionError("no feedB replacement in the multicast component")
    _edit_kustomization(tree, rel, change)


@shared("comp-failover-anti-affinity-removed", "component",
        "the failover component no longer keeps primary and standby apart: one node failure takes both down",
        _component_plan("comp-failover-anti-affinity-removed", "failover", _prod_with_standby))
def _comp_failover(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    rel = "components/failover/statefulset.venue-gateway.yaml"
    data = tree.read_yaml(rel)
    del data["spec"]["template"]["spec"]["affinity"]
    tree.write_yaml(rel, data)


@shared("comp-scheduler-egress-selects-every-pod", "component",
        "the scheduler's egress policy selects every pod: the gateway may now reach the Kubernetes API server",
        _component_plan("comp-scheduler-egress-selects-every-pod", "session-schedule", lambda o: True))
def _comp_scheduler_selector(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    rel = "components/session-schedule/networkpolicy.venue-session-scheduler-egress.yaml"
    data = tree.read_yaml(rel)
    data["spec"]["podSelector"] = {}
    tree.write_yaml(rel, data)


@shared("comp-scheduler-egress-extra-policy", "component",
        "a second policy in the component lets the scheduler jobs, which hold an API token, reach an outside /16 ('where the chat webhook lives')",
        _component_plan("comp-scheduler-egress-extra-policy", "session-schedule", lambda o: o.env == "prod"), variant=True)
def _comp_scheduler_extra(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    tree.write("components/session-schedule/networkpolicy.scheduler-https.yaml", dump_yaml(netpol("venue-session-scheduler-https", {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "venue-session-scheduler"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "35.190.0.0/16"}}], "ports": [{"port": 443, "protocol": "TCP"}]}]})))
    _edit_kustomization(tree, "components/session-schedule/kustomization.yaml",
                        lambda k: k["resources"].append("networkpolicy.scheduler-https.yaml"))


@shared("comp-scheduler-role-any-statefulset", "component",
        "the scheduler's Role loses its resourceNames and gains delete: its token may delete or rewrite every StatefulSet of the namespace",
        _component_plan("comp-scheduler-role-any-statefulset", "session-schedule", lambda o: o.env == "prod"))
def _comp_scheduler_role(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    rel = "components/session-schedule/role.venue-session-scheduler.yaml"
    data = tree.read_yaml(rel)
    for rule in data["rules"]:
        rule.pop("resourceNames", None)
        rule["verbs"] = sorted(set(rule["verbs"]) | {"delete", "update"})
    tree.write_yaml(rel, data)


@shared("comp-observability-without-prometheusrule", "component",
        "the observability component stops shipping the venue's alerts: outages page nobody, in every venue at once",
        _component_plan("comp-observability-without-prometheusrule", "observability", lambda o: o.env == "prod"))
def _comp_observability(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    _edit_kustomization(tree, "components/observability/kustomization.yaml",
                        lambda k: k["resources"].remove("prometheusrule.venue-gateway.yaml"))


# ---------------------------------------------------------------------------------------------
# Composition: a venue's component list


def _composition_plan(op_id: str, component: str, judged: Callable[[Overlay], bool]) -> Callable[[Catalogue], list[Plan]]:
    def plan(cat: Catalogue) -> list[Plan]:
        plans = []
        for venue in cat.venues:
            overlays = tuple(o.key for o in cat.of_venue(venue) if o.has(component) and judged(o))
            if overlays:
                plans.append(Plan(op_id, f"venues/{venue}/kustomization.yaml", overlays, params=(venue, component)))
        return plans
    return plan


def _drop_component(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, component = plan.params

    def change(k: dict[str, Any]) -> None:
        entry = f"../../components/{component}"
        assert entry in k["components"], f"{venue} does not compose {component}"
        k["components"].remove(entry)
    _edit_kustomization(tree, f"venues/{venue}/kustomization.yaml", change)


_register(Operator(
    "venue-drops-fix-initiator", "composition",
    "the venue stops composing fix-initiator: gateway.json names a QuickFIX file that is never mounted, so the FIX session never logs on",
    _composition_plan("venue-drops-fix-initiator", "fix-initiator", lambda o: True), _drop_component))
_register(Operator(
    "venue-drops-clock-sync", "composition",
    "the venue stops composing clock-sync although the run book requires it: prod timestamps may come from an unsynchronised node (RTS 25)",
    _composition_plan("venue-drops-clock-sync", "clock-sync", lambda o: o.env == "prod"), _drop_component))
_register(Operator(
    "venue-drops-failover", "composition",
    "the venue stops composing failover although the run book keeps a hot standby: prod runs without its standby",
    _composition_plan("venue-drops-failover", "failover", lambda o: o.env == "prod"), _drop_component))


# ---------------------------------------------------------------------------------------------
# Run books, then `vcpl generate` as the engineer would run it


def _runbook_path(venue: str) -> str:
    return f"venues/{venue}/runbook.yaml"


def _edit_runbook(tree: Tree, venue: str, change: Callable[[dict[str, Any]], None]) -> None:
    data = tree.read_yaml(_runbook_path(venue))
    change(data)
    tree.write_yaml(_runbook_path(venue), data)


def _fix_env_plans(op_id: str, envs: tuple[str, ...] = ("dev", "cert", "prod")) -> Callable[[Catalogue], list[Plan]]:
    def plan(cat: Catalogue) -> list[Plan]:
        return [Plan(op_id, f"{_runbook_path(o.venue)} ({o.env})", (o.key,), params=(o.venue, o.env), regenerate=(o.venue,))
                for o in cat.overlays if o.env in envs and o.fix_sessions]
    return plan


@shared("rb-password-in-session", "runbook",
        "a `password:` in a session block is copied into gateway.json: the password ends up in git and in a ConfigMap",
        _fix_env_plans("rb-password-in-session", ("prod",)))
def _rb_password(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, env = plan.params
    index, _ = cat.get(env, venue).fix_sessions[0]
    _edit_runbook(tree, venue, lambda rb: rb["services"][index]["environments"][env]["session"].update({"password": "Tr4d1ng-Pa55-2026"}))


@shared("rb-credential-under-innocent-key", "runbook",
        "a logon token under an innocent session key is copied into gateway.json: a live credential in git and in a ConfigMap",
        _fix_env_plans("rb-credential-under-innocent-key", ("prod",)), variant=True)
def _rb_innocent(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, env = plan.params
    index, _ = cat.get(env, venue).fix_sessions[0]
    _edit_runbook(tree, venue, lambda rb: rb["services"][index]["environments"][env]["session"].update(
        {"logonData": "9f2Kq7XbW4mZ1tR8vL3nP6yH0sD5gJcE"}))


def _shared_sender_plans(cat: Catalogue) -> list[Plan]:
    prod = [o for o in cat.of_env("prod") if o.fix_sessions]
    plans = []
    for i, ov in enumerate(prod):
        other = prod[(i + 1) % len(prod)]
        if other.venue != ov.venue:
            plans.append(Plan("rb-shared-sender-comp-id", f"{_runbook_path(ov.venue)} (prod, {other.venue}'s SenderCompID)",
                              (ov.key, other.key), together=True, params=(ov.venue, other.venue), regenerate=(ov.venue,)))
    return plans


@shared("rb-shared-sender-comp-id", "runbook",
        "two venues' prod sessions log on with one SenderCompID: our firm's identity is ambiguous and a copy-paste sends orders under the wrong session",
        _shared_sender_plans)
def _rb_shared_sender(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, other = plan.params
    index, _ = cat.get("prod", venue).fix_sessions[0]
    _, other_service = cat.get("prod", other).fix_sessions[0]
    sender = other_service["environments"]["prod"]["session"]["senderCompID"]
    _edit_runbook(tree, venue, lambda rb: rb["services"][index]["environments"]["prod"]["session"].update({"senderCompID": sender}))


def _bounded_heartbeat_plans(cat: Catalogue) -> list[Plan]:
    plans = []
    for venue in cat.venues:
        ov = cat.of_venue(venue)[0]
        if any((s.get("heartbeat") or {}).get("max") for s in ov.services()):
            plans.append(Plan("rb-heartbeat-outside-bounds", _runbook_path(venue), tuple(o.key for o in cat.of_venue(venue)),
                              together=True, params=(venue,), regenerate=(venue,)))
    return plans


@shared("rb-heartbeat-outside-bounds", "runbook",
        "a heartbeat above the venue's maximum: the venue rejects the Logon, or disconnects between heartbeats",
        _bounded_heartbeat_plans)
def _rb_heartbeat(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    (venue,) = plan.params

    def change(rb: dict[str, Any]) -> None:
        service = next(s for s in rb["services"] if (s.get("heartbeat") or {}).get("max"))
        service["heartbeat"]["default"] = int(service["heartbeat"]["max"]) + 1
    _edit_runbook(tree, venue, change)


def _standby_plans(cat: Catalogue) -> list[Plan]:
    plans = []
    for venue in cat.venues:
        overlays = tuple(o.key for o in cat.of_venue(venue) if o.has("failover"))
        if overlays and cat.of_venue(venue)[0].runbook["failover"]["standby"] == "hot":
            plans.append(Plan("rb-standby-none-failover-kept", _runbook_path(venue), overlays, params=(venue,), regenerate=(venue,)))
    return plans


@shared("rb-standby-none-failover-kept", "runbook",
        "the run book drops the standby but the failover component stays composed: the deployment no longer does what the run book says",
        _standby_plans)
def _rb_standby(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    (venue,) = plan.params
    _edit_runbook(tree, venue, lambda rb: rb["failover"].update({"standby": "none"}))


def _cidr_plans(cat: Catalogue) -> list[Plan]:
    plans = []
    for ov in cat.overlays:
        if ov.env == "dev":
            continue
        for i, service in enumerate(ov.services()):
            endpoints = ov.service_env(service).get("endpoints") or {}
            role = next((r for r in ("primary", "backup", "dr") if (endpoints.get(r) or {}).get("cidrs")), None)
            if role:
                plans.append(Plan("rb-endpoint-cidrs-anywhere", f"{_runbook_path(ov.venue)} ({ov.env})", (ov.key,),
                                  params=(ov.venue, ov.env, i, role), regenerate=(ov.venue,)))
                break
    return plans


@shared("rb-endpoint-cidrs-anywhere", "runbook",
        "an endpoint's CIDRs become 0.0.0.0/0 ('the venue's addresses keep changing'): the gateway may connect anywhere on the internet",
        _cidr_plans)
def _rb_cidrs(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, env, index, role = plan.params
    _edit_runbook(tree, venue, lambda rb: rb["services"][index]["environments"][env]["endpoints"][role].update({"cidrs": ["0.0.0.0/0"]}))


def _plaintext_plans(cat: Catalogue) -> list[Plan]:
    plans = []
    for ov in cat.of_env("prod"):
        for i, service in enumerate(ov.services()):
            primary = (ov.service_env(service).get("endpoints") or {}).get("primary") or {}
            if (service.get("tls") or {}).get("required") and primary.get("transport") in ("tls", "wss"):
                plans.append(Plan("rb-endpoint-plaintext", f"{_runbook_path(ov.venue)} (prod)", (ov.key,),
                                  params=(ov.venue, i), regenerate=(ov.venue,)))
                break
    return plans


@shared("rb-endpoint-plaintext", "runbook",
        "a prod endpoint that requires TLS is switched to plain tcp: the session crosses the network in clear",
        _plaintext_plans)
def _rb_plaintext(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    venue, index = plan.params
    _edit_runbook(tree, venue, lambda rb: rb["services"][index]["environments"]["prod"]["endpoints"]["primary"].update({"transport": "tcp"}))


# ---------------------------------------------------------------------------------------------
# The platform file, then `vcpl generate`


def _platform_plan(op_id: str, judged: Callable[[Overlay], bool]) -> Callable[[Catalogue], list[Plan]]:
    def plan(cat: Catalogue) -> list[Plan]:
        plans = []
        for env in ("dev", "cert", "prod"):
            overlays = tuple(o.key for o in cat.of_env(env) if judged(o))
            if overlays:
                plans.append(Plan(op_id, f"platform/platform.yaml ({env})", overlays, params=(env,), regenerate=tuple(cat.venues)))
        return plans
    return plan


def _edit_platform(tree: Tree, change: Callable[[dict[str, Any]], None]) -> None:
    data = tree.read_yaml("platform/platform.yaml")
    change(data)
    tree.write_yaml("platform/platform.yaml", data)


@shared("plat-api-server-anywhere", "platform",
        "the API server 'CIDR' becomes 0.0.0.0/0: the scheduler jobs, which hold a token, may reach the whole internet on the API port",
        _platform_plan("plat-api-server-anywhere", _scheduled))
def _plat_api(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    (env,) = plan.params
    _edit_platform(tree, lambda p: p["environments"][env]["apiServer"].update({"cidr": "0.0.0.0/0"}))


@shared("plat-multicast-one-master", "platform",
        "both multicast lines are put on one physical NIC: its failure or overrun loses lines A and B together",
        _platform_plan("plat-multicast-one-master", _multicast))
def _plat_master(tree: Tree, cat: Catalogue, plan: Plan) -> None:
    (env,) = plan.params

    def change(p: dict[str, Any]) -> None:
        lines = p["environments"][env]["multicast"]
        lines["b"]["master"] = lines["a"]["master"]
    _edit_platform(tree, change)


def plans(cat: Catalogue) -> list[Plan]:
    found = [p for op in OPERATORS for p in op.plan(cat)]
    ids = [p.case_id for p in found]
    assert len(ids) == len(set(ids)), "two plans share a case id"
    return found
