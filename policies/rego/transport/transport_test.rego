package vcpl.transport_test

import data.vcpl.fixtures
import data.vcpl.transport

runbooks := {"acme": {"environments": {
	"dev": {"network": {"path": "internet"}},
	"cert": {"network": {"path": "internet"}},
	"prod": {"network": {"path": "cross-connect"}},
}}}

gateway_cm(env, path, transports) := fixtures.resource("ConfigMap", "venue-gateway", "acme", env, {"data": {"gateway.json": json.marshal({
	"venue": "acme",
	"environment": env,
	"network": {"path": path},
	"services": [{
		"name": "oe",
		"endpoints": [{"role": "primary", "host": "10.0.0.1", "port": 9000, "transport": t} | some t in transports],
	}],
})}})

results_of(objs) := results if {
	results := transport.deny with input as fixtures.entries(objs) with data.runbooks as runbooks
}

# ---------------------------------------------------------------------------
# transport-tls-or-private-path
# ---------------------------------------------------------------------------

test_transport_tls_or_private_path_accepts_tls_and_wss_over_internet if {
	count(fixtures.results_for(results_of([gateway_cm("cert", "internet", ["tls", "wss"])]), "transport-tls-or-private-path")) == 0
}

test_transport_tls_or_private_path_accepts_plaintext_on_cross_connect if {
	count(fixtures.results_for(results_of([gateway_cm("prod", "cross-connect", ["tcp", "udp"])]), "transport-tls-or-private-path")) == 0
}

test_transport_tls_or_private_path_rejects_tcp_over_internet_in_cert if {
	results := fixtures.results_for(results_of([gateway_cm("cert", "internet", ["tls", "tcp"])]), "transport-tls-or-private-path")
	count(results) == 1
	some r in results
	r.details.field == "data[gateway.json].services[0].endpoints[1].transport"
	r.details.object == "ConfigMap/venue-gateway"
}

test_transport_tls_or_private_path_rejects_plaintext_over_internet_in_dev if {
	results := fixtures.results_for(results_of([gateway_cm("dev", "internet", ["udp"])]), "transport-tls-or-private-path")
	count(results) == 1
}

test_transport_tls_or_private_path_rejects_unknown_transport_over_internet_in_prod if {
	runbooks_prod_internet := {"acme": {"environments": {"prod": {"network": {"path": "internet"}}}}}
	results := transport.deny with input as fixtures.entries([gateway_cm("prod", "internet", ["quic"])])
		with data.runbooks as runbooks_prod_internet
	count(fixtures.results_for(results, "transport-tls-or-private-path")) == 1
}

# ---------------------------------------------------------------------------
# transport-path-matches-runbook
# ---------------------------------------------------------------------------

test_transport_path_matches_runbook_accepts_same_path if {
	count(fixtures.results_for(results_of([gateway_cm("prod", "cross-connect", ["tcp"])]), "transport-path-matches-runbook")) == 0
}

test_transport_path_matches_runbook_rejects_other_path if {
	results := fixtures.results_for(results_of([gateway_cm("prod", "extranet", ["tcp"])]), "transport-path-matches-runbook")
	count(results) == 1
	some r in results
	r.details.field == "data[gateway.json].network.path"
	contains(r.msg, `"extranet"`)
	contains(r.msg, `"cross-connect"`)
}

test_transport_path_matches_runbook_rejects_missing_runbook if {
	results := transport.deny with input as fixtures.entries([gateway_cm("prod", "cross-connect", ["tcp"])])
		with data.runbooks as {}
	count(fixtures.results_for(results, "transport-path-matches-runbook")) == 1
}

test_transport_path_matches_runbook_rejects_invalid_gateway_json if {
	broken := fixtures.resource("ConfigMap", "venue-gateway", "acme", "prod", {"data": {"gateway.json": "{not json"}})
	results := fixtures.results_for(results_of([broken]), "transport-path-matches-runbook")
	some r in results
	r.details.field == "data[gateway.json]"
}
