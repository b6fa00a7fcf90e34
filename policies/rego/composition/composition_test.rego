package vcpl.composition_test

import data.vcpl.composition
import data.vcpl.fixtures

# What cme composes in prod (venues/cme/kustomization.yaml plus its overlay).
cme_components := [
	"credentials", "ip-allowlist", "multicast", "observability", "failover",
	"session-schedule", "clock-sync", "venue-binding", "ip-allowlist/cilium-egress-gateway",
]

overlay(components, expected) := fixtures.model("cme", "prod", {
	"components": components,
	"expected": {"alerts": [], "components": expected},
})

results_of(m) := results if {
	results := composition.deny with input as m
}

findings(m) := fixtures.results_for(results_of(m), "composition-matches-runbook")

without(list, name) := [c | some c in list; c != name]

test_composition_matches_runbook_accepts_composition_equal_to_runbook if {
	count(findings(overlay(cme_components, cme_components))) == 0
}

test_composition_matches_runbook_accepts_component_order_and_duplicates if {
	count(findings(overlay(array.concat(array.reverse(cme_components), ["multicast"]), cme_components))) == 0
}

test_composition_matches_runbook_accepts_library_index if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

test_composition_matches_runbook_rejects_missing_fix_initiator if {
	expected := array.concat(cme_components, ["fix-initiator"])
	results := findings(overlay(cme_components, expected))
	count(results) == 1
	some r in results
	r.details.object == "Overlay/cme"
	r.details.field == "components"
	contains(r.msg, "component fix-initiator is missing")
}

test_composition_matches_runbook_rejects_failover_kept_with_standby_none if {
	results := findings(overlay(cme_components, without(cme_components, "failover")))
	count(results) == 1
	some r in results
	{r.details.object, r.details.field} == {"Overlay/cme", "components"}
	contains(r.msg, "component failover is composed but the run book does not call for it")
}

test_composition_matches_runbook_rejects_missing_and_extra_separately if {
	composed := array.concat(without(cme_components, "clock-sync"), ["vpn"])
	results := findings(overlay(composed, cme_components))
	count(results) == 2
	some missing in results
	contains(missing.msg, "component clock-sync is missing")
	some extra in results
	contains(extra.msg, "component vpn is composed")
}

test_composition_matches_runbook_rejects_missing_unconditional_component if {
	results := findings(overlay(without(cme_components, "observability"), cme_components))
	count(results) == 1
	some r in results
	contains(r.msg, "component observability is missing")
}

test_composition_matches_runbook_rejects_egress_gateway_not_called_for if {
	results := findings(overlay(cme_components, without(cme_components, "ip-allowlist/cilium-egress-gateway")))
	count(results) == 1
	some r in results
	contains(r.msg, "ip-allowlist/cilium-egress-gateway is composed")
}
