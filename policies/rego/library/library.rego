# Library: rules over the whole catalogue at once, read from the LibraryIndex
# document (one per gate run), for invariants no single overlay can see.
package vcpl.library

import data.vcpl.lib

# Two entries are the same session when they name the same venue, service and
# counterparty; anything else sharing a SenderCompID in one environment is a
# second session that would log on with the same identity.
session_key(s) := [s.venue, object.get(s, "service", null), object.get(s, "targetCompID", null)]

compid_users[[env, comp_id]] contains session_key(s) if {
	some s in input.sessions
	env := s.environment
	comp_id := s.senderCompID
	is_string(comp_id)
	comp_id != ""
}

located_text(s) := sprintf("%s/%s %s %s", [s.venue, s.environment, s.object, s.field])

# rule: library-compid-unique
deny contains result if {
	lib.is_library
	some s in input.sessions
	users := compid_users[[s.environment, s.senderCompID]]
	count(users) > 1
	others := sort({located_text(o) |
		some o in input.sessions
		o.environment == s.environment
		o.senderCompID == s.senderCompID
		session_key(o) != session_key(s)
	})
	result := lib.finding_for(
		"library-compid-unique", s.venue, s.environment, s.object, s.field,
		sprintf("SenderCompID %s of session %v is also used in %s by %s: the venue accepts one logon per CompID, so the sessions log each other out and mix sequence numbers", [s.senderCompID, object.get(s, "service", null), s.environment, concat(", ", others)]),
		"give each session of an environment its own SenderCompID (the one the venue issued for it) in the run book, then run make generate",
	)
}
