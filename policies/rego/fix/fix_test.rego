package vcpl.fix_test

import data.vcpl.fix
import data.vcpl.fixtures

runbooks := {"acme": {"services": [{
	"name": "oe",
	"heartbeat": {"default": 30, "min": 10, "max": 60, "unit": "s"},
	"environments": {
		"cert": {"session": {"senderCompID": "ACME-CRT", "targetCompID": "VENUE"}},
		"prod": {"session": {"senderCompID": "ACME-PRD", "targetCompID": "VENUE"}},
	},
}]}}

default_section := `[DEFAULT]
ConnectionType=initiator
FileStorePath=/var/lib/venue-gateway/fix/store
TimeZone=America/Chicago
`

session(sender, extra) := sprintf("[SESSION]\nBeginString=FIXT.1.1\nSenderCompID=%s\nTargetCompID=VENUE\nHeartBtInt=30\nSocketConnectHost=10.0.0.1\nSocketConnectPort=9000\n%s\n", [sender, extra])

fix_cm(venue, env, text) := fixtures.resource("ConfigMap", "fix-session", venue, env, {"data": {"session.cfg": text}})

# The gateway StatefulSet keeps /var/lib/venue-gateway on a claim template.
gateway(venue, env) := fixtures.resource("StatefulSet", "venue-gateway", venue, env, {"spec": {
	"template": {"spec": {"containers": [{
		"name": "gateway",
		"volumeMounts": [
			{"name": "session-state", "mountPath": "/var/lib/venue-gateway"},
			{"name": "tmp", "mountPath": "/tmp"},
			{"name": "fix-session", "mountPath": "/etc/venue-gateway/fix"},
		],
	}]}},
	"volumeClaimTemplates": [{"metadata": {"name": "session-state"}}],
}})

overlay(text) := [gateway("acme", "prod"), fix_cm("acme", "prod", text)]

good_cfg := concat("\n", [default_section, session("ACME-PRD", "SocketConnectHost1=10.0.0.2\nSocketConnectPort1=9000")])

results_of(objs) := results if {
	results := fix.deny with input as fixtures.entries(objs) with data.runbooks as runbooks
}

test_good_config_has_no_findings if {
	count(results_of(overlay(good_cfg))) == 0
}

# ---------------------------------------------------------------------------
# fix-heartbeat-bounds
# ---------------------------------------------------------------------------

test_fix_heartbeat_bounds_accepts_value_inside_bounds if {
	count(fixtures.results_for(results_of(overlay(good_cfg)), "fix-heartbeat-bounds")) == 0
}

test_fix_heartbeat_bounds_rejects_value_above_max if {
	cfg := replace(good_cfg, "HeartBtInt=30", "HeartBtInt=61")
	results := fixtures.results_for(results_of(overlay(cfg)), "fix-heartbeat-bounds")
	fixtures.fields_for(results, "fix-heartbeat-bounds") == {"data[session.cfg].SESSION[1].HeartBtInt"}
	some r in results
	contains(r.msg, "above the run book's maximum 60 s")
}

test_fix_heartbeat_bounds_rejects_value_below_min_from_default if {
	cfg := concat("\n", [default_section, "HeartBtInt=5", session("ACME-PRD", "")])
	no_own := replace(cfg, "TargetCompID=VENUE\nHeartBtInt=30\n", "TargetCompID=VENUE\n")
	results := results_of(overlay(no_own))
	fixtures.fields_for(results, "fix-heartbeat-bounds") == {"data[session.cfg].DEFAULT.HeartBtInt"}
}

test_fix_heartbeat_bounds_rejects_milliseconds_bound if {
	ms_runbooks := json.patch(runbooks, [{"op": "replace", "path": "/acme/services/0/heartbeat", "value": {"min": 1000, "max": 20000, "unit": "ms"}}])
	results := fix.deny with input as fixtures.entries(overlay(good_cfg)) with data.runbooks as ms_runbooks
	count(fixtures.results_for(results, "fix-heartbeat-bounds")) == 1
}

# ---------------------------------------------------------------------------
# fix-compids-present
# ---------------------------------------------------------------------------

test_fix_compids_present_accepts_both_ids if {
	count(fixtures.results_for(results_of(overlay(good_cfg)), "fix-compids-present")) == 0
}

test_fix_compids_present_rejects_empty_target if {
	cfg := replace(good_cfg, "TargetCompID=VENUE", "TargetCompID=")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-compids-present") == {"data[session.cfg].SESSION[1].TargetCompID"}
}

test_fix_compids_present_rejects_missing_sender if {
	cfg := replace(good_cfg, "SenderCompID=ACME-PRD\n", "")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-compids-present") == {"data[session.cfg].SESSION[1].SenderCompID"}
}

# ---------------------------------------------------------------------------
# fix-compids-unique
# ---------------------------------------------------------------------------

test_fix_compids_unique_accepts_same_pair_in_other_environment if {
	objs := array.concat(overlay(good_cfg), [gateway("acme", "cert"), fix_cm("acme", "cert", good_cfg)])
	count(fixtures.results_for(results_of(objs), "fix-compids-unique")) == 0
}

test_fix_compids_unique_rejects_pair_reused_by_other_venue if {
	objs := array.concat(overlay(good_cfg), [gateway("zeta", "prod"), fix_cm("zeta", "prod", good_cfg)])
	results := fixtures.results_for(results_of(objs), "fix-compids-unique")
	{r.details.venue | some r in results} == {"acme", "zeta"}
}

test_fix_compids_unique_rejects_pair_repeated_in_one_file if {
	cfg := concat("\n", [good_cfg, session("ACME-PRD", "")])
	fixtures.fields_for(results_of(overlay(cfg)), "fix-compids-unique") == {"data[session.cfg].SESSION[1]", "data[session.cfg].SESSION[2]"}
}

# ---------------------------------------------------------------------------
# fix-failover-distinct
# ---------------------------------------------------------------------------

test_fix_failover_distinct_accepts_distinct_backup if {
	count(fixtures.results_for(results_of(overlay(good_cfg)), "fix-failover-distinct")) == 0
}

test_fix_failover_distinct_accepts_same_host_other_port if {
	cfg := replace(good_cfg, "SocketConnectHost1=10.0.0.2\nSocketConnectPort1=9000", "SocketConnectHost1=10.0.0.1\nSocketConnectPort1=9001")
	count(fixtures.results_for(results_of(overlay(cfg)), "fix-failover-distinct")) == 0
}

test_fix_failover_distinct_rejects_backup_equal_to_primary if {
	cfg := replace(good_cfg, "SocketConnectHost1=10.0.0.2", "SocketConnectHost1=10.0.0.1")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-failover-distinct") == {"data[session.cfg].SESSION[1].SocketConnectHost1"}
}

test_fix_failover_distinct_rejects_second_backup_equal_to_first if {
	cfg := replace(good_cfg, "SocketConnectPort1=9000", "SocketConnectPort1=9000\nSocketConnectHost2=10.0.0.2\nSocketConnectPort2=9000")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-failover-distinct") == {"data[session.cfg].SESSION[1].SocketConnectHost2"}
}

# ---------------------------------------------------------------------------
# fix-store-persistent
# ---------------------------------------------------------------------------

test_fix_store_persistent_accepts_path_under_claim_mount if {
	count(fixtures.results_for(results_of(overlay(good_cfg)), "fix-store-persistent")) == 0
}

test_fix_store_persistent_rejects_empty_dir_mount if {
	cfg := replace(good_cfg, "FileStorePath=/var/lib/venue-gateway/fix/store", "FileStorePath=/tmp/fix/store")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-store-persistent") == {"data[session.cfg].DEFAULT.FileStorePath"}
}

test_fix_store_persistent_rejects_prefix_lookalike if {
	cfg := replace(good_cfg, "FileStorePath=/var/lib/venue-gateway/fix/store", "FileStorePath=/var/lib/venue-gateway-old/store")
	count(fixtures.results_for(results_of(overlay(cfg)), "fix-store-persistent")) == 1
}

test_fix_store_persistent_rejects_path_escaping_mount if {
	cfg := replace(good_cfg, "FileStorePath=/var/lib/venue-gateway/fix/store", "FileStorePath=/var/lib/venue-gateway/../../tmp")
	count(fixtures.results_for(results_of(overlay(cfg)), "fix-store-persistent")) == 1
}

test_fix_store_persistent_rejects_missing_statefulset if {
	results := results_of([fix_cm("acme", "prod", good_cfg)])
	count(fixtures.results_for(results, "fix-store-persistent")) == 1
}

# ---------------------------------------------------------------------------
# fix-timezone-iana
# ---------------------------------------------------------------------------

test_fix_timezone_iana_accepts_area_city if {
	count(fixtures.results_for(results_of(overlay(good_cfg)), "fix-timezone-iana")) == 0
}

test_fix_timezone_iana_accepts_utc if {
	cfg := replace(good_cfg, "TimeZone=America/Chicago", "TimeZone=UTC")
	count(fixtures.results_for(results_of(overlay(cfg)), "fix-timezone-iana")) == 0
}

test_fix_timezone_iana_rejects_abbreviation if {
	cfg := replace(good_cfg, "TimeZone=America/Chicago", "TimeZone=CST")
	fixtures.fields_for(results_of(overlay(cfg)), "fix-timezone-iana") == {"data[session.cfg].DEFAULT.TimeZone"}
}

test_fix_timezone_iana_rejects_unknown_zone_in_session if {
	cfg := concat("\n", [default_section, session("ACME-PRD", "TimeZone=Europe/Atlantis")])
	fixtures.fields_for(results_of(overlay(cfg)), "fix-timezone-iana") == {"data[session.cfg].SESSION[1].TimeZone"}
}
