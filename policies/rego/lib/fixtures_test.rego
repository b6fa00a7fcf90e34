# Builders shared by the unit tests of every package: small labelled objects,
# the --combine input shape, and filters over deny results.
package vcpl.fixtures

labels(venue, env) := {
	"app.kubernetes.io/name": "venue-gateway",
	"vcpl.dev/venue": venue,
	"vcpl.dev/environment": env,
}

# A labelled object of one overlay; `body` is merged over the skeleton
# (object.union is recursive, so body may add metadata.annotations etc.).
resource(kind, name, venue, env, body) := object.union(
	{
		"kind": kind,
		"metadata": {
			"name": name,
			"namespace": sprintf("venue-%s-%s", [venue, env]),
			"labels": labels(venue, env),
		},
	},
	body,
)

# The input conftest builds with --combine.
entries(objs) := [{"path": sprintf("build/rendered/fixture/%d.yaml", [i]), "contents": o} | some i, o in objs]

# Results of one rule id.
results_for(results, rule) := {r | some r in results; r.details.rule == rule}

# Fields named by the results of one rule id.
fields_for(results, rule) := {r.details.field | some r in results_for(results, rule)}
