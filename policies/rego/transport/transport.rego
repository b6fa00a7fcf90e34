# Transport: plaintext venue sessions only travel over private paths, and the
# gateway's network path is the one its run book declares.
package vcpl.transport

import data.vcpl.lib

# Paths that never cross the public internet: plaintext is acceptable there.
private_paths := {"cross-connect", "extranet", "ipsec-vpn", "in-cluster"}

plaintext_transports := {"tcp", "udp"}

encrypted_transports := {"tls", "wss"}

# Environments that carry real venue traffic.
live_environments := {"cert", "prod"}

gateway_path(cfg) := object.get(cfg, ["network", "path"], "<unset>")

# Why an endpoint's transport is not acceptable on `path` in `env` (undefined when it is).
transport_problem(env, path, transport) := sprintf("plaintext transport %q over network path %q; plaintext is only allowed on %v", [transport, path, sort(private_paths)]) if {
	transport in plaintext_transports
	not path in private_paths
} else := sprintf("transport %q over the internet in %s; only tls or wss is allowed", [transport, env]) if {
	env in live_environments
	path == "internet"
	not transport in encrypted_transports
}

# rule: transport-tls-or-private-path
deny contains result if {
	some [venue, env] in lib.overlays
	some g in lib.gateway_configs(venue, env)
	path := gateway_path(g.config)
	some si, service in g.config.services
	some ei, endpoint in service.endpoints
	transport := object.get(endpoint, "transport", "<unset>")
	problem := transport_problem(env, path, transport)
	result := lib.finding(
		"transport-tls-or-private-path", venue, env, g.object,
		sprintf("data[gateway.json].services[%d].endpoints[%d].transport", [si, ei]),
		sprintf("service %v %v endpoint %v:%v uses %s", [service.name, object.get(endpoint, "role", "?"), object.get(endpoint, "host", "?"), object.get(endpoint, "port", "?"), problem]),
		"use the venue's TLS/WSS endpoint (natively or through the stunnel sidecar) in the run book, or a private network path",
	)
}

# rule: transport-path-matches-runbook
deny contains result if {
	some result in path_findings
}

path_findings contains result if {
	some [venue, env] in lib.overlays
	some g in lib.gateway_configs(venue, env)
	rendered := gateway_path(g.config)
	expected := object.get(data.runbooks, [venue, "environments", env, "network", "path"], "<no run book path>")
	rendered != expected
	result := lib.finding(
		"transport-path-matches-runbook", venue, env, g.object, "data[gateway.json].network.path",
		sprintf("network path %q differs from the run book's environments.%s.network.path %q", [rendered, env, expected]),
		sprintf("regenerate the overlay from venues/%s/runbook.yaml (make generate) so both agree", [venue]),
	)
}

# Without a readable gateway.json the path cannot be compared at all.
path_findings contains result if {
	some [venue, env] in lib.overlays
	count(lib.gateway_configs(venue, env)) == 0
	result := lib.finding(
		"transport-path-matches-runbook", venue, env, "ConfigMap/venue-gateway", "data[gateway.json]",
		"no venue-gateway ConfigMap with a valid gateway.json JSON object, so the network path cannot be checked",
		"render the venue-gateway ConfigMap from the run book (make generate) and check gateway.json is valid JSON",
	)
}
