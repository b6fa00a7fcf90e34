package vcpl.operability_test

import data.vcpl.fixtures
import data.vcpl.operability

# ---------------------------------------------------------------------------
# A prod overlay as the library ships it for a scheduled venue with a hot
# standby: the gateway's spec.replicas is null and session-open scales it to 2.
# ---------------------------------------------------------------------------

gateway_labels := {"app.kubernetes.io/name": "venue-gateway", "vcpl.dev/venue": "acme"}

spread_apart := {
	"antiAffinity": [{"topologyKey": "kubernetes.io/hostname", "required": true, "matchesSelf": true}],
	"spread": [{"topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "matchesSelf": true}],
	"nodeSelector": {},
	"nodeAffinityRequired": [],
}

gateway_pod := {
	"id": "StatefulSet/venue-gateway", "kind": "StatefulSet", "name": "venue-gateway", "template": "spec.template",
	"role": "gateway", "labels": gateway_labels, "annotations": {},
	"replicas": {"declared": null, "max": 2, "scaledBy": [{"object": "CronJob/session-open", "replicas": 2}]},
	"services": ["Service/venue-gateway", "Service/venue-gateway-headless"],
	"pdbs": ["PodDisruptionBudget/venue-gateway"],
	"scheduling": spread_apart,
}

scheduler_pod := {
	"id": "CronJob/session-open", "kind": "CronJob", "name": "session-open", "template": "spec.jobTemplate.spec.template",
	"role": "session-scheduler", "labels": {"app.kubernetes.io/name": "venue-session-scheduler"}, "annotations": {},
	"replicas": {"declared": null, "max": 1, "scaledBy": []},
	"services": [], "pdbs": [],
	"scheduling": {"antiAffinity": [], "spread": [], "nodeSelector": {}, "nodeAffinityRequired": []},
}

gateway_pdb := {
	"id": "PodDisruptionBudget/venue-gateway", "selector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}},
	"minAvailable": null, "maxUnavailable": 1, "selects": ["StatefulSet/venue-gateway"],
}

gateway_service_object := {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": "venue-gateway", "labels": gateway_labels},
	"spec": {"selector": {"app.kubernetes.io/name": "venue-gateway"}, "ports": [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]},
}

service_monitor := {
	"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
	"metadata": {"name": "venue-gateway", "labels": gateway_labels},
	"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}}, "endpoints": [{"port": "metrics", "path": "/metrics"}]},
}

gateway_service := {"id": "Service/venue-gateway", "type": "ClusterIP", "selector": {"app.kubernetes.io/name": "venue-gateway"}, "selects": ["StatefulSet/venue-gateway"]}

gateway_alerts := [
	"VenueGatewayDown", "VenueGatewayAbsent", "VenueSessionDown", "VenueHeartbeatTimeout",
	"VenueSequenceGap", "VenueResendStorm", "VenueLogonRejected", "VenueFeedLineDown",
	"VenueFeedBothLinesDown", "VenueFeedGaps", "VenueFeedStale",
]

rendered_alerts := array.concat(
	[{"name": "VenueClockOffset", "object": "PrometheusRule/venue-clock-sync", "field": "spec.groups[0].rules[0]"}],
	[{"name": name, "object": "PrometheusRule/venue-gateway", "field": sprintf("spec.groups[1].rules[%d]", [i])} | some i, name in gateway_alerts],
)

expected_alerts := array.concat(["VenueClockOffset"], gateway_alerts)

overlay(env, changes) := fixtures.model("acme", env, object.union(
	{
		"expected": {"alerts": expected_alerts, "components": []},
		"objects": [gateway_service_object, service_monitor],
		"pods": [gateway_pod, scheduler_pod],
		"services": [gateway_service],
		"pdbs": [gateway_pdb],
		"alerts": rendered_alerts,
	},
	changes,
))

shipped := overlay("prod", {})

results_of(m) := results if {
	results := operability.deny with input as m
}

findings(m, rule) := fixtures.results_for(results_of(m), rule)

located(m, rule) := {[r.details.object, r.details.field] | some r in findings(m, rule)}

gateway_with(changes) := object.union(gateway_pod, changes)

test_shipped_prod_overlay_has_no_operability_findings if {
	count(results_of(shipped)) == 0
}

test_library_index_is_not_judged if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

# ---------------------------------------------------------------------------
# operability-alerts
# ---------------------------------------------------------------------------

test_operability_alerts_accepts_every_expected_alert_rendered if {
	count(findings(overlay("cert", {}), "operability-alerts")) == 0
}

test_operability_alerts_accepts_dev_without_rules if {
	count(findings(overlay("dev", {"alerts": []}), "operability-alerts")) == 0
}

test_operability_alerts_rejects_session_rule_deleted_while_clock_rule_stays if {
	clock_only := [a | some a in rendered_alerts; a.object == "PrometheusRule/venue-clock-sync"]
	results := findings(overlay("prod", {"alerts": clock_only}), "operability-alerts")
	count(results) == count(gateway_alerts)
	{[r.details.object, r.details.field] | some r in results} == {["PrometheusRule/venue-gateway", "spec.groups"]}
	some r in results
	contains(r.msg, "alert VenueSessionDown")
}

test_operability_alerts_rejects_one_alert_removed_from_the_rule if {
	without_stale := [a | some a in rendered_alerts; a.name != "VenueFeedStale"]
	results := findings(overlay("cert", {"alerts": without_stale}), "operability-alerts")
	count(results) == 1
	some r in results
	r.details.object == "PrometheusRule/venue-gateway"
	contains(r.msg, "VenueFeedStale")
}

test_operability_alerts_rejects_clock_rule_deleted if {
	gateway_only := [a | some a in rendered_alerts; a.object == "PrometheusRule/venue-gateway"]
	located(overlay("prod", {"alerts": gateway_only}), "operability-alerts") == {["PrometheusRule/venue-clock-sync", "spec.groups"]}
}

# ---------------------------------------------------------------------------
# operability-monitoring
# ---------------------------------------------------------------------------

test_operability_monitoring_accepts_service_monitor_on_metrics_port if {
	count(findings(shipped, "operability-monitoring")) == 0
}

test_operability_monitoring_accepts_pod_monitor if {
	pod_monitor := {
		"kind": "PodMonitor", "metadata": {"name": "gateway-pods"},
		"spec": {"selector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["venue-gateway"]}]}, "podMetricsEndpoints": [{"port": "metrics"}]},
	}
	m := object.union(overlay("cert", {}), {"objects": [gateway_service_object, pod_monitor]})
	count(findings(m, "operability-monitoring")) == 0
}

test_operability_monitoring_accepts_dev_without_monitor if {
	m := object.union(overlay("dev", {}), {"objects": [gateway_service_object]})
	count(findings(m, "operability-monitoring")) == 0
}

test_operability_monitoring_rejects_monitor_deleted if {
	m := object.union(overlay("prod", {}), {"objects": [gateway_service_object]})
	located(m, "operability-monitoring") == {["ServiceMonitor/venue-gateway", "kind"]}
}

test_operability_monitoring_rejects_selector_matching_no_gateway_service if {
	astray := object.union(service_monitor, {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway-typo"}}}})
	m := object.union(overlay("prod", {}), {"objects": [gateway_service_object, astray]})
	located(m, "operability-monitoring") == {["ServiceMonitor/venue-gateway", "spec.selector"]}
}

test_operability_monitoring_rejects_port_the_service_does_not_have if {
	renamed := object.union(service_monitor, {"spec": {"endpoints": [{"port": "prometheus"}]}})
	m := object.union(overlay("cert", {}), {"objects": [gateway_service_object, renamed]})
	located(m, "operability-monitoring") == {["ServiceMonitor/venue-gateway", "spec.selector"]}
}

# ---------------------------------------------------------------------------
# operability-prod-pdb
# ---------------------------------------------------------------------------

test_operability_prod_pdb_accepts_max_unavailable_one if {
	count(findings(shipped, "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_accepts_min_available_one_of_two if {
	pdb := object.union(gateway_pdb, {"maxUnavailable": null, "minAvailable": 1})
	count(findings(overlay("prod", {"pdbs": [pdb]}), "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_accepts_single_pod_without_budget if {
	single := gateway_with({"replicas": {"declared": 1, "max": 1, "scaledBy": []}, "pdbs": []})
	count(findings(overlay("prod", {"pods": [single, scheduler_pod], "pdbs": []}), "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_accepts_cert_without_budget if {
	gateway := gateway_with({"pdbs": []})
	count(findings(overlay("cert", {"pods": [gateway, scheduler_pod], "pdbs": []}), "operability-prod-pdb")) == 0
}

test_operability_prod_pdb_rejects_scheduled_standby_without_budget if {
	gateway := gateway_with({"pdbs": []})
	results := findings(overlay("prod", {"pods": [gateway, scheduler_pod], "pdbs": []}), "operability-prod-pdb")
	{[r.details.object, r.details.field] | some r in results} == {["StatefulSet/venue-gateway", "spec.template.metadata.labels"]}
	some r in results
	contains(r.msg, "CronJob/session-open")
}

test_operability_prod_pdb_rejects_budget_allowing_every_pod if {
	pdb := object.union(gateway_pdb, {"maxUnavailable": "100%"})
	located(overlay("prod", {"pdbs": [pdb]}), "operability-prod-pdb") == {["PodDisruptionBudget/venue-gateway", "spec.maxUnavailable"]}
}

test_operability_prod_pdb_rejects_min_available_too_low if {
	three := gateway_with({"replicas": {"declared": 3, "max": 3, "scaledBy": []}})
	pdb := object.union(gateway_pdb, {"maxUnavailable": null, "minAvailable": 1})
	located(overlay("prod", {"pods": [three, scheduler_pod], "pdbs": [pdb]}), "operability-prod-pdb") == {["PodDisruptionBudget/venue-gateway", "spec.minAvailable"]}
}

# ---------------------------------------------------------------------------
# operability-prod-spread
# ---------------------------------------------------------------------------

test_operability_prod_spread_accepts_host_anti_affinity_and_zone_spread if {
	count(findings(shipped, "operability-prod-spread")) == 0
}

test_operability_prod_spread_accepts_zone_anti_affinity if {
	scheduling := {
		"antiAffinity": [
			{"topologyKey": "kubernetes.io/hostname", "required": true, "matchesSelf": true},
			{"topologyKey": "topology.kubernetes.io/zone", "required": false, "matchesSelf": true},
		],
		"spread": [],
	}
	gateway := gateway_with({"scheduling": scheduling})
	count(findings(overlay("prod", {"pods": [gateway, scheduler_pod]}), "operability-prod-spread")) == 0
}

test_operability_prod_spread_accepts_single_pod if {
	single := gateway_with({"replicas": {"declared": 1, "max": 1, "scaledBy": []}, "scheduling": {"antiAffinity": [], "spread": []}})
	count(findings(overlay("prod", {"pods": [single, scheduler_pod]}), "operability-prod-spread")) == 0
}

test_operability_prod_spread_rejects_anti_affinity_removed_from_scheduled_standby if {
	gateway := gateway_with({"scheduling": {"antiAffinity": []}})
	results := findings(overlay("prod", {"pods": [gateway, scheduler_pod]}), "operability-prod-spread")
	{[r.details.object, r.details.field] | some r in results} == {["StatefulSet/venue-gateway", "spec.template.spec.affinity.podAntiAffinity"]}
	some r in results
	contains(r.msg, "up to 2 pods")
}

test_operability_prod_spread_rejects_spread_and_anti_affinity_removed if {
	gateway := gateway_with({"scheduling": {"antiAffinity": [], "spread": []}})
	located(overlay("prod", {"pods": [gateway, scheduler_pod]}), "operability-prod-spread") == {
		["StatefulSet/venue-gateway", "spec.template.spec.affinity.podAntiAffinity"],
		["StatefulSet/venue-gateway", "spec.template.spec.topologySpreadConstraints"],
	}
}

test_operability_prod_spread_rejects_preferred_or_foreign_anti_affinity if {
	scheduling := {"antiAffinity": [
		{"topologyKey": "kubernetes.io/hostname", "required": false, "matchesSelf": true},
		{"topologyKey": "kubernetes.io/hostname", "required": true, "matchesSelf": false},
	]}
	gateway := gateway_with({"scheduling": scheduling})
	located(overlay("prod", {"pods": [gateway, scheduler_pod]}), "operability-prod-spread") == {["StatefulSet/venue-gateway", "spec.template.spec.affinity.podAntiAffinity"]}
}

test_operability_prod_spread_rejects_zone_spread_selecting_other_pods if {
	scheduling := {"spread": [{"topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "matchesSelf": false}]}
	gateway := gateway_with({"scheduling": scheduling})
	located(overlay("prod", {"pods": [gateway, scheduler_pod]}), "operability-prod-spread") == {["StatefulSet/venue-gateway", "spec.template.spec.topologySpreadConstraints"]}
}

test_operability_prod_spread_rejects_autoscaled_deployment if {
	worker := object.union(scheduler_pod, {
		"id": "Deployment/feed-handler", "kind": "Deployment", "name": "feed-handler", "template": "spec.template", "role": "undeclared",
		"replicas": {"declared": 1, "max": 4, "scaledBy": [{"object": "HorizontalPodAutoscaler/feed-handler", "replicas": 4}]},
		"pdbs": ["PodDisruptionBudget/venue-gateway"],
	})
	located(overlay("prod", {"pods": [gateway_pod, worker]}), "operability-prod-spread") == {
		["Deployment/feed-handler", "spec.template.spec.affinity.podAntiAffinity"],
		["Deployment/feed-handler", "spec.template.spec.topologySpreadConstraints"],
	}
}

test_operability_prod_spread_accepts_daemonset if {
	agent := object.union(scheduler_pod, {
		"id": "DaemonSet/ptp-agent", "kind": "DaemonSet", "name": "ptp-agent", "template": "spec.template", "role": "undeclared",
		"replicas": {"declared": null, "max": 2, "scaledBy": []},
	})
	count(findings(overlay("prod", {"pods": [gateway_pod, agent]}), "operability-prod-spread")) == 0
	count(findings(overlay("prod", {"pods": [gateway_pod, agent]}), "operability-prod-pdb")) == 0
}
