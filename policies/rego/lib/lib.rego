# Shared helpers of the vcpl Rego policies.
#
# The gate runs conftest with --combine, so `input` is a list with one entry per
# rendered YAML document: {"path": <file>, "contents": <object>}. Policies never
# group by file path: an overlay is the pair (venue, environment) read from the
# labels every rendered object carries, so a file holding several overlays (or an
# overlay split over several files) is still judged correctly.
package vcpl.lib

venue_label := "vcpl.dev/venue"

environment_label := "vcpl.dev/environment"

# The gateway pods and most gateway-owned objects carry this app name.
gateway_app_label := "app.kubernetes.io/name"

gateway_app := "venue-gateway"

# Kinds whose pod template we inspect.
workload_kinds := {"StatefulSet", "Deployment", "DaemonSet"}

# ---------------------------------------------------------------------------
# Overlays and their objects
# ---------------------------------------------------------------------------

# Every input document that is a labelled Kubernetes object. Documents without
# both overlay labels cannot be attributed to an overlay and are left to the
# Kyverno label policy.
objects contains obj if {
	some entry in input
	obj := entry.contents
	is_object(obj)
	is_string(obj.kind)
	is_string(obj.metadata.labels[venue_label])
	is_string(obj.metadata.labels[environment_label])
}

venue_of(obj) := obj.metadata.labels[venue_label]

environment_of(obj) := obj.metadata.labels[environment_label]

# Set of [venue, environment] pairs present in the input.
overlays contains [venue_of(obj), environment_of(obj)] if {
	some obj in objects
}

# All objects of one overlay.
overlay_objects(venue, env) := {obj |
	some obj in objects
	venue_of(obj) == venue
	environment_of(obj) == env
}

# Objects of one kind in one overlay.
overlay_kind(venue, env, kind) := {obj |
	some obj in overlay_objects(venue, env)
	obj.kind == kind
}

# ConfigMaps of one overlay with a given name (a set: a broken render may hold two).
overlay_configmaps(venue, env, name) := {cm |
	some cm in overlay_kind(venue, env, "ConfigMap")
	cm.metadata.name == name
}

# StatefulSets, Deployments and DaemonSets of one overlay.
overlay_workloads(venue, env) := {obj |
	some obj in overlay_objects(venue, env)
	obj.kind in workload_kinds
}

# "Kind/name", the object id used in every result.
object_id(obj) := sprintf("%s/%s", [obj.kind, object.get(obj, ["metadata", "name"], "<unnamed>")])

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

# The one result shape every deny returns. The message is a single line that
# names the rule, overlay, object and field before saying what is wrong.
finding(rule, venue, env, obj_id, field, problem, fix) := {
	"msg": one_line(sprintf("[%s] %s/%s %s %s: %s", [rule, venue, env, obj_id, field, problem])),
	"details": {
		"rule": rule,
		"venue": venue,
		"environment": env,
		"object": obj_id,
		"field": field,
		"fix": one_line(fix),
	},
}

# Values quoted from the input may hold line breaks; results must stay on one line.
one_line(text) := regex.replace(text, `\s*[\r\n]+\s*`, " ")

# ---------------------------------------------------------------------------
# Generated configuration files
# ---------------------------------------------------------------------------

# Parsed gateway.json of the overlay's `venue-gateway` ConfigMap, as
# {"object": "ConfigMap/venue-gateway", "config": <parsed JSON>}. The JSON is
# validated first so a broken file is simply absent here (rules that need it
# report the absence).
gateway_configs(venue, env) := {{"object": object_id(cm), "config": cfg} |
	some cm in overlay_configmaps(venue, env, "venue-gateway")
	text := cm.data["gateway.json"]
	is_string(text)
	json.is_valid(text)
	cfg := json.unmarshal(text)
	is_object(cfg)
}

# ---------------------------------------------------------------------------
# QuickFIX settings (INI-like text)
# ---------------------------------------------------------------------------
#
# A QuickFIX settings file is `Key=Value` lines and `#` comments grouped under
# `[DEFAULT]` and repeated `[SESSION]` headers. Session values fall back to the
# DEFAULT section. Sessions are numbered from 1 in file order; field paths look
# like data[session.cfg].SESSION[1].HeartBtInt or data[session.cfg].DEFAULT.TimeZone.

ini_lines(text) := [trim_space(line) | some line in split(text, "\n")]

is_ini_header(line) if regex.match(`^\[[^\]]*\]$`, line)

is_ini_comment(line) if startswith(line, "#")

# Index one past the last line of the section that starts at headers[k].
ini_section_end(headers, k, line_count) := headers[k + 1] if {
	k + 1 < count(headers)
} else := line_count

# Sections in file order: [{"name": "DEFAULT"|"SESSION"|..., "settings": {key: value}}].
# Lines before the first header are ignored, as QuickFIX does.
ini_sections(text) := [section |
	lines := ini_lines(text)
	headers := [i | some i, line in lines; is_ini_header(line)]
	some k, start in headers
	end := ini_section_end(headers, k, count(lines))
	header := lines[start]
	section := {
		"name": upper(trim_space(substring(header, 1, count(header) - 2))),
		"settings": ini_settings(lines, start, end),
	}
]

# Key/value pairs of the lines strictly between `start` and `end`.
ini_pairs(lines, start, end) := [[key, value] |
	some i, line in lines
	i > start
	i < end
	not is_ini_comment(line)
	sep := indexof(line, "=")
	sep > 0
	key := trim_space(substring(line, 0, sep))
	value := trim_space(substring(line, sep + 1, -1))
]

# Settings object of a section. A key repeated inside one section keeps its last
# value (what the engine reads) instead of making the object conflict.
ini_settings(lines, start, end) := {key: value |
	pairs := ini_pairs(lines, start, end)
	some i, pair in pairs
	key := pair[0]
	not ini_key_repeated_later(pairs, i, key)
	value := pair[1]
}

ini_key_repeated_later(pairs, i, key) if {
	some j, pair in pairs
	j > i
	pair[0] == key
}

# Merged [DEFAULT] settings (several DEFAULT sections merge, later wins).
fix_default(text) := object.union_n([s.settings | some s in ini_sections(text); s.name == "DEFAULT"])

# Sessions in file order: [{"index": n (from 1), "own": {...}, "settings": own over DEFAULT}].
fix_sessions(text) := [session |
	defaults := fix_default(text)
	own_settings := [s.settings | some s in ini_sections(text); s.name == "SESSION"]
	some i, own in own_settings
	session := {"index": i + 1, "own": own, "settings": object.union(defaults, own)}
]

# Field path of `key` as the session sees it: its own line, or the DEFAULT line
# it inherits. A key set nowhere is reported on the session.
fix_field(session, key) := sprintf("data[session.cfg].SESSION[%d].%s", [session.index, key]) if {
	not fix_inherited(session, key)
} else := sprintf("data[session.cfg].DEFAULT.%s", [key])

fix_inherited(session, key) if {
	not key in object.keys(session.own)
	key in object.keys(session.settings)
}

# Parsed sessions of every `fix-session` ConfigMap of an overlay, as
# {"object": "ConfigMap/fix-session", "text": <raw>, "sessions": [...]}.
fix_session_files(venue, env) := {{"object": object_id(cm), "text": text, "sessions": fix_sessions(text)} |
	some cm in overlay_configmaps(venue, env, "fix-session")
	text := cm.data["session.cfg"]
	is_string(text)
}

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------

# Run-book path segments as a readable field path: services[0].environments.prod.
format_path(path) := trim_left(concat("", [path_segment(s) | some s in path]), ".")

path_segment(s) := sprintf("[%d]", [s]) if {
	is_number(s)
} else := sprintf(".%v", [s])

# Every key/value of `sub` is in `super` (an empty `sub` is a subset of anything).
labels_subset(sub, super) if {
	is_object(sub)
	is_object(super)
	every key, value in sub {
		super[key] == value
	}
}
