package vcpl.library_test

import data.vcpl.fixtures
import data.vcpl.library

session(venue, env, comp_id) := {
	"venue": venue, "environment": env, "service": sprintf("%s-oe", [venue]),
	"senderCompID": comp_id, "targetCompID": upper(venue),
	"object": "ConfigMap/fix-session", "field": "data[session.cfg].SESSION[0].SenderCompID",
}

# The shipped catalogue: one FIX session per venue and environment, each its own CompID.
shipped := [
	session("coinbase", "dev", "VCPL-CB-DEV"), session("coinbase", "cert", "VCPL-CB-SBX"), session("coinbase", "prod", "VCPL-CB-PRD"),
	session("ice", "dev", "VCPL-ICE-DEV"), session("ice", "cert", "VCPL-ICE-UAT"), session("ice", "prod", "VCPL-ICE-PRD"),
	session("nyse", "dev", "VCPL-NYSE-DEV"), session("nyse", "cert", "VCPL-NYSE-CRT"), session("nyse", "prod", "VCPL-NYSE-PRD"),
]

index(sessions) := {"kind": "LibraryIndex", "sessions": sessions}

results_of(doc) := results if {
	results := library.deny with input as doc
}

findings(doc) := fixtures.results_for(results_of(doc), "library-compid-unique")

located(doc) := {[r.details.venue, r.details.environment, r.details.object, r.details.field] | some r in findings(doc)}

test_library_compid_unique_accepts_shipped_catalogue if {
	count(findings(index(shipped))) == 0
}

test_library_compid_unique_accepts_same_compid_in_different_environments if {
	count(findings(index([session("nyse", "cert", "VCPL-NYSE"), session("nyse", "prod", "VCPL-NYSE")]))) == 0
}

test_library_compid_unique_accepts_one_session_listed_twice if {
	count(findings(index([session("ice", "prod", "VCPL-ICE-PRD"), session("ice", "prod", "VCPL-ICE-PRD")]))) == 0
}

test_library_compid_unique_accepts_overlay_model if {
	count(results_of(fixtures.model("ice", "prod", {}))) == 0
}

test_library_compid_unique_rejects_two_venues_sharing_a_prod_compid if {
	copied := session("coinbase", "prod", "VCPL-ICE-PRD")
	results := findings(index(array.concat(shipped, [copied])))
	{[r.details.venue, r.details.environment, r.details.object, r.details.field] | some r in results} == {
		["ice", "prod", "ConfigMap/fix-session", "data[session.cfg].SESSION[0].SenderCompID"],
		["coinbase", "prod", "ConfigMap/fix-session", "data[session.cfg].SESSION[0].SenderCompID"],
	}
	some r in results
	r.details.venue == "coinbase"
	contains(r.msg, "also used in prod by ice/prod ConfigMap/fix-session")
}

test_library_compid_unique_rejects_twice_in_one_venue if {
	second := object.union(session("nyse", "prod", "VCPL-NYSE-PRD"), {"service": "pillar-drop-copy", "object": "ConfigMap/drop-copy", "field": "data[drop.cfg].SESSION[0].SenderCompID"})
	located(index(array.concat(shipped, [second]))) == {
		["nyse", "prod", "ConfigMap/fix-session", "data[session.cfg].SESSION[0].SenderCompID"],
		["nyse", "prod", "ConfigMap/drop-copy", "data[drop.cfg].SESSION[0].SenderCompID"],
	}
}
