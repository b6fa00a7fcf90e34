package vcpl.operability_test

import data.vcpl.fixtures
import data.vcpl.operability

pod_labels := {"app.kubernetes.io/name": "venue-gateway", "vcpl.dev/venue": "acme"}

gateway(env, spec) := fixtures.resource("StatefulSet", "venue-gateway", "acme", env, {"spec": object.union(
	{"replicas": 1, "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [{"name": "gateway"}]}}},
	spec,
)})

pdb(env, match_labels) := fixtures.resource("PodDisruptionBudget", "venue-gateway", "acme", env, {"spec": {
	"maxUnavailable": 1,
	"selector": {"matchLabels": match_labels},
}})

monitoring(env) := [
	fixtures.resource("ServiceMonitor", "venue-gateway", "acme", env, {"spec": {}}),
	fixtures.resource("PrometheusRule", "venue-gateway", "acme", env, {"spec": {}}),
]

prod_overlay := array.concat(monitoring("prod"), [gateway("prod", {}), pdb("prod", {"app.kubernetes.io/name": "venue-gateway"})])

results_of(objs) := results if {
	results := operability.deny with input as fixtures.entries(objs) with data.runbooks as {}
}

test_complete_prod_overlay_has_no_findings if {
	count(results_of(prod_overlay)) == 0
}

# ---------------------------------------------------------------------------
# operability-monitoring
# ---------------------------------------------------------------------------

test_operability_monitoring_accepts_service_monitor_and_rule if {
	count(fixtures.results_for(results_of(prod_overlay), "operability-monitoring")) == 0
}

test_operability_monitoring_accepts_pod_monitor if {
	objs := [
		fixtures.resource("PodMonitor", "venue-gateway", "acme", "cert", {}),
		fixtures.resource("PrometheusRule", "venue-gateway", "acme", "cert", {}),
	]
	count(fixtures.results_for(results_of(objs), "operability-monitoring")) == 0
}

test_operability_monitoring_accepts_dev_without_monitoring if {
	count(fixtures.results_for(results_of([gateway("dev", {})]), "operability-monitoring")) == 0
}

test_operability_monitoring_rejects_cert_without_rules if {
	objs := [gateway("cert", {}), fixtures.resource("ServiceMonitor", "venue-gateway", "acme", "cert", {})]
	results := fixtures.results_for(results_of(objs), "operability-monitoring")
	{r.details.object | some r in results} == {"PrometheusRule/venue-gateway"}
}

test_operability_monitoring_rejects_prod_without_scrape if {
	objs := [gateway("prod", {}), fixtures.resource("PrometheusRule", "venue-gateway", "acme", "prod", {})]
	results := fixtures.results_for(results_of(objs), "operability-monitoring")
	{r.details.object | some r in results} == {"ServiceMonitor/venue-gateway"}
}

# ---------------------------------------------------------------------------
# operability-prod-pdb
# ---------------------------------------------------------------------------

test_operability_prod_pdb_accepts_subset_selector if {
	count(fixtures.results_for(results_of(prod_overlay), "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_accepts_cert_without_pdb if {
	objs := array.concat(monitoring("cert"), [gateway("cert", {})])
	count(fixtures.results_for(results_of(objs), "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_rejects_missing_pdb if {
	objs := array.concat(monitoring("prod"), [gateway("prod", {})])
	results := fixtures.results_for(results_of(objs), "operability-prod-pdb")
	{r.details.object | some r in results} == {"StatefulSet/venue-gateway"}
}

test_operability_prod_pdb_rejects_selector_not_matching_pods if {
	objs := array.concat(monitoring("prod"), [gateway("prod", {}), pdb("prod", {"app.kubernetes.io/name": "venue-gateway", "tier": "feed"})])
	count(fixtures.results_for(results_of(objs), "operability-prod-pdb")) == 1
}

# ---------------------------------------------------------------------------
# operability-prod-spread
# ---------------------------------------------------------------------------

test_operability_prod_spread_accepts_single_replica if {
	count(fixtures.results_for(results_of(prod_overlay), "operability-prod-spread")) == 0
}

test_operability_prod_spread_accepts_hostname_spread if {
	spread := {"replicas": 2, "template": {"spec": {"topologySpreadConstraints": [{"topologyKey": "kubernetes.io/hostname", "maxSkew": 1}]}}}
	objs := array.concat(monitoring("prod"), [gateway("prod", spread), pdb("prod", {"app.kubernetes.io/name": "venue-gateway"})])
	count(fixtures.results_for(results_of(objs), "operability-prod-spread")) == 0
}

test_operability_prod_spread_accepts_pod_anti_affinity if {
	anti := {"replicas": 3, "template": {"spec": {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100}]}}}}}
	objs := array.concat(monitoring("prod"), [gateway("prod", anti), pdb("prod", {"app.kubernetes.io/name": "venue-gateway"})])
	count(fixtures.results_for(results_of(objs), "operability-prod-spread")) == 0
}

test_operability_prod_spread_rejects_replicas_without_spread if {
	objs := array.concat(monitoring("prod"), [gateway("prod", {"replicas": 2}), pdb("prod", {"app.kubernetes.io/name": "venue-gateway"})])
	fixtures.fields_for(results_of(objs), "operability-prod-spread") == {"spec.template.spec.topologySpreadConstraints"}
}

test_operability_prod_spread_rejects_spread_on_other_key if {
	rack := {"replicas": 2, "template": {"spec": {"topologySpreadConstraints": [{"topologyKey": "example.com/rack", "maxSkew": 1}]}}}
	objs := [fixtures.resource("Deployment", "helper", "acme", "prod", {"spec": rack})]
	results := fixtures.results_for(results_of(objs), "operability-prod-spread")
	{r.details.object | some r in results} == {"Deployment/helper"}
}
