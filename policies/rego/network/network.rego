# Network: what each pod of an overlay can reach, what can reach it, and whether
# anything is exposed outside the cluster. Every rule reads the effective model
# (the union of every NetworkPolicy that selects the pod, whatever its name or
# shape), so a second policy, an empty selector or a rule without `to` counts
# exactly as much as the library's own `venue-egress` policy.
package vcpl.network

import data.vcpl.lib

metadata_address := "169.254.169.254"

# Network paths whose allow-list is the run book's own endpoint addresses: over ipsec-vpn
# too, since the tunnel ends on the VPN-gateway nodes (platform/vpn-gateway), not in the pod.
endpoint_paths := {"cross-connect", "extranet", "internet", "ipsec-vpn"}

known_roles := {"gateway", "session-scheduler", "undeclared"}

# Ranges wider than this are never what a role needs, and expanding them port by
# port would only cost time.
max_range_ports := 1024

# ---------------------------------------------------------------------------
# Where findings about a pod's own traffic point
# ---------------------------------------------------------------------------

# The pod template inside its owning object, suffixed with the direction, so
# egress and ingress findings about one pod stay apart.
pod_field(pod, direction) := sprintf("%s.%s", [pod.template, direction]) if {
	is_string(pod.template)
	pod.template != ""
} else := direction

# ---------------------------------------------------------------------------
# Peers, normalised so that equal effects compare equal
# ---------------------------------------------------------------------------

metadata_name_label := "kubernetes.io/metadata.name"

# Namespaces a namespace selector names by the well-known name label; undefined
# when the selector matches by anything else (and may match any namespace).
selector_namespace_names(selector) := {labels[metadata_name_label]} if {
	labels := object.get(selector, "matchLabels", {})
	count(object.get(selector, "matchExpressions", [])) == 0
	object.keys(labels) == {metadata_name_label}
} else := {name | some name in expressions[0].values} if {
	count(object.get(selector, "matchLabels", {})) == 0
	expressions := object.get(selector, "matchExpressions", [])
	count(expressions) == 1
	expressions[0].key == metadata_name_label
	expressions[0].operator == "In"
}

namespace_names(namespaces) := {name | some name in namespaces.names} if {
	is_array(namespaces.names)
} else := {input.overlay.namespace} if {
	namespaces.same == true
} else := selector_namespace_names(namespaces.selector)

# A selector with no terms matches every pod.
canonical_pods(pods) := {"all": true} if {
	pods.all == true
} else := {"all": true} if {
	count(object.get(pods.selector, "matchLabels", {})) == 0
	count(object.get(pods.selector, "matchExpressions", [])) == 0
} else := {"selector": canonical_selector(pods.selector)}

canonical_selector(selector) := {
	"matchLabels": object.get(selector, "matchLabels", {}),
	"matchExpressions": object.get(selector, "matchExpressions", []),
}

# One model peer as the peers it stands for. A pods peer naming several
# namespaces is several peers, one per namespace.
normal_peers(peer) := {{"kind": "any"}} if {
	peer.kind == "any"
} else := {{"kind": "cidr", "cidr": peer.cidr, "except": object.get(peer, "except", [])}} if {
	peer.kind == "ipBlock"
} else := {{"kind": "namespace", "namespace": name, "pods": canonical_pods(peer.pods)} |
	some name in namespace_names(peer.namespaces)
} if {
	peer.kind == "pods"
	namespace_names(peer.namespaces)
} else := {{"kind": "allNamespaces", "pods": canonical_pods(peer.pods)}} if {
	peer.kind == "pods"
	peer.namespaces.all == true
} else := {{"kind": "namespaceSelector", "selector": canonical_selector(peer.namespaces.selector), "pods": canonical_pods(peer.pods)}} if {
	peer.kind == "pods"
	is_object(peer.namespaces.selector)
} else := {{"kind": "unknown", "peer": peer}}

# `inner` reaches no pod that `outer` does not.
pods_within(inner, outer) if outer.all == true

pods_within(inner, outer) if inner == outer

# Every address and pod of `inner` is also one of `outer`.
peer_within(inner, outer) if {
	inner.kind == "cidr"
	outer.kind == "cidr"
	count(outer.except) == 0
	valid_cidr(inner.cidr)
	valid_cidr(outer.cidr)
	net.cidr_contains(outer.cidr, inner.cidr)
}

peer_within(inner, outer) if {
	inner.kind == "namespace"
	outer.kind == "namespace"
	inner.namespace == outer.namespace
	pods_within(inner.pods, outer.pods)
}

peer_within(inner, outer) if {
	inner.kind == "namespaceSelector"
	outer.kind == "namespaceSelector"
	inner.selector == outer.selector
	pods_within(inner.pods, outer.pods)
}

# `outer` reaches every address and pod of `inner` (the coverage direction).
peer_covers(outer, _) if outer.kind == "any"

peer_covers(outer, inner) if {
	outer.kind == "cidr"
	inner.kind == "cidr"
	valid_cidr(outer.cidr)
	valid_cidr(inner.cidr)
	net.cidr_contains(outer.cidr, inner.cidr)
	not except_overlaps(outer, inner.cidr)
}

peer_covers(outer, inner) if {
	outer.kind in {"namespace", "namespaceSelector"}
	peer_within(inner, outer)
}

peer_covers(outer, inner) if {
	outer.kind == "allNamespaces"
	inner.kind in {"namespace", "namespaceSelector", "allNamespaces"}
	pods_within(inner.pods, outer.pods)
}

except_overlaps(block, cidr) if {
	some excluded in block.except
	valid_cidr(excluded)
	net.cidr_intersects(excluded, cidr)
}

# A cidr that does not parse stands for nothing we can compare, so it is never
# within or covering another.
valid_cidr(cidr) if {
	is_string(cidr)
	net.cidr_is_valid(cidr)
}

peer_text(peer) := "every address and pod (a rule without `to`/`from`)" if {
	peer.kind == "any"
} else := sprintf("ipBlock %s except %v", [peer.cidr, peer.except]) if {
	peer.kind == "cidr"
	count(peer.except) > 0
} else := sprintf("ipBlock %s", [peer.cidr]) if {
	peer.kind == "cidr"
} else := sprintf("pods %s in namespace %s", [pods_text(peer.pods), peer.namespace]) if {
	peer.kind == "namespace"
} else := sprintf("pods %s in every namespace", [pods_text(peer.pods)]) if {
	peer.kind == "allNamespaces"
} else := sprintf("pods %s in namespaces selected by %s", [pods_text(peer.pods), json.marshal(peer.selector)]) if {
	peer.kind == "namespaceSelector"
} else := sprintf("peer %s", [json.marshal(peer.peer)])

pods_text(pods) := "(all)" if {
	pods.all == true
} else := concat(",", [sprintf("%s=%s", [key, value]) | some key, value in pods.selector.matchLabels]) if {
	count(pods.selector.matchExpressions) == 0
} else := json.marshal(pods.selector)

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

port_protocol(port) := object.get(port, "protocol", "TCP")

port_value(port) := object.get(port, "port", "any")

port_end(port) := end if {
	end := object.get(port, "endPort", null)
	is_number(end)
} else := port_value(port)

# The single values a port entry opens: a named port, one number or a short range.
# Undefined for "every port" and for ranges too wide to need.
port_values(port) := [value] if {
	value := port_value(port)
	is_string(value)
	value != "any"
	port_end(port) == value
} else := numbers.range(port_value(port), port_end(port)) if {
	is_number(port_value(port))
	is_number(port_end(port))
	port_end(port) >= port_value(port)
	port_end(port) - port_value(port) < max_range_ports
}

any_port(port) if port_protocol(port) == "any"

any_port(port) if port_value(port) == "any"

port_text(port) := "every port and protocol" if {
	port_protocol(port) == "any"
} else := sprintf("every %s port", [port_protocol(port)]) if {
	port_value(port) == "any"
} else := sprintf("%v-%v/%s", [port_value(port), port_end(port), port_protocol(port)]) if {
	port_end(port) != port_value(port)
} else := sprintf("%v/%s", [port_value(port), port_protocol(port)])

# `port` opens (protocol, value), exactly or through a range or "every port".
port_covers(port, _, _) if port_protocol(port) == "any"

port_covers(port, protocol, value) if {
	port_protocol(port) == protocol
	port_value(port) == "any"
}

port_covers(port, protocol, value) if {
	port_protocol(port) == protocol
	port_value(port) == value
}

port_covers(port, protocol, value) if {
	port_protocol(port) == protocol
	is_number(value)
	is_number(port_value(port))
	port_value(port) <= value
	value <= port_end(port)
}

# ---------------------------------------------------------------------------
# What a pod's rules allow, as (rule, peer, port) allowances
# ---------------------------------------------------------------------------

allowances(rules) := {{"rule": rule, "peer": peer, "port": port} |
	some rule in rules
	some model_peer in rule.peers
	some peer in normal_peers(model_peer)
	some port in rule.ports
}

# An allowance is needed when every (peer, protocol, port) it opens is one the
# role needs; "every port" and wide ranges never are.
allowance_needed(allowance, needed) if {
	not any_port(allowance.port)
	values := port_values(allowance.port)
	every value in values {
		some need in needed
		need.protocol == port_protocol(allowance.port)
		need.port == value
		peer_within(allowance.peer, need.peer)
	}
}

need_covered(need, rules) if {
	some allowance in allowances(rules)
	peer_covers(allowance.peer, need.peer)
	port_covers(allowance.port, need.protocol, need.port)
}

need_text(need) := sprintf("%s on %v/%s", [peer_text(need.peer), need.port, need.protocol])

# ---------------------------------------------------------------------------
# What each role needs to reach
# ---------------------------------------------------------------------------

runbook_networks := object.get(lib.runbook, ["environments", lib.environment, "networks"], [])

network_paths := [n.path | some n in runbook_networks]

dns_peer := {"kind": "namespace", "namespace": "kube-system", "pods": {"selector": {"matchLabels": {"k8s-app": "kube-dns"}, "matchExpressions": []}}}

dns_needs := {{"peer": dns_peer, "protocol": protocol, "port": 53, "origin": "DNS (kube-dns)"} | some protocol in ["UDP", "TCP"]}

cidr_peer(cidr) := {"kind": "cidr", "cidr": cidr, "except": []}

endpoint_cidrs(endpoint) := endpoint.cidrs if {
	is_array(endpoint.cidrs)
} else := [sprintf("%s/32", [endpoint.host])]

endpoint_protocol(endpoint) := "UDP" if {
	endpoint.transport == "udp"
} else := "TCP"

# Every endpoint (session endpoints and recovery) of the environment, with the
# run-book field it comes from.
runbook_endpoints contains {"origin": origin, "endpoint": endpoint} if {
	some si, service in lib.runbook.services
	some role, endpoint in service.environments[lib.environment].endpoints
	origin := sprintf("services[%d].environments.%s.endpoints.%s", [si, lib.environment, role])
}

runbook_endpoints contains {"origin": origin, "endpoint": item.endpoint} if {
	some si, service in lib.runbook.services
	some ri, item in service.environments[lib.environment].recovery
	origin := sprintf("services[%d].environments.%s.recovery[%d].endpoint", [si, lib.environment, ri])
}

# Over a path that reaches the venue's addresses directly: each endpoint, and the
# application gateways a connection gateway may assign (every port of each range).
venue_needs contains need if {
	some path in network_paths
	path in endpoint_paths
	some ref in runbook_endpoints
	some cidr in endpoint_cidrs(ref.endpoint)
	need := {"peer": cidr_peer(cidr), "protocol": endpoint_protocol(ref.endpoint), "port": ref.endpoint.port, "origin": ref.origin}
}

venue_needs contains need if {
	some path in network_paths
	path in endpoint_paths
	some ref in runbook_endpoints
	some cidr in ref.endpoint.assigns.cidrs
	some range in ref.endpoint.assigns.ports
	some port in numbers.range(range.port, object.get(range, "endPort", range.port))
	need := {"peer": cidr_peer(cidr), "protocol": endpoint_protocol(ref.endpoint), "port": port, "origin": sprintf("%s.assigns", [ref.origin])}
}

# In-cluster simulators are reached by namespace, on the endpoints' ports.
venue_needs contains need if {
	some network in runbook_networks
	network.path == "in-cluster"
	some ref in runbook_endpoints
	need := {
		"peer": {"kind": "namespace", "namespace": network.simulatorNamespace, "pods": {"all": true}},
		"protocol": endpoint_protocol(ref.endpoint), "port": ref.endpoint.port, "origin": ref.origin,
	}
}

network_derivable(network) if network.path in endpoint_paths

network_derivable(network) if {
	network.path == "in-cluster"
	is_string(network.simulatorNamespace)
}

gateway_derivable if {
	count(runbook_networks) > 0
	every network in runbook_networks {
		network_derivable(network)
	}
}

api_server := object.get(lib.platform, "apiServer", {})

scheduler_derivable if {
	is_string(api_server.cidr)
	is_number(api_server.port)
}

api_needs := {{"peer": cidr_peer(api_server.cidr), "protocol": "TCP", "port": api_server.port, "origin": sprintf("platform environments.%s.apiServer", [lib.environment])}}

# Undefined when the run book or platform file does not say enough to derive it.
egress_needs("gateway") := dns_needs | venue_needs if gateway_derivable

egress_needs("session-scheduler") := dns_needs | api_needs if scheduler_derivable

egress_needs(role) := set() if not role in {"gateway", "session-scheduler"}

needs_summary("gateway") := sprintf("DNS and the run book's destinations for network paths %v", [concat(", ", network_paths)])

needs_summary("session-scheduler") := "DNS and the API server"

needs_summary(role) := "nothing" if not role in {"gateway", "session-scheduler"}

underivable_reason("gateway") := sprintf("the run book gives no known environments.%s.networks[].path (or no simulatorNamespace for in-cluster)", [lib.environment])

underivable_reason("session-scheduler") := sprintf("platform environments.%s has no apiServer {cidr, port}", [lib.environment])

# Ingress the library declares for the gateway: opted-in consumer namespaces on
# the API port, and Prometheus from the monitoring namespace on the metrics port.
consumer_peer := {"kind": "namespaceSelector", "selector": {"matchLabels": {"vcpl.dev/venue-consumer": "true"}, "matchExpressions": []}, "pods": {"all": true}}

monitoring_peer := {"kind": "namespace", "namespace": "monitoring", "pods": {"all": true}}

gateway_ingress_needs := {{"peer": consumer_peer, "protocol": "TCP", "port": port} | some port in ["api", 7000]} | {{"peer": monitoring_peer, "protocol": "TCP", "port": port} | some port in ["metrics", 9090]}

ingress_needs("gateway") := gateway_ingress_needs

ingress_needs(role) := set() if role != "gateway"

# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------

# rule: network-egress-isolated
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	some direction in ["egress", "ingress"]
	object.get(pod, [direction, "isolated"], false) != true
	policy_type := {"egress": "Egress", "ingress": "Ingress"}[direction]
	result := lib.finding(
		"network-egress-isolated", pod.id, pod_field(pod, direction),
		sprintf("%s pods (role %s) are not isolated for %s: no NetworkPolicy with policyType %s selects them, so all %s traffic is allowed", [pod.id, pod.role, direction, policy_type, direction]),
		"keep NetworkPolicy default-deny (podSelector {}, policyTypes [Ingress, Egress]) in the overlay so it selects these pods",
	)
}

# rule: network-egress-exact
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	pod.egress.isolated == true
	needed := egress_needs(pod.role)
	some allowance in allowances(pod.egress.rules)
	not allowance_needed(allowance, needed)
	result := lib.finding(
		"network-egress-exact", allowance.rule.object, allowance.rule.field,
		sprintf("lets %s (role %s) send to %s on %s, which the role does not need; expected only %s", [pod.id, pod.role, peer_text(allowance.peer), port_text(allowance.port), needs_summary(pod.role)]),
		"remove or narrow the rule (or change the run book and regenerate, if the venue really needs it)",
	)
}

deny contains result if {
	lib.is_overlay
	some pod in input.pods
	pod.egress.isolated == true
	some need in egress_needs(pod.role)
	not need_covered(need, pod.egress.rules)
	result := lib.finding(
		"network-egress-exact", pod.id, pod_field(pod, "egress"),
		sprintf("pods (role %s) cannot reach %s, required by %s: no NetworkPolicy selecting them allows it", [pod.role, need_text(need), need.origin]),
		"regenerate the overlay (make generate), or fix the labels or policy so a NetworkPolicy selecting these pods allows it",
	)
}

deny contains result if {
	lib.is_overlay
	some pod in input.pods
	pod.role in known_roles
	not egress_needs(pod.role)
	result := lib.finding(
		"network-egress-exact", pod.id, pod_field(pod, "egress"),
		sprintf("cannot derive the egress role %s needs: %s", [pod.role, underivable_reason(pod.role)]),
		"complete the run book's network section (or platform/platform.yaml) for this environment",
	)
}

# rule: network-egress-no-wildcard
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	some rule in pod.egress.rules
	some peer in rule.peers
	wildcard_text(peer)
	result := lib.finding(
		"network-egress-no-wildcard", rule.object, rule.field,
		sprintf("egress rule allows %s: every address on the internet", [wildcard_text(peer)]),
		"replace the rule with the venue's own CIDRs and ports from the run book",
	)
}

wildcard_text(peer) := "any destination (a rule without `to`)" if peer.kind == "any"

wildcard_text(peer) := sprintf("ipBlock %s", [peer.cidr]) if {
	peer.kind == "ipBlock"
	is_string(peer.cidr)
	parts := split(peer.cidr, "/")
	count(parts) == 2
	to_number(trim_space(parts[1])) == 0
}

# rule: network-egress-no-metadata
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	some rule in pod.egress.rules
	some peer in rule.peers
	metadata_reachable(peer)
	result := lib.finding(
		"network-egress-no-metadata", rule.object, rule.field,
		sprintf("egress to %s reaches the cloud metadata service %s (node credentials)", [metadata_peer_text(peer), metadata_address]),
		sprintf("narrow the destination, or add %s/32 to ipBlock.except", [metadata_address]),
	)
}

metadata_reachable(peer) if peer.kind == "any"

metadata_reachable(peer) if {
	peer.kind == "ipBlock"
	valid_cidr(peer.cidr)
	net.cidr_contains(peer.cidr, metadata_address)
	not metadata_excepted(peer)
}

metadata_excepted(peer) if {
	some excluded in object.get(peer, "except", [])
	valid_cidr(excluded)
	net.cidr_contains(excluded, metadata_address)
}

metadata_peer_text(peer) := "any destination (a rule without `to`)" if {
	peer.kind == "any"
} else := sprintf("ipBlock %s", [peer.cidr])

# rule: network-ingress-declared
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	pod.ingress.isolated == true
	some allowance in allowances(pod.ingress.rules)
	not allowance_needed(allowance, ingress_needs(pod.role))
	result := lib.finding(
		"network-ingress-declared", allowance.rule.object, allowance.rule.field,
		sprintf("admits %s on %s into %s (role %s); %s", [peer_text(allowance.peer), port_text(allowance.port), pod.id, pod.role, ingress_expectation(pod.role)]),
		"remove the rule: only the library's venue-gateway-ingress rules may admit traffic",
	)
}

ingress_expectation("gateway") := "the gateway admits only namespaces labelled vcpl.dev/venue-consumer=true on api (7000/TCP) and namespace monitoring on metrics (9090/TCP)"

ingress_expectation(role) := "this role admits no ingress at all" if role != "gateway"

# rule: network-no-exposure
deny contains result if {
	lib.is_overlay
	some exposure in exposures
	result := lib.finding(
		"network-no-exposure", exposure.object, exposure.field, exposure.problem,
		exposure.fix,
	)
}

exposures contains {
	"object": svc.id, "field": "spec.type",
	"problem": sprintf("Service type %s opens the selected pods on every node or an external load balancer", [svc.type]),
	"fix": "use type ClusterIP; venue consumers reach the gateway inside the cluster",
} if {
	some svc in input.services
	svc.type in {"NodePort", "LoadBalancer"}
}

exposures contains {
	"object": svc.id, "field": "spec.externalIPs",
	"problem": sprintf("externalIPs %v route outside traffic to the selected pods", [svc.externalIPs]),
	"fix": "remove spec.externalIPs",
} if {
	some svc in input.services
	count(object.get(svc, "externalIPs", [])) > 0
}

exposures contains {
	"object": svc.id, "field": sprintf("spec.ports[%d].nodePort", [i]),
	"problem": sprintf("nodePort %v opens the port on every node", [port.nodePort]),
	"fix": "remove nodePort and use type ClusterIP",
} if {
	some svc in input.services
	some i, port in svc.ports
	object.get(port, "nodePort", null) != null
}

exposures contains {
	"object": svc.id, "field": "spec.loadBalancerIP",
	"problem": sprintf("loadBalancerIP %v asks for an external address", [ip]),
	"fix": "remove spec.loadBalancerIP and use type ClusterIP",
} if {
	some svc in input.services
	ip := load_balancer_ip(svc)
}

exposures contains {
	"object": pod.id, "field": host_port.field,
	"problem": sprintf("container %s binds hostPort %v: the port is open on the node's address, outside every NetworkPolicy", [container.name, host_port.port]),
	"fix": "remove hostPort; reach the pod through a ClusterIP Service",
} if {
	some pod in input.pods
	some container in pod.containers
	some host_port in object.get(container, "hostPorts", [])
}

# An ingress controller or Gateway API route would carry outside traffic to the
# gateway's Service just as a LoadBalancer would.
route_kinds := {"Ingress", "Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute", "UDPRoute"}

exposures contains {
	"object": sprintf("%s/%s", [obj.kind, obj.metadata.name]), "field": "spec",
	"problem": sprintf("%s routes traffic from outside the cluster into the namespace", [obj.kind]),
	"fix": sprintf("remove the %s; venue consumers reach the gateway inside the cluster", [obj.kind]),
} if {
	some obj in input.objects
	obj.kind in route_kinds
}

load_balancer_ip(svc) := ip if {
	ip := svc.loadBalancerIP
	is_string(ip)
	ip != ""
}

# ---------------------------------------------------------------------------
# network-egress-source: where the gateway's venue traffic leaves the cluster
# and with which source address. A CiliumEgressGatewayPolicy decides both: the
# allow-listed address on the egress-gateway nodes for a direct path, the
# tunnel's inner source on the VPN-gateway nodes for an ipsec-vpn path (where
# a wrong node sends the venue's traffic out without the tunnel).
# ---------------------------------------------------------------------------

egress_policies := [obj | some obj in input.objects; obj.kind == "CiliumEgressGatewayPolicy"]

policy_id(obj) := sprintf("CiliumEgressGatewayPolicy/%s", [object.get(obj, ["metadata", "name"], "")])

policy_ip(obj) := object.get(obj, ["spec", "egressGateway", "egressIP"], null)

policy_nodes(obj) := object.get(obj, ["spec", "egressGateway", "nodeSelector", "matchLabels"], {})

policy_cidrs(obj) := sort(object.get(obj, ["spec", "destinationCIDRs"], []))

vpn_gateway := object.get(lib.platform, "vpnGateway", {})

vpn_source(network) := network.allowlistedSourceIP if {
	is_string(network.allowlistedSourceIP)
} else := object.get(vpn_gateway, "tunnelSourceIP", null)

expected_sources contains {
	"role": "allow-list", "egressIP": network.allowlistedSourceIP,
	"nodes": object.get(lib.platform, "egressGatewayNodeSelector", {}), "cidrs": null,
	"origin": sprintf("environments.%s.networks[%d].allowlistedSourceIP", [lib.environment, i]),
} if {
	some i, network in runbook_networks
	network.path != "ipsec-vpn"
	is_string(network.allowlistedSourceIP)
}

expected_sources contains {
	"role": "vpn", "egressIP": vpn_source(network),
	"nodes": object.get(vpn_gateway, "nodeSelector", {}), "cidrs": sort(network.vpn.remoteCIDRs),
	"origin": sprintf("environments.%s.networks[%d].vpn", [lib.environment, i]),
} if {
	some i, network in runbook_networks
	network.path == "ipsec-vpn"
}

# Whether the policy steers the gateway's pods: a selector whose podSelector's
# labels all sit on every gateway pod (Cilium ORs the selectors). A policy with
# the right address that selects nothing the gateway runs changes nothing.
selects_gateway(obj) if {
	count(lib.gateway_pods) > 0
	some selector in object.get(obj, ["spec", "selectors"], [])
	pod_selector := object.get(selector, "podSelector", {})
	count(object.get(pod_selector, "matchExpressions", [])) == 0
	every pod in lib.gateway_pods {
		every key, value in object.get(pod_selector, "matchLabels", {}) {
			object.get(pod, ["labels", key], null) == value
		}
	}
}

# A rendered policy fulfils an expected source when it steers the gateway and
# its address, nodes and (for a tunnel) the venue's subnets are the run book's.
fulfils(obj, want) if {
	selects_gateway(obj)
	policy_ip(obj) == want.egressIP
	policy_nodes(obj) == want.nodes
	want.cidrs == null
}

fulfils(obj, want) if {
	selects_gateway(obj)
	policy_ip(obj) == want.egressIP
	policy_nodes(obj) == want.nodes
	policy_cidrs(obj) == want.cidrs
}

source_fix := "regenerate the overlay (make generate) and keep the egress-gateway component the run book's path calls for (ip-allowlist/cilium-egress-gateway, or vpn for ipsec-vpn)"

# rule: network-egress-source
deny contains result if {
	lib.is_overlay
	some want in expected_sources
	not some_policy_fulfils(want)
	result := lib.finding(
		"network-egress-source", sprintf("CiliumEgressGatewayPolicy/%s-%s-venue-%s", [lib.venue, lib.environment, {"allow-list": "egress", "vpn": "vpn"}[want.role]]), "spec.egressGateway",
		sprintf("no egress gateway policy sends the gateway's venue traffic out with source %v on nodes %v%s, as %s requires: the venue %s", [
			want.egressIP, want.nodes, cidrs_text(want.cidrs), want.origin,
			{"allow-list": "refuses traffic from any other address", "vpn": "is reached only through the tunnel on the VPN-gateway nodes"}[want.role],
		]),
		source_fix,
	)
}

some_policy_fulfils(want) if {
	some obj in egress_policies
	fulfils(obj, want)
}

cidrs_text(cidrs) := "" if cidrs == null

cidrs_text(cidrs) := sprintf(" for %v", [cidrs]) if cidrs != null

deny contains result if {
	lib.is_overlay
	some obj in egress_policies
	not some_expected_fulfilled_by(obj)
	[field, problem] := policy_problem(obj)
	result := lib.finding("network-egress-source", policy_id(obj), field, problem, source_fix)
}

some_expected_fulfilled_by(obj) if {
	some want in expected_sources
	fulfils(obj, want)
}

known_ips := {want.egressIP | some want in expected_sources}

# The first thing that is wrong with a policy the run book does not call for.
policy_problem(obj) := ["spec.selectors", "the policy selects none of the gateway's pods (every gateway pod must carry every label of one podSelector): the gateway's traffic leaves the ordinary way, from another address and without the tunnel"] if {
	not selects_gateway(obj)
	policy_ip(obj) in known_ips
} else := ["spec.egressGateway.egressIP", sprintf("egress address %v is none the run book gives for %s (%v): the venue sees traffic from an address it does not know", [policy_ip(obj), lib.environment, sort(known_ips)])] if {
	not policy_ip(obj) in known_ips
} else := ["spec.egressGateway.nodeSelector.matchLabels", sprintf("egress nodes %v are not the ones that hold address %v (%v): traffic leaves where the address, or the tunnel, is not", [policy_nodes(obj), policy_ip(obj), {w.nodes | some w in expected_sources; w.egressIP == policy_ip(obj)}])] if {
	not policy_ip(obj) in {w.egressIP | some w in expected_sources; w.nodes == policy_nodes(obj)}
} else := ["spec.destinationCIDRs", sprintf("destinations %v are not the venue's subnets behind the tunnel (%v)", [policy_cidrs(obj), {w.cidrs | some w in expected_sources; w.egressIP == policy_ip(obj); w.cidrs != null}])]
