# Completeness: nothing rendered still points at a placeholder, and prod does
# not rely on an unverified run-book source nobody has signed off.
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

# Everything that makes an address a placeholder (empty when it is a real one).
# `value` is a host name, an IP address or a CIDR.
placeholder_reasons(value) := union({
	{sprintf("is in the reserved domain %s", [d]) | some d in reserved_domains; within_domain(host, d)},
	{sprintf("is in the reserved top-level domain .%s", [t]) | some t in reserved_tlds; endswith(host, concat("", [".", t]))},
	{"is the loopback name localhost" | within_domain(host, "localhost")},
	{"is the unspecified address 0.0.0.0" | address == "0.0.0.0"},
	{sprintf("lies in the documentation range %s", [r]) | is_ip_literal(host); some r in documentation_ranges; net.cidr_contains(r, host)},
}) if {
	host := trim_right(lower(trim_space(value)), ".")
	address := split(host, "/")[0]
}

# Every address-like value the rendered overlay will actually connect to, with
# the object and field it came from.
addresses contains {"venue": venue, "environment": env, "object": g.object, "field": field, "value": endpoint.host} if {
	some [venue, env] in lib.overlays
	some g in lib.gateway_configs(venue, env)
	some si, service in g.config.services
	some ei, endpoint in service.endpoints
	is_string(endpoint.host)
	field := sprintf("data[gateway.json].services[%d].endpoints[%d].host", [si, ei])
}

addresses contains {"venue": venue, "environment": env, "object": file.object, "field": field, "value": value} if {
	some [venue, env] in lib.overlays
	some file in lib.fix_session_files(venue, env)
	some index, section in lib.ini_sections(file.text)
	some key, value in section.settings
	regex.match(`^SocketConnectHost[0-9]*$`, key)
	field := sprintf("data[session.cfg].%s.%s", [section_label(lib.ini_sections(file.text), index), key])
}

addresses contains {"venue": venue, "environment": env, "object": lib.object_id(np), "field": field, "value": peer.ipBlock.cidr} if {
	some [venue, env] in lib.overlays
	some np in lib.overlay_kind(venue, env, "NetworkPolicy")
	some direction, peers_key in {"egress": "to", "ingress": "from"}
	some i, rule in object.get(np.spec, direction, [])
	some j, peer in object.get(rule, peers_key, [])
	is_string(peer.ipBlock.cidr)
	field := sprintf("spec.%s[%d].%s[%d].ipBlock.cidr", [direction, i, peers_key, j])
}

# "DEFAULT" or "SESSION[n]" (n counts SESSION sections from 1), matching lib.fix_field.
section_label(sections, index) := "DEFAULT" if {
	sections[index].name == "DEFAULT"
} else := sprintf("%s[%d]", [sections[index].name, count([s | some k, s in sections; k <= index; s.name == sections[index].name])])

# ---------------------------------------------------------------------------
# Placeholder words
# ---------------------------------------------------------------------------

# The generated text files a person might have hand-edited, with their field.
texts contains {"venue": venue, "environment": env, "object": lib.object_id(cm), "field": "data[gateway.json]", "text": cm.data["gateway.json"]} if {
	some [venue, env] in lib.overlays
	some cm in lib.overlay_configmaps(venue, env, "venue-gateway")
	is_string(cm.data["gateway.json"])
}

texts contains {"venue": venue, "environment": env, "object": lib.object_id(cm), "field": "data[session.cfg]", "text": cm.data["session.cfg"]} if {
	some [venue, env] in lib.overlays
	some cm in lib.overlay_configmaps(venue, env, "fix-session")
	is_string(cm.data["session.cfg"])
}

# Tokens count as words: letters may not touch them on either side, so
# "TODO_HOST" and "changeme-1" match but "mastodon" does not.
has_token(line, token) if regex.match(sprintf(`(?i)(^|[^a-z])%s([^a-z]|$)`, [token]), line)

# rule: completeness-no-placeholder
deny contains result if {
	some result in placeholder_findings
}

placeholder_findings contains result if {
	some a in addresses
	some reason in placeholder_reasons(a.value)
	result := lib.finding(
		"completeness-no-placeholder", a.venue, a.environment, a.object, a.field,
		sprintf("%q %s: a placeholder, not a venue address", [a.value, reason]),
		"replace it with the venue's real address in the run book (mark it source quality U if unconfirmed) and regenerate",
	)
}

placeholder_findings contains result if {
	some t in texts
	some n, line in split(t.text, "\n")
	some token in placeholder_tokens
	has_token(line, token)
	result := lib.finding(
		"completeness-no-placeholder", t.venue, t.environment, t.object, t.field,
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

# rule: completeness-unverified-acknowledged
deny contains result if {
	some [venue, env] in lib.overlays
	env == "prod"
	runbook := data.runbooks[venue]
	references := prod_source_references(runbook)
	some key in {ref[0] | some ref in references}
	runbook.sources[key].quality == "U"
	not acknowledged_for_prod(runbook, key)
	example := min({ref[1] | some ref in references; ref[0] == key})
	uses := count({ref | some ref in references; ref[0] == key})
	result := lib.finding(
		"completeness-unverified-acknowledged", venue, env, sprintf("VenueRunbook/%s", [venue]), example,
		sprintf("unverified source %s (quality U) backs %d prod fact(s), e.g. %s in venues/%s/runbook.yaml, with no prod acknowledgement", [key, uses, example, venue]),
		sprintf("confirm the fact with the venue and raise %s's quality, or add an acknowledgements entry with source %s and environments [prod]", [key, key]),
	)
}
