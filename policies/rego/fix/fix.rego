# FIX sessions: the QuickFIX settings in ConfigMap fix-session agree with the run
# book (heartbeat bounds), identify each session uniquely, fail over to distinct
# addresses, keep their message store on a persistent volume and use a real
# time zone.
package vcpl.fix

import data.vcpl.lib

# Every session of every fix-session ConfigMap of the input, flattened with the
# overlay it belongs to.
sessions contains s if {
	some [venue, env] in lib.overlays
	some file in lib.fix_session_files(venue, env)
	some session in file.sessions
	s := {"venue": venue, "environment": env, "object": file.object, "session": session}
}

setting(session, key) := trim_space(object.get(session.settings, key, ""))

session_label(session) := sprintf("session %d (%s->%s)", [session.index, setting(session, "SenderCompID"), setting(session, "TargetCompID")])

# ---------------------------------------------------------------------------
# fix-heartbeat-bounds
# ---------------------------------------------------------------------------

# FIX HeartBtInt (tag 108) is in seconds; run-book bounds may be in ms.
unit_factor(heartbeat) := 1000 if {
	heartbeat.unit == "ms"
} else := 1

# Run-book services whose session in this environment has the session's SenderCompID.
matching_services(venue, env, sender) := {service |
	some service in data.runbooks[venue].services
	service.environments[env].session.senderCompID == sender
}

has_bounds(heartbeat) if is_number(heartbeat.min)

has_bounds(heartbeat) if is_number(heartbeat.max)

heartbeat_problem(raw, heartbeat) := "HeartBtInt is not set" if {
	raw == ""
} else := sprintf("HeartBtInt %q is not a whole number of seconds", [raw]) if {
	not regex.match(`^[0-9]+$`, raw)
} else := sprintf("HeartBtInt %s s is below the run book's minimum %v %s", [raw, heartbeat.min, heartbeat.unit]) if {
	to_number(raw) * unit_factor(heartbeat) < heartbeat.min
} else := sprintf("HeartBtInt %s s is above the run book's maximum %v %s", [raw, heartbeat.max, heartbeat.unit]) if {
	to_number(raw) * unit_factor(heartbeat) > heartbeat.max
}

# rule: fix-heartbeat-bounds
deny contains result if {
	some s in sessions
	some service in matching_services(s.venue, s.environment, setting(s.session, "SenderCompID"))
	heartbeat := service.heartbeat
	has_bounds(heartbeat)
	problem := heartbeat_problem(setting(s.session, "HeartBtInt"), heartbeat)
	result := lib.finding(
		"fix-heartbeat-bounds", s.venue, s.environment, s.object, lib.fix_field(s.session, "HeartBtInt"),
		sprintf("%s: %s (service %s)", [session_label(s.session), problem, service.name]),
		sprintf("set HeartBtInt within heartbeat.min..max of service %s in the run book (and regenerate)", [service.name]),
	)
}

# ---------------------------------------------------------------------------
# fix-compids-present
# ---------------------------------------------------------------------------

# rule: fix-compids-present
deny contains result if {
	some s in sessions
	some key in ["SenderCompID", "TargetCompID"]
	setting(s.session, key) == ""
	result := lib.finding(
		"fix-compids-present", s.venue, s.environment, s.object, lib.fix_field(s.session, key),
		sprintf("session %d has no %s", [s.session.index, key]),
		sprintf("set %s from the run book's session identity (environments.%s.session)", [key, s.environment]),
	)
}

# ---------------------------------------------------------------------------
# fix-compids-unique
# ---------------------------------------------------------------------------

comp_pair(session) := [setting(session, "SenderCompID"), setting(session, "TargetCompID")]

where(s) := sprintf("%s %s SESSION[%d]", [s.venue, s.object, s.session.index])

# Two sessions with one CompID pair log each other out at the venue: report each
# session whose pair another session of the same environment also uses.
# rule: fix-compids-unique
deny contains result if {
	some s in sessions
	pair := comp_pair(s.session)
	pair != ["", ""]
	others := {where(o) |
		some o in sessions
		o != s
		o.environment == s.environment
		comp_pair(o.session) == pair
	}
	count(others) > 0
	result := lib.finding(
		"fix-compids-unique", s.venue, s.environment, s.object, sprintf("data[session.cfg].SESSION[%d]", [s.session.index]),
		sprintf("SenderCompID/TargetCompID %s/%s is also used by %s in %s", [pair[0], pair[1], concat(", ", sort(others)), s.environment]),
		"give every session its own SenderCompID (run book environments.<env>.session)",
	)
}

# ---------------------------------------------------------------------------
# fix-failover-distinct
# ---------------------------------------------------------------------------

# Suffixes "", "1", "2", ... of SocketConnectHost<n>/SocketConnectPort<n>.
connect_suffixes(session) := {match[1] |
	some key, _ in session.settings
	some match in regex.find_all_string_submatch_n(`^SocketConnect(?:Host|Port)([0-9]*)$`, key, 1)
}

connect_target(session, suffix) := [
	lower(setting(session, concat("", ["SocketConnectHost", suffix]))),
	setting(session, concat("", ["SocketConnectPort", suffix])),
]

# rule: fix-failover-distinct
deny contains result if {
	some s in sessions
	suffixes := connect_suffixes(s.session)
	some first in suffixes
	some second in suffixes
	first < second
	target := connect_target(s.session, first)
	target == connect_target(s.session, second)
	result := lib.finding(
		"fix-failover-distinct", s.venue, s.environment, s.object,
		lib.fix_field(s.session, concat("", ["SocketConnectHost", second])),
		sprintf("%s: SocketConnectHost%s/Port%s repeats %s:%s of SocketConnectHost%s/Port%s, so failover reconnects to the same address", [session_label(s.session), second, second, target[0], target[1], first, first]),
		"point each failover pair at a distinct run-book endpoint (primary, backup, dr)",
	)
}

# ---------------------------------------------------------------------------
# fix-store-persistent
# ---------------------------------------------------------------------------

# `path` is `mount` or lies below it; paths with ".." cannot be proven to stay inside.
path_under(path, mount) if {
	startswith(path, "/")
	not ".." in split(path, "/")
	base := trim_right(mount, "/")
	path == base
}

path_under(path, mount) if {
	startswith(path, "/")
	not ".." in split(path, "/")
	base := trim_right(mount, "/")
	startswith(path, concat("", [base, "/"]))
}

# Mount paths of volumes backed by the StatefulSet's volumeClaimTemplates.
persistent_mounts(venue, env) := {mount.mountPath |
	some sts in lib.overlay_kind(venue, env, "StatefulSet")
	claims := {t.metadata.name | some t in sts.spec.volumeClaimTemplates}
	some container in sts.spec.template.spec.containers
	some mount in container.volumeMounts
	mount.name in claims
}

store_is_persistent(venue, env, path) if {
	some mount in persistent_mounts(venue, env)
	path_under(path, mount)
}

store_text(path) := "no FileStorePath is set, so the store" if {
	path == ""
} else := sprintf("FileStorePath %q", [path])

# rule: fix-store-persistent
deny contains result if {
	some s in sessions
	path := setting(s.session, "FileStorePath")
	not store_is_persistent(s.venue, s.environment, path)
	mounts := persistent_mounts(s.venue, s.environment)
	result := lib.finding(
		"fix-store-persistent", s.venue, s.environment, s.object, lib.fix_field(s.session, "FileStorePath"),
		sprintf("%s is not under a volumeClaimTemplate mount (persistent mounts: %v); sequence numbers would reset on restart", [store_text(path), sort(mounts)]),
		"set FileStorePath below the mountPath of the StatefulSet's session-state volumeClaimTemplate",
	)
}

# ---------------------------------------------------------------------------
# fix-timezone-iana
# ---------------------------------------------------------------------------

# time.clock fails (undefined outside strict mode) on a zone it cannot load.
valid_timezone(tz) if tz == "UTC"

valid_timezone(tz) if {
	contains(tz, "/")
	time.clock([0, tz])
}

# TimeZone lines as written, with their field: DEFAULT sections and each session's own.
timezone_settings contains entry if {
	some [venue, env] in lib.overlays
	some file in lib.fix_session_files(venue, env)
	tz := lib.fix_default(file.text).TimeZone
	entry := {"venue": venue, "environment": env, "object": file.object, "field": "data[session.cfg].DEFAULT.TimeZone", "value": tz}
}

timezone_settings contains entry if {
	some s in sessions
	tz := s.session.own.TimeZone
	entry := {
		"venue": s.venue, "environment": s.environment, "object": s.object,
		"field": sprintf("data[session.cfg].SESSION[%d].TimeZone", [s.session.index]), "value": tz,
	}
}

# rule: fix-timezone-iana
deny contains result if {
	some entry in timezone_settings
	not valid_timezone(entry.value)
	result := lib.finding(
		"fix-timezone-iana", entry.venue, entry.environment, entry.object, entry.field,
		sprintf("TimeZone %q is not UTC or a loadable IANA zone name (Area/City); session start/end times would be misread", [entry.value]),
		"use UTC or the venue's IANA zone from the run book schedule, e.g. America/Chicago",
	)
}
