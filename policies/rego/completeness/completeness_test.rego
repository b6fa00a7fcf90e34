package vcpl.completeness_test

import data.vcpl.completeness
import data.vcpl.fixtures

# ---------------------------------------------------------------------------
# A realistic model: QuickFIX behind stunnel, gateway.json, a feed file, an
# IPsec peer, the gateway's egress policy and a Cilium egress gateway.
# ---------------------------------------------------------------------------

runbook(acknowledgements) := {
	"venue": {"id": "acme"},
	"sources": {
		"DOC": {"quality": "P", "ref": "venue spec"},
		"ONB": {"quality": "U", "ref": "onboarding record"},
		"SBX": {"quality": "U", "ref": "sandbox host to confirm"},
	},
	"acknowledgements": acknowledgements,
	"services": [{
		"name": "oe",
		"heartbeat": {"default": 30, "source": "DOC", "boundsSource": "DOC"},
		"environments": {
			"dev": {"endpoints": {"primary": {"host": "oe.sim", "port": 1, "transport": "tcp", "source": "DOC"}}},
			"cert": {"endpoints": {"primary": {"host": "oe.sbx", "port": 1, "transport": "tcp", "source": "SBX"}}},
			"prod": {"endpoints": {"primary": {"host": "oe.venue.net", "port": 6121, "transport": "tls", "cidrs": ["10.0.0.0/24"], "source": "DOC", "cidrsSource": "ONB"}}},
		},
	}],
	"environments": {
		"dev": {"network": {"path": "in-cluster", "source": "DOC"}},
		"cert": {"network": {"path": "internet", "source": "SBX"}},
		"prod": {"network": {"path": "ipsec-vpn", "allowlistedSourceIP": "10.250.0.10", "vpn": {"peer": "198.18.61.1", "remoteCIDRs": ["10.0.0.0/24"]}, "source": "DOC"}},
	},
}

prod_ack := {"source": "ONB", "environments": ["prod"], "by": "team", "date": "2026-01-01", "reason": "stand-in"}

gateway_config := {
	"venue": "acme",
	"environment": "prod",
	"services": [{
		"name": "oe",
		"endpoints": [{"role": "primary", "host": "oe.venue.net", "port": 6121, "transport": "tls"}],
	}],
}

session_cfg := "[DEFAULT]\nTimeZone=UTC\n\n[SESSION]\nSenderCompID=A\nTargetCompID=V\nSocketConnectHost=127.0.0.1\nSocketConnectPort=16000\n"

egress_policy := {
	"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "venue-egress"},
	"spec": {
		"podSelector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}},
		"policyTypes": ["Egress"],
		"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 6121}]}],
	},
}

egress_gateway := {
	"apiVersion": "cilium.io/v2", "kind": "CiliumEgressGatewayPolicy", "metadata": {"name": "acme-prod-venue-egress"},
	"spec": {"destinationCIDRs": ["10.0.0.0/24"], "egressGateway": {"egressIP": "10.250.0.10"}},
}

config_map(name, entries) := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": entries}

good_objects := [
	egress_policy,
	egress_gateway,
	config_map("venue-gateway", {"gateway.json": json.marshal(gateway_config)}),
	config_map("fix-session", {"session.cfg": session_cfg}),
]

model(env, acknowledgements) := fixtures.model("acme", env, {
	"runbook": runbook(acknowledgements),
	"objects": good_objects,
	"sessions": {
		"gateway": {"object": "ConfigMap/venue-gateway", "field": "data[gateway.json]", "path": "/etc/venue-gateway/gateway/gateway.json", "config": gateway_config},
		"quickfix": [{
			"object": "ConfigMap/fix-session", "field": "data[session.cfg]", "path": "/etc/venue-gateway/fix/session.cfg",
			"default": {"TimeZone": "UTC"},
			"sessions": [{
				"index": 1, "service": "oe",
				"own": {"SenderCompID": "A", "TargetCompID": "V", "SocketConnectHost": "127.0.0.1", "SocketConnectPort": "16000"},
				"settings": {"TimeZone": "UTC", "SenderCompID": "A", "TargetCompID": "V", "SocketConnectHost": "127.0.0.1", "SocketConnectPort": "16000"},
			}],
		}],
		"channels": [{
			"object": "ConfigMap/feed-channels", "field": "data[channels.json]", "path": "/etc/venue-gateway/feeds/channels.json",
			"config": {
				"channels": [{"id": 1, "a": {"group": "224.0.31.71", "port": 14348}, "b": {"group": "224.0.32.71", "port": 15348}}],
				"recovery": [{"host": "10.0.0.20", "port": 10000}],
			},
		}],
		"stunnel": [{"object": "ConfigMap/stunnel", "field": "data[stunnel.conf]", "services": [{
			"name": "oe-primary", "client": true, "accept": "127.0.0.1:16000", "connect": "oe.venue.net:6121",
		}]}],
		"swanctl": [{"object": "Secret/strongswan", "field": "data[swanctl.conf].connections.venue.remote_addrs", "remoteAddrs": ["198.18.61.1"], "remoteTs": ["10.0.0.0/24"]}],
		"targets": [{
			"service": "oe", "order": 0, "host": "oe.venue.net", "port": 6121, "tls": true, "via": "sidecar", "source": "quickfix",
			"object": "ConfigMap/stunnel", "field": "data[stunnel.conf][oe-primary].connect",
		}],
		"stores": [],
	},
})

good := model("prod", [prod_ack])

results_of(m) := results if {
	results := completeness.deny with input as m
}

placeholders(m) := fixtures.results_for(results_of(m), "completeness-no-placeholder")

placeholder_fields(m) := fixtures.fields_for(results_of(m), "completeness-no-placeholder")

placeholder_objects(m) := {r.details.object | some r in placeholders(m)}

test_good_model_has_no_findings if {
	count(results_of(good)) == 0
}

test_library_index_is_not_judged if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

# ---------------------------------------------------------------------------
# completeness-no-placeholder
# ---------------------------------------------------------------------------

test_completeness_no_placeholder_accepts_real_addresses if {
	count(placeholders(good)) == 0
}

test_completeness_no_placeholder_accepts_lookalike_names if {
	m := json.patch(good, [
		{"op": "replace", "path": "/sessions/gateway/config/services/0/endpoints/0/host", "value": "notexample.com"},
		{"op": "replace", "path": "/sessions/targets/0/host", "value": "example.company.io"},
		{"op": "replace", "path": "/sessions/channels/0/config/recovery/0/host", "value": "mastodon.venue.net"},
	])
	count(placeholders(m)) == 0
}

test_completeness_no_placeholder_accepts_local_stunnel_address if {
	# QuickFIX reaching the sidecar on 127.0.0.1 is how the library wraps TLS.
	count(placeholders(good)) == 0
	good.sessions.quickfix[0].sessions[0].own.SocketConnectHost == "127.0.0.1"
}

test_completeness_no_placeholder_rejects_example_domain_target if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/targets/0/host", "value": "fix.Example.COM"}])
	placeholder_fields(m) == {"data[stunnel.conf][oe-primary].connect"}
	placeholder_objects(m) == {"ConfigMap/stunnel"}
}

test_completeness_no_placeholder_rejects_example_domain_in_gateway_json if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/gateway/config/services/0/endpoints/0/host", "value": "oe.example.net"}])
	placeholder_fields(m) == {"data[gateway.json].services[0].endpoints[0].host"}
	placeholder_objects(m) == {"ConfigMap/venue-gateway"}
}

test_completeness_no_placeholder_rejects_reserved_tlds if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/gateway/config/services/0/endpoints", "value": [
		{"host": "venue.invalid"}, {"host": "venue.test"}, {"host": "host.example"}, {"host": "example.org"},
	]}])
	count(placeholders(m)) == 4
}

test_completeness_no_placeholder_rejects_documentation_address_in_channels if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/channels/0/config/recovery/0/host", "value": "198.51.100.7"}])
	placeholder_fields(m) == {"data[channels.json].recovery[0].host"}
}

test_completeness_no_placeholder_rejects_localhost_socket_host if {
	m := json.patch(good, [{"op": "add", "path": "/sessions/quickfix/0/sessions/0/own/SocketConnectHost1", "value": "localhost"}])
	placeholder_fields(m) == {"data[session.cfg].SESSION[1].SocketConnectHost1"}
	placeholder_objects(m) == {"ConfigMap/fix-session"}
}

test_completeness_no_placeholder_rejects_unspecified_socket_host_in_default if {
	m := json.patch(good, [{"op": "add", "path": "/sessions/quickfix/0/default/SocketConnectHost", "value": "0.0.0.0"}])
	placeholder_fields(m) == {"data[session.cfg].DEFAULT.SocketConnectHost"}
}

test_completeness_no_placeholder_rejects_documentation_stunnel_connect if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/stunnel/0/services/0/connect", "value": "203.0.113.9:6121"}])
	placeholder_fields(m) == {"data[stunnel.conf][oe-primary].connect"}
}

test_completeness_no_placeholder_rejects_documentation_vpn_peer if {
	m := json.patch(good, [{"op": "replace", "path": "/sessions/swanctl/0/remoteAddrs", "value": ["192.0.2.1"]}])
	placeholder_fields(m) == {"data[swanctl.conf].connections.venue.remote_addrs"}
	placeholder_objects(m) == {"Secret/strongswan"}
}

test_completeness_no_placeholder_rejects_documentation_cidr_in_any_network_policy if {
	extra := json.patch(egress_policy, [
		{"op": "replace", "path": "/metadata/name", "value": "allow-more"},
		{"op": "replace", "path": "/spec/egress/0/to/0/ipBlock/cidr", "value": "192.0.2.0/28"},
	])
	m := json.patch(good, [{"op": "add", "path": "/objects/-", "value": extra}])
	placeholder_fields(m) == {"spec.egress[0].to[0].ipBlock.cidr"}
	placeholder_objects(m) == {"NetworkPolicy/allow-more"}
}

test_completeness_no_placeholder_rejects_documentation_egress_ip if {
	m := json.patch(good, [{"op": "replace", "path": "/objects/1/spec/egressGateway/egressIP", "value": "192.0.2.10"}])
	placeholder_fields(m) == {"spec.egressGateway.egressIP"}
	placeholder_objects(m) == {"CiliumEgressGatewayPolicy/acme-prod-venue-egress"}
}

test_completeness_no_placeholder_rejects_placeholder_in_runbook_environment if {
	m := json.patch(good, [{"op": "replace", "path": "/runbook/environments/prod/network/vpn/peer", "value": "TBD"}])
	placeholder_fields(m) == {"environments.prod.network.vpn.peer"}
	placeholder_objects(m) == {"VenueRunbook/acme"}
}

test_completeness_no_placeholder_rejects_placeholder_in_runbook_endpoint if {
	m := json.patch(good, [{"op": "replace", "path": "/runbook/services/0/environments/prod/endpoints/primary/cidrs/0", "value": "203.0.113.0/24"}])
	placeholder_fields(m) == {"services[0].environments.prod.endpoints.primary.cidrs[0]"}
}

test_completeness_no_placeholder_accepts_placeholder_in_other_environment if {
	m := json.patch(good, [{"op": "replace", "path": "/runbook/services/0/environments/cert/endpoints/primary/host", "value": "oe.example.com"}])
	count(placeholders(m)) == 0
}

test_completeness_no_placeholder_rejects_todo_in_gateway_json if {
	text := replace(json.marshal(gateway_config), "oe.venue.net", "TODO-primary.venue.net")
	m := json.patch(good, [{"op": "replace", "path": "/objects/2/data/gateway.json", "value": text}])
	some r in placeholders(m)
	r.details.field == "data[gateway.json]"
	r.details.object == "ConfigMap/venue-gateway"
	contains(r.msg, "placeholder word TODO")
}

test_completeness_no_placeholder_rejects_changeme_in_session_cfg if {
	m := json.patch(good, [{"op": "replace", "path": "/objects/3/data/session.cfg", "value": replace(session_cfg, "SenderCompID=A", "SenderCompID=changeme")}])
	rs := placeholders(m)
	count(rs) == 1
	some r in rs
	r.details.field == "data[session.cfg]"
	contains(r.msg, "line 5")
}

test_completeness_no_placeholder_rejects_fixme_in_any_config_map if {
	extra := config_map("gateway-extra", {"override.properties": "venue.host=FIXME\n"})
	m := json.patch(good, [{"op": "add", "path": "/objects/-", "value": extra}])
	placeholder_fields(m) == {"data[override.properties]"}
	placeholder_objects(m) == {"ConfigMap/gateway-extra"}
}

# ---------------------------------------------------------------------------
# completeness-unverified-acknowledged
# ---------------------------------------------------------------------------

unverified(m) := fixtures.results_for(results_of(m), "completeness-unverified-acknowledged")

test_completeness_unverified_acknowledged_accepts_acknowledged_source if {
	count(unverified(good)) == 0
}

test_completeness_unverified_acknowledged_accepts_unverified_source_used_only_in_cert if {
	# SBX (U) backs only cert facts and is never acknowledged: prod is unaffected.
	m := json.patch(model("prod", []), [{"op": "replace", "path": "/runbook/services/0/environments/prod/endpoints/primary/cidrsSource", "value": "DOC"}])
	count(unverified(m)) == 0
}

test_completeness_unverified_acknowledged_accepts_non_prod_overlay if {
	count(unverified(model("cert", []))) == 0
}

test_completeness_unverified_acknowledged_rejects_missing_acknowledgement if {
	rs := unverified(model("prod", []))
	count(rs) == 1
	some r in rs
	r.details.field == "services[0].environments.prod.endpoints.primary.cidrsSource"
	r.details.object == "VenueRunbook/acme"
	contains(r.msg, "ONB")
}

test_completeness_unverified_acknowledged_rejects_cert_only_acknowledgement if {
	cert_ack := json.patch(prod_ack, [{"op": "replace", "path": "/environments", "value": ["cert"]}])
	count(unverified(model("prod", [cert_ack]))) == 1
}

test_completeness_unverified_acknowledged_rejects_service_level_fact if {
	# A service-level fact (no environments segment) applies to prod too.
	m := json.patch(good, [{"op": "replace", "path": "/runbook/services/0/heartbeat/boundsSource", "value": "SBX"}])
	{r.details.field | some r in unverified(m)} == {"services[0].heartbeat.boundsSource"}
}
