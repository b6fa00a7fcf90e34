package vcpl.credentials_test

import data.vcpl.credentials
import data.vcpl.fixtures

overlay(suspects) := fixtures.model("coinbase", "prod", {"credentials": suspects})

results_of(m) := results if {
	results := credentials.deny with input as m
}

findings(m) := fixtures.results_for(results_of(m), "credentials-no-literal")

located(m) := {[r.details.object, r.details.field] | some r in findings(m)}

test_credentials_no_literal_accepts_overlay_without_suspects if {
	count(findings(overlay([]))) == 0
}

test_credentials_no_literal_accepts_library_index if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

test_credentials_no_literal_rejects_bearer_token_in_innocent_env_var if {
	suspect := {
		"object": "StatefulSet/venue-gateway", "field": "spec.template.spec.containers[0].env[4].value",
		"kind": "token-format", "evidence": "UPSTREAM_MODE=eyJh****",
	}
	results := findings(overlay([suspect]))
	{[r.details.object, r.details.field] | some r in results} == {["StatefulSet/venue-gateway", "spec.template.spec.containers[0].env[4].value"]}
	some r in results
	contains(r.msg, "eyJh****")
	contains(r.msg, "well-known token format")
	contains(r.details.fix, "secret store")
}

test_credentials_no_literal_rejects_password_inside_configmap_value if {
	suspect := {"object": "ConfigMap/fix-session", "field": "data[session.cfg]", "kind": "assignment", "evidence": "fix.password=****"}
	located(overlay([suspect])) == {["ConfigMap/fix-session", "data[session.cfg]"]}
}

test_credentials_no_literal_rejects_each_suspect_where_it_sits if {
	suspects := [
		{"object": "ConfigMap/venue-gateway", "field": "data[gateway.json].services[0].password", "kind": "assignment", "evidence": "password: ****"},
		{"object": "Secret/venue-tls", "field": "stringData[tls.key]", "kind": "pem", "evidence": "-----BEGIN PRIVATE KEY----- ****"},
		{"object": "ConfigMap/feed-channels", "field": "data[extra]", "kind": "high-entropy", "evidence": "9fQ2****"},
	]
	located(overlay(suspects)) == {
		["ConfigMap/venue-gateway", "data[gateway.json].services[0].password"],
		["Secret/venue-tls", "stringData[tls.key]"],
		["ConfigMap/feed-channels", "data[extra]"],
	}
}
