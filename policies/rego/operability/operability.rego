# Operability: live overlays are scraped and alerted on, and prod gateways
# survive voluntary disruptions and single-node failures.
package vcpl.operability

import data.vcpl.lib

monitored_environments := {"cert", "prod"}

spread_topology_keys := {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}

has_kind(venue, env, kinds) if {
	some obj in lib.overlay_objects(venue, env)
	obj.kind in kinds
}

# rule: operability-monitoring
deny contains result if {
	some result in monitoring_findings
}

monitoring_findings contains result if {
	some [venue, env] in lib.overlays
	env in monitored_environments
	not has_kind(venue, env, {"ServiceMonitor", "PodMonitor"})
	result := lib.finding(
		"operability-monitoring", venue, env, "ServiceMonitor/venue-gateway", "kind",
		"no ServiceMonitor or PodMonitor: Prometheus does not scrape the gateway, so no alert can fire",
		"include the monitoring component (ServiceMonitor venue-gateway) in the overlay",
	)
}

monitoring_findings contains result if {
	some [venue, env] in lib.overlays
	env in monitored_environments
	not has_kind(venue, env, {"PrometheusRule"})
	result := lib.finding(
		"operability-monitoring", venue, env, "PrometheusRule/venue-gateway", "kind",
		"no PrometheusRule: session, heartbeat and feed failures raise no alert",
		"include the monitoring component (PrometheusRule venue-gateway) in the overlay",
	)
}

# ---------------------------------------------------------------------------
# operability-prod-pdb
# ---------------------------------------------------------------------------

pod_labels(workload) := object.get(workload, ["spec", "template", "metadata", "labels"], {})

gateway_statefulsets(venue, env) := {sts |
	some sts in lib.overlay_kind(venue, env, "StatefulSet")
	pod_labels(sts)[lib.gateway_app_label] == lib.gateway_app
}

pdb_covers(venue, env, sts) if {
	some pdb in lib.overlay_kind(venue, env, "PodDisruptionBudget")
	lib.labels_subset(pdb.spec.selector.matchLabels, pod_labels(sts))
}

# rule: operability-prod-pdb
deny contains result if {
	some result in pdb_findings
}

pdb_findings contains result if {
	some [venue, env] in lib.overlays
	env == "prod"
	some sts in gateway_statefulsets(venue, env)
	not pdb_covers(venue, env, sts)
	result := lib.finding(
		"operability-prod-pdb", venue, env, lib.object_id(sts), "spec.template.metadata.labels",
		"no PodDisruptionBudget whose spec.selector.matchLabels select these gateway pods: a node drain can evict the session mid-trading",
		"add a PodDisruptionBudget with spec.selector.matchLabels app.kubernetes.io/name: venue-gateway",
	)
}

# Without a gateway StatefulSet there is nothing a budget could protect; that is
# itself wrong for a prod overlay.
pdb_findings contains result if {
	some [venue, env] in lib.overlays
	env == "prod"
	count(gateway_statefulsets(venue, env)) == 0
	result := lib.finding(
		"operability-prod-pdb", venue, env, "StatefulSet/venue-gateway", "spec.template.metadata.labels",
		sprintf("no StatefulSet with pod label %s: %s, so no PodDisruptionBudget can be checked against it", [lib.gateway_app_label, lib.gateway_app]),
		"render the gateway StatefulSet (base) in the prod overlay",
	)
}

# ---------------------------------------------------------------------------
# operability-prod-spread
# ---------------------------------------------------------------------------

spread_over_failure_domains(workload) if {
	some constraint in workload.spec.template.spec.topologySpreadConstraints
	constraint.topologyKey in spread_topology_keys
}

spread_over_failure_domains(workload) if {
	anti := workload.spec.template.spec.affinity.podAntiAffinity
	is_object(anti)
	count(anti) > 0
}

# rule: operability-prod-spread
deny contains result if {
	some [venue, env] in lib.overlays
	env == "prod"
	some workload in lib.overlay_objects(venue, env)
	workload.kind in {"StatefulSet", "Deployment"}
	replicas := object.get(workload, ["spec", "replicas"], 1)
	is_number(replicas)
	replicas > 1
	not spread_over_failure_domains(workload)
	result := lib.finding(
		"operability-prod-spread", venue, env, lib.object_id(workload), "spec.template.spec.topologySpreadConstraints",
		sprintf("%v replicas with neither a topologySpreadConstraint on %v nor a podAntiAffinity: all replicas may land on one node", [replicas, sort(spread_topology_keys)]),
		"add topologySpreadConstraints with topologyKey kubernetes.io/hostname (or topology.kubernetes.io/zone), or a podAntiAffinity",
	)
}
