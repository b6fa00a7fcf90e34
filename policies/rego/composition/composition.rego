# Composition: the overlay composes exactly the components its run book calls
# for. A component the run book needs and the overlay lacks leaves a requirement
# unmet (no QuickFIX settings for a FIX venue, no VPN on an IPsec path); a
# conditional component it does not need adds moving parts the venue never asked
# for (a hot standby with `standby: none`, a scheduler for a 24/7 venue).
package vcpl.composition

import data.vcpl.lib

# Components the run book decides on; the others (venue-binding, ip-allowlist,
# observability) are part of every venue and only their absence matters.
conditional_components := {
	"credentials",
	"fix-initiator",
	"tls",
	"tls-sidecar",
	"multicast",
	"session-schedule",
	"failover",
	"clock-sync",
	"vpn",
	"ip-allowlist/cilium-egress-gateway",
}

composed := {c | some c in input.components}

expected := {c | some c in input.expected.components}

overlay_object := sprintf("Overlay/%s", [lib.venue])

# rule: composition-matches-runbook
deny contains result if {
	lib.is_overlay
	some component in (expected - composed)
	result := lib.finding(
		"composition-matches-runbook", overlay_object, "components",
		sprintf("component %s is missing: the run book calls for it in %s, so the requirement it maps is not deployed (expected %v)", [component, lib.environment, sort(expected)]),
		sprintf("compose components/%s (in venues/%s/kustomization.yaml or the %s overlay), or change the run book", [component, lib.venue, lib.environment]),
	)
}

deny contains result if {
	lib.is_overlay
	some component in ((composed & conditional_components) - expected)
	result := lib.finding(
		"composition-matches-runbook", overlay_object, "components",
		sprintf("component %s is composed but the run book does not call for it in %s (expected %v)", [component, lib.environment, sort(expected)]),
		sprintf("remove components/%s from the composition, or change the run book so it calls for it", [component]),
	)
}
