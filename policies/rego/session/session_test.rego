package vcpl.session_test

import data.vcpl.fixtures
import data.vcpl.session

# ---------------------------------------------------------------------------
# A FIX-over-TLS venue on the internet (coinbase-like): order entry "oe" in
# QuickFIX through the stunnel sidecar, primary and backup; a WebSocket feed
# "md" with native TLS; a multicast feed "feed" without endpoints.
# ---------------------------------------------------------------------------

cfg_path := "/etc/venue-gateway/fix/session.cfg"

weekly := {"open": {"day": "sunday", "time": "18:00"}, "close": {"day": "friday", "time": "17:00"}}

runbook := {
	"venue": {"id": "acme"},
	"schedule": {"timeZone": "America/New_York", "weekly": weekly, "source": "HRS"},
	"failover": {"reconnect": {"steps": [{"attempts": 3, "intervalSeconds": 10}], "then": "repeat"}, "standby": "hot", "source": "FO"},
	"services": [
		{
			"name": "oe",
			"protocol": {"name": "FIX", "sessionLayer": "fix", "beginString": "FIX.4.4"},
			"heartbeat": {"default": 30, "min": 10, "max": 60, "unit": "s"},
			"tls": {"required": true, "termination": "sidecar"},
			"environments": {"prod": {
				"session": {"senderCompID": "ACME-PRD", "targetCompID": "VENUE"},
				"endpoints": {
					"primary": {"host": "fix.venue.net", "port": 6121, "transport": "tls"},
					"backup": {"host": "fix-b.venue.net", "port": 6121, "transport": "tls"},
				},
			}},
		},
		{
			"name": "md",
			"protocol": {"name": "WebSocket", "sessionLayer": "websocket"},
			"heartbeat": {"default": 1, "unit": "s"},
			"tls": {"required": true, "termination": "native"},
			"environments": {"prod": {"endpoints": {"primary": {"host": "ws.venue.net", "port": 443, "transport": "wss"}}}},
		},
		{
			"name": "feed",
			"protocol": {"name": "Multicast", "sessionLayer": "mdp-packet"},
			"environments": {"prod": {"channels": []}},
		},
	],
	"environments": {"prod": {"networks": [{"path": "internet"}]}},
}

default_section := {
	"ConnectionType": "initiator",
	"FileStorePath": "/var/lib/venue-gateway/fix/store",
	"ReconnectInterval": "10",
	"TimeZone": "America/New_York",
	"StartDay": "Sunday",
	"StartTime": "18:00:00",
	"EndDay": "Friday",
	"EndTime": "17:00:00",
}

oe_session := {
	"BeginString": "FIX.4.4",
	"SenderCompID": "ACME-PRD",
	"TargetCompID": "VENUE",
	"HeartBtInt": "30",
	"SocketConnectHost": "127.0.0.1",
	"SocketConnectPort": "16000",
	"SocketConnectHost1": "127.0.0.1",
	"SocketConnectPort1": "16001",
	"SocketUseSSL": "N",
}

# A parsed QuickFIX file as the model gives it; `services[k]` names the
# gateway.json service of session k (null: let the rule map by order).
quickfix_file(defaults, owns, services) := {
	"object": "ConfigMap/fix-session",
	"field": "data[session.cfg]",
	"path": cfg_path,
	"default": defaults,
	"sessions": [s |
		some k, own in owns
		base := {
			"index": k + 1,
			"own": own,
			"settings": object.union(defaults, own),
		}
		s := object.union(base, {"service": services[k]})
	],
}

target(service, order, host, port, source, via, obj, host_field, port_field) := {
	"service": service, "order": order, "host": host, "port": port,
	"tls": via != "plaintext", "via": via, "source": source,
	"verified": via != "plaintext", "checkHost": host,
	"object": obj, "field": host_field, "hostField": host_field, "portField": port_field,
}

# Through the sidecar the model names the stunnel `connect` line that holds
# both host and port.
stunnel_target(order, host, section) := {
	"service": "oe", "order": order, "host": host, "port": 6121, "tls": true, "via": "sidecar", "source": "quickfix",
	"verified": true, "checkHost": host,
	"object": "ConfigMap/stunnel", "field": sprintf("data[stunnel.conf][%s].connect", [section]),
	"tlsField": sprintf("data[stunnel.conf][%s]", [section]),
}

gateway_target(service, si, order, host, port, via) := target(
	service, order, host, port, "gateway.json", via, "ConfigMap/venue-gateway",
	sprintf("data[gateway.json].services[%d].endpoints[%d].host", [si, order]),
	sprintf("data[gateway.json].services[%d].endpoints[%d].port", [si, order]),
)

good_targets := [
	stunnel_target(0, "fix.venue.net", "oe-primary"),
	stunnel_target(1, "fix-b.venue.net", "oe-backup"),
	gateway_target("oe", 0, 0, "fix.venue.net", 6121, "native"),
	gateway_target("oe", 0, 1, "fix-b.venue.net", 6121, "native"),
	gateway_target("md", 1, 0, "ws.venue.net", 443, "native"),
]

gateway_config := {
	"venue": "acme",
	"environment": "prod",
	"network": {"paths": ["internet"]},
	"failover": {"reconnect": {"steps": [{"attempts": 3, "intervalSeconds": 10}], "then": "repeat"}, "standby": "hot"},
	"schedule": {"timeZone": "America/New_York", "weekly": weekly},
	"services": [
		{
			"name": "oe",
			"quickfixSettings": cfg_path,
			"heartbeat": {"default": 30, "interval": 30, "min": 10, "max": 60, "unit": "s"},
			"session": {"senderCompID": "ACME-PRD", "targetCompID": "VENUE"},
			"endpoints": [
				{"role": "primary", "host": "fix.venue.net", "port": 6121, "transport": "tls"},
				{"role": "backup", "host": "fix-b.venue.net", "port": 6121, "transport": "tls"},
			],
		},
		{
			"name": "md",
			"heartbeat": {"default": 1, "interval": 1, "unit": "s"},
			"session": {},
			"endpoints": [{"role": "primary", "host": "ws.venue.net", "port": 443, "transport": "wss"}],
		},
		{"name": "feed", "channelsFile": "/etc/venue-gateway/feeds/channels.json", "session": {}, "endpoints": []},
	],
}

gateway_pod := {"id": "StatefulSet/venue-gateway", "kind": "StatefulSet", "name": "venue-gateway", "template": "spec.template", "role": "gateway"}

fix_store(service) := {
	"service": service, "what": "FIX store (FileStorePath)", "path": "/var/lib/venue-gateway/fix/store",
	"volume": "session-state", "type": "persistentVolumeClaim",
	"object": "ConfigMap/fix-session", "field": "data[session.cfg].DEFAULT.FileStorePath",
	"mountField": "spec.template.spec.containers[0].volumeMounts[4]",
}

state_dir_store := {
	"service": null, "what": "gateway state (--state-dir)", "path": "/var/lib/venue-gateway",
	"volume": "session-state", "type": "persistentVolumeClaim",
	"object": "StatefulSet/venue-gateway", "field": "spec.template.spec.containers[0].args",
	"mountField": "spec.template.spec.containers[0].volumeMounts[4]",
}

good_stores := [fix_store("oe"), state_dir_store]

good := fixtures.model("acme", "prod", {
	"expected": {"quickfixServices": ["oe", "dc"]},
	"runbook": runbook,
	"pods": [gateway_pod],
	"sessions": {
		"gateway": {"object": "ConfigMap/venue-gateway", "field": "data[gateway.json]", "path": "/etc/venue-gateway/gateway/gateway.json", "config": gateway_config},
		"quickfix": [quickfix_file(default_section, [oe_session], ["oe"])],
		"targets": good_targets,
		"stores": good_stores,
	},
})

# The model with JSON patches applied (RFC 6902 paths into the model).
patched(patches) := json.patch(good, patches)

# The model with other QuickFIX sections (DEFAULT and the oe session).
with_quickfix(defaults, own) := patched([{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(defaults, [own], ["oe"])]}])

results_of(m) := results if {
	results := session.deny with input as m
}

findings(m, rule) := fixtures.results_for(results_of(m), rule)

fields(m, rule) := fixtures.fields_for(results_of(m), rule)

objects(m, rule) := {r.details.object | some r in findings(m, rule)}

test_good_fix_model_has_no_findings if {
	count(results_of(good)) == 0
}

test_library_index_is_not_judged if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

# ---------------------------------------------------------------------------
# A binary order-entry venue on a cross-connect (cme-like): gateway.json only,
# heartbeat in milliseconds, plaintext TCP on a private path.
# ---------------------------------------------------------------------------

binary_runbook := {
	"venue": {"id": "bin"},
	"schedule": {"timeZone": "America/Chicago", "weekly": {"open": {"day": "sunday", "time": "10:30"}, "close": {"day": "friday", "time": "17:00"}}},
	"failover": {"reconnect": {"steps": [{"attempts": 3, "intervalSeconds": 5}], "then": "repeat"}, "standby": "hot"},
	"services": [{
		"name": "ilink",
		"protocol": {"name": "iLink 3", "sessionLayer": "fixp"},
		"heartbeat": {"default": 30000, "max": 65535, "unit": "ms"},
		"tls": {"required": false},
		"environments": {"prod": {
			"session": {"sessionId": "PRD", "firmId": "VCP", "senderCompID": "PRDVCPN"},
			"endpoints": {
				"primary": {"host": "10.60.20.11", "port": 20010, "transport": "tcp"},
				"backup": {"host": "10.60.20.12", "port": 20010, "transport": "tcp"},
			},
		}},
	}],
	"environments": {"prod": {"networks": [{"path": "cross-connect"}]}},
}

binary := fixtures.model("bin", "prod", {
	"runbook": binary_runbook,
	"pods": [gateway_pod],
	"sessions": {
		"gateway": {"object": "ConfigMap/venue-gateway", "field": "data[gateway.json]", "path": "/etc/venue-gateway/gateway/gateway.json", "config": {
			"venue": "bin",
			"environment": "prod",
			"network": {"paths": ["cross-connect"]},
			"failover": {"reconnect": {"steps": [{"attempts": 3, "intervalSeconds": 5}], "then": "repeat"}, "standby": "hot"},
			"schedule": {"timeZone": "America/Chicago", "weekly": {"open": {"day": "sunday", "time": "10:30"}, "close": {"day": "friday", "time": "17:00"}}},
			"services": [{
				"name": "ilink",
				"heartbeat": {"default": 30000, "interval": 30000, "max": 65535, "unit": "ms", "mechanism": "keepalive"},
				"session": {"firmId": "VCP", "senderCompID": "PRDVCPN", "sessionId": "PRD"},
				"endpoints": [
					{"role": "primary", "host": "10.60.20.11", "port": 20010, "transport": "tcp"},
					{"role": "backup", "host": "10.60.20.12", "port": 20010, "transport": "tcp"},
				],
			}],
		}},
		"targets": [
			gateway_target("ilink", 0, 0, "10.60.20.11", 20010, "plaintext"),
			gateway_target("ilink", 0, 1, "10.60.20.12", 20010, "plaintext"),
		],
		"stores": [state_dir_store],
	},
})

test_good_binary_model_has_no_findings if {
	count(results_of(binary)) == 0
}

# ---------------------------------------------------------------------------
# session-targets
# ---------------------------------------------------------------------------

test_session_targets_accepts_stunnel_sidecar_and_gateway_json_targets if {
	count(findings(good, "session-targets")) == 0
}

test_session_targets_accepts_binary_venue_with_gateway_json_only if {
	count(findings(binary, "session-targets")) == 0
}

test_session_targets_accepts_host_in_other_case_with_trailing_dot if {
	m := patched([{"op": "replace", "path": "/sessions/targets/0/host", "value": "FIX.Venue.net."}])
	count(findings(m, "session-targets")) == 0
}

test_session_targets_rejects_wrong_port_in_gateway_json if {
	m := json.patch(binary, [{"op": "replace", "path": "/sessions/targets/1/port", "value": 20011}])
	fields(m, "session-targets") == {"data[gateway.json].services[0].endpoints[1].port"}
	objects(m, "session-targets") == {"ConfigMap/venue-gateway"}
}

test_session_targets_rejects_wrong_port_named_at_endpoint_without_port_field if {
	# Without hostField/portField the finding names the target's own field.
	m := json.patch(binary, [
		{"op": "remove", "path": "/sessions/targets/1/hostField"},
		{"op": "remove", "path": "/sessions/targets/1/portField"},
		{"op": "replace", "path": "/sessions/targets/1/field", "value": "data[gateway.json].services[0].endpoints[1]"},
		{"op": "replace", "path": "/sessions/targets/1/port", "value": 20011},
	])
	fields(m, "session-targets") == {"data[gateway.json].services[0].endpoints[1]"}
}

test_session_targets_rejects_port_given_as_wrong_text if {
	m := json.patch(binary, [{"op": "replace", "path": "/sessions/targets/0/port", "value": "20001"}])
	fields(m, "session-targets") == {"data[gateway.json].services[0].endpoints[0].port"}
}

test_session_targets_rejects_wrong_port_in_quickfix_direct_connection if {
	# QuickFIX connecting straight to the venue: the port is SocketConnectPort.
	direct := target(
		"oe", 0, "fix.venue.net", "6122", "quickfix", "native", "ConfigMap/fix-session",
		"data[session.cfg].SESSION[1].SocketConnectHost", "data[session.cfg].SESSION[1].SocketConnectPort",
	)
	m := patched([{"op": "replace", "path": "/sessions/targets/0", "value": direct}])
	fields(m, "session-targets") == {"data[session.cfg].SESSION[1].SocketConnectPort"}
	objects(m, "session-targets") == {"ConfigMap/fix-session"}
}

test_session_targets_rejects_wrong_host_behind_stunnel if {
	m := patched([{"op": "replace", "path": "/sessions/targets/1/host", "value": "fix-c.venue.net"}])
	rs := findings(m, "session-targets")
	fields(m, "session-targets") == {"data[stunnel.conf][oe-backup].connect"}
	objects(m, "session-targets") == {"ConfigMap/stunnel"}
	some r in rs
	contains(r.msg, "fix-c.venue.net")
}

test_session_targets_rejects_backup_listed_first if {
	m := patched([
		{"op": "replace", "path": "/sessions/targets/2/host", "value": "fix-b.venue.net"},
		{"op": "replace", "path": "/sessions/targets/3/host", "value": "fix.venue.net"},
	])
	fields(m, "session-targets") == {
		"data[gateway.json].services[0].endpoints[0].host",
		"data[gateway.json].services[0].endpoints[1].host",
	}
	some r in findings(m, "session-targets")
	r.details.field == "data[gateway.json].services[0].endpoints[0].host"
	contains(r.msg, "the run book's backup endpoint")
	contains(r.msg, "needs the primary")
}

test_session_targets_rejects_backup_first_by_order_numbers if {
	# Same hosts, but the orders say the engine tries the backup first.
	m := patched([
		{"op": "replace", "path": "/sessions/targets/0/order", "value": 1},
		{"op": "replace", "path": "/sessions/targets/1/order", "value": 0},
	])
	fields(m, "session-targets") == {"data[stunnel.conf][oe-primary].connect", "data[stunnel.conf][oe-backup].connect"}
}

test_session_targets_rejects_missing_backup if {
	m := patched([{"op": "remove", "path": "/sessions/targets/1"}])
	rs := findings(m, "session-targets")
	count(rs) == 1
	some r in rs
	r.details.object == "ConfigMap/fix-session"
	r.details.field == "data[session.cfg].SESSION[1]"
	contains(r.msg, "backup endpoint fix-b.venue.net:6121")
}

test_session_targets_rejects_missing_backup_in_gateway_json if {
	m := patched([{"op": "remove", "path": "/sessions/targets/3"}])
	fields(m, "session-targets") == {"data[gateway.json].services[0].endpoints"}
}

# A DR endpoint where the venue restarts the sequence (failoverSequence.dr: reset) is declared by
# the venue before use: gateway.json lists it, QuickFIX must not rotate to it on its own.
dr_endpoint := {"host": "fix-dr.venue.net", "port": 6121, "transport": "tls"}

with_declared_dr(dr_policy, quickfix_targets_dr) := patched(array.concat(
	[
		{"op": "add", "path": "/runbook/services/0/environments/prod/endpoints/dr", "value": dr_endpoint},
		{"op": "add", "path": "/runbook/services/0/failoverSequence", "value": {"backup": "continue", "dr": dr_policy}},
		{"op": "add", "path": "/sessions/targets/-", "value": gateway_target("oe", 0, 2, "fix-dr.venue.net", 6121, "native")},
	],
	[{"op": "add", "path": "/sessions/targets/-", "value": stunnel_target(2, "fix-dr.venue.net", "oe-dr")} | quickfix_targets_dr],
))

test_session_targets_accepts_declared_dr_left_out_of_quickfix if {
	count(findings(with_declared_dr("reset", false), "session-targets")) == 0
}

test_session_targets_rejects_declared_dr_in_quickfix_rotation if {
	rs := findings(with_declared_dr("reset", true), "session-targets")
	count(rs) == 1
	some r in rs
	r.details.field == "data[stunnel.conf][oe-dr].connect"
	contains(r.msg, "not one of the run book's endpoints")
}

test_session_targets_rejects_continuing_dr_missing_from_quickfix if {
	rs := findings(with_declared_dr("continue", false), "session-targets")
	count(rs) == 1
	some r in rs
	contains(r.msg, "dr endpoint fix-dr.venue.net:6121")
}

test_session_targets_rejects_extra_target if {
	extra := gateway_target("md", 1, 1, "ws2.venue.net", 443, "native")
	m := patched([{"op": "add", "path": "/sessions/targets/-", "value": extra}])
	fields(m, "session-targets") == {"data[gateway.json].services[1].endpoints[1].host"}
}

test_session_targets_rejects_fix_service_without_quickfix_settings if {
	m := patched([
		{"op": "remove", "path": "/sessions/targets/1"},
		{"op": "remove", "path": "/sessions/targets/0"},
		{"op": "replace", "path": "/sessions/quickfix", "value": []},
	])
	fields(m, "session-targets") == {"data[gateway.json].services[0].quickfixSettings"}
}

test_session_targets_rejects_service_without_any_target if {
	m := patched([{"op": "remove", "path": "/sessions/targets/4"}])
	rs := findings(m, "session-targets")
	fields(m, "session-targets") == {"data[gateway.json].services[1].endpoints"}
	some r in rs
	contains(r.msg, "service md has no connection target")
}

test_session_targets_rejects_runbook_service_missing_from_model_entirely if {
	m := json.patch(binary, [
		{"op": "replace", "path": "/sessions/targets", "value": []},
		{"op": "replace", "path": "/sessions/gateway", "value": null},
	])
	fields(m, "session-targets") == {"services[0].environments.prod.endpoints"}
	objects(m, "session-targets") == {"VenueRunbook/bin"}
}

test_session_targets_rejects_target_of_service_without_endpoints if {
	extra := gateway_target("feed", 2, 0, "10.1.1.1", 9000, "native")
	m := patched([{"op": "add", "path": "/sessions/targets/-", "value": extra}])
	fields(m, "session-targets") == {"data[gateway.json].services[2].endpoints[0].host"}
}

test_session_targets_rejects_primary_equal_to_backup if {
	m := patched([
		{"op": "replace", "path": "/runbook/services/0/environments/prod/endpoints/backup/host", "value": "fix.venue.net"},
		{"op": "replace", "path": "/sessions/targets/1/host", "value": "fix.venue.net"},
		{"op": "replace", "path": "/sessions/targets/3/host", "value": "fix.venue.net"},
	])
	rs := findings(m, "session-targets")
	fields(m, "session-targets") == {"data[stunnel.conf][oe-backup].connect", "data[gateway.json].services[0].endpoints[1].host"}
	every r in rs {
		contains(r.msg, "both go to fix.venue.net:6121")
	}
}

# ---------------------------------------------------------------------------
# session-tls
# ---------------------------------------------------------------------------

test_session_tls_accepts_stunnel_sidecar_and_native_wss if {
	count(findings(good, "session-tls")) == 0
}

test_session_tls_accepts_plaintext_on_cross_connect if {
	count(findings(binary, "session-tls")) == 0
}

test_session_tls_rejects_socketusessl_n_direct_to_internet_host if {
	# QuickFIX pointed straight at the venue with SocketUseSSL=N, gateway.json unchanged.
	direct := object.union(
		target(
			"oe", 0, "fix.venue.net", "6121", "quickfix", "plaintext", "ConfigMap/fix-session",
			"data[session.cfg].SESSION[1].SocketConnectHost", "data[session.cfg].SESSION[1].SocketConnectPort",
		),
		{"tlsField": "data[session.cfg].SESSION[1].SocketUseSSL"},
	)
	m := patched([{"op": "replace", "path": "/sessions/targets/0", "value": direct}])
	rs := findings(m, "session-tls")
	fields(m, "session-tls") == {"data[session.cfg].SESSION[1].SocketUseSSL"}
	objects(m, "session-tls") == {"ConfigMap/fix-session"}
	some r in rs
	contains(r.msg, "network path \"internet\" is not private")
}

test_session_tls_rejects_plaintext_websocket if {
	m := patched([
		{"op": "replace", "path": "/sessions/targets/4/tls", "value": false},
		{"op": "replace", "path": "/sessions/targets/4/via", "value": "plaintext"},
	])
	fields(m, "session-tls") == {"data[gateway.json].services[1].endpoints[0].host"}
}

test_session_tls_rejects_target_without_tls_flag if {
	m := patched([{"op": "remove", "path": "/sessions/targets/4/tls"}])
	count(findings(m, "session-tls")) == 1
}

test_session_tls_rejects_plaintext_when_runbook_requires_tls_on_private_path if {
	# ICE-like: a cross-connect, but the run book's endpoint is tls.
	m := patched([
		{"op": "replace", "path": "/runbook/environments/prod/networks/0/path", "value": "cross-connect"},
		{"op": "replace", "path": "/sessions/gateway/config/network/paths", "value": ["cross-connect"]},
		{"op": "replace", "path": "/sessions/targets/0/tls", "value": false},
		{"op": "replace", "path": "/sessions/targets/0/via", "value": "plaintext"},
	])
	rs := findings(m, "session-tls")
	count(rs) == 1
	some r in rs
	contains(r.msg, "tls.required")
	contains(r.msg, "primary endpoint uses tls")
}

test_session_tls_rejects_plaintext_tcp_over_internet_for_binary_venue if {
	m := json.patch(binary, [
		{"op": "replace", "path": "/runbook/environments/prod/networks/0/path", "value": "internet"},
		{"op": "replace", "path": "/sessions/gateway/config/network/paths", "value": ["internet"]},
	])
	fields(m, "session-tls") == {
		"data[gateway.json].services[0].endpoints[0].host",
		"data[gateway.json].services[0].endpoints[1].host",
	}
}

# ---------------------------------------------------------------------------
# session-compids
# ---------------------------------------------------------------------------

test_session_compids_accepts_runbook_compids if {
	count(findings(good, "session-compids")) == 0
}

test_session_compids_accepts_wrong_default_overridden_by_session if {
	m := with_quickfix(object.union(default_section, {"SenderCompID": "OTHER"}), oe_session)
	count(findings(m, "session-compids")) == 0
}

test_session_compids_accepts_compids_only_in_default if {
	own := object.remove(oe_session, ["SenderCompID", "TargetCompID"])
	m := with_quickfix(object.union(default_section, {"SenderCompID": "ACME-PRD", "TargetCompID": "VENUE"}), own)
	count(findings(m, "session-compids")) == 0
}

test_session_compids_accepts_binary_session_without_target_compid if {
	count(findings(binary, "session-compids")) == 0
}

test_session_compids_rejects_wrong_sender_in_session if {
	m := with_quickfix(default_section, object.union(oe_session, {"SenderCompID": "ACME-CRT"}))
	fields(m, "session-compids") == {"data[session.cfg].SESSION[1].SenderCompID"}
	objects(m, "session-compids") == {"ConfigMap/fix-session"}
}

test_session_compids_rejects_wrong_sender_inherited_from_default if {
	own := object.remove(oe_session, ["SenderCompID"])
	m := with_quickfix(object.union(default_section, {"SenderCompID": "NOT-OURS"}), own)
	fields(m, "session-compids") == {"data[session.cfg].DEFAULT.SenderCompID"}
}

test_session_compids_rejects_missing_target_compid if {
	m := with_quickfix(default_section, object.remove(oe_session, ["TargetCompID"]))
	rs := findings(m, "session-compids")
	fields(m, "session-compids") == {"data[session.cfg].SESSION[1].TargetCompID"}
	some r in rs
	contains(r.msg, "TargetCompID is not set")
}

test_session_compids_rejects_empty_sender if {
	m := with_quickfix(default_section, object.union(oe_session, {"SenderCompID": " "}))
	fields(m, "session-compids") == {"data[session.cfg].SESSION[1].SenderCompID"}
}

test_session_compids_rejects_sender_in_other_case_spelling if {
	# QuickFIX C++ reads keys case-insensitively: this line is the session's SenderCompID.
	own := object.union(object.remove(oe_session, ["SenderCompID"]), {"sendercompid": "OTHER"})
	m := with_quickfix(default_section, own)
	fields(m, "session-compids") == {"data[session.cfg].SESSION[1].sendercompid"}
}

test_session_compids_rejects_gateway_json_sender if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/services/0/session/senderCompID", "value": "ACME-DEV"}])
	fields(m, "session-compids") == {"data[gateway.json].services[0].session.senderCompID"}
	objects(m, "session-compids") == {"ConfigMap/venue-gateway"}
}

test_session_compids_rejects_gateway_json_without_target if {
	m := patched([{"op": "remove", "path": "/sessions/gateway/config/services/0/session/targetCompID"}])
	fields(m, "session-compids") == {"data[gateway.json].services[0].session.targetCompID"}
}

test_session_compids_rejects_gateway_json_compid_the_runbook_lacks if {
	m := json.patch(binary, [{"op": "add", "path": "/sessions/gateway/config/services/0/session/targetCompID", "value": "CME"}])
	fields(m, "session-compids") == {"data[gateway.json].services[0].session.targetCompID"}
}

test_session_compids_rejects_session_of_no_runbook_service if {
	extra := object.union(oe_session, {"SenderCompID": "SHADOW", "TargetCompID": "VENUE"})
	m := patched([{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(default_section, [oe_session, extra], ["oe", null])]}])
	fields(m, "session-compids") == {"data[session.cfg].SESSION[2]"}
}

# Two FIX services; the model gives no `service`, so sessions map to the
# gateway.json services naming the file, in order.
two_fix_services := patched([
	{"op": "add", "path": "/runbook/services/-", "value": {
		"name": "dc",
		"protocol": {"name": "FIX", "sessionLayer": "fix", "beginString": "FIX.4.4"},
		"heartbeat": {"default": 30, "unit": "s"},
		"environments": {"prod": {"session": {"senderCompID": "ACME-DC", "targetCompID": "VENUE"}}},
	}},
	{"op": "add", "path": "/sessions/gateway/config/services/-", "value": {
		"name": "dc", "quickfixSettings": cfg_path,
		"heartbeat": {"default": 30, "interval": 30, "unit": "s"},
		"session": {"senderCompID": "ACME-DC", "targetCompID": "VENUE"},
		"endpoints": [],
	}},
	{"op": "add", "path": "/sessions/stores/-", "value": fix_store("dc")},
])

dc_session := {"BeginString": "FIX.4.4", "SenderCompID": "ACME-DC", "TargetCompID": "VENUE", "HeartBtInt": "30"}

test_session_compids_accepts_sessions_mapped_by_gateway_json_order if {
	m := json.patch(two_fix_services, [{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(default_section, [oe_session, dc_session], [null, null])]}])
	count(results_of(m)) == 0
}

test_session_compids_rejects_sessions_in_swapped_order if {
	m := json.patch(two_fix_services, [{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(default_section, [dc_session, oe_session], [null, null])]}])
	fields(m, "session-compids") == {"data[session.cfg].SESSION[1].SenderCompID", "data[session.cfg].SESSION[2].SenderCompID"}
}

# ---------------------------------------------------------------------------
# session-heartbeat
# ---------------------------------------------------------------------------

test_session_heartbeat_accepts_runbook_default if {
	count(findings(good, "session-heartbeat")) == 0
}

test_session_heartbeat_accepts_wrong_default_overridden_by_session if {
	m := with_quickfix(object.union(default_section, {"HeartBtInt": "90"}), oe_session)
	count(findings(m, "session-heartbeat")) == 0
}

test_session_heartbeat_accepts_milliseconds_converted_to_seconds if {
	m := patched([
		{"op": "replace", "path": "/runbook/services/0/heartbeat", "value": {"default": 30000, "max": 60000, "unit": "ms"}},
		{"op": "replace", "path": "/sessions/gateway/config/services/0/heartbeat", "value": {"default": 30000, "interval": 30000, "max": 60000, "unit": "ms"}},
	])
	count(findings(m, "session-heartbeat")) == 0
}

test_session_heartbeat_rejects_milliseconds_copied_as_seconds if {
	m := patched([
		{"op": "replace", "path": "/runbook/services/0/heartbeat", "value": {"default": 30000, "max": 60000, "unit": "ms"}},
		{"op": "replace", "path": "/sessions/gateway/config/services/0/heartbeat", "value": {"default": 30000, "interval": 30000, "max": 60000, "unit": "ms"}},
		{"op": "replace", "path": "/sessions/quickfix/0/sessions/0/own/HeartBtInt", "value": "30000"},
	])
	rs := findings(m, "session-heartbeat")
	fields(m, "session-heartbeat") == {"data[session.cfg].SESSION[1].HeartBtInt"}
	some r in rs
	contains(r.msg, "(30 s)")
}

test_session_heartbeat_rejects_session_value_overriding_good_default if {
	m := with_quickfix(object.union(default_section, {"HeartBtInt": "30"}), object.union(oe_session, {"HeartBtInt": "45"}))
	fields(m, "session-heartbeat") == {"data[session.cfg].SESSION[1].HeartBtInt"}
}

test_session_heartbeat_rejects_wrong_value_inherited_from_default if {
	m := with_quickfix(object.union(default_section, {"HeartBtInt": "45"}), object.remove(oe_session, ["HeartBtInt"]))
	fields(m, "session-heartbeat") == {"data[session.cfg].DEFAULT.HeartBtInt"}
}

test_session_heartbeat_rejects_missing_heartbtint if {
	m := with_quickfix(default_section, object.remove(oe_session, ["HeartBtInt"]))
	rs := findings(m, "session-heartbeat")
	fields(m, "session-heartbeat") == {"data[session.cfg].SESSION[1].HeartBtInt"}
	some r in rs
	contains(r.msg, "not a whole number")
}

test_session_heartbeat_rejects_value_outside_bounds if {
	# The run book's own default below its minimum: the session follows it, the venue refuses it.
	m := patched([
		{"op": "replace", "path": "/runbook/services/0/heartbeat/default", "value": 5},
		{"op": "replace", "path": "/sessions/gateway/config/services/0/heartbeat/interval", "value": 5},
		{"op": "replace", "path": "/sessions/quickfix/0/sessions/0/own/HeartBtInt", "value": "5"},
	])
	rs := findings(m, "session-heartbeat")
	count(rs) == 1
	some r in rs
	contains(r.msg, "below the run book's minimum 10 s")
}

test_session_heartbeat_rejects_gateway_json_interval if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/services/1/heartbeat/interval", "value": 30}])
	fields(m, "session-heartbeat") == {"data[gateway.json].services[1].heartbeat.interval"}
	objects(m, "session-heartbeat") == {"ConfigMap/venue-gateway"}
}

# An environment's own heartbeat wins over the service default.
test_session_heartbeat_rejects_default_where_environment_sets_its_own if {
	m := patched([{"op": "add", "path": "/runbook/services/0/environments/prod/heartbeat", "value": 45}])
	rs := findings(m, "session-heartbeat")
	fields(m, "session-heartbeat") == {"data[session.cfg].SESSION[1].HeartBtInt", "data[gateway.json].services[0].heartbeat.interval"}
	some r in rs
	contains(r.msg, "the run book's is 45 s in prod")
}

zero_heartbeat := [
	{"op": "add", "path": "/runbook/services/0/environments/prod/heartbeat", "value": 0},
	{"op": "replace", "path": "/sessions/gateway/config/services/0/heartbeat/interval", "value": 0},
	{"op": "replace", "path": "/sessions/quickfix/0/sessions/0/own/HeartBtInt", "value": "0"},
]

test_session_heartbeat_accepts_zero_where_the_venue_allows_it if {
	m := patched(array.concat(zero_heartbeat, [{"op": "add", "path": "/runbook/services/0/heartbeat/zeroAllowedIn", "value": ["prod"]}]))
	count(findings(m, "session-heartbeat")) == 0
}

test_session_heartbeat_rejects_zero_where_the_venue_does_not_allow_it if {
	rs := findings(patched(zero_heartbeat), "session-heartbeat")
	count(rs) == 1
	some r in rs
	contains(r.msg, "below the run book's minimum 10 s")
}

test_session_heartbeat_rejects_gateway_json_unit if {
	m := json.patch(binary, [{"op": "replace", "path": "/sessions/gateway/config/services/0/heartbeat/unit", "value": "s"}])
	fields(m, "session-heartbeat") == {"data[gateway.json].services[0].heartbeat.unit"}
}

# ---------------------------------------------------------------------------
# session-schedule
# ---------------------------------------------------------------------------

test_session_schedule_accepts_weekly_window if {
	count(findings(good, "session-schedule")) == 0
}

test_session_schedule_accepts_wrong_default_zone_overridden_by_session if {
	m := with_quickfix(object.union(default_section, {"TimeZone": "Europe/London"}), object.union(oe_session, {"TimeZone": "America/New_York"}))
	count(findings(m, "session-schedule")) == 0
}

test_session_schedule_accepts_abbreviated_days if {
	m := with_quickfix(object.union(default_section, {"StartDay": "sun", "EndDay": "FRI"}), oe_session)
	count(findings(m, "session-schedule")) == 0
}

daily := {"days": ["monday", "tuesday", "wednesday", "thursday", "friday"], "open": "02:00", "close": "20:00"}

daily_defaults := object.union(
	object.remove(default_section, ["StartDay", "EndDay"]),
	{"StartTime": "02:00:00", "EndTime": "20:00:00", "Weekdays": "Mon,Tue,Wed,Thu,Fri"},
)

daily_model(defaults) := patched([
	{"op": "replace", "path": "/runbook/schedule", "value": {"timeZone": "America/New_York", "daily": daily, "source": "HRS"}},
	{"op": "replace", "path": "/sessions/gateway/config/schedule", "value": {"timeZone": "America/New_York", "daily": daily}},
	{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(defaults, [oe_session], ["oe"])]},
])

continuous_defaults := object.union(
	object.remove(default_section, ["StartDay", "EndDay"]),
	{"NonStopSession": "Y", "StartTime": "00:00:00", "EndTime": "00:00:00"},
)

continuous_model(defaults) := patched([
	{"op": "replace", "path": "/runbook/schedule", "value": {"timeZone": "America/New_York", "continuous": true, "source": "HRS"}},
	{"op": "replace", "path": "/sessions/gateway/config/schedule", "value": {"timeZone": "America/New_York", "continuous": true}},
	{"op": "replace", "path": "/sessions/quickfix", "value": [quickfix_file(defaults, [oe_session], ["oe"])]},
])

test_session_schedule_accepts_daily_window_with_weekdays if {
	count(findings(daily_model(daily_defaults), "session-schedule")) == 0
}

test_session_schedule_accepts_continuous_nonstop_session if {
	count(findings(continuous_model(continuous_defaults), "session-schedule")) == 0
}

test_session_schedule_rejects_valid_but_wrong_timezone if {
	m := with_quickfix(object.union(default_section, {"TimeZone": "America/Chicago"}), oe_session)
	rs := findings(m, "session-schedule")
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.TimeZone"}
	some r in rs
	contains(r.msg, "\"America/New_York\"")
}

test_session_schedule_rejects_wrong_timezone_set_in_session if {
	m := with_quickfix(default_section, object.union(oe_session, {"TimeZone": "Europe/London"}))
	fields(m, "session-schedule") == {"data[session.cfg].SESSION[1].TimeZone"}
}

test_session_schedule_rejects_start_time_without_seconds_or_wrong if {
	m := with_quickfix(object.union(default_section, {"StartTime": "17:00:00"}), oe_session)
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.StartTime"}
}

test_session_schedule_rejects_wrong_end_day if {
	m := with_quickfix(object.union(default_section, {"EndDay": "Saturday"}), oe_session)
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.EndDay"}
}

test_session_schedule_rejects_nonstop_session_for_weekly_venue if {
	m := with_quickfix(object.union(default_section, {"NonStopSession": "Y"}), oe_session)
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.NonStopSession"}
}

test_session_schedule_rejects_continuous_venue_without_nonstop if {
	m := continuous_model(object.remove(continuous_defaults, ["NonStopSession"]))
	fields(m, "session-schedule") == {"data[session.cfg].SESSION[1].NonStopSession"}
}

test_session_schedule_rejects_continuous_venue_with_daily_close if {
	m := continuous_model(object.union(continuous_defaults, {"EndTime": "17:00:00"}))
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.EndTime"}
}

test_session_schedule_rejects_daily_weekdays_missing_a_day if {
	m := daily_model(object.union(daily_defaults, {"Weekdays": "Mon,Tue,Wed,Thu"}))
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.Weekdays"}
}

test_session_schedule_rejects_start_day_on_daily_venue if {
	m := daily_model(object.union(daily_defaults, {"StartDay": "Monday", "EndDay": "Friday"}))
	fields(m, "session-schedule") == {"data[session.cfg].DEFAULT.StartDay", "data[session.cfg].DEFAULT.EndDay"}
}

test_session_schedule_rejects_gateway_json_timezone if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/schedule/timeZone", "value": "America/Chicago"}])
	fields(m, "session-schedule") == {"data[gateway.json].schedule.timeZone"}
	objects(m, "session-schedule") == {"ConfigMap/venue-gateway"}
}

test_session_schedule_rejects_gateway_json_open_time if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/schedule/weekly/open/time", "value": "17:00"}])
	fields(m, "session-schedule") == {"data[gateway.json].schedule.weekly.open.time"}
}

# ---------------------------------------------------------------------------
# session-failover
# ---------------------------------------------------------------------------

test_session_failover_accepts_runbook_failover if {
	count(findings(good, "session-failover")) == 0
}

test_session_failover_accepts_wrong_default_interval_overridden_by_session if {
	m := with_quickfix(object.union(default_section, {"ReconnectInterval": "30"}), object.union(oe_session, {"ReconnectInterval": "10"}))
	count(findings(m, "session-failover")) == 0
}

test_session_failover_rejects_gateway_json_attempts if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/failover/reconnect/steps/0/attempts", "value": 10}])
	fields(m, "session-failover") == {"data[gateway.json].failover.reconnect.steps"}
	objects(m, "session-failover") == {"ConfigMap/venue-gateway"}
}

test_session_failover_rejects_gateway_json_without_call_venue if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/failover/reconnect/then", "value": "call-venue"}])
	fields(m, "session-failover") == {"data[gateway.json].failover.reconnect.then"}
}

test_session_failover_rejects_gateway_json_standby if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/failover/standby", "value": "none"}])
	fields(m, "session-failover") == {"data[gateway.json].failover.standby"}
}

test_session_failover_rejects_gateway_json_without_failover if {
	m := patched([{"op": "remove", "path": "/sessions/gateway/config/failover"}])
	fields(m, "session-failover") == {
		"data[gateway.json].failover.reconnect.steps",
		"data[gateway.json].failover.reconnect.then",
		"data[gateway.json].failover.standby",
	}
}

test_session_failover_rejects_quickfix_reconnect_interval if {
	m := with_quickfix(object.union(default_section, {"ReconnectInterval": "30"}), oe_session)
	fields(m, "session-failover") == {"data[session.cfg].DEFAULT.ReconnectInterval"}
	objects(m, "session-failover") == {"ConfigMap/fix-session"}
}

test_session_failover_rejects_missing_reconnect_interval if {
	m := with_quickfix(object.remove(default_section, ["ReconnectInterval"]), oe_session)
	fields(m, "session-failover") == {"data[session.cfg].SESSION[1].ReconnectInterval"}
}

# ---------------------------------------------------------------------------
# session-store-persistent
# ---------------------------------------------------------------------------

test_session_store_persistent_accepts_store_on_claim if {
	count(findings(good, "session-store-persistent")) == 0
}

test_session_store_persistent_rejects_emptydir_over_fix_store if {
	# An emptyDir mounted at /var/lib/venue-gateway/fix shadows the claim below it.
	m := patched([
		{"op": "replace", "path": "/sessions/stores/0/type", "value": "emptyDir"},
		{"op": "replace", "path": "/sessions/stores/0/volume", "value": "scratch"},
		{"op": "replace", "path": "/sessions/stores/0/mountField", "value": "spec.template.spec.containers[0].volumeMounts[7]"},
	])
	rs := findings(m, "session-store-persistent")
	fields(m, "session-store-persistent") == {"data[session.cfg].DEFAULT.FileStorePath"}
	objects(m, "session-store-persistent") == {"ConfigMap/fix-session"}
	some r in rs
	contains(r.msg, "type emptyDir")
	contains(r.msg, "volumeMounts[7]")
}

test_session_store_persistent_rejects_store_on_container_filesystem if {
	# FileStorePath moved outside every mount: the container's own filesystem.
	m := patched([
		{"op": "replace", "path": "/sessions/stores/0/type", "value": "container-filesystem"},
		{"op": "replace", "path": "/sessions/stores/0/volume", "value": null},
		{"op": "replace", "path": "/sessions/stores/0/mountField", "value": null},
	])
	fields(m, "session-store-persistent") == {"data[session.cfg].DEFAULT.FileStorePath"}
}

test_session_store_persistent_rejects_state_dir_on_emptydir if {
	m := json.patch(binary, [{"op": "replace", "path": "/sessions/stores/0/type", "value": "emptyDir"}])
	fields(m, "session-store-persistent") == {"spec.template.spec.containers[0].args"}
	objects(m, "session-store-persistent") == {"StatefulSet/venue-gateway"}
}

test_session_store_persistent_rejects_store_without_object_on_gateway_pod if {
	m := patched([
		{"op": "replace", "path": "/sessions/stores/1/object", "value": null},
		{"op": "replace", "path": "/sessions/stores/1/type", "value": "hostPath"},
	])
	objects(m, "session-store-persistent") == {"StatefulSet/venue-gateway"}
}

test_session_store_persistent_rejects_fix_session_without_store if {
	m := patched([{"op": "remove", "path": "/sessions/stores/0"}])
	fields(m, "session-store-persistent") == {"data[session.cfg].DEFAULT.FileStorePath"}
	objects(m, "session-store-persistent") == {"ConfigMap/fix-session"}
}

# ---------------------------------------------------------------------------
# session-path-matches
# ---------------------------------------------------------------------------

test_session_path_matches_accepts_runbook_path if {
	count(findings(good, "session-path-matches")) == 0
}

test_session_path_matches_rejects_other_path if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/network/paths", "value": ["cross-connect"]}])
	fields(m, "session-path-matches") == {"data[gateway.json].network.paths"}
	objects(m, "session-path-matches") == {"ConfigMap/venue-gateway"}
}

test_session_path_matches_rejects_missing_path if {
	m := patched([{"op": "remove", "path": "/sessions/gateway/config/network"}])
	fields(m, "session-path-matches") == {"data[gateway.json].network.paths"}
}

test_session_path_matches_rejects_backup_path_first if {
	m := patched([
		{"op": "replace", "path": "/runbook/environments/prod/networks", "value": [{"path": "internet"}, {"path": "ipsec-vpn"}]},
		{"op": "replace", "path": "/sessions/gateway/config/network/paths", "value": ["ipsec-vpn", "internet"]},
	])
	fields(m, "session-path-matches") == {"data[gateway.json].network.paths"}
}

# ---------------------------------------------------------------------------
# session-gateway-config
# ---------------------------------------------------------------------------

test_session_gateway_config_accepts_gateway_json_of_overlay if {
	count(findings(good, "session-gateway-config")) == 0
}

test_session_gateway_config_rejects_gateway_without_gateway_json if {
	m := patched([{"op": "replace", "path": "/sessions/gateway", "value": null}])
	fields(m, "session-gateway-config") == {"spec.template.spec.containers"}
	objects(m, "session-gateway-config") == {"StatefulSet/venue-gateway"}
}

test_session_gateway_config_rejects_other_venue if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/venue", "value": "other"}])
	fields(m, "session-gateway-config") == {"data[gateway.json].venue"}
}

test_session_gateway_config_rejects_other_environment if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config/environment", "value": "cert"}])
	fields(m, "session-gateway-config") == {"data[gateway.json].environment"}
}

test_session_gateway_config_rejects_unparsable_gateway_json if {
	m := patched([{"op": "replace", "path": "/sessions/gateway/config", "value": null}])
	fields(m, "session-gateway-config") == {"data[gateway.json]"}
}

# ---------------------------------------------------------------------------
# session-tls-verified
# ---------------------------------------------------------------------------

test_session_tls_verified_accepts_verified_sidecar_and_native_tls if {
	count(findings(good, "session-tls-verified")) == 0
}

test_session_tls_verified_rejects_stunnel_without_verify_chain if {
	m := patched([{"op": "replace", "path": "/sessions/targets/0/verified", "value": false}])
	fields(m, "session-tls-verified") == {"data[stunnel.conf][oe-primary]"}
	objects(m, "session-tls-verified") == {"ConfigMap/stunnel"}
}

test_session_tls_verified_rejects_check_host_of_another_name if {
	m := patched([{"op": "replace", "path": "/sessions/targets/1/checkHost", "value": "fix.venue.net"}])
	fields(m, "session-tls-verified") == {"data[stunnel.conf][oe-backup]"}
}

# ---------------------------------------------------------------------------
# session-one-logon
# ---------------------------------------------------------------------------

two_pods := object.union(gateway_pod, {"replicas": {"declared": null, "max": 2, "scaledBy": [{"object": "CronJob/session-open", "replicas": 2}]}})

test_session_one_logon_accepts_two_pods_with_hot_standby if {
	m := patched([{"op": "replace", "path": "/pods/0", "value": two_pods}])
	count(findings(m, "session-one-logon")) == 0
}

test_session_one_logon_accepts_one_pod_without_standby if {
	one := object.union(gateway_pod, {"replicas": {"declared": 1, "max": 1, "scaledBy": []}})
	m := patched([
		{"op": "replace", "path": "/pods/0", "value": one},
		{"op": "replace", "path": "/runbook/failover/standby", "value": "none"},
	])
	count(findings(m, "session-one-logon")) == 0
}

test_session_one_logon_rejects_second_replica_without_standby if {
	two := object.union(gateway_pod, {"replicas": {"declared": 2, "max": 2, "scaledBy": []}})
	m := patched([
		{"op": "replace", "path": "/pods/0", "value": two},
		{"op": "replace", "path": "/runbook/failover/standby", "value": "none"},
	])
	fields(m, "session-one-logon") == {"spec.replicas"}
	objects(m, "session-one-logon") == {"StatefulSet/venue-gateway"}
}

test_session_one_logon_rejects_scheduler_scaling_to_two_without_standby if {
	m := patched([
		{"op": "replace", "path": "/pods/0", "value": two_pods},
		{"op": "replace", "path": "/runbook/failover/standby", "value": "none"},
	])
	fields(m, "session-one-logon") == {"spec.replicas"}
	some r in findings(m, "session-one-logon")
	contains(r.msg, "CronJob/session-open scales to 2")
}
