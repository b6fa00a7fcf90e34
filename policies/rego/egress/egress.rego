# Egress: every overlay denies by default and lets the gateway reach exactly the
# venue addresses its run book names, and nothing that is a wildcard or the cloud
# metadata service.
package vcpl.egress

import data.vcpl.lib

metadata_address := "169.254.169.254"

# Network paths whose allow-list is the run book's own endpoints.
endpoint_paths := {"cross-connect", "extranet", "internet"}

# ---------------------------------------------------------------------------
# NetworkPolicy helpers
# ---------------------------------------------------------------------------

network_policies(venue, env) := lib.overlay_kind(venue, env, "NetworkPolicy")

policy_types(np) := {t | some t in object.get(np, ["spec", "policyTypes"], [])}

# An empty selector ({} or only empty matchLabels/matchExpressions) selects every pod.
selects_all_pods(np) if {
	selector := np.spec.podSelector
	is_object(selector)
	count(object.get(selector, "matchLabels", {})) == 0
	count(object.get(selector, "matchExpressions", [])) == 0
}

has_rules(np, direction) if count(object.get(np.spec, direction, [])) > 0

is_default_deny(np) if {
	selects_all_pods(np)
	{"Ingress", "Egress"} - policy_types(np) == set()
	not has_rules(np, "egress")
	not has_rules(np, "ingress")
}

# Kubernetes treats a policy without policyTypes as an Egress policy when it has
# egress rules, so such a policy counts too.
applies_to_egress(np) if "Egress" in policy_types(np)

applies_to_egress(np) if {
	count(policy_types(np)) == 0
	has_rules(np, "egress")
}

gateway_egress_policies(venue, env) := {np |
	some np in network_policies(venue, env)
	np.spec.podSelector.matchLabels[lib.gateway_app_label] == lib.gateway_app
	applies_to_egress(np)
}

# Every egress ipBlock of every NetworkPolicy of the overlay, with its location.
egress_ip_blocks(venue, env) := {{"np": np, "rule": i, "field": field, "block": peer.ipBlock} |
	some np in network_policies(venue, env)
	some i, rule in object.get(np.spec, "egress", [])
	some j, peer in object.get(rule, "to", [])
	is_object(peer.ipBlock)
	field := sprintf("spec.egress[%d].to[%d].ipBlock.cidr", [i, j])
}

# Port of a NetworkPolicy port entry as it appears in a tuple: a number, a named
# port, a range "from-to", or "*" when only a protocol is given.
port_value(p) := sprintf("%v-%v", [p.port, p.endPort]) if {
	p.endPort
} else := p.port if {
	p.port
} else := "*"

# (port, protocol) pairs a rule opens; a rule without ports opens every port.
rule_ports(rule) := {[port_value(p), object.get(p, "protocol", "TCP")] | some p in rule.ports} if {
	count(object.get(rule, "ports", [])) > 0
} else := {["*", "*"]}

# (cidr, port, protocol) tuples the gateway's egress policies allow, with location.
allowed_tuples(venue, env) := {{"tuple": [block.block.cidr, pp[0], pp[1]], "object": lib.object_id(block.np), "field": block.field} |
	gateway := gateway_egress_policies(venue, env)
	some block in egress_ip_blocks(venue, env)
	block.np in gateway
	some pp in rule_ports(block.np.spec.egress[block.rule])
}

tuple_text(t) := sprintf("%v:%v/%v", t)

# ---------------------------------------------------------------------------
# Expected allow-list from the run book
# ---------------------------------------------------------------------------

network_path(runbook, env) := runbook.environments[env].network.path

endpoint_cidrs(endpoint) := endpoint.cidrs if {
	is_array(endpoint.cidrs)
} else := [sprintf("%s/32", [endpoint.host])]

endpoint_protocol(endpoint) := "UDP" if {
	endpoint.transport == "udp"
} else := "TCP"

# Every endpoint the run book gives the environment, with the run-book path it came from.
runbook_endpoints(runbook, env) := {{"origin": origin, "endpoint": ep} |
	some si, service in runbook.services
	some role, ep in service.environments[env].endpoints
	origin := sprintf("services[%d].environments.%s.endpoints.%s", [si, env, role])
} | {{"origin": origin, "endpoint": r.endpoint} |
	some si, service in runbook.services
	some ri, r in service.environments[env].recovery
	origin := sprintf("services[%d].environments.%s.recovery[%d].endpoint", [si, env, ri])
}

# Expected tuples as {"tuple": [cidr, port, protocol], "origin": run-book path}.
# Undefined when the run book has no (known) network path for the environment.
expected_tuples(runbook, env) := {{"tuple": [cidr, ref.endpoint.port, endpoint_protocol(ref.endpoint)], "origin": ref.origin} |
	some ref in runbook_endpoints(runbook, env)
	some cidr in endpoint_cidrs(ref.endpoint)
} if {
	network_path(runbook, env) in endpoint_paths
}

# Over IPsec the only traffic leaving the pod network is IKE and NAT-T to the peer.
# Undefined (reported as underivable) when the run book names no peer.
expected_tuples(runbook, env) := {{"tuple": [peer, port, "UDP"], "origin": origin} | some port in [500, 4500]} if {
	network_path(runbook, env) == "ipsec-vpn"
	peer := sprintf("%s/32", [runbook.environments[env].network.vpn.peer])
	origin := sprintf("environments.%s.network.vpn.peer", [env])
}

# In-cluster simulators are reached by namespace selector, never by address.
expected_tuples(runbook, env) := set() if network_path(runbook, env) == "in-cluster"

# ---------------------------------------------------------------------------
# egress-exact-allowlist findings (collected here, reported by one deny block)
# ---------------------------------------------------------------------------

allowlist_findings contains result if {
	some [venue, env] in lib.overlays
	count(gateway_egress_policies(venue, env)) == 0
	result := lib.finding(
		"egress-exact-allowlist", venue, env, "NetworkPolicy/venue-egress", "spec.egress",
		"no NetworkPolicy selects the venue-gateway pods for Egress, so their egress is unrestricted by an allow-list",
		"add a NetworkPolicy with podSelector.matchLabels app.kubernetes.io/name: venue-gateway, policyTypes [Egress] and the run-book allow-list",
	)
}

allowlist_findings contains result if {
	some [venue, env] in lib.overlays
	count(gateway_egress_policies(venue, env)) > 0
	not expected_tuples(data.runbooks[venue], env)
	result := lib.finding(
		"egress-exact-allowlist", venue, env, "NetworkPolicy/venue-egress", "spec.egress",
		sprintf("cannot derive the expected allow-list: data.runbooks.%s has no known environments.%s.network.path (or no vpn.peer for ipsec-vpn)", [venue, env]),
		sprintf("set environments.%s.network.path in venues/%s/runbook.yaml and pass the run books as data", [env, venue]),
	)
}

# Tuples the run book needs but no gateway egress policy allows.
allowlist_findings contains result if {
	some [venue, env] in lib.overlays
	policies := gateway_egress_policies(venue, env)
	count(policies) > 0
	expected := expected_tuples(data.runbooks[venue], env)
	allowed := {a.tuple | some a in allowed_tuples(venue, env)}
	some t in {e.tuple | some e in expected}
	not t in allowed
	origin := min({e.origin | some e in expected; e.tuple == t})
	result := lib.finding(
		"egress-exact-allowlist", venue, env, min({lib.object_id(np) | some np in policies}), "spec.egress",
		sprintf("missing allow-list entry %s required by run book %s", [tuple_text(t), origin]),
		sprintf("add an egress rule to ipBlock %v on port %v/%v (or regenerate the overlay from the run book)", t),
	)
}

# Tuples a gateway egress policy allows that the run book does not name.
allowlist_findings contains result if {
	some [venue, env] in lib.overlays
	expected := {e.tuple | some e in expected_tuples(data.runbooks[venue], env)}
	some a in allowed_tuples(venue, env)
	not a.tuple in expected
	result := lib.finding(
		"egress-exact-allowlist", venue, env, a.object, a.field,
		sprintf("extra allow-list entry %s is not derived from the run book (network path %v)", [tuple_text(a.tuple), network_path(data.runbooks[venue], env)]),
		"remove the entry, or add the endpoint (with cidrs) to the run book and regenerate",
	)
}

# rule: egress-default-deny
deny contains result if {
	some result in default_deny_findings
}

# rule: egress-exact-allowlist
deny contains result if {
	some result in allowlist_findings
}

# rule: egress-no-wildcard
deny contains result if {
	some [venue, env] in lib.overlays
	some block in egress_ip_blocks(venue, env)
	cidr := block.block.cidr
	parts := split(cidr, "/")
	count(parts) == 2
	to_number(parts[1]) == 0
	result := lib.finding(
		"egress-no-wildcard", venue, env, lib.object_id(block.np), block.field,
		sprintf("ipBlock %s allows egress to every address", [cidr]),
		"replace the wildcard with the venue's own CIDRs from the run book",
	)
}

# rule: egress-no-metadata
deny contains result if {
	some [venue, env] in lib.overlays
	some block in egress_ip_blocks(venue, env)
	cidr := block.block.cidr
	net.cidr_contains(cidr, metadata_address)
	not metadata_excepted(block.block)
	result := lib.finding(
		"egress-no-metadata", venue, env, lib.object_id(block.np), block.field,
		sprintf("ipBlock %s lets pods reach the cloud metadata service %s", [cidr, metadata_address]),
		sprintf("narrow the CIDR, or add %s/32 to ipBlock.except", [metadata_address]),
	)
}

metadata_excepted(block) if {
	some excluded in block.except
	net.cidr_contains(excluded, metadata_address)
}

# ---------------------------------------------------------------------------
# egress-default-deny findings
# ---------------------------------------------------------------------------

has_default_deny(venue, env) if {
	some np in network_policies(venue, env)
	is_default_deny(np)
}

# What keeps a select-all policy from being a default deny.
default_deny_defects(np) := {d |
	some t in ({"Ingress", "Egress"} - policy_types(np))
	d := {"field": "spec.policyTypes", "problem": sprintf("select-all policy does not list %s in policyTypes", [t])}
} | {d |
	some direction in ["ingress", "egress"]
	has_rules(np, direction)
	d := {"field": sprintf("spec.%s", [direction]), "problem": sprintf("select-all policy has %s rules, so it allows instead of denying", [direction])}
}

default_deny_findings contains result if {
	some [venue, env] in lib.overlays
	not has_default_deny(venue, env)
	count({np | some np in network_policies(venue, env); selects_all_pods(np)}) == 0
	result := lib.finding(
		"egress-default-deny", venue, env, "NetworkPolicy/default-deny", "spec",
		"no NetworkPolicy with podSelector {}, policyTypes [Ingress, Egress] and no rules: traffic no other policy names is allowed",
		"add NetworkPolicy default-deny with spec.podSelector: {} and policyTypes: [Ingress, Egress] and no rules",
	)
}

# A select-all policy exists but is not a pure deny: say what is wrong with it.
default_deny_findings contains result if {
	some [venue, env] in lib.overlays
	not has_default_deny(venue, env)
	some np in network_policies(venue, env)
	selects_all_pods(np)
	some defect in default_deny_defects(np)
	result := lib.finding(
		"egress-default-deny", venue, env, lib.object_id(np), defect.field, defect.problem,
		"make the select-all policy list both Ingress and Egress with no rules; put allows in separate policies",
	)
}
