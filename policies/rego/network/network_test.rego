package vcpl.network_test

import data.vcpl.fixtures
import data.vcpl.network

# ---------------------------------------------------------------------------
# A realistic prod overlay: cross-connect venue, gateway plus session scheduler
# ---------------------------------------------------------------------------

runbook := {
	"venue": {"id": "acme"},
	"services": [
		{
			"name": "orders",
			"environments": {"prod": {"endpoints": {
				"primary": {"host": "10.60.20.11", "port": 20010, "transport": "tcp"},
				"backup": {"host": "10.60.20.12", "port": 20010, "transport": "tcp"},
			}}},
		},
		{
			"name": "feed",
			"environments": {"prod": {
				"channels": [],
				"recovery": [{"kind": "tcp-replay", "endpoint": {"host": "10.60.30.20", "port": 10000, "transport": "tcp"}}],
			}},
		},
	],
	"environments": {"prod": {"networks": [{"path": "cross-connect"}]}},
}

platform := {"apiServer": {"cidr": "10.22.0.0/28", "port": 6443}}

port(protocol, number) := {"protocol": protocol, "port": number, "endPort": null}

any_port := {"protocol": "any", "port": "any", "endPort": null}

cidr(block) := {"kind": "ipBlock", "cidr": block, "except": []}

namespace_pods(ns_labels, pod_selector) := {"kind": "pods", "namespaces": {"selector": {"matchLabels": ns_labels}}, "pods": pod_selector}

dns_peer := namespace_pods({"kubernetes.io/metadata.name": "kube-system"}, {"selector": {"matchLabels": {"k8s-app": "kube-dns"}}})

rule(obj, field, peers, ports) := {"object": obj, "field": field, "peers": peers, "ports": ports}

dns_rule(obj) := rule(obj, "spec.egress[0]", [dns_peer], [port("UDP", 53), port("TCP", 53)])

gateway_egress_rules := [
	dns_rule("NetworkPolicy/venue-egress"),
	rule("NetworkPolicy/venue-egress", "spec.egress[1]", [cidr("10.60.20.11/32")], [port("TCP", 20010)]),
	rule("NetworkPolicy/venue-egress", "spec.egress[2]", [cidr("10.60.20.12/32")], [port("TCP", 20010)]),
	rule("NetworkPolicy/venue-egress", "spec.egress[3]", [cidr("10.60.30.20/32")], [port("TCP", 10000)]),
]

scheduler_egress_rules := [
	dns_rule("NetworkPolicy/venue-session-scheduler-egress"),
	rule("NetworkPolicy/venue-session-scheduler-egress", "spec.egress[1]", [cidr("10.22.0.0/28")], [port("TCP", 6443)]),
]

gateway_ingress_rules := [
	rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[0]", [namespace_pods({"vcpl.dev/venue-consumer": "true"}, {"all": true})], [port("TCP", "api")]),
	rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[1]", [namespace_pods({"kubernetes.io/metadata.name": "monitoring"}, {"all": true})], [port("TCP", "metrics")]),
]

direction(rules) := {"isolated": true, "policies": {r.object | some r in rules}, "rules": rules}

pod(id, template, role, egress_rules, ingress_rules) := {
	"id": id, "kind": split(id, "/")[0], "name": split(id, "/")[1],
	"template": template, "role": role, "labels": {},
	"egress": direction(egress_rules), "ingress": direction(ingress_rules),
	"containers": [{"name": "main", "type": "container", "hostPorts": []}],
	"networks": [], "multiNetworkPolicies": [],
}

gateway_pod := pod("StatefulSet/venue-gateway", "spec.template", "gateway", gateway_egress_rules, gateway_ingress_rules)

scheduler_pod := pod("CronJob/session-open", "spec.jobTemplate.spec.template", "session-scheduler", scheduler_egress_rules, [])

cluster_ip_services := [
	{"id": "Service/venue-gateway", "type": "ClusterIP", "selector": {}, "externalIPs": [], "ports": [{"port": 7000, "nodePort": null, "targetPort": "api"}], "selects": ["StatefulSet/venue-gateway"]},
	{"id": "Service/venue-gateway-headless", "type": "ClusterIP", "selector": {}, "externalIPs": [], "ports": [{"port": 7000, "nodePort": null, "targetPort": "api"}], "selects": ["StatefulSet/venue-gateway"]},
]

overlay(pods) := fixtures.model("acme", "prod", {"runbook": runbook, "platform": platform, "pods": pods, "services": cluster_ip_services})

good := overlay([gateway_pod, scheduler_pod])

results(m) := found if {
	found := network.deny with input as m
}

with_egress(p, rules) := object.union(p, {"egress": {"rules": rules}})

with_ingress(p, rules) := object.union(p, {"ingress": {"rules": rules}})

# Two results of one rule naming the same object and field.
located(m, rule_id) := {[r.details.object, r.details.field] | some r in fixtures.results_for(results(m), rule_id)}

# ---------------------------------------------------------------------------
# network-egress-isolated
# ---------------------------------------------------------------------------

test_network_egress_isolated_accepts_every_pod_isolated_both_ways if {
	count(fixtures.results_for(results(good), "network-egress-isolated")) == 0
}

test_network_egress_isolated_rejects_gateway_egress_open if {
	open := object.union(gateway_pod, {"egress": {"isolated": false, "policies": [], "rules": []}})
	located(overlay([open, scheduler_pod]), "network-egress-isolated") == {["StatefulSet/venue-gateway", "spec.template.egress"]}
}

test_network_egress_isolated_rejects_scheduler_ingress_open if {
	open := object.union(scheduler_pod, {"ingress": {"isolated": false, "policies": [], "rules": []}})
	located(overlay([gateway_pod, open]), "network-egress-isolated") == {["CronJob/session-open", "spec.jobTemplate.spec.template.ingress"]}
}

test_network_egress_isolated_rejects_both_directions_of_extra_deployment if {
	extra := object.union(pod("Deployment/debug", "spec.template", "undeclared", [], []), {"egress": {"isolated": false}, "ingress": {"isolated": false}})
	located(overlay([gateway_pod, scheduler_pod, extra]), "network-egress-isolated") == {
		["Deployment/debug", "spec.template.egress"],
		["Deployment/debug", "spec.template.ingress"],
	}
}

# ---------------------------------------------------------------------------
# network-egress-exact
# ---------------------------------------------------------------------------

test_network_egress_exact_accepts_run_book_destinations_and_api_server if {
	count(fixtures.results_for(results(good), "network-egress-exact")) == 0
}

test_network_egress_exact_accepts_destinations_split_over_two_policies if {
	split_rules := array.concat(
		[dns_rule("NetworkPolicy/venue-egress")],
		[rule("NetworkPolicy/extra", "spec.egress[0]", [cidr("10.60.20.11/32"), cidr("10.60.20.12/32")], [port("TCP", 20010)]),
		rule("NetworkPolicy/extra", "spec.egress[1]", [cidr("10.60.30.20/32")], [{"protocol": "TCP", "port": 10000, "endPort": 10000}])],
	)
	m := overlay([with_egress(gateway_pod, split_rules), scheduler_pod])
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

test_network_egress_exact_rejects_second_policy_allowing_slash_8_to_every_pod if {
	wide := rule("NetworkPolicy/allow-internal", "spec.egress[0]", [cidr("10.0.0.0/8")], [port("TCP", 20010)])
	m := overlay([
		with_egress(gateway_pod, array.concat(gateway_egress_rules, [wide])),
		with_egress(scheduler_pod, array.concat(scheduler_egress_rules, [wide])),
	])
	found := fixtures.results_for(results(m), "network-egress-exact")
	located(m, "network-egress-exact") == {["NetworkPolicy/allow-internal", "spec.egress[0]"]}
	count(found) == 2 # once for the gateway, once for the scheduler
	some r in found
	contains(r.msg, "ipBlock 10.0.0.0/8 on 20010/TCP")
}

test_network_egress_exact_rejects_rule_with_ports_and_no_to if {
	open_rule := rule("NetworkPolicy/venue-egress", "spec.egress[4]", [{"kind": "any"}], [port("TCP", 443)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [open_rule])), scheduler_pod])
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[4]"]}
}

test_network_egress_exact_rejects_any_port_to_a_venue_address if {
	any_port_rule := rule("NetworkPolicy/venue-egress", "spec.egress[1]", [cidr("10.60.20.11/32")], [any_port])
	rules := array.concat([any_port_rule], array.slice(gateway_egress_rules, 0, 1))
	m := overlay([with_egress(gateway_pod, array.concat(rules, array.slice(gateway_egress_rules, 2, 4))), scheduler_pod])
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[1]"]}
}

test_network_egress_exact_rejects_port_range_wider_than_needed if {
	ranged := rule("NetworkPolicy/venue-egress", "spec.egress[1]", [cidr("10.60.20.11/32")], [{"protocol": "TCP", "port": 20010, "endPort": 20020}])
	rules := [gateway_egress_rules[0], ranged, gateway_egress_rules[2], gateway_egress_rules[3]]
	m := overlay([with_egress(gateway_pod, rules), scheduler_pod])
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[1]"]}
}

test_network_egress_exact_rejects_dns_open_to_all_namespaces if {
	all_ns_dns := rule("NetworkPolicy/venue-egress", "spec.egress[0]", [{"kind": "pods", "namespaces": {"all": true}, "pods": {"selector": {"matchLabels": {"k8s-app": "kube-dns"}}}}], [port("UDP", 53), port("TCP", 53)])
	rules := array.concat([all_ns_dns], array.slice(gateway_egress_rules, 1, 4))
	m := overlay([with_egress(gateway_pod, rules), scheduler_pod])
	found := fixtures.results_for(results(m), "network-egress-exact")
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[0]"]}
	count(found) == 2 # UDP and TCP
}

test_network_egress_exact_rejects_dns_selector_not_naming_kube_system if {
	loose := rule("NetworkPolicy/venue-egress", "spec.egress[0]", [namespace_pods({"team": "platform"}, {"selector": {"matchLabels": {"k8s-app": "kube-dns"}}})], [port("UDP", 53)])
	rules := array.concat([loose, dns_rule("NetworkPolicy/venue-egress-dns")], array.slice(gateway_egress_rules, 1, 4))
	m := overlay([with_egress(gateway_pod, rules), scheduler_pod])
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[0]"]}
}

test_network_egress_exact_rejects_missing_backup_endpoint if {
	rules := [gateway_egress_rules[0], gateway_egress_rules[1], gateway_egress_rules[3]]
	m := overlay([with_egress(gateway_pod, rules), scheduler_pod])
	found := fixtures.results_for(results(m), "network-egress-exact")
	located(m, "network-egress-exact") == {["StatefulSet/venue-gateway", "spec.template.egress"]}
	some r in found
	contains(r.msg, "10.60.20.12/32 on 20010/TCP")
	contains(r.msg, "services[0].environments.prod.endpoints.backup")
}

# The shipped defect: scheduler pods labelled as the gateway get the gateway's
# egress and never reach the API server.
test_network_egress_exact_rejects_scheduler_selected_by_gateway_policy if {
	mislabelled := with_egress(scheduler_pod, gateway_egress_rules)
	m := overlay([gateway_pod, mislabelled])
	found := located(m, "network-egress-exact")
	["CronJob/session-open", "spec.jobTemplate.spec.template.egress"] in found
	["NetworkPolicy/venue-egress", "spec.egress[1]"] in found
	some r in fixtures.results_for(results(m), "network-egress-exact")
	r.details.object == "CronJob/session-open"
	contains(r.msg, "ipBlock 10.22.0.0/28 on 6443/TCP")
}

test_network_egress_exact_rejects_undeclared_pod_with_dns if {
	debug := pod("Deployment/debug", "spec.template", "undeclared", [dns_rule("NetworkPolicy/debug-dns")], [])
	m := overlay([gateway_pod, scheduler_pod, debug])
	located(m, "network-egress-exact") == {["NetworkPolicy/debug-dns", "spec.egress[0]"]}
}

test_network_egress_exact_rejects_except_that_blocks_a_needed_address if {
	narrowed := rule("NetworkPolicy/venue-egress", "spec.egress[1]", [{"kind": "ipBlock", "cidr": "10.60.20.0/24", "except": ["10.60.20.12/32"]}], [port("TCP", 20010)])
	rules := [gateway_egress_rules[0], narrowed, gateway_egress_rules[3]]
	m := overlay([with_egress(gateway_pod, rules), scheduler_pod])
	found := located(m, "network-egress-exact")
	["NetworkPolicy/venue-egress", "spec.egress[1]"] in found # a /24 is wider than two /32s
	["StatefulSet/venue-gateway", "spec.template.egress"] in found # and .12 stays unreachable
}

test_network_egress_exact_rejects_underivable_path if {
	m := object.union(good, {"runbook": {"environments": {"prod": {"networks": [{"path": "carrier-pigeon"}]}}}})
	located(m, "network-egress-exact") == {["StatefulSet/venue-gateway", "spec.template.egress"]}
}

ipsec_runbook := object.union(runbook, {"environments": {"prod": {"networks": [{"path": "ipsec-vpn", "vpn": {"peer": "198.18.61.1"}}]}}})

ike_rule := rule("NetworkPolicy/venue-egress", "spec.egress[4]", [cidr("198.18.61.1/32")], [port("UDP", 500), port("UDP", 4500)])

# The tunnel ends on the VPN-gateway nodes: the pod sends to the venue's own addresses.
test_network_egress_exact_accepts_venue_addresses_over_ipsec if {
	m := object.union(good, {"runbook": ipsec_runbook})
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

# IKE from the pod would mean a tunnel inside the venue namespace, which must stay restricted.
test_network_egress_exact_rejects_ike_from_the_gateway_pod if {
	rules := array.concat(gateway_egress_rules, [ike_rule])
	m := object.union(overlay([with_egress(gateway_pod, rules), scheduler_pod]), {"runbook": ipsec_runbook})
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[4]"]}
}

in_cluster_runbook := object.union(runbook, {"environments": {"prod": {"networks": [{"path": "in-cluster", "simulatorNamespace": "venue-simulators"}]}}})

simulator_rule(ns_peer) := rule("NetworkPolicy/venue-egress", "spec.egress[1]", [ns_peer], [port("TCP", 10000), port("TCP", 20010)])

test_network_egress_exact_accepts_simulator_namespace_by_name if {
	rules := [dns_rule("NetworkPolicy/venue-egress"), simulator_rule(namespace_pods({"kubernetes.io/metadata.name": "venue-simulators"}, {"all": true}))]
	m := object.union(overlay([with_egress(gateway_pod, rules), scheduler_pod]), {"runbook": in_cluster_runbook})
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

test_network_egress_exact_accepts_simulator_namespace_as_names_list if {
	peer := {"kind": "pods", "namespaces": {"names": ["venue-simulators"]}, "pods": {"selector": {}}}
	rules := [dns_rule("NetworkPolicy/venue-egress"), simulator_rule(peer)]
	m := object.union(overlay([with_egress(gateway_pod, rules), scheduler_pod]), {"runbook": in_cluster_runbook})
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

test_network_egress_exact_rejects_simulator_reached_through_every_namespace if {
	peer := {"kind": "pods", "namespaces": {"all": true}, "pods": {"all": true}}
	rules := [dns_rule("NetworkPolicy/venue-egress"), simulator_rule(peer)]
	m := object.union(overlay([with_egress(gateway_pod, rules), scheduler_pod]), {"runbook": in_cluster_runbook})
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[1]"]}
}

# ---------------------------------------------------------------------------
# network-egress-no-wildcard
# ---------------------------------------------------------------------------

test_network_egress_no_wildcard_accepts_run_book_destinations if {
	count(fixtures.results_for(results(good), "network-egress-no-wildcard")) == 0
}

test_network_egress_no_wildcard_rejects_ipv4_default_route if {
	wild := rule("NetworkPolicy/allow-out", "spec.egress[0]", [cidr("0.0.0.0/0")], [port("TCP", 443)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [wild])), scheduler_pod])
	located(m, "network-egress-no-wildcard") == {["NetworkPolicy/allow-out", "spec.egress[0]"]}
}

test_network_egress_no_wildcard_rejects_ipv6_default_route if {
	wild := rule("NetworkPolicy/allow-out", "spec.egress[1]", [cidr("::/0")], [any_port])
	m := overlay([gateway_pod, with_egress(scheduler_pod, array.concat(scheduler_egress_rules, [wild]))])
	located(m, "network-egress-no-wildcard") == {["NetworkPolicy/allow-out", "spec.egress[1]"]}
}

test_network_egress_no_wildcard_rejects_rule_with_ports_and_no_to if {
	open_rule := rule("NetworkPolicy/venue-egress", "spec.egress[4]", [{"kind": "any"}], [port("TCP", 443)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [open_rule])), scheduler_pod])
	located(m, "network-egress-no-wildcard") == {["NetworkPolicy/venue-egress", "spec.egress[4]"]}
}

# ---------------------------------------------------------------------------
# network-egress-no-metadata
# ---------------------------------------------------------------------------

test_network_egress_no_metadata_accepts_run_book_destinations if {
	count(fixtures.results_for(results(good), "network-egress-no-metadata")) == 0
}

test_network_egress_no_metadata_accepts_link_local_with_metadata_excepted if {
	block := {"kind": "ipBlock", "cidr": "169.254.0.0/16", "except": ["169.254.169.254/32"]}
	extra := rule("NetworkPolicy/link-local", "spec.egress[0]", [block], [port("UDP", 123)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [extra])), scheduler_pod])
	count(fixtures.results_for(results(m), "network-egress-no-metadata")) == 0
}

test_network_egress_no_metadata_rejects_link_local_range if {
	extra := rule("NetworkPolicy/link-local", "spec.egress[0]", [cidr("169.254.0.0/16")], [port("TCP", 80)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [extra])), scheduler_pod])
	located(m, "network-egress-no-metadata") == {["NetworkPolicy/link-local", "spec.egress[0]"]}
}

test_network_egress_no_metadata_rejects_except_that_misses_metadata if {
	block := {"kind": "ipBlock", "cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}
	extra := rule("NetworkPolicy/allow-out", "spec.egress[0]", [block], [port("TCP", 80)])
	m := overlay([gateway_pod, with_egress(scheduler_pod, array.concat(scheduler_egress_rules, [extra]))])
	located(m, "network-egress-no-metadata") == {["NetworkPolicy/allow-out", "spec.egress[0]"]}
}

test_network_egress_no_metadata_rejects_rule_without_to if {
	extra := rule("NetworkPolicy/allow-http", "spec.egress[0]", [{"kind": "any"}], [port("TCP", 80)])
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [extra])), scheduler_pod])
	located(m, "network-egress-no-metadata") == {["NetworkPolicy/allow-http", "spec.egress[0]"]}
}

# ---------------------------------------------------------------------------
# network-ingress-declared
# ---------------------------------------------------------------------------

test_network_ingress_declared_accepts_library_ingress if {
	count(fixtures.results_for(results(good), "network-ingress-declared")) == 0
}

test_network_ingress_declared_accepts_numbered_ports if {
	rules := [
		rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[0]", [namespace_pods({"vcpl.dev/venue-consumer": "true"}, {"all": true})], [port("TCP", 7000)]),
		rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[1]", [{"kind": "pods", "namespaces": {"names": ["monitoring"]}, "pods": {"all": true}}], [port("TCP", 9090)]),
	]
	m := overlay([with_ingress(gateway_pod, rules), scheduler_pod])
	count(fixtures.results_for(results(m), "network-ingress-declared")) == 0
}

test_network_ingress_declared_rejects_empty_rule_added_to_gateway_policy if {
	empty := rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[2]", [{"kind": "any"}], [any_port])
	m := overlay([with_ingress(gateway_pod, array.concat(gateway_ingress_rules, [empty])), scheduler_pod])
	located(m, "network-ingress-declared") == {["NetworkPolicy/venue-gateway-ingress", "spec.ingress[2]"]}
}

test_network_ingress_declared_rejects_allow_all_policy_on_every_pod if {
	allow_all := rule("NetworkPolicy/allow-all-ingress", "spec.ingress[0]", [{"kind": "any"}], [any_port])
	m := overlay([
		with_ingress(gateway_pod, array.concat(gateway_ingress_rules, [allow_all])),
		with_ingress(scheduler_pod, [allow_all]),
	])
	found := fixtures.results_for(results(m), "network-ingress-declared")
	located(m, "network-ingress-declared") == {["NetworkPolicy/allow-all-ingress", "spec.ingress[0]"]}
	count(found) == 2
}

test_network_ingress_declared_rejects_ip_block_source if {
	extra := rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[2]", [cidr("10.0.0.0/8")], [port("TCP", "api")])
	m := overlay([with_ingress(gateway_pod, array.concat(gateway_ingress_rules, [extra])), scheduler_pod])
	located(m, "network-ingress-declared") == {["NetworkPolicy/venue-gateway-ingress", "spec.ingress[2]"]}
}

test_network_ingress_declared_rejects_consumers_from_every_namespace if {
	extra := rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[0]", [{"kind": "pods", "namespaces": {"all": true}, "pods": {"all": true}}], [port("TCP", "api")])
	m := overlay([with_ingress(gateway_pod, [extra, gateway_ingress_rules[1]]), scheduler_pod])
	located(m, "network-ingress-declared") == {["NetworkPolicy/venue-gateway-ingress", "spec.ingress[0]"]}
}

test_network_ingress_declared_rejects_monitoring_on_api_port if {
	extra := rule("NetworkPolicy/venue-gateway-ingress", "spec.ingress[1]", [namespace_pods({"kubernetes.io/metadata.name": "monitoring"}, {"all": true})], [port("TCP", "api")])
	m := overlay([with_ingress(gateway_pod, [gateway_ingress_rules[0], extra]), scheduler_pod])
	located(m, "network-ingress-declared") == {["NetworkPolicy/venue-gateway-ingress", "spec.ingress[1]"]}
}

test_network_ingress_declared_rejects_any_ingress_into_scheduler if {
	scrape := rule("NetworkPolicy/scrape-jobs", "spec.ingress[0]", [namespace_pods({"kubernetes.io/metadata.name": "monitoring"}, {"all": true})], [port("TCP", 9090)])
	m := overlay([gateway_pod, with_ingress(scheduler_pod, [scrape])])
	located(m, "network-ingress-declared") == {["NetworkPolicy/scrape-jobs", "spec.ingress[0]"]}
}

# ---------------------------------------------------------------------------
# network-no-exposure
# ---------------------------------------------------------------------------

test_network_no_exposure_accepts_cluster_ip_services if {
	count(fixtures.results_for(results(good), "network-no-exposure")) == 0
}

exposed_service(body) := object.union(
	{"id": "Service/venue-gateway-external", "type": "ClusterIP", "selector": {}, "externalIPs": [], "ports": [{"port": 7000, "nodePort": null, "targetPort": "api"}], "selects": ["StatefulSet/venue-gateway"]},
	body,
)

with_service(svc) := object.union(good, {"services": array.concat(cluster_ip_services, [svc])})

test_network_no_exposure_rejects_node_port_service if {
	svc := exposed_service({"type": "NodePort", "ports": [{"port": 7000, "nodePort": 30700, "targetPort": "api"}]})
	located(with_service(svc), "network-no-exposure") == {
		["Service/venue-gateway-external", "spec.type"],
		["Service/venue-gateway-external", "spec.ports[0].nodePort"],
	}
}

test_network_no_exposure_rejects_load_balancer_service if {
	svc := exposed_service({"type": "LoadBalancer"})
	located(with_service(svc), "network-no-exposure") == {["Service/venue-gateway-external", "spec.type"]}
}

test_network_no_exposure_rejects_external_ips if {
	svc := exposed_service({"externalIPs": ["203.0.113.10"]})
	located(with_service(svc), "network-no-exposure") == {["Service/venue-gateway-external", "spec.externalIPs"]}
}

test_network_no_exposure_rejects_load_balancer_ip if {
	svc := exposed_service({"loadBalancerIP": "203.0.113.11"})
	located(with_service(svc), "network-no-exposure") == {["Service/venue-gateway-external", "spec.loadBalancerIP"]}
}

test_network_no_exposure_rejects_host_port if {
	container := {"name": "gateway", "type": "container", "hostPorts": [{"port": 7000, "field": "spec.template.spec.containers[0].ports[0].hostPort"}]}
	m := overlay([object.union(gateway_pod, {"containers": [container]}), scheduler_pod])
	located(m, "network-no-exposure") == {["StatefulSet/venue-gateway", "spec.template.spec.containers[0].ports[0].hostPort"]}
}

test_network_no_exposure_rejects_ingress_object if {
	obj := {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "gateway"}, "spec": {}}
	m := object.union(good, {"objects": [obj]})
	located(m, "network-no-exposure") == {["Ingress/gateway", "spec"]}
}

# ---------------------------------------------------------------------------
# Documents that are not overlays
# ---------------------------------------------------------------------------

test_network_ignores_library_index if {
	count(network.deny) == 0 with input as {"kind": "LibraryIndex", "sessions": []}
}

# ---------------------------------------------------------------------------
# Several network paths: a cross-connect with an IPsec VPN as its backup
# ---------------------------------------------------------------------------

backup_vpn_runbook := object.union(runbook, {"environments": {"prod": {"networks": [
	{"path": "cross-connect"},
	{"path": "ipsec-vpn", "vpn": {"peer": "198.18.61.1"}},
]}}})

test_network_egress_exact_accepts_endpoints_over_both_paths if {
	m := object.union(good, {"runbook": backup_vpn_runbook})
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

test_network_egress_exact_rejects_vpn_peer_from_the_pod_with_a_backup_vpn if {
	rules := array.concat(gateway_egress_rules, [ike_rule])
	m := object.union(overlay([with_egress(gateway_pod, rules), scheduler_pod]), {"runbook": backup_vpn_runbook})
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[4]"]}
}

# ---------------------------------------------------------------------------
# A connection gateway that assigns the application gateway at logon
# ---------------------------------------------------------------------------

assigning_runbook := json.patch(runbook, [{"op": "add", "path": "/services/0/environments/prod/endpoints/primary/assigns", "value": {
	"cidrs": ["10.60.40.0/28"], "ports": [{"port": 21000, "endPort": 21003}],
}}])

assigned_rule := rule("NetworkPolicy/venue-egress", "spec.egress[4]", [cidr("10.60.40.0/28")], [{"protocol": "TCP", "port": 21000, "endPort": 21003}])

test_network_egress_exact_accepts_assigned_application_gateways if {
	m := object.union(overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [assigned_rule])), scheduler_pod]), {"runbook": assigning_runbook})
	count(fixtures.results_for(results(m), "network-egress-exact")) == 0
}

test_network_egress_exact_rejects_assigned_range_missing if {
	m := object.union(good, {"runbook": assigning_runbook})
	found := fixtures.results_for(results(m), "network-egress-exact")
	count(found) == 4 # each port of 21000-21003
	every r in found {
		contains(r.msg, "endpoints.primary.assigns")
	}
}

test_network_egress_exact_rejects_assigned_range_without_run_book if {
	m := overlay([with_egress(gateway_pod, array.concat(gateway_egress_rules, [assigned_rule])), scheduler_pod])
	located(m, "network-egress-exact") == {["NetworkPolicy/venue-egress", "spec.egress[4]"]}
}

# ---------------------------------------------------------------------------
# network-egress-source
# ---------------------------------------------------------------------------

source_platform := object.union(platform, {
	"egressGatewayNodeSelector": {"vcpl.dev/egress-gateway": "true"},
	"vpnGateway": {"nodeSelector": {"vcpl.dev/vpn-gateway": "true"}, "tunnelSourceIP": "10.252.2.10"},
})

gateway_labels := {"app.kubernetes.io/name": "venue-gateway", "vcpl.dev/venue": "acme", "vcpl.dev/environment": "prod"}

egress_policy(name, ip, nodes, cidrs) := {
	"apiVersion": "cilium.io/v2", "kind": "CiliumEgressGatewayPolicy", "metadata": {"name": name},
	"spec": {
		"selectors": [{"podSelector": {"matchLabels": gateway_labels}}],
		"destinationCIDRs": cidrs, "egressGateway": {"egressIP": ip, "nodeSelector": {"matchLabels": nodes}},
	},
}

allowlisted_runbook := object.union(runbook, {"environments": {"prod": {"networks": [{"path": "cross-connect", "allowlistedSourceIP": "10.250.0.10"}]}}})

vpn_runbook := object.union(runbook, {"environments": {"prod": {"networks": [{"path": "ipsec-vpn", "vpn": {"peer": "198.18.61.1", "remoteCIDRs": ["10.60.0.0/16"]}}]}}})

allow_list_policy := egress_policy("acme-prod-venue-egress", "10.250.0.10", {"vcpl.dev/egress-gateway": "true"}, ["10.60.20.11/32"])

vpn_policy := egress_policy("acme-prod-venue-vpn", "10.252.2.10", {"vcpl.dev/vpn-gateway": "true"}, ["10.60.0.0/16"])

labelled_gateway := object.union(gateway_pod, {"labels": object.union(gateway_labels, {"vcpl.dev/owner-team": "acme-connectivity"})})

with_sources(rb, objects) := object.union(overlay([labelled_gateway, scheduler_pod]), {"runbook": rb, "platform": source_platform, "objects": objects})

test_network_egress_source_accepts_allow_listed_address_on_egress_nodes if {
	count(fixtures.results_for(results(with_sources(allowlisted_runbook, [allow_list_policy])), "network-egress-source")) == 0
}

test_network_egress_source_accepts_tunnel_source_on_vpn_nodes if {
	count(fixtures.results_for(results(with_sources(vpn_runbook, [vpn_policy])), "network-egress-source")) == 0
}

test_network_egress_source_rejects_missing_policy if {
	located(with_sources(allowlisted_runbook, []), "network-egress-source") == {["CiliumEgressGatewayPolicy/acme-prod-venue-egress", "spec.egressGateway"]}
}

test_network_egress_source_rejects_other_address if {
	wrong := json.patch(allow_list_policy, [{"op": "replace", "path": "/spec/egressGateway/egressIP", "value": "10.250.0.99"}])
	found := located(with_sources(allowlisted_runbook, [wrong]), "network-egress-source")
	["CiliumEgressGatewayPolicy/acme-prod-venue-egress", "spec.egressGateway.egressIP"] in found
}

# The tunnel's subnets sent through the egress-gateway nodes, which hold no tunnel.
test_network_egress_source_rejects_vpn_traffic_on_nodes_without_the_tunnel if {
	wrong := json.patch(vpn_policy, [{"op": "replace", "path": "/spec/egressGateway/nodeSelector/matchLabels", "value": {"vcpl.dev/egress-gateway": "true"}}])
	found := located(with_sources(vpn_runbook, [wrong]), "network-egress-source")
	["CiliumEgressGatewayPolicy/acme-prod-venue-vpn", "spec.egressGateway.nodeSelector.matchLabels"] in found
}

test_network_egress_source_rejects_vpn_policy_for_other_subnets if {
	wrong := json.patch(vpn_policy, [{"op": "replace", "path": "/spec/destinationCIDRs", "value": ["0.0.0.0/0"]}])
	found := located(with_sources(vpn_runbook, [wrong]), "network-egress-source")
	["CiliumEgressGatewayPolicy/acme-prod-venue-vpn", "spec.destinationCIDRs"] in found
}

# The right address and nodes, but a selector the gateway's pods do not match
# (here another environment's label): their traffic is not steered at all.
test_network_egress_source_rejects_policy_selecting_other_pods if {
	wrong := json.patch(vpn_policy, [{"op": "replace", "path": "/spec/selectors/0/podSelector/matchLabels/vcpl.dev~1environment", "value": "cert"}])
	found := located(with_sources(vpn_runbook, [wrong]), "network-egress-source")
	found == {
		["CiliumEgressGatewayPolicy/acme-prod-venue-vpn", "spec.egressGateway"],
		["CiliumEgressGatewayPolicy/acme-prod-venue-vpn", "spec.selectors"],
	}
}
