# Builders shared by the unit tests of every package: a minimal overlay model
# that rules can be tested against, and filters over deny results.
package vcpl.fixtures

# An overlay model with the fields every rule may read; `body` is merged over it
# (object.union is recursive, so body may override single nested fields).
model(venue, env, body) := object.union(
	{
		"kind": "OverlayModel",
		"overlay": {"venue": venue, "environment": env, "namespace": sprintf("venue-%s-%s", [venue, env])},
		"runbook": {"venue": {"id": venue}, "services": [], "environments": {env: {"networks": [{"path": "cross-connect"}]}}},
		"platform": {},
		"expected": {"alerts": [], "components": [], "quickfixServices": []},
		"components": [],
		"objects": [],
		"pods": [],
		"services": [],
		"pdbs": [],
		"rbac": {"bindings": [], "roles": []},
		"networks": [],
		"sessions": {"gateway": null, "quickfix": [], "channels": [], "stunnel": [], "swanctl": [], "targets": [], "stores": []},
		"credentials": [],
		"alerts": [],
	},
	body,
)

# Results of one rule id.
results_for(results, rule) := {r | some r in results; r.details.rule == rule}

# Fields named by the results of one rule id.
fields_for(results, rule) := {r.details.field | some r in results_for(results, rule)}
