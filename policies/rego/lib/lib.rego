# Shared helpers of the vcpl Rego policies.
#
# conftest evaluates one document at a time (no --combine). A document is either
# the effective model of one rendered overlay (kind OverlayModel, described in
# scripts/vcpl/model/README.md) or the library index (kind LibraryIndex) that
# rules spanning overlays read. Rules judge the model: what a pod can reach,
# mount, run as and log on to, never the shape of the library's own files.
package vcpl.lib

is_overlay if input.kind == "OverlayModel"

is_library if input.kind == "LibraryIndex"

venue := input.overlay.venue

environment := input.overlay.environment

runbook := input.runbook

platform := input.platform

# Pods by role ("gateway", "session-scheduler", "undeclared").
pods_with_role(role) := {pod | some pod in input.pods; pod.role == role}

gateway_pods := pods_with_role("gateway")

# The network path the run book gives this environment.
# The environment's network paths, primary first; the primary path's name.
network_paths := [n.path | some n in object.get(runbook, ["environments", environment, "networks"], [])]

network_path := network_paths[0]

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

# The one result shape every deny of an overlay rule returns. The message is a
# single line that names the rule, overlay, object and field before the problem.
finding(rule, obj_id, field, problem, fix) := finding_for(rule, venue, environment, obj_id, field, problem, fix)

# The same for rules over the library index, which name the overlay themselves.
finding_for(rule, for_venue, for_env, obj_id, field, problem, fix) := {
	"msg": one_line(sprintf("[%s] %s/%s %s %s: %s", [rule, for_venue, for_env, obj_id, field, problem])),
	"details": {
		"rule": rule,
		"venue": for_venue,
		"environment": for_env,
		"object": obj_id,
		"field": field,
		"fix": one_line(fix),
	},
}

# Values quoted from the input may hold line breaks; results must stay on one line.
one_line(text) := regex.replace(text, `\s*[\r\n]+\s*`, " ")

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------

# Run-book path segments as a readable field path: services[0].environments.prod.
format_path(path) := trim_left(concat("", [path_segment(s) | some s in path]), ".")

path_segment(s) := sprintf("[%d]", [s]) if {
	is_number(s)
} else := sprintf(".%v", [s])

# The run book's services, with their index for field paths.
services := {[i, s] | some i, s in runbook.services}

# Endpoints of a service in this environment in failover order (primary, backup, dr).
endpoint_roles := ["primary", "backup", "dr"]

ordered_endpoints(service) := [ep |
	eps := object.get(service, ["environments", environment, "endpoints"], {})
	some role in endpoint_roles
	ep := object.union(eps[role], {"role": role})
]
