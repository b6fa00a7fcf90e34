# Sessions: what the gateway's engines will really connect to and log on with
# (model `sessions`: QuickFIX settings merged with DEFAULT, gateway.json, the
# stunnel-resolved targets and where the FIX store lives after shadowing)
# equals the run book's endpoints, failover order, TLS, CompIDs, heartbeat,
# schedule, failover policy and network path for this environment.
package vcpl.session

import data.vcpl.lib

# Services whose session layer the FIX engine drives (registry venues/protocols.yaml, engine
# quickfix), as the gate computed them; they must have a QuickFIX settings file.
quickfix_services := {name | some name in object.get(input, ["expected", "quickfixServices"], [])}

tls_transports := {"tls", "wss"}

# Paths that never cross the public internet; everything else needs TLS.
private_paths := {"cross-connect", "extranet", "ipsec-vpn", "in-cluster"}

# ---------------------------------------------------------------------------
# Model and run-book accessors
# ---------------------------------------------------------------------------

sessions := object.get(input, "sessions", {})

gateway := object.get(sessions, "gateway", null)

gateway_services := object.get(sessions, ["gateway", "config", "services"], [])

targets := object.get(sessions, "targets", [])

quickfix_files := object.get(sessions, "quickfix", [])

stores := object.get(sessions, "stores", [])

# The gateway pod's id and template field, for findings about the pod itself.
gateway_pod_id := min({pod.id | some pod in lib.gateway_pods}) if {
	count(lib.gateway_pods) > 0
} else := "StatefulSet/venue-gateway"

gateway_pod_containers := min({sprintf("%s.spec.containers", [pod.template]) | some pod in lib.gateway_pods; pod.id == gateway_pod_id}) if {
	count(lib.gateway_pods) > 0
} else := "spec.template.spec.containers"

# Run-book services as [index, service]; names are unique (run-book schema).
runbook_services := {[i, s] | some i, s in object.get(lib.runbook, "services", [])}

# A run-book service's block for this environment.
env_block(service) := object.get(service, ["environments", lib.environment], {})

env_session(service) := object.get(env_block(service), "session", {})

is_fix_service(service) if service.name in quickfix_services

# Run-book services that have session endpoints (primary/backup/dr) here.
services_with_endpoints := {[i, s] |
	some [i, s] in runbook_services
	count(lib.ordered_endpoints(s)) > 0
}

names_with_endpoints := {s.name | some [_, s] in services_with_endpoints}

# Index of a service in gateway.json (the first, if a careless copy repeats it).
gateway_index(name) := min({i | some i, g in gateway_services; g.name == name})

gateway_field := object.get(sessions, ["gateway", "field"], "data[gateway.json]")

gateway_object := object.get(sessions, ["gateway", "object"], "ConfigMap/venue-gateway")

# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

text(v) := trim_space(v) if {
	is_string(v)
} else := "" if {
	v == null
} else := sprintf("%v", [v])

host_key(h) := trim_right(lower(text(h)), ".")

port_value(p) := to_number(text(p)) if {
	regex.match(`^[0-9]+$`, text(p))
} else := text(p)

address(x) := sprintf("%s:%v", [host_key(object.get(x, "host", "")), port_value(object.get(x, "port", ""))])

is_whole_number(v) if regex.match(`^[0-9]+$`, text(v))

# ---------------------------------------------------------------------------
# QuickFIX sessions as the engine reads them
# ---------------------------------------------------------------------------

# The gateway.json service a QuickFIX session belongs to: the model's `service`
# when it carries one, else the k-th gateway.json service naming that file
# (`vcpl generate` writes sessions in run-book service order, as gateway.json).
session_service(qf, k, s) := s.service if {
	is_string(s.service)
} else := name if {
	names := [g.name | some g in gateway_services; g.quickfixSettings == qf.path]
	name := names[k]
} else := null

fix_sessions contains entry if {
	some qf in quickfix_files
	some k, s in qf.sessions
	entry := {"qf": qf, "session": s, "position": k, "service": session_service(qf, k, s)}
}

# The key as written in a section: exact spelling first, else any spelling,
# since QuickFIX C++ reads setting names case-insensitively.
section_key(section, key) := key if {
	key in object.keys(section)
} else := min({k | some k, _ in section; lower(k) == lower(key)})

# [value, field] of a setting as the session really gets it: its own line wins
# over DEFAULT, so a DEFAULT value the session overrides changes nothing. A key
# set nowhere is reported on the session.
lookup(e, key) := [own[k], sprintf("%s.%s", [session_field(e), k])] if {
	own := object.get(e.session, "own", {})
	k := section_key(own, key)
} else := [defaults[k], sprintf("%s.DEFAULT.%s", [e.qf.field, k])] if {
	defaults := object.get(e.qf, "default", {})
	k := section_key(defaults, key)
} else := [merged[k], sprintf("%s.%s", [session_field(e), k])] if {
	merged := object.get(e.session, "settings", {})
	k := section_key(merged, key)
} else := [null, sprintf("%s.%s", [session_field(e), key])]

setting(e, key) := text(lookup(e, key)[0])

session_number(e) := object.get(e.session, "index", e.position + 1)

# `data[session.cfg].SESSION[n]`, counting [SESSION] sections from 1.
session_field(e) := e.session.field if {
	is_string(e.session.field)
} else := sprintf("%s.SESSION[%v]", [e.qf.field, session_number(e)])

session_label(e) := sprintf("QuickFIX session %v (service %s)", [session_number(e), text(e.service)])

# The run-book service of a QuickFIX session, when there is one.
session_runbook_service(e) := s if {
	some [_, s] in runbook_services
	s.name == e.service
}

# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------

# Targets of one service from one source, in failover order.
ordered_targets(name, source) := [p[2] |
	some p in sort([[object.get(t, "order", 0), object.get(t, "field", ""), t] |
		some t in targets
		t.service == name
		t.source == source
	])
]

target_sources(name) := {t.source | some t in targets; t.service == name}

# The run-book endpoints a source must connect to, in failover order. QuickFIX rotates through
# every SocketConnectHost<n> on its own and logs on with its stored MsgSeqNum, so a DR endpoint
# where the venue restarts or jumps the sequence (failoverSequence.dr reset or jump: used once the
# venue declares DR) is not one of the engine's targets; the gateway switches to it from
# gateway.json, which keeps every endpoint.
expected_targets(service, source) := [ep |
	some ep in lib.ordered_endpoints(service)
	not declared_dr(service, ep, source)
]

declared_dr(service, ep, source) if {
	source == "quickfix"
	ep.role == "dr"
	object.get(service, ["failoverSequence", "dr"], "continue") in {"reset", "jump"}
}

# Where a target's host and port are written; stunnel-resolved targets may name
# another object (the stunnel `connect`) than the session that uses them.
host_at(t) := [object.get(t, "hostObject", t.object), object.get(t, "hostField", t.field)]

port_at(t) := [object.get(t, "portObject", t.object), object.get(t, "portField", t.field)]

tls_at(t) := [object.get(t, "tlsObject", t.object), object.get(t, "tlsField", t.field)]

target_text(t) := sprintf("%s:%v (%s, %s)", [text(object.get(t, "host", "")), port_value(object.get(t, "port", "")), text(object.get(t, "source", "")), text(object.get(t, "via", "?"))])

# Where a missing endpoint of a service should be added: the gateway.json
# endpoint list, the service's QuickFIX session, or next to the last
# connection the engine does have.
missing_at(name, source, ts) := [gateway_object, sprintf("%s.services[%d].endpoints", [gateway_field, gi])] if {
	source == "gateway.json"
	gi := gateway_index(name)
} else := at if {
	source == "quickfix"
	at := min({[e.qf.object, session_field(e)] | some e in fix_sessions; e.service == name})
} else := [last.object, last.field] if {
	last := ts[count(ts) - 1]
}

# Where a service without any target should get one: its gateway.json entry
# (the QuickFIX file it names, for a FIX service), else the run book.
no_target_at(i, service) := [gateway_object, sprintf("%s.services[%d].quickfixSettings", [gateway_field, gi])] if {
	is_fix_service(service)
	gi := gateway_index(service.name)
} else := [gateway_object, sprintf("%s.services[%d].endpoints", [gateway_field, gi])] if {
	gi := gateway_index(service.name)
} else := [gateway_object, sprintf("%s.services", [gateway_field])] if {
	gateway != null
} else := [sprintf("VenueRunbook/%s", [lib.venue]), sprintf("services[%d].environments.%s.endpoints", [i, lib.environment])]

expected_text(eps) := concat(", ", [sprintf("%s %s:%v", [ep.role, ep.host, ep.port]) | some ep in eps])

# The run-book role whose endpoint a misplaced target connects to.
other_role(eps, k, t) := min({ep.role |
	some j, ep in eps
	j != k
	address(ep) == address(t)
})

targets_fix := "make the engine connect to exactly the run book's endpoints in order primary, backup, dr (regenerate with make generate)"

# rule: session-targets
deny contains result if {
	lib.is_overlay
	some result in target_findings
}

# A run-book service with endpoints that no engine connects to.
target_findings contains result if {
	some [i, service] in services_with_endpoints
	count(target_sources(service.name)) == 0
	at := no_target_at(i, service)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s has no connection target, but the run book gives %s in %s", [service.name, expected_text(lib.ordered_endpoints(service)), lib.environment]),
		targets_fix,
	)
}

# A FIX service reached only through gateway.json: its QuickFIX settings are missing.
target_findings contains result if {
	some [i, service] in services_with_endpoints
	is_fix_service(service)
	count(target_sources(service.name)) > 0
	not "quickfix" in target_sources(service.name)
	at := no_target_at(i, service)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("FIX service %s has no QuickFIX session connecting to the venue (the settings file is missing or names no SocketConnectHost)", [service.name]),
		"mount the fix-initiator QuickFIX settings and name them in gateway.json quickfixSettings (make generate)",
	)
}

# Wrong host or port at a position, or a position holding another role's endpoint.
target_findings contains result if {
	some [_, service] in services_with_endpoints
	some source in target_sources(service.name)
	eps := expected_targets(service, source)
	ts := ordered_targets(service.name, source)
	some k, t in ts
	k < count(eps)
	exp := eps[k]
	address(t) != address(exp)
	role := other_role(eps, k, t)
	at := host_at(t)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s connection %d goes to %s, the run book's %s endpoint, where the failover order needs the %s %s:%v", [service.name, k + 1, target_text(t), role, exp.role, exp.host, exp.port]),
		"list the endpoints in failover order primary, backup, dr",
	)
}

target_findings contains result if {
	some [_, service] in services_with_endpoints
	some source in target_sources(service.name)
	eps := expected_targets(service, source)
	ts := ordered_targets(service.name, source)
	some k, t in ts
	k < count(eps)
	exp := eps[k]
	not other_role(eps, k, t)
	host_key(object.get(t, "host", "")) != host_key(exp.host)
	at := host_at(t)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s %s connection goes to host %q (%s), the run book's %s host is %q", [service.name, exp.role, text(object.get(t, "host", "")), source, exp.role, exp.host]),
		targets_fix,
	)
}

target_findings contains result if {
	some [_, service] in services_with_endpoints
	some source in target_sources(service.name)
	eps := expected_targets(service, source)
	ts := ordered_targets(service.name, source)
	some k, t in ts
	k < count(eps)
	exp := eps[k]
	not other_role(eps, k, t)
	port_value(object.get(t, "port", "")) != port_value(exp.port)
	at := port_at(t)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s %s connection to %s uses port %v (%s), the run book's %s port is %v", [service.name, exp.role, exp.host, port_value(object.get(t, "port", "")), source, exp.role, exp.port]),
		targets_fix,
	)
}

# Fewer targets than run-book endpoints: failover stops short.
target_findings contains result if {
	some [_, service] in services_with_endpoints
	some source in target_sources(service.name)
	eps := expected_targets(service, source)
	ts := ordered_targets(service.name, source)
	some k, exp in eps
	k >= count(ts)
	at := missing_at(service.name, source, ts)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s (%s) has no connection to the run book's %s endpoint %s:%v, so failover never reaches it", [service.name, source, exp.role, exp.host, exp.port]),
		targets_fix,
	)
}

# More targets than run-book endpoints: the engine fails over somewhere undeclared.
target_findings contains result if {
	some [_, service] in services_with_endpoints
	some source in target_sources(service.name)
	eps := expected_targets(service, source)
	ts := ordered_targets(service.name, source)
	some k, t in ts
	k >= count(eps)
	at := host_at(t)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s connection %d goes to %s, which is not one of the run book's endpoints (%s)", [service.name, k + 1, target_text(t), expected_text(eps)]),
		targets_fix,
	)
}

# Targets of a service that has no endpoints here (or is not in the run book).
target_findings contains result if {
	some t in targets
	not t.service in names_with_endpoints
	at := host_at(t)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s connects to %s, but the run book gives it no endpoint in %s", [text(t.service), target_text(t), lib.environment]),
		"remove the connection or add the endpoint to the run book and regenerate",
	)
}

# Primary and backup (and dr) must differ, or failover reconnects to the same place.
target_findings contains result if {
	some source in {t.source | some t in targets}
	some name in {t.service | some t in targets}
	ts := ordered_targets(name, source)
	some j, first in ts
	some k, second in ts
	j < k
	address(first) == address(second)
	at := host_at(second)
	result := lib.finding(
		"session-targets", at[0], at[1],
		sprintf("service %s connections %d and %d (%s) both go to %s, so failover reconnects to the same address", [text(name), j + 1, k + 1, source, address(second)]),
		"point primary, backup and dr at distinct run-book endpoints",
	)
}

# ---------------------------------------------------------------------------
# session-tls
# ---------------------------------------------------------------------------

# Why a service must be reached over TLS (empty when plaintext is acceptable).
tls_reasons(name) := union({
	{sprintf("the network path %q is not private", [path]) | some path in lib.network_paths; not path in private_paths},
	{sprintf("the run book's %s endpoint uses %s", [ep.role, ep.transport]) |
		some [_, s] in runbook_services
		s.name == name
		some ep in lib.ordered_endpoints(s)
		ep.transport in tls_transports
	},
	{"the run book requires TLS for it (tls.required)" |
		some [_, s] in runbook_services
		s.name == name
		s.tls.required == true
	},
})

# rule: session-tls
deny contains result if {
	lib.is_overlay
	some t in targets
	reasons := tls_reasons(t.service)
	count(reasons) > 0
	not t.tls == true
	at := tls_at(t)
	result := lib.finding(
		"session-tls", at[0], at[1],
		sprintf("service %s connects to %s without TLS, but %s", [text(t.service), target_text(t), concat(" and ", sort(reasons))]),
		"connect over TLS: SocketUseSSL=Y for native TLS, or through the stunnel sidecar (tls-sidecar component)",
	)
}

# TLS that does not check the venue's certificate (stunnel without verifyChain, or
# checking another name) lets anyone on the path impersonate the venue.
# rule: session-tls-verified
deny contains result if {
	lib.is_overlay
	some t in targets
	t.tls == true
	problem := unverified(t)
	at := tls_at(t)
	result := lib.finding(
		"session-tls-verified", at[0], at[1],
		sprintf("service %s connects to %s over TLS but %s", [text(t.service), target_text(t), problem]),
		"verify the venue: verifyChain = yes and checkHost = <the venue host> in the stunnel section (make generate)",
	)
}

unverified(t) := "does not verify the venue's certificate chain" if {
	not t.verified == true
} else := sprintf("checks the certificate for %q instead of %q", [object.get(t, "checkHost", ""), t.host]) if {
	not object.get(t, "checkHost", "") == t.host
}

# ---------------------------------------------------------------------------
# session-one-logon
# ---------------------------------------------------------------------------

# A session (one set of CompIDs) may be logged on once. A second gateway pod is only safe when
# the run book declares a hot standby, which the venue's fault-tolerance model arbitrates.
# rule: session-one-logon
deny contains result if {
	lib.is_overlay
	some pod in lib.gateway_pods
	pod.replicas.max > 1
	not lib.runbook.failover.standby == "hot"
	result := lib.finding(
		"session-one-logon", pod.id, "spec.replicas",
		sprintf("up to %d gateway pods run at once (%s), but the run book's standby is %q: every pod logs on with the same session and the venue rejects or disconnects the duplicate", [pod.replicas.max, replicas_source(pod), object.get(lib.runbook.failover, "standby", "unset")]),
		"run one gateway pod, or declare failover.standby: hot in the run book and compose the failover component",
	)
}

replicas_source(pod) := sprintf("spec.replicas %v", [pod.replicas.declared]) if {
	count(pod.replicas.scaledBy) == 0
} else := concat(", ", [sprintf("%s scales to %d", [s.object, s.replicas]) | some s in pod.replicas.scaledBy])

# ---------------------------------------------------------------------------
# session-compids
# ---------------------------------------------------------------------------

compid_keys := {"SenderCompID": "senderCompID", "TargetCompID": "targetCompID"}

compid_problem(key, actual, expected) := sprintf("%s is not set, and the run book gives none", [key]) if {
	actual == ""
	expected == ""
} else := sprintf("%s is not set; the run book's is %q", [key, expected]) if {
	actual == ""
} else := sprintf("%s is %q, but the run book has none", [key, actual]) if {
	expected == ""
} else := sprintf("%s is %q; the run book's is %q", [key, actual, expected]) if {
	actual != expected
}

compids_fix := sprintf("use the run book's environments.%s.session CompIDs (make generate)", [lib.environment])

# rule: session-compids
deny contains result if {
	lib.is_overlay
	some result in compid_findings
}

compid_findings contains result if {
	some e in fix_sessions
	service := session_runbook_service(e)
	some key, rb_key in compid_keys
	expected := text(object.get(env_session(service), rb_key, ""))
	problem := compid_problem(key, setting(e, key), expected)
	result := lib.finding(
		"session-compids", e.qf.object, lookup(e, key)[1],
		sprintf("%s: %s", [session_label(e), problem]),
		compids_fix,
	)
}

# A session the run book knows nothing of logs on with CompIDs nobody checked.
compid_findings contains result if {
	some e in fix_sessions
	not session_runbook_service(e)
	result := lib.finding(
		"session-compids", e.qf.object, session_field(e),
		sprintf("%s belongs to no run-book service, so its SenderCompID %q/TargetCompID %q cannot be the run book's", [session_label(e), setting(e, "SenderCompID"), setting(e, "TargetCompID")]),
		"remove the session or add its service to the run book and regenerate",
	)
}

compid_findings contains result if {
	some gi, g in gateway_services
	some [_, service] in runbook_services
	service.name == g.name
	some rb_key in compid_keys
	expected := text(object.get(env_session(service), rb_key, ""))
	actual := text(object.get(g, ["session", rb_key], ""))
	actual != expected
	problem := compid_problem(rb_key, actual, expected)
	result := lib.finding(
		"session-compids", gateway_object, sprintf("%s.services[%d].session.%s", [gateway_field, gi, rb_key]),
		sprintf("gateway.json service %s: %s", [g.name, problem]),
		compids_fix,
	)
}

# ---------------------------------------------------------------------------
# session-heartbeat
# ---------------------------------------------------------------------------

# Run-book heartbeat values are in `unit`; FIX HeartBtInt (tag 108) is seconds.
unit_factor(hb) := 1000 if {
	hb.unit == "ms"
} else := 1

# The interval this environment uses: its own heartbeat, else the service's default.
interval(service) := object.get(env_block(service), "heartbeat", service.heartbeat.default)

interval_seconds(service) := interval(service) / unit_factor(service.heartbeat)

# 0 ("no heartbeat") is outside min..max but allowed where the venue accepts it.
zero_allowed(hb) if lib.environment in object.get(hb, "zeroAllowedIn", [])

bound_problem(seconds, hb) := sprintf("below the run book's minimum %v %s", [hb.min, object.get(hb, "unit", "s")]) if {
	is_number(hb.min)
	seconds * unit_factor(hb) < hb.min
	not seconds == 0
} else := sprintf("below the run book's minimum %v %s", [hb.min, object.get(hb, "unit", "s")]) if {
	is_number(hb.min)
	seconds == 0
	not zero_allowed(hb)
} else := sprintf("above the run book's maximum %v %s", [hb.max, object.get(hb, "unit", "s")]) if {
	is_number(hb.max)
	seconds * unit_factor(hb) > hb.max
}

heartbeat_text(service) := sprintf("%v ms (%v s)", [interval(service), interval_seconds(service)]) if {
	service.heartbeat.unit == "ms"
} else := sprintf("%v s", [interval(service)])

heartbeat_fix := "set HeartBtInt to the run book's heartbeat for this environment in seconds (make generate)"

# rule: session-heartbeat
deny contains result if {
	lib.is_overlay
	some result in heartbeat_findings
}

heartbeat_findings contains result if {
	some e in fix_sessions
	service := session_runbook_service(e)
	value := setting(e, "HeartBtInt")
	not is_whole_number(value)
	result := lib.finding(
		"session-heartbeat", e.qf.object, lookup(e, "HeartBtInt")[1],
		sprintf("%s: HeartBtInt %q is not a whole number of seconds; the run book's is %s", [session_label(e), value, heartbeat_text(service)]),
		heartbeat_fix,
	)
}

heartbeat_findings contains result if {
	some e in fix_sessions
	service := session_runbook_service(e)
	value := setting(e, "HeartBtInt")
	is_whole_number(value)
	to_number(value) != interval_seconds(service)
	result := lib.finding(
		"session-heartbeat", e.qf.object, lookup(e, "HeartBtInt")[1],
		sprintf("%s: HeartBtInt is %s s; the run book's is %s in %s", [session_label(e), value, heartbeat_text(service), lib.environment]),
		heartbeat_fix,
	)
}

heartbeat_findings contains result if {
	some e in fix_sessions
	hb := session_runbook_service(e).heartbeat
	value := setting(e, "HeartBtInt")
	is_whole_number(value)
	problem := bound_problem(to_number(value), hb)
	result := lib.finding(
		"session-heartbeat", e.qf.object, lookup(e, "HeartBtInt")[1],
		sprintf("%s: HeartBtInt %s s is %s; the venue disconnects outside its bounds", [session_label(e), value, problem]),
		"keep HeartBtInt within the run book's heartbeat.min..max",
	)
}

heartbeat_findings contains result if {
	some gi, g in gateway_services
	some [_, service] in runbook_services
	service.name == g.name
	expected_heartbeat := {"interval": interval(service), "unit": service.heartbeat.unit}
	some key, expected in expected_heartbeat
	actual := object.get(g, ["heartbeat", key], null)
	actual != expected
	result := lib.finding(
		"session-heartbeat", gateway_object, sprintf("%s.services[%d].heartbeat.%s", [gateway_field, gi, key]),
		sprintf("gateway.json service %s heartbeat %s is %v; the run book's is %v", [g.name, key, actual, expected]),
		"copy the run book's heartbeat into gateway.json (make generate)",
	)
}

# ---------------------------------------------------------------------------
# session-schedule
# ---------------------------------------------------------------------------

schedule := object.get(lib.runbook, "schedule", {})

day_names := {
	"monday": "Monday", "tuesday": "Tuesday", "wednesday": "Wednesday", "thursday": "Thursday",
	"friday": "Friday", "saturday": "Saturday", "sunday": "Sunday",
}

# QuickFIX accepts day names in any case and as three-letter abbreviations.
day_key(d) := substring(lower(text(d)), 0, 3)

clock(hhmm) := sprintf("%s:00", [hhmm])

# [setting, expected text, how compared] the run book's schedule implies.
schedule_expectations contains ["TimeZone", schedule.timeZone, "exact"]

schedule_expectations contains ["NonStopSession", "Y", "exact"] if schedule.continuous == true

schedule_expectations contains ["StartDay", day_names[schedule.weekly.open.day], "day"] if not schedule.continuous == true

schedule_expectations contains ["StartTime", clock(schedule.weekly.open.time), "exact"] if not schedule.continuous == true

schedule_expectations contains ["EndDay", day_names[schedule.weekly.close.day], "day"] if not schedule.continuous == true

schedule_expectations contains ["EndTime", clock(schedule.weekly.close.time), "exact"] if not schedule.continuous == true

schedule_expectations contains ["StartTime", clock(schedule.daily.open), "exact"] if {
	not schedule.continuous == true
	not schedule.weekly
}

schedule_expectations contains ["EndTime", clock(schedule.daily.close), "exact"] if {
	not schedule.continuous == true
	not schedule.weekly
}

schedule_expectations contains ["Weekdays", concat(",", [substring(day_names[d], 0, 3) | some d in schedule.daily.days]), "days"] if {
	not schedule.continuous == true
	not schedule.weekly
}

schedule_matches(actual, expected, "exact") if actual == expected

schedule_matches(actual, expected, "day") if day_key(actual) == day_key(expected)

schedule_matches(actual, expected, "days") if {
	{day_key(d) | some d in split(actual, ",")} == {day_key(d) | some d in split(expected, ",")}
}

schedule_fix := "set the session times from the run book's schedule (make generate)"

# rule: session-schedule
deny contains result if {
	lib.is_overlay
	some result in schedule_findings
}

schedule_findings contains result if {
	some e in fix_sessions
	some [key, expected, how] in schedule_expectations
	actual := setting(e, key)
	not schedule_matches(actual, expected, how)
	result := lib.finding(
		"session-schedule", e.qf.object, lookup(e, key)[1],
		sprintf("%s: %s is %q; the run book's schedule (%s) needs %q", [session_label(e), key, actual, schedule_kind, expected]),
		schedule_fix,
	)
}

# A NonStopSession ignores the window: only a continuous venue may have one.
schedule_findings contains result if {
	some e in fix_sessions
	not schedule.continuous == true
	upper(setting(e, "NonStopSession")) == "Y"
	result := lib.finding(
		"session-schedule", e.qf.object, lookup(e, "NonStopSession")[1],
		sprintf("%s: NonStopSession=Y keeps the session up outside the run book's %s window", [session_label(e), schedule_kind]),
		"remove NonStopSession; StartTime/EndTime carry the venue's window",
	)
}

# Engines without NonStopSession treat equal start and end as 24 hours.
schedule_findings contains result if {
	some e in fix_sessions
	schedule.continuous == true
	start := setting(e, "StartTime")
	end := setting(e, "EndTime")
	start != end
	result := lib.finding(
		"session-schedule", e.qf.object, lookup(e, "EndTime")[1],
		sprintf("%s: StartTime %q and EndTime %q differ, so engines that ignore NonStopSession close a continuous session daily", [session_label(e), start, end]),
		"set StartTime and EndTime to the same time (00:00:00) for a continuous venue",
	)
}

# StartDay/EndDay turn a daily window into one long weekly session.
schedule_findings contains result if {
	some e in fix_sessions
	not schedule.continuous == true
	not schedule.weekly
	schedule.daily
	some key in ["StartDay", "EndDay"]
	setting(e, key) != ""
	result := lib.finding(
		"session-schedule", e.qf.object, lookup(e, key)[1],
		sprintf("%s: %s is set, but the run book's schedule is daily (Weekdays), so the session would stay open across days", [session_label(e), key]),
		"remove StartDay/EndDay; use StartTime/EndTime with Weekdays",
	)
}

schedule_kind := "continuous" if {
	schedule.continuous == true
} else := "weekly" if {
	schedule.weekly
} else := "daily"

# The gateway's own window: time zone and open/close as the run book has them.
schedule_paths := [
	["timeZone"], ["continuous"],
	["weekly", "open", "day"], ["weekly", "open", "time"], ["weekly", "close", "day"], ["weekly", "close", "time"],
	["daily", "open"], ["daily", "close"], ["daily", "days"],
]

schedule_default(["continuous"]) := false

schedule_default(path) := null if path != ["continuous"]

schedule_findings contains result if {
	cfg := gateway.config
	is_object(cfg)
	some path in schedule_paths
	expected := object.get(schedule, path, schedule_default(path))
	actual := object.get(cfg, array.concat(["schedule"], path), schedule_default(path))
	actual != expected
	result := lib.finding(
		"session-schedule", gateway_object, sprintf("%s.schedule.%s", [gateway_field, concat(".", path)]),
		sprintf("gateway.json schedule.%s is %v; the run book's is %v", [concat(".", path), actual, expected]),
		schedule_fix,
	)
}

# ---------------------------------------------------------------------------
# session-failover
# ---------------------------------------------------------------------------

failover := object.get(lib.runbook, "failover", {})

failover_paths := [["reconnect", "steps"], ["reconnect", "then"], ["standby"]]

failover_fix := "copy the run book's failover (reconnect plan, standby) into the session settings (make generate)"

# rule: session-failover
deny contains result if {
	lib.is_overlay
	some result in failover_findings
}

failover_findings contains result if {
	cfg := gateway.config
	is_object(cfg)
	some path in failover_paths
	expected := object.get(failover, path, null)
	actual := object.get(cfg, array.concat(["failover"], path), null)
	actual != expected
	result := lib.finding(
		"session-failover", gateway_object, sprintf("%s.failover.%s", [gateway_field, concat(".", path)]),
		sprintf("gateway.json failover.%s is %v; the run book's is %v", [concat(".", path), actual, expected]),
		failover_fix,
	)
}

failover_findings contains result if {
	some e in fix_sessions
	expected := failover.reconnect.steps[0].intervalSeconds
	actual := setting(e, "ReconnectInterval")
	not reconnect_matches(actual, expected)
	result := lib.finding(
		"session-failover", e.qf.object, lookup(e, "ReconnectInterval")[1],
		sprintf("%s: ReconnectInterval is %q; the run book's first reconnect step waits %v s between attempts", [session_label(e), actual, expected]),
		failover_fix,
	)
}

reconnect_matches(actual, expected) if {
	is_whole_number(actual)
	to_number(actual) == expected
}

# ---------------------------------------------------------------------------
# session-store-persistent
# ---------------------------------------------------------------------------

store_text(st) := sprintf("%s of service %s at %s (volume %s, mounted at %s)", [
	text(object.get(st, "what", "")), text(object.get(st, "service", null)), text(object.get(st, "path", "")),
	text(object.get(st, "volume", null)), text(object.get(st, "mountField", null)),
])

# The object that sets the store's path: the QuickFIX file, or the gateway pod.
store_object(st) := st.object if {
	is_string(st.object)
} else := gateway_pod_id

# The model names a FIX store "FIX store (FileStorePath)"; short forms count too.
is_fix_store(st) if st.what in {"fix-store", "FileStorePath"}

is_fix_store(st) if contains(st.what, "FileStorePath")

# rule: session-store-persistent
deny contains result if {
	lib.is_overlay
	some result in store_findings
}

store_findings contains result if {
	some st in stores
	st.type != "persistentVolumeClaim"
	result := lib.finding(
		"session-store-persistent", store_object(st), st.field,
		sprintf("%s lives on a volume of type %s, not on the session-state claim: sequence numbers are lost when the pod restarts", [store_text(st), text(st.type)]),
		"keep the store directory on the StatefulSet's volumeClaimTemplate; remove volumes mounted over it",
	)
}

has_fix_store(service) if {
	some st in stores
	is_fix_store(st)
	st.service == service
}

# Without a service name, any FIX store entry is the one the session uses.
has_fix_store(null) if {
	some st in stores
	is_fix_store(st)
}

store_findings contains result if {
	some e in fix_sessions
	not has_fix_store(e.service)
	result := lib.finding(
		"session-store-persistent", e.qf.object, lookup(e, "FileStorePath")[1],
		sprintf("%s keeps its FIX store nowhere the model can find (FileStorePath %q): sequence numbers are not persisted", [session_label(e), setting(e, "FileStorePath")]),
		"set FileStorePath below the gateway's session-state volume mount",
	)
}

# ---------------------------------------------------------------------------
# session-path-matches
# ---------------------------------------------------------------------------

# rule: session-path-matches
deny contains result if {
	lib.is_overlay
	cfg := gateway.config
	is_object(cfg)
	actual := object.get(cfg, ["network", "paths"], null)
	expected := lib.network_paths
	actual != expected
	result := lib.finding(
		"session-path-matches", gateway_object, sprintf("%s.network.paths", [gateway_field]),
		sprintf("gateway.json network paths are %v; the run book's environments.%s.networks are %v, in that order", [actual, lib.environment, expected]),
		"regenerate the overlay from the run book (make generate) so the gateway uses the run book's network paths, primary first",
	)
}

# ---------------------------------------------------------------------------
# session-gateway-config
# ---------------------------------------------------------------------------

gateway_config_fix := "compose venue-binding so the gateway mounts gateway.json for this venue and environment (make generate)"

# rule: session-gateway-config
deny contains result if {
	lib.is_overlay
	some result in gateway_config_findings
}

gateway_config_findings contains result if {
	gateway == null
	result := lib.finding(
		"session-gateway-config", gateway_pod_id, gateway_pod_containers,
		"the gateway pod reads no gateway.json (no --config= argument resolving to a mounted file), so it knows no venue, services or schedule",
		gateway_config_fix,
	)
}

gateway_config_findings contains result if {
	gateway != null
	not is_object(gateway.config)
	result := lib.finding(
		"session-gateway-config", gateway_object, gateway_field,
		"gateway.json is not a JSON object the gateway can load",
		gateway_config_fix,
	)
}

gateway_config_findings contains result if {
	cfg := gateway.config
	is_object(cfg)
	some [key, expected] in [["venue", lib.venue], ["environment", lib.environment]]
	actual := object.get(cfg, key, null)
	actual != expected
	result := lib.finding(
		"session-gateway-config", gateway_object, sprintf("%s.%s", [gateway_field, key]),
		sprintf("gateway.json %s is %v; this overlay is %s", [key, actual, expected]),
		gateway_config_fix,
	)
}
