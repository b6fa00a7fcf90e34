"""The effective model: Kubernetes semantics the rules rely on (selectors, policy unions, mount
shadowing, tokens, RBAC binding) on small objects, and what it says of the shipped overlays."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from vcpl import gate, model
from vcpl.model import netpol, selectors

Obj = dict[str, Any]
NS = "venue-acme-prod"


def _gateway(**spec: Any) -> Obj:
    pod_spec = {
        "serviceAccountName": "venue-gateway",
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "gateway", "image": "gw@sha256:00",
            "args": ["--config=/etc/venue-gateway/gateway/gateway.json", "--state-dir=/var/lib/venue-gateway"],
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/venue-gateway/gateway", "readOnly": True},
                {"name": "fix", "mountPath": "/etc/venue-gateway/fix", "readOnly": True},
                {"name": "session-state", "mountPath": "/var/lib/venue-gateway"},
            ],
        }],
        "volumes": [{"name": "config", "configMap": {"name": "venue-gateway"}}, {"name": "fix", "configMap": {"name": "fix-session"}}],
    }
    pod_spec.update(spec)
    return {
        "kind": "StatefulSet", "metadata": {"name": "venue-gateway", "namespace": NS},
        "spec": {"replicas": None, "template": {"metadata": {"labels": {"app.kubernetes.io/name": "venue-gateway"}}, "spec": pod_spec},
                 "volumeClaimTemplates": [{"metadata": {"name": "session-state"}}]},
    }


GATEWAY_JSON = '{"venue": "acme", "services": [{"name": "oe", "quickfixSettings": "/etc/venue-gateway/fix/session.cfg"}]}'
SESSION_CFG = """[DEFAULT]
FileStorePath=/var/lib/venue-gateway/fix/store
TimeZone=UTC
[SESSION]
SenderCompID=ACME
TargetCompID=VENUE
SocketConnectHost=10.0.0.1
SocketConnectPort=9000
SocketConnectHost1=10.0.0.2
SocketConnectPort1=9001
"""


def _configmaps() -> list[Obj]:
    return [
        {"kind": "ConfigMap", "metadata": {"name": "venue-gateway", "namespace": NS}, "data": {"gateway.json": GATEWAY_JSON}},
        {"kind": "ConfigMap", "metadata": {"name": "fix-session", "namespace": NS}, "data": {"session.cfg": SESSION_CFG}},
    ]


def _netpol(name: str, spec: Obj) -> Obj:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def _model(objects: list[Obj]) -> Obj:
    return model.build(venue="acme", environment="prod", namespace=NS, objects=objects, runbook={}, platform={},
                       components=[], expected={"alerts": [], "components": []})


def _pod(m: Obj, pod_id: str = "StatefulSet/venue-gateway") -> Obj:
    return next(p for p in m["pods"] if p["id"] == pod_id)


@pytest.mark.parametrize("selector,labels,expected", [
    (None, {"a": "1"}, True),
    ({}, {}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
])
def test_label_selector_semantics(selector: Obj | None, labels: dict[str, str], expected: bool) -> None:
    assert selectors.matches(selector, labels) is expected


def test_a_service_without_selector_selects_no_pod() -> None:
    assert not selectors.service_matches(None, {"a": "1"}) and not selectors.service_matches({}, {"a": "1"})


def test_policy_types_default_like_the_api_server() -> None:
    assert netpol.policy_types({"egress": []}) == {"Ingress", "Egress"}
    assert netpol.policy_types({}) == {"Ingress"}
    assert netpol.policy_types({"policyTypes": ["Egress"], "ingress": [{}]}) == {"Egress"}


def test_egress_is_the_union_of_every_selecting_policy() -> None:
    objects = [_gateway(), *_configmaps(),
               _netpol("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
               _netpol("by-expression", {"podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "Exists"}]},
                                         "egress": [{"ports": [{"port": 443}]}]}),
               _netpol("other-pods", {"podSelector": {"matchLabels": {"app": "else"}}, "egress": [{}]}),
               _netpol("ingress-only", {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]})]
    egress = _pod(_model(objects))["egress"]
    assert egress["isolated"] and egress["policies"] == ["NetworkPolicy/by-expression", "NetworkPolicy/default-deny"]
    [rule] = egress["rules"]
    # A rule without `to` reaches every destination; protocol defaults to TCP.
    assert rule["peers"] == [{"kind": "any"}] and rule["ports"] == [{"protocol": "TCP", "port": 443, "endPort": None}]
    assert (rule["object"], rule["field"]) == ("NetworkPolicy/by-expression", "spec.egress[0]")


def test_peers_and_ports_are_normalised() -> None:
    policy = _netpol("mixed", {"podSelector": {}, "egress": [
        {"to": [{"namespaceSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                           "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
                {"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
         "ports": [{"port": 1000, "endPort": 2000, "protocol": "UDP"}]},
        {"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]},
    ]})
    first, second = netpol.normalized_rules(policy, "egress")
    assert first["peers"] == [
        {"kind": "pods", "namespaces": {"all": True}, "pods": {"all": True}},
        {"kind": "pods", "namespaces": {"names": ["kube-system"]}, "pods": {"selector": {"matchLabels": {"k8s-app": "kube-dns"}}}},
        {"kind": "pods", "namespaces": {"same": True}, "pods": {"all": True}},
        {"kind": "ipBlock", "cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]},
    ]
    assert first["ports"] == [{"protocol": "UDP", "port": 1000, "endPort": 2000}]
    assert second["ports"] == [netpol.ANY_PORT]


def test_a_pod_no_policy_selects_is_not_isolated() -> None:
    m = _model([_gateway(), *_configmaps(), _netpol("others", {"podSelector": {"matchLabels": {"x": "y"}}, "policyTypes": ["Egress"]})])
    assert not _pod(m)["egress"]["isolated"] and not _pod(m)["ingress"]["isolated"]


def test_policies_of_another_namespace_do_not_apply() -> None:
    foreign = _netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    foreign["metadata"]["namespace"] = "elsewhere"
    assert not _pod(_model([_gateway(), foreign]))["egress"]["isolated"]


def test_the_deepest_mount_serves_a_path() -> None:
    shadowed = _gateway()
    container = shadowed["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"].append({"name": "scratch", "mountPath": "/var/lib/venue-gateway/fix"})
    shadowed["spec"]["template"]["spec"]["volumes"].append({"name": "scratch", "emptyDir": {}})
    stores = {s["what"]: s for s in _model([shadowed, *_configmaps()])["sessions"]["stores"]}
    assert stores["gateway state (--state-dir)"]["type"] == "persistentVolumeClaim"
    fix_store = stores["FIX store (FileStorePath)"]
    assert (fix_store["type"], fix_store["volume"]) == ("emptyDir", "scratch")
    assert fix_store["mountField"] == "spec.template.spec.containers[0].volumeMounts[3]"
    assert fix_store["field"] == "data[session.cfg].DEFAULT.FileStorePath"


def test_quickfix_targets_follow_failover_order_and_name_their_field() -> None:
    targets = _model([_gateway(), *_configmaps()])["sessions"]["targets"]
    assert [(t["host"], t["port"], t["tls"], t["service"]) for t in targets] == [("10.0.0.1", 9000, False, "oe"), ("10.0.0.2", 9001, False, "oe")]
    assert targets[1]["field"] == "data[session.cfg].SESSION[1].SocketConnectHost1"


def test_a_local_stunnel_accept_resolves_to_its_connect() -> None:
    objects = [_gateway(), *_configmaps()]
    objects[2]["data"]["session.cfg"] = SESSION_CFG.replace("10.0.0.1", "127.0.0.1").replace("9000", "16000")
    sts = objects[0]["spec"]["template"]["spec"]
    sts["initContainers"] = [{"name": "stunnel", "image": "stunnel:5@sha256:00", "restartPolicy": "Always", "args": ["/etc/stunnel/stunnel.conf"],
                              "volumeMounts": [{"name": "stunnel", "mountPath": "/etc/stunnel"}]}]
    sts["volumes"].append({"name": "stunnel", "configMap": {"name": "stunnel"}})
    objects.append({"kind": "ConfigMap", "metadata": {"name": "stunnel", "namespace": NS},
                    "data": {"stunnel.conf": "[oe]\nclient = yes\naccept = 127.0.0.1:16000\nconnect = venue.example.net:6121\n"}})
    first = _model(objects)["sessions"]["targets"][0]
    assert (first["host"], first["port"], first["tls"], first["via"]) == ("venue.example.net", 6121, True, "sidecar")
    assert first["field"] == "data[stunnel.conf][oe].connect"


def test_a_file_the_pod_does_not_mount_is_not_read() -> None:
    sts = _gateway()
    sts["spec"]["template"]["spec"]["volumes"][1]["configMap"]["name"] = "other"
    sessions = _model([sts, *_configmaps()])["sessions"]
    assert sessions["gateway"] is not None and sessions["quickfix"] == [] and sessions["targets"] == []


@pytest.mark.parametrize("change,expected_how", [
    ({"automountServiceAccountToken": True}, ["automount"]),
    ({"automountServiceAccountToken": None}, ["automount"]),
    ({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}, ["projected"]),
])
def test_service_account_tokens_are_found_however_they_arrive(change: Obj, expected_how: list[str]) -> None:
    sts = _gateway()
    spec = sts["spec"]["template"]["spec"]
    for key, value in change.items():
        if value is None:
            spec.pop(key)
        else:
            spec[key] = value
    account = {"kind": "ServiceAccount", "metadata": {"name": "venue-gateway", "namespace": NS}}
    identity = _pod(_model([sts, account]))["serviceAccount"]
    assert identity["token"] and [s["how"] for s in identity["tokenSources"]] == expected_how


def test_the_service_account_setting_applies_when_the_pod_says_nothing() -> None:
    sts = _gateway()
    sts["spec"]["template"]["spec"].pop("automountServiceAccountToken")
    account = {"kind": "ServiceAccount", "metadata": {"name": "venue-gateway", "namespace": NS}, "automountServiceAccountToken": False}
    assert not _pod(_model([sts, account]))["serviceAccount"]["token"]


def test_bindings_reach_the_pods_of_their_service_account() -> None:
    objects = [_gateway(),
               {"kind": "ClusterRole", "metadata": {"name": "read-secrets"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
               {"kind": "ClusterRoleBinding", "metadata": {"name": "x"}, "roleRef": {"kind": "ClusterRole", "name": "read-secrets"},
                "subjects": [{"kind": "ServiceAccount", "name": "venue-gateway", "namespace": NS}]},
               {"kind": "RoleBinding", "metadata": {"name": "admin", "namespace": NS}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "venue-gateway"}]}]
    m = _model(objects)
    assert _pod(m)["rbac"] == ["ClusterRoleBinding/x", "RoleBinding/admin"]
    roles = {b["id"]: b["role"] for b in m["rbac"]["bindings"]}
    assert roles == {"ClusterRoleBinding/x": "ClusterRole/read-secrets", "RoleBinding/admin": None}


def test_scaling_jobs_raise_the_most_replicas_a_workload_runs() -> None:
    job = {"kind": "CronJob", "metadata": {"name": "session-open", "namespace": NS}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "kubectl", "command": ["kubectl", "scale", "statefulset/venue-gateway", "--replicas=2"]}]}}}}}}
    replicas = _pod(_model([_gateway(), job]))["replicas"]
    assert replicas == {"declared": None, "max": 2, "scaledBy": [{"object": "CronJob/session-open", "replicas": 2}]}


def test_attached_networks_resolve_their_nad_and_master() -> None:
    sts = _gateway()
    sts["spec"]["template"]["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/networks": "feed-a@feeda, other/feed-b"}
    nad = {"kind": "NetworkAttachmentDefinition", "metadata": {"name": "feed-a", "namespace": NS},
           "spec": {"config": '{"plugins": [{"type": "macvlan", "master": "ens1"}]}'}}
    networks = _pod(_model([sts, nad]))["networks"]
    assert [(n["name"], n["interface"], n["nad"], n["master"]) for n in networks] == [
        ("feed-a", "feeda", "NetworkAttachmentDefinition/feed-a", "ens1"), ("feed-b", None, None, None)]


# ---------------------------------------------------------------------------
# The shipped overlays, through the model
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_models() -> dict[tuple[str, str], Obj]:
    return {(i.env, i.venue): gate.build_model(i) for i in gate.load_overlays()}


def test_scheduler_pods_reach_the_api_server_under_default_deny(shipped_models: dict[tuple[str, str], Obj]) -> None:
    scheduled = 0
    for (env, venue), m in shipped_models.items():
        api = m["platform"]["apiServer"]
        for pod in (p for p in m["pods"] if p["role"] == "session-scheduler"):
            scheduled += 1
            reached = {(peer.get("cidr"), port["port"]) for rule in pod["egress"]["rules"] for peer in rule["peers"] for port in rule["ports"]}
            assert pod["egress"]["isolated"] and (api["cidr"], api["port"]) in reached, f"{env}/{venue} {pod['id']}"
    assert scheduled, "no overlay runs the session scheduler"


def test_gateway_services_and_budget_select_only_gateway_pods(shipped_models: dict[tuple[str, str], Obj]) -> None:
    for (env, venue), m in shipped_models.items():
        gateway_ids = {p["id"] for p in m["pods"] if p["role"] == "gateway"}
        for item in m["services"] + m["pdbs"]:
            assert set(item["selects"]) == gateway_ids, f"{env}/{venue} {item['id']} selects {item['selects']}"


def test_the_model_is_deterministic(shipped_models: dict[tuple[str, str], Obj]) -> None:
    item = gate.load_overlays(overlays=[("prod", "cme")])[0]
    assert gate.build_model(copy.deepcopy(item)) == shipped_models[("prod", "cme")]
