# Operability: in cert and prod every failure the run book's services can have
# pages someone, and in prod every workload that runs more than one pod at any
# time of day survives a node drain and the loss of a node or a zone.
# Judged on the effective model: the alerts the overlay really renders, the
# budgets and placement that really select each pod, and the most pods it can
# run (a scheduler's `kubectl scale --replicas=2` counts, `replicas: null` does not hide it).
package vcpl.operability

import data.vcpl.lib

monitored_environments := {"cert", "prod"}

# The PrometheusRule each alert ships in (components/observability and
# components/clock-sync); every other alert belongs to the gateway's own rule.
alert_homes := {"VenueClockOffset": "PrometheusRule/venue-clock-sync"}

default_alert_home := "PrometheusRule/venue-gateway"

hostname_key := "kubernetes.io/hostname"

zone_key := "topology.kubernetes.io/zone"

# Path of a field of the pod template inside the object that owns it.
template_field(pod, path) := path if {
	pod.template == ""
} else := sprintf("%s.%s", [pod.template, path])

# A DaemonSet places one pod per node by construction and drains skip it, so
# neither a budget nor anti-affinity adds anything there.
runs_several_pods(pod) if {
	pod.kind != "DaemonSet"
	pod.replicas.max > 1
}

scaled_by_text(pod) := "" if {
	count(object.get(pod, ["replicas", "scaledBy"], [])) == 0
} else := sprintf(" (raised by %v)", [[s.object | some s in pod.replicas.scaledBy]])

# ---------------------------------------------------------------------------
# operability-alerts
# ---------------------------------------------------------------------------

rendered_alerts := {alert.name | some alert in input.alerts}

alert_home(name) := object.get(alert_homes, name, default_alert_home)

# rule: operability-alerts
deny contains result if {
	lib.is_overlay
	lib.environment in monitored_environments
	some name in input.expected.alerts
	not name in rendered_alerts
	result := lib.finding(
		"operability-alerts", alert_home(name), "spec.groups",
		sprintf("alert %s, which the run book's services imply, is rendered by no PrometheusRule of the overlay: that failure pages nobody", [name]),
		sprintf("restore %s (run make generate and keep the observability and clock-sync components the run book calls for)", [alert_home(name)]),
	)
}

# ---------------------------------------------------------------------------
# operability-monitoring
# ---------------------------------------------------------------------------

namespace := input.overlay.namespace

object_id(obj) := sprintf("%s/%s", [obj.kind, obj.metadata.name])

rendered(kind) := [obj | some obj in input.objects; obj.kind == kind]

expression_matches(expr, labels) if {
	expr.operator == "In"
	labels[expr.key] in object.get(expr, "values", [])
}

expression_matches(expr, labels) if {
	expr.operator == "NotIn"
	not labels[expr.key] in object.get(expr, "values", [])
}

expression_matches(expr, labels) if {
	expr.operator == "Exists"
	labels[expr.key]
}

expression_matches(expr, labels) if {
	expr.operator == "DoesNotExist"
	not labels[expr.key]
}

# A LabelSelector, as the Prometheus operator applies it: empty selects everything.
selector_matches(selector, labels) if {
	every key, value in object.get(selector, "matchLabels", {}) {
		labels[key] == value
	}
	every expr in object.get(selector, "matchExpressions", []) {
		expression_matches(expr, labels)
	}
}

# A monitor without namespaceSelector watches its own namespace.
watches_overlay_namespace(monitor) if not monitor.spec.namespaceSelector

watches_overlay_namespace(monitor) if monitor.spec.namespaceSelector.any == true

watches_overlay_namespace(monitor) if namespace in object.get(monitor.spec.namespaceSelector, "matchNames", [])

service_port_names(service) := {p.name | some p in object.get(service, ["spec", "ports"], []); p.name}

endpoint_reaches(endpoint, service) if endpoint.port in service_port_names(service)

endpoint_reaches(endpoint, _) if endpoint.targetPort

# Prometheus scrapes the pod: a ServiceMonitor selects a Service that selects
# the pod and names one of its ports, or a PodMonitor selects the pod itself.
scraped(pod) if {
	some monitor in rendered("ServiceMonitor")
	watches_overlay_namespace(monitor)
	some service in rendered("Service")
	some modelled in input.services
	modelled.id == object_id(service)
	pod.id in modelled.selects
	selector_matches(object.get(monitor, ["spec", "selector"], {}), object.get(service, ["metadata", "labels"], {}))
	some endpoint in object.get(monitor, ["spec", "endpoints"], [])
	endpoint_reaches(endpoint, service)
}

scraped(pod) if {
	some monitor in rendered("PodMonitor")
	watches_overlay_namespace(monitor)
	selector_matches(object.get(monitor, ["spec", "selector"], {}), pod.labels)
	count(object.get(monitor, ["spec", "podMetricsEndpoints"], [])) > 0
}

monitor_location := ["ServiceMonitor/venue-gateway", "spec.selector"] if {
	some monitor in rendered("ServiceMonitor")
	monitor.metadata.name == "venue-gateway"
} else := ["ServiceMonitor/venue-gateway", "kind"]

# rule: operability-monitoring
deny contains result if {
	lib.is_overlay
	lib.environment in monitored_environments
	some pod in lib.gateway_pods
	not scraped(pod)
	[obj, field] := monitor_location
	result := lib.finding(
		"operability-monitoring", obj, field,
		sprintf("no ServiceMonitor (through a Service and a named port) or PodMonitor selects %s: Prometheus never scrapes the gateway, so no session or feed alert can fire", [pod.id]),
		"restore the observability component's ServiceMonitor venue-gateway selecting the gateway Service and its metrics port",
	)
}

# ---------------------------------------------------------------------------
# operability-prod-pdb
# ---------------------------------------------------------------------------

pdbs_by_id := {pdb.id: pdb | some pdb in input.pdbs}

# How many pods, out of `pods`, a budget lets a drain evict at once. The
# disruption controller rounds percentages up for both fields.
percent_of(value, pods) := ceil((to_number(trim_suffix(value, "%")) * pods) / 100)

disruptions_allowed(pdb, pods) := pdb.maxUnavailable if {
	is_number(pdb.maxUnavailable)
} else := percent_of(pdb.maxUnavailable, pods) if {
	is_string(pdb.maxUnavailable)
	endswith(pdb.maxUnavailable, "%")
} else := pods - pdb.minAvailable if {
	is_number(pdb.minAvailable)
} else := pods - percent_of(pdb.minAvailable, pods) if {
	is_string(pdb.minAvailable)
	endswith(pdb.minAvailable, "%")
} else := pods

budget_field(pdb) := "spec.maxUnavailable" if {
	object.get(pdb, "maxUnavailable", null) != null
} else := "spec.minAvailable"

# rule: operability-prod-pdb
deny contains result if {
	lib.is_overlay
	lib.environment == "prod"
	some pod in input.pods
	runs_several_pods(pod)
	count(object.get(pod, "pdbs", [])) == 0
	result := lib.finding(
		"operability-prod-pdb", pod.id, template_field(pod, "metadata.labels"),
		sprintf("%s runs up to %d pods%s but no PodDisruptionBudget selects its pod labels: a node drain can evict every replica at once, mid-session", [pod.id, pod.replicas.max, scaled_by_text(pod)]),
		"add a PodDisruptionBudget with maxUnavailable: 1 whose selector matches the pod template's labels",
	)
}

deny contains result if {
	lib.is_overlay
	lib.environment == "prod"
	some pod in input.pods
	runs_several_pods(pod)
	some id in object.get(pod, "pdbs", [])
	pdb := pdbs_by_id[id]
	allowed := disruptions_allowed(pdb, pod.replicas.max)
	allowed > 1
	result := lib.finding(
		"operability-prod-pdb", id, budget_field(pdb),
		sprintf("the budget (maxUnavailable %v, minAvailable %v) lets a drain evict %d of the %d pods of %s at once; expected at most one", [object.get(pdb, "maxUnavailable", null), object.get(pdb, "minAvailable", null), allowed, pod.replicas.max, pod.id]),
		"set maxUnavailable: 1 (and no minAvailable) on the PodDisruptionBudget",
	)
}

# ---------------------------------------------------------------------------
# operability-prod-spread
# ---------------------------------------------------------------------------

apart_on_hosts(pod) if {
	some term in object.get(pod, ["scheduling", "antiAffinity"], [])
	term.topologyKey == hostname_key
	term.required == true
	term.matchesSelf == true
}

apart_on_zones(pod) if {
	some constraint in object.get(pod, ["scheduling", "spread"], [])
	constraint.topologyKey == zone_key
	constraint.matchesSelf == true
}

apart_on_zones(pod) if {
	some term in object.get(pod, ["scheduling", "antiAffinity"], [])
	term.topologyKey == zone_key
	term.matchesSelf == true
}

# rule: operability-prod-spread
deny contains result if {
	lib.is_overlay
	lib.environment == "prod"
	some pod in input.pods
	runs_several_pods(pod)
	not apart_on_hosts(pod)
	result := lib.finding(
		"operability-prod-spread", pod.id, template_field(pod, "spec.affinity.podAntiAffinity"),
		sprintf("%s runs up to %d pods%s with no required pod anti-affinity on %s that matches its own labels: primary and standby can share a node and fail together", [pod.id, pod.replicas.max, scaled_by_text(pod), hostname_key]),
		sprintf("add requiredDuringSchedulingIgnoredDuringExecution pod anti-affinity with topologyKey %s and a labelSelector matching the pod template's labels", [hostname_key]),
	)
}

deny contains result if {
	lib.is_overlay
	lib.environment == "prod"
	some pod in input.pods
	runs_several_pods(pod)
	not apart_on_zones(pod)
	result := lib.finding(
		"operability-prod-spread", pod.id, template_field(pod, "spec.topologySpreadConstraints"),
		sprintf("%s runs up to %d pods%s with no topology spread or pod anti-affinity on %s that matches its own labels: a zone outage can take every replica", [pod.id, pod.replicas.max, scaled_by_text(pod), zone_key]),
		sprintf("add a topologySpreadConstraint with topologyKey %s and a labelSelector matching the pod template's labels", [zone_key]),
	)
}
