# Completeness: nothing the overlay's workload will connect to or read is still
# a placeholder, and prod does not rely on an unverified run-book source nobody
# has signed off. Addresses come from the model (the engines' real targets,
# every parsed session file, every rendered object) and from the run book's
# facts for this environment, so a placeholder is caught wherever it was typed.
package vcpl.completeness

import data.vcpl.lib

# Reserved for documentation (RFC 2606 / RFC 6761 / RFC 5737 / RFC 3849).
reserved_domains := {"example.com", "example.org", "example.net"}

reserved_tlds := {"example", "invalid", "test"}

documentation_ranges := {"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"}

placeholder_tokens := ["TODO", "TBD", "CHANGEME", "FIXME"]

# Run-book keys that name a source; the top-level `sources` and
# `acknowledgements` declare and sign off sources rather than use them.
source_reference_keys := {"source", "boundsSource", "allowlistSource", "cidrsSource"}

source_declaration_roots := {"sources", "acknowledgements"}

non_prod_environments := {"dev", "cert"}

# Keys whose values are addresses, in the session files and the run book
# (a list under the key counts element by element).
address_keys := {"host", "group", "cidrs", "allowlistedSourceIP", "peer", "remoteCIDRs", "remoteAddrs"}

# Keys of rendered objects whose values are addresses the cluster will use.
object_address_keys := {"cidr", "destinationCIDRs", "egressIP"}

sessions := object.get(input, "sessions", {})

runbook_object := sprintf("VenueRunbook/%s", [lib.venue])

object_id(obj) := sprintf("%s/%s", [obj.kind, obj.metadata.name])

# ---------------------------------------------------------------------------
# Placeholder addresses
# ---------------------------------------------------------------------------

# A host is inside `domain` when it is the domain or a subdomain of it.
within_domain(host, domain) if host == domain

within_domain(host, domain) if endswith(host, concat("", [".", domain]))

is_ipv4_literal(value) if regex.match(`^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$`, value)

is_ipv6_literal(value) if regex.match(`^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(/[0-9]{1,3})?$`, value)

is_ip_literal(value) if is_ipv4_literal(value)

is_ip_literal(value) if is_ipv6_literal(value)

# Tokens count as words: letters may not touch them on either side, so
# "TODO_HOST" and "changeme-1" match but "mastodon" does not.
has_token(line, token) if regex.match(sprintf(`(?i)(^|[^a-z])%s([^a-z]|$)`, [token]), line)

# Everything that makes an address a placeholder (empty when it is a real one).
# `value` is a host name, an IP address or a CIDR.
placeholder_reasons(value) := union({
	{sprintf("is in the reserved domain %s", [d]) | some d in reserved_domains; within_domain(host, d)},
	{sprintf("is in the reserved top-level domain .%s", [t]) | some t in reserved_tlds; endswith(host, concat("", [".", t]))},
	{"is the loopback name localhost" | within_domain(host, "localhost")},
	{"is the unspecified address 0.0.0.0" | address == "0.0.0.0"},
	{sprintf("lies in the documentation range %s", [r]) | is_ip_literal(host); some r in documentation_ranges; net.cidr_contains(r, host)},
	{sprintf("contains the placeholder word %s", [token]) | some token in placeholder_tokens; has_token(value, token)},
}) if {
	host := trim_right(lower(trim_space(value)), ".")
	address := split(host, "/")[0]
}

# The key a walked value sits under: its own, or its list's for an element.
value_key(path) := path[count(path) - 1] if {
	is_string(path[count(path) - 1])
} else := path[count(path) - 2]

# String values under address keys inside a parsed document, with their path.
address_values(doc) := {[path, value] |
	walk(doc, [path, value])
	is_string(value)
	count(path) > 0
	value_key(path) in address_keys
}

join_field(base, path) := concat(".", [base, lib.format_path(path)]) if {
	is_string(path[0])
} else := concat("", [base, lib.format_path(path)])

# Host of a stunnel `connect` (host:port, [v6]:port, or a bare port).
connect_host(connect) := host if {
	m := regex.find_all_string_submatch_n(`^(\[[^\]]*\]|[^:]*):[0-9]+$`, trim_space(connect), 1)
	count(m) > 0
	host := trim(m[0][1], "[]")
} else := trim_space(connect)

# Every address the workload will actually connect to or be configured with,
# with the object and field it came from.
# gateway.json targets are covered by the walk over gateway.json below.
addresses contains {"object": object.get(t, "hostObject", t.object), "field": object.get(t, "hostField", t.field), "value": t.host} if {
	some t in object.get(sessions, "targets", [])
	t.source != "gateway.json"
	is_string(t.host)
}

addresses contains {"object": g.object, "field": join_field(g.field, path), "value": value} if {
	g := sessions.gateway
	some [path, value] in address_values(g.config)
}

addresses contains {"object": c.object, "field": join_field(c.field, path), "value": value} if {
	some c in object.get(sessions, "channels", [])
	some [path, value] in address_values(c.config)
}

addresses contains {"object": qf.object, "field": sprintf("%s.DEFAULT.%s", [qf.field, key]), "value": value} if {
	some qf in object.get(sessions, "quickfix", [])
	some key, value in object.get(qf, "default", {})
	regex.match(`(?i)^SocketConnectHost[0-9]*$`, key)
}

addresses contains {"object": qf.object, "field": sprintf("%s.SESSION[%v].%s", [qf.field, n, key]), "value": value} if {
	some qf in object.get(sessions, "quickfix", [])
	some k, s in qf.sessions
	n := object.get(s, "index", k + 1)
	some key, value in object.get(s, "own", {})
	regex.match(`(?i)^SocketConnectHost[0-9]*$`, key)
}

addresses contains {"object": st.object, "field": field, "value": connect_host(svc.connect)} if {
	some st in object.get(sessions, "stunnel", [])
	some svc in st.services
	is_string(svc.connect)
	field := object.get(svc, "field", sprintf("%s[%s].connect", [st.field, svc.name]))
}

addresses contains {"object": sw.object, "field": sw.field, "value": value} if {
	some sw in object.get(sessions, "swanctl", [])
	some value in object.get(sw, "remoteAddrs", [])
}

# ipBlock CIDRs of any (Multi)NetworkPolicy, egress-gateway CIDRs and IPs.
addresses contains {"object": object_id(obj), "field": lib.format_path(path), "value": value} if {
	some obj in object.get(input, "objects", [])
	walk(obj, [path, value])
	is_string(value)
	count(path) > 0
	value_key(path) in object_address_keys
}

# The run book's facts for this environment, before anything is generated.
addresses contains {"object": runbook_object, "field": lib.format_path(array.concat(["services", i, "environments", lib.environment], path)), "value": value} if {
	some i, service in object.get(lib.runbook, "services", [])
	some [path, value] in address_values(object.get(service, ["environments", lib.environment], {}))
}

addresses contains {"object": runbook_object, "field": lib.format_path(array.concat(["environments", lib.environment], path)), "value": value} if {
	some [path, value] in address_values(object.get(lib.runbook, ["environments", lib.environment], {}))
}

# ---------------------------------------------------------------------------
# Placeholder words in what the pods read
# ---------------------------------------------------------------------------

config_texts contains {"object": object_id(obj), "field": sprintf("data[%s]", [key]), "text": value} if {
	some obj in object.get(input, "objects", [])
	obj.kind == "ConfigMap"
	some key, value in object.get(obj, "data", {})
	is_string(value)
}

# rule: completeness-no-placeholder
deny contains result if {
	lib.is_overlay
	some result in placeholder_findings
}

placeholder_findings contains result if {
	some a in addresses
	some reason in placeholder_reasons(a.value)
	result := lib.finding(
		"completeness-no-placeholder", a.object, a.field,
		sprintf("%q %s: a placeholder, not a venue address", [a.value, reason]),
		"replace it with the venue's real address in the run book (mark it source quality U if unconfirmed) and regenerate",
	)
}

# Most texts hold no token: one match over the whole text spares the line scan.
any_token := sprintf(`(?i)(^|[^a-z])(%s)([^a-z]|$)`, [concat("|", placeholder_tokens)])

placeholder_findings contains result if {
	some t in config_texts
	regex.match(any_token, t.text)
	some n, line in split(t.text, "\n")
	some token in placeholder_tokens
	has_token(line, token)
	result := lib.finding(
		"completeness-no-placeholder", t.object, t.field,
		sprintf("line %d contains the placeholder word %s: %q", [n + 1, token, trim_space(line)]),
		"fill in the value in the run book and regenerate; never ship TODO/TBD/CHANGEME/FIXME",
	)
}

# ---------------------------------------------------------------------------
# Unverified sources in prod
# ---------------------------------------------------------------------------

# A fact stops applying to prod when its path goes environments -> dev|cert
# (top-level environments.dev, services[i].environments.cert, ...).
outside_prod(path) if {
	some i, segment in path
	segment == "environments"
	path[i + 1] in non_prod_environments
}

# [source key, run-book field path] of every source reference that applies to prod.
prod_source_references(runbook) := {[value, lib.format_path(path)] |
	walk(runbook, [path, value])
	count(path) > 0
	path[count(path) - 1] in source_reference_keys
	is_string(value)
	not path[0] in source_declaration_roots
	not outside_prod(path)
}

acknowledged_for_prod(runbook, key) if {
	some ack in runbook.acknowledgements
	ack.source == key
	"prod" in ack.environments
}

# Only quality U needs a prod acknowledgement. P, V and S are venue facts already sourced; F (firm
# policy) and L (this library's own artefacts) are not venue facts and need no venue confirmation.
# rule: completeness-unverified-acknowledged
deny contains result if {
	lib.is_overlay
	lib.environment == "prod"
	runbook := lib.runbook
	references := prod_source_references(runbook)
	some key in {ref[0] | some ref in references}
	runbook.sources[key].quality == "U"
	not acknowledged_for_prod(runbook, key)
	example := min({ref[1] | some ref in references; ref[0] == key})
	uses := count({ref | some ref in references; ref[0] == key})
	result := lib.finding(
		"completeness-unverified-acknowledged", runbook_object, example,
		sprintf("unverified source %s (quality U) backs %d prod fact(s), e.g. %s in venues/%s/runbook.yaml, with no prod acknowledgement", [key, uses, example, lib.venue]),
		sprintf("confirm the fact with the venue and raise %s's quality, or add an acknowledgements entry with source %s and environments [prod]", [key, key]),
	)
}
