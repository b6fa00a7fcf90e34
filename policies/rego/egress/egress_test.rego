package vcpl.egress_test

import data.vcpl.egress
import data.vcpl.fixtures

# ---------------------------------------------------------------------------
# Fixtures: venue "acme", reached over a cross-connect in prod, over IPsec in
# cert and through an in-cluster simulator in dev.
# ---------------------------------------------------------------------------

runbooks := {"acme": {
	"services": [
		{
			"name": "oe",
			"environments": {
				"dev": {"endpoints": {"primary": {"host": "oe.sim.svc.cluster.local", "port": 9000, "transport": "tcp"}}},
				"cert": {"endpoints": {"primary": {"host": "10.1.0.1", "port": 9000, "transport": "tcp"}}},
				"prod": {"endpoints": {
					"primary": {"host": "10.0.0.1", "port": 9000, "transport": "tcp"},
					"backup": {"host": "oe-b.venue.net", "port": 9000, "transport": "tls", "cidrs": ["10.0.2.0/24"]},
				}},
			},
		},
		{
			"name": "md",
			"environments": {
				"dev": {},
				"cert": {},
				"prod": {"recovery": [{"kind": "udp-rerequest", "endpoint": {"host": "10.0.1.1", "port": 9100, "transport": "udp"}}]},
			},
		},
	],
	"environments": {
		"dev": {"network": {"path": "in-cluster"}},
		"cert": {"network": {"path": "ipsec-vpn", "vpn": {"peer": "198.18.0.1"}}},
		"prod": {"network": {"path": "cross-connect"}},
	},
}}

default_deny(env) := fixtures.resource("NetworkPolicy", "default-deny", "acme", env, {"spec": {
	"podSelector": {},
	"policyTypes": ["Ingress", "Egress"],
}})

gateway_egress(env, rules) := fixtures.resource("NetworkPolicy", "venue-egress", "acme", env, {"spec": {
	"podSelector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}},
	"policyTypes": ["Egress"],
	"egress": rules,
}})

dns_rule := {
	"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
	"ports": [{"port": 53, "protocol": "UDP"}],
}

ip_rule(cidrs, port, protocol) := {
	"to": [{"ipBlock": {"cidr": c}} | some c in cidrs],
	"ports": [{"port": port, "protocol": protocol}],
}

prod_rules := [
	dns_rule,
	ip_rule(["10.0.0.1/32"], 9000, "TCP"),
	ip_rule(["10.0.2.0/24"], 9000, "TCP"),
	ip_rule(["10.0.1.1/32"], 9100, "UDP"),
]

prod_overlay := [default_deny("prod"), gateway_egress("prod", prod_rules)]

results_of(objs) := results if {
	results := egress.deny with input as fixtures.entries(objs) with data.runbooks as runbooks
}

# ---------------------------------------------------------------------------
# egress-default-deny
# ---------------------------------------------------------------------------

test_egress_default_deny_accepts_select_all_policy_without_rules if {
	count(fixtures.results_for(results_of(prod_overlay), "egress-default-deny")) == 0
}

test_egress_default_deny_rejects_missing_policy if {
	results := results_of([gateway_egress("prod", prod_rules)])
	some r in fixtures.results_for(results, "egress-default-deny")
	r.details.object == "NetworkPolicy/default-deny"
	r.details.environment == "prod"
}

test_egress_default_deny_rejects_ingress_only_policy if {
	ingress_only := fixtures.resource("NetworkPolicy", "default-deny", "acme", "prod", {"spec": {
		"podSelector": {},
		"policyTypes": ["Ingress"],
	}})
	results := results_of([ingress_only, gateway_egress("prod", prod_rules)])
	fixtures.fields_for(results, "egress-default-deny") == {"spec.policyTypes"}
}

test_egress_default_deny_rejects_select_all_policy_with_rules if {
	allow_all := json.patch(default_deny("prod"), [{"op": "add", "path": "/spec/egress", "value": [{}]}])
	results := results_of([allow_all, gateway_egress("prod", prod_rules)])
	fixtures.fields_for(results, "egress-default-deny") == {"spec.egress"}
}

# ---------------------------------------------------------------------------
# egress-exact-allowlist
# ---------------------------------------------------------------------------

test_egress_exact_allowlist_accepts_runbook_endpoints_and_recovery if {
	count(fixtures.results_for(results_of(prod_overlay), "egress-exact-allowlist")) == 0
}

test_egress_exact_allowlist_accepts_ipsec_peer_ports if {
	rules := [dns_rule, {
		"to": [{"ipBlock": {"cidr": "198.18.0.1/32"}}],
		"ports": [{"port": 500, "protocol": "UDP"}, {"port": 4500, "protocol": "UDP"}],
	}]
	results := results_of([default_deny("cert"), gateway_egress("cert", rules)])
	count(fixtures.results_for(results, "egress-exact-allowlist")) == 0
}

test_egress_exact_allowlist_accepts_in_cluster_without_ip_blocks if {
	sim_rule := {
		"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "venue-simulators"}}}],
		"ports": [{"port": 9000, "protocol": "TCP"}],
	}
	results := results_of([default_deny("dev"), gateway_egress("dev", [dns_rule, sim_rule])])
	count(fixtures.results_for(results, "egress-exact-allowlist")) == 0
}

test_egress_exact_allowlist_rejects_missing_entry if {
	rules := [dns_rule, ip_rule(["10.0.0.1/32"], 9000, "TCP"), ip_rule(["10.0.2.0/24"], 9000, "TCP")]
	results := fixtures.results_for(results_of([default_deny("prod"), gateway_egress("prod", rules)]), "egress-exact-allowlist")
	count(results) == 1
	some r in results
	contains(r.msg, "missing allow-list entry 10.0.1.1/32:9100/UDP")
}

test_egress_exact_allowlist_rejects_extra_entry if {
	rules := array.concat(prod_rules, [ip_rule(["10.9.9.9/32"], 9000, "TCP")])
	results := fixtures.results_for(results_of([default_deny("prod"), gateway_egress("prod", rules)]), "egress-exact-allowlist")
	count(results) == 1
	some r in results
	contains(r.msg, "extra allow-list entry 10.9.9.9/32:9000/TCP")
	r.details.field == "spec.egress[4].to[0].ipBlock.cidr"
}

test_egress_exact_allowlist_rejects_wrong_protocol if {
	rules := [dns_rule, ip_rule(["10.0.0.1/32"], 9000, "TCP"), ip_rule(["10.0.2.0/24"], 9000, "TCP"), ip_rule(["10.0.1.1/32"], 9100, "TCP")]
	results := fixtures.results_for(results_of([default_deny("prod"), gateway_egress("prod", rules)]), "egress-exact-allowlist")
	count(results) == 2
}

test_egress_exact_allowlist_rejects_ip_block_in_cluster if {
	results := results_of([default_deny("dev"), gateway_egress("dev", [dns_rule, ip_rule(["10.0.0.1/32"], 9000, "TCP")])])
	some r in fixtures.results_for(results, "egress-exact-allowlist")
	contains(r.msg, "extra allow-list entry 10.0.0.1/32:9000/TCP")
}

test_egress_exact_allowlist_rejects_missing_gateway_policy if {
	results := results_of([default_deny("prod")])
	some r in fixtures.results_for(results, "egress-exact-allowlist")
	contains(r.msg, "no NetworkPolicy selects the venue-gateway pods for Egress")
}

test_egress_exact_allowlist_rejects_ipsec_without_peer if {
	no_peer := json.patch(runbooks, [{"op": "remove", "path": "/acme/environments/cert/network/vpn"}])
	rules := [dns_rule, ip_rule(["198.18.0.1/32"], 500, "UDP")]
	results := egress.deny with input as fixtures.entries([default_deny("cert"), gateway_egress("cert", rules)])
		with data.runbooks as no_peer
	some r in fixtures.results_for(results, "egress-exact-allowlist")
	contains(r.msg, "cannot derive the expected allow-list")
}

# ---------------------------------------------------------------------------
# egress-no-wildcard
# ---------------------------------------------------------------------------

test_egress_no_wildcard_accepts_specific_cidrs if {
	count(fixtures.results_for(results_of(prod_overlay), "egress-no-wildcard")) == 0
}

test_egress_no_wildcard_rejects_any_address if {
	open_np := fixtures.resource("NetworkPolicy", "open", "acme", "prod", {"spec": {
		"podSelector": {"matchLabels": {"app": "other"}},
		"policyTypes": ["Egress"],
		"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
	}})
	results := fixtures.results_for(results_of(array.concat(prod_overlay, [open_np])), "egress-no-wildcard")
	count(results) == 1
	some r in results
	r.details.object == "NetworkPolicy/open"
	r.details.field == "spec.egress[0].to[1].ipBlock.cidr"
}

test_egress_no_wildcard_rejects_ipv6_any if {
	open_np := fixtures.resource("NetworkPolicy", "open6", "acme", "prod", {"spec": {
		"podSelector": {},
		"policyTypes": ["Egress"],
		"egress": [{"to": [{"ipBlock": {"cidr": "::/0"}}]}],
	}})
	count(fixtures.results_for(results_of(array.concat(prod_overlay, [open_np])), "egress-no-wildcard")) == 1
}

# ---------------------------------------------------------------------------
# egress-no-metadata
# ---------------------------------------------------------------------------

metadata_np(block) := fixtures.resource("NetworkPolicy", "wide", "acme", "prod", {"spec": {
	"podSelector": {"matchLabels": {"app": "other"}},
	"policyTypes": ["Egress"],
	"egress": [{"to": [{"ipBlock": block}]}],
}})

test_egress_no_metadata_rejects_link_local_range if {
	results := results_of(array.concat(prod_overlay, [metadata_np({"cidr": "169.254.0.0/16"})]))
	some r in fixtures.results_for(results, "egress-no-metadata")
	r.details.object == "NetworkPolicy/wide"
}

test_egress_no_metadata_rejects_except_not_covering_it if {
	block := {"cidr": "169.254.0.0/16", "except": ["169.254.1.0/24"]}
	count(fixtures.results_for(results_of(array.concat(prod_overlay, [metadata_np(block)])), "egress-no-metadata")) == 1
}

test_egress_no_metadata_accepts_excepted_metadata_address if {
	block := {"cidr": "169.254.0.0/16", "except": ["169.254.169.254/32"]}
	count(fixtures.results_for(results_of(array.concat(prod_overlay, [metadata_np(block)])), "egress-no-metadata")) == 0
}

test_egress_no_metadata_accepts_venue_cidrs if {
	count(fixtures.results_for(results_of(prod_overlay), "egress-no-metadata")) == 0
}
