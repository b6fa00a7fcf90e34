package vcpl.completeness_test

import data.vcpl.completeness
import data.vcpl.fixtures

gateway_cm(env, hosts) := fixtures.resource("ConfigMap", "venue-gateway", "acme", env, {"data": {"gateway.json": json.marshal({
	"network": {"path": "cross-connect"},
	"services": [{
		"name": "oe",
		"endpoints": [{"role": "primary", "host": h, "port": 9000, "transport": "tcp"} | some h in hosts],
	}],
})}})

fix_cm(env, text) := fixtures.resource("ConfigMap", "fix-session", "acme", env, {"data": {"session.cfg": text}})

egress_np(env, cidr) := fixtures.resource("NetworkPolicy", "venue-egress", "acme", env, {"spec": {
	"podSelector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}},
	"policyTypes": ["Egress"],
	"egress": [{"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": 9000}]}],
}})

session_cfg := "[DEFAULT]\nTimeZone=UTC\n[SESSION]\nSenderCompID=A\nTargetCompID=V\nSocketConnectHost=127.0.0.1\nSocketConnectPort=16000\n"

clean_overlay := [gateway_cm("prod", ["10.0.0.1", "oe.venue.net"]), fix_cm("prod", session_cfg), egress_np("prod", "10.0.0.1/32")]

# ---------------------------------------------------------------------------
# Run books for the acknowledgement rule
# ---------------------------------------------------------------------------

runbook(acknowledgements) := {
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
			"prod": {"endpoints": {"primary": {"host": "10.0.0.1", "port": 1, "transport": "tcp", "source": "DOC", "cidrsSource": "ONB"}}},
		},
	}],
	"environments": {
		"dev": {"network": {"path": "in-cluster", "source": "DOC"}},
		"cert": {"network": {"path": "internet", "source": "SBX"}},
		"prod": {"network": {"path": "cross-connect", "source": "DOC"}},
	},
}

prod_ack := {"source": "ONB", "environments": ["prod"], "by": "team", "date": "2026-01-01", "reason": "stand-in"}

results_of(objs, runbooks) := results if {
	results := completeness.deny with input as fixtures.entries(objs) with data.runbooks as runbooks
}

placeholder_results(objs) := fixtures.results_for(results_of(objs, {}), "completeness-no-placeholder")

# ---------------------------------------------------------------------------
# completeness-no-placeholder
# ---------------------------------------------------------------------------

test_completeness_no_placeholder_accepts_real_addresses if {
	count(placeholder_results(clean_overlay)) == 0
}

test_completeness_no_placeholder_accepts_lookalike_names if {
	objs := [gateway_cm("prod", ["notexample.com", "example.company.io", "mastodon.venue.net"])]
	count(placeholder_results(objs)) == 0
}

test_completeness_no_placeholder_rejects_example_domain if {
	results := placeholder_results([gateway_cm("prod", ["10.0.0.1", "fix.Example.COM"])])
	{r.details.field | some r in results} == {"data[gateway.json].services[0].endpoints[1].host"}
}

test_completeness_no_placeholder_rejects_reserved_tlds if {
	results := placeholder_results([gateway_cm("prod", ["venue.invalid", "venue.test", "host.example", "example.org"])])
	count(results) == 4
}

test_completeness_no_placeholder_rejects_documentation_address if {
	results := placeholder_results([gateway_cm("prod", ["198.51.100.7"])])
	count(results) == 1
}

test_completeness_no_placeholder_rejects_localhost_socket_host if {
	cfg := replace(session_cfg, "SocketConnectPort=16000", "SocketConnectPort=16000\nSocketConnectHost1=localhost\nSocketConnectPort1=16001")
	results := placeholder_results([fix_cm("prod", cfg)])
	{r.details.field | some r in results} == {"data[session.cfg].SESSION[1].SocketConnectHost1"}
}

test_completeness_no_placeholder_rejects_unspecified_socket_host_in_default if {
	cfg := replace(session_cfg, "TimeZone=UTC", "TimeZone=UTC\nSocketConnectHost=0.0.0.0")
	results := placeholder_results([fix_cm("prod", cfg)])
	{r.details.field | some r in results} == {"data[session.cfg].DEFAULT.SocketConnectHost"}
}

test_completeness_no_placeholder_rejects_documentation_cidr if {
	results := placeholder_results([egress_np("prod", "192.0.2.0/28")])
	{r.details.field | some r in results} == {"spec.egress[0].to[0].ipBlock.cidr"}
}

test_completeness_no_placeholder_rejects_todo_in_gateway_json if {
	results := placeholder_results([gateway_cm("prod", ["TODO-primary.venue.net"])])
	some r in results
	r.details.field == "data[gateway.json]"
	contains(r.msg, "placeholder word TODO")
}

test_completeness_no_placeholder_rejects_changeme_in_session_cfg if {
	cfg := replace(session_cfg, "SenderCompID=A", "SenderCompID=changeme")
	results := placeholder_results([fix_cm("prod", cfg)])
	some r in results
	r.details.field == "data[session.cfg]"
	contains(r.msg, "line 4")
}

# ---------------------------------------------------------------------------
# completeness-unverified-acknowledged
# ---------------------------------------------------------------------------

prod_overlay := [gateway_cm("prod", ["10.0.0.1"])]

test_completeness_unverified_acknowledged_accepts_acknowledged_source if {
	results := results_of(prod_overlay, {"acme": runbook([prod_ack])})
	count(fixtures.results_for(results, "completeness-unverified-acknowledged")) == 0
}

test_completeness_unverified_acknowledged_accepts_unverified_source_used_only_in_cert if {
	# SBX (U) backs only cert facts and is never acknowledged: prod is unaffected.
	rb := json.patch(runbook([]), [{"op": "replace", "path": "/services/0/environments/prod/endpoints/primary/cidrsSource", "value": "DOC"}])
	results := results_of(prod_overlay, {"acme": rb})
	count(fixtures.results_for(results, "completeness-unverified-acknowledged")) == 0
}

test_completeness_unverified_acknowledged_accepts_non_prod_overlay if {
	results := results_of([gateway_cm("cert", ["10.0.0.1"])], {"acme": runbook([])})
	count(fixtures.results_for(results, "completeness-unverified-acknowledged")) == 0
}

test_completeness_unverified_acknowledged_rejects_missing_acknowledgement if {
	results := fixtures.results_for(results_of(prod_overlay, {"acme": runbook([])}), "completeness-unverified-acknowledged")
	count(results) == 1
	some r in results
	r.details.field == "services[0].environments.prod.endpoints.primary.cidrsSource"
	contains(r.msg, "ONB")
}

test_completeness_unverified_acknowledged_rejects_cert_only_acknowledgement if {
	cert_ack := json.patch(prod_ack, [{"op": "replace", "path": "/environments", "value": ["cert"]}])
	results := results_of(prod_overlay, {"acme": runbook([cert_ack])})
	count(fixtures.results_for(results, "completeness-unverified-acknowledged")) == 1
}

test_completeness_unverified_acknowledged_rejects_service_level_fact if {
	# A service-level fact (no environments segment) applies to prod too.
	rb := json.patch(runbook([prod_ack]), [{"op": "replace", "path": "/services/0/heartbeat/boundsSource", "value": "SBX"}])
	results := fixtures.results_for(results_of(prod_overlay, {"acme": rb}), "completeness-unverified-acknowledged")
	{r.details.field | some r in results} == {"services[0].heartbeat.boundsSource"}
}
