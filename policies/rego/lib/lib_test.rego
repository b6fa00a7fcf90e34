package vcpl.lib_test

import data.vcpl.fixtures
import data.vcpl.lib

session_cfg := `# header comment
[DEFAULT]
ConnectionType=initiator
TimeZone=UTC
HeartBtInt=30
# KeyInComment=ignored

[SESSION]
SenderCompID = A
TargetCompID=V
HeartBtInt=20
HeartBtInt=25

[SESSION]
SenderCompID=B
TargetCompID=V
`

test_ini_sections_in_file_order if {
	[s.name | some s in lib.ini_sections(session_cfg)] == ["DEFAULT", "SESSION", "SESSION"]
}

test_ini_comments_are_not_settings if {
	not lib.fix_default(session_cfg).KeyInComment
	lib.fix_default(session_cfg).TimeZone == "UTC"
}

test_sessions_fall_back_to_default if {
	sessions := lib.fix_sessions(session_cfg)
	count(sessions) == 2
	sessions[1].index == 2
	sessions[1].settings.HeartBtInt == "30"
	lib.fix_field(sessions[1], "HeartBtInt") == "data[session.cfg].DEFAULT.HeartBtInt"
}

test_session_values_override_default_and_last_line_wins if {
	first := lib.fix_sessions(session_cfg)[0]
	first.settings.SenderCompID == "A"
	first.settings.HeartBtInt == "25"
	lib.fix_field(first, "HeartBtInt") == "data[session.cfg].SESSION[1].HeartBtInt"
}

test_unset_key_is_reported_on_the_session if {
	first := lib.fix_sessions(session_cfg)[0]
	lib.fix_field(first, "FileStorePath") == "data[session.cfg].SESSION[1].FileStorePath"
}

test_overlays_come_from_labels_not_paths if {
	objs := [
		fixtures.resource("ConfigMap", "a", "v1", "prod", {}),
		fixtures.resource("ConfigMap", "b", "v2", "prod", {}),
		{"kind": "ConfigMap", "metadata": {"name": "unlabelled"}},
	]
	lib.overlays == {["v1", "prod"], ["v2", "prod"]} with input as fixtures.entries(objs)
}

test_violation_message_is_one_line if {
	r := lib.finding("r", "v", "e", "Kind/n", "f", "bad\nvalue", "fix\nit")
	not contains(r.msg, "\n")
	r.msg == "[r] v/e Kind/n f: bad value"
	r.details.fix == "fix it"
}

test_format_path if {
	lib.format_path(["services", 0, "environments", "prod", "source"]) == "services[0].environments.prod.source"
}
